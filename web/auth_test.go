package web_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
	"github.com/gatehouse-net/gatehouse/web/webtest"
)

func TestAccountLocksAfterTenBadPasswords(t *testing.T) {
	h := webtest.New(t, webtest.Options{})
	h.AddUser(t, "alice", web.RoleNetwork, testPassword)
	b := h.NewBrowser(t)

	var failBody string
	for i := 1; i <= web.MaxLoginFailures; i++ {
		r := b.TryLogin("alice", "wrong password")
		if r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("bad attempt %d: status %d, want 401", i, r.StatusCode)
		}
		failBody = r.Body
	}
	u, err := h.Store.UserByName(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !h.Clock.Now().Before(u.LockedUntil) {
		t.Fatalf("after %d failures LockedUntil = %v, want after %v", web.MaxLoginFailures, u.LockedUntil, h.Clock.Now())
	}

	// Locked: the right password is refused, with the very same page as a
	// wrong password and as an unknown name.
	r := b.TryLogin("alice", testPassword)
	if r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("right password while locked: status %d, want 401", r.StatusCode)
	}
	if !strings.Contains(r.Body, web.LoginFailed) || r.Body != failBody {
		t.Errorf("locked refusal differs from a bad-password refusal")
	}
	unknown := b.TryLogin("nobody", testPassword)
	if unknown.StatusCode != http.StatusUnauthorized || strings.ReplaceAll(unknown.Body, "nobody", "alice") != failBody {
		t.Errorf("unknown-user refusal differs from a bad-password refusal (status %d)", unknown.StatusCode)
	}
	if b.Cookie(web.SessionCookie) != "" {
		t.Fatal("a session cookie was set while locked")
	}

	h.Clock.Advance(web.LockDuration + time.Second)
	b.Login("alice", testPassword)
	if u, _ := h.Store.UserByName(context.Background(), "alice"); u.FailedLogins != 0 {
		t.Errorf("after a good login FailedLogins = %d, want 0", u.FailedLogins)
	}

	m := scrape(t, h)
	for _, want := range []string{`gatehouse_web_logins_total{result="failure"} 12`, `gatehouse_web_logins_total{result="success"} 1`, `gatehouse_web_account_lockouts_total 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// The store audited the lock.
	entries, err := h.Store.AuditList(context.Background(), 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(entries, func(e store.AuditEntry) bool { return e.Action == "user.lock" && e.Object == "user:alice" }) {
		t.Error("no user.lock audit entry")
	}
}

func TestUnknownNamesThrottleTheClientAddress(t *testing.T) {
	h := webtest.New(t, webtest.Options{})
	h.AddUser(t, "bob", web.RoleDSL, testPassword)
	b := h.NewBrowser(t)
	for i := range web.MaxLoginFailures {
		if r := b.TryLogin("guess"+string(rune('a'+i)), "whatever"); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("unknown name %d: status %d", i, r.StatusCode)
		}
	}
	// 127.0.0.1 is now blocked for logins, even with a real account.
	if r := b.TryLogin("bob", testPassword); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("blocked address: status %d, want 401", r.StatusCode)
	}
	// The account itself is untouched: the block is per address.
	if u, _ := h.Store.UserByName(context.Background(), "bob"); u.FailedLogins != 0 {
		t.Errorf("bob FailedLogins = %d, want 0", u.FailedLogins)
	}
	h.Clock.Advance(web.LockDuration + time.Second)
	b.Login("bob", testPassword)
}

func TestSessionCookieHeadersAndLifetime(t *testing.T) {
	h := webtest.New(t, webtest.Options{})
	h.AddUser(t, "carol", web.RoleDSL, testPassword)
	b := h.NewBrowser(t)

	login := b.TryLogin("carol", testPassword)
	var sc *http.Cookie
	for _, c := range (&http.Response{Header: login.Header}).Cookies() {
		if c.Name == web.SessionCookie {
			sc = c
		}
	}
	if sc == nil {
		t.Fatal("no session cookie")
	}
	if !sc.Secure || !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode {
		t.Errorf("cookie Secure=%v HttpOnly=%v SameSite=%v, want true true Strict", sc.Secure, sc.HttpOnly, sc.SameSite)
	}
	// Only the SHA-256 of the token is stored.
	ctx := context.Background()
	if _, _, err := h.Store.SessionByTokenHash(ctx, sc.Value, h.Clock.Now()); err == nil {
		t.Error("the raw cookie value finds a session: the token is stored in clear")
	}
	if _, _, err := h.Store.SessionByTokenHash(ctx, web.HashToken(sc.Value), h.Clock.Now()); err != nil {
		t.Errorf("the hashed cookie value finds no session: %v", err)
	}

	page := b.Get("/")
	for header, want := range map[string]string{
		"Strict-Transport-Security": "max-age=",
		"Content-Security-Policy":   "default-src 'self'",
		"X-Frame-Options":           "DENY",
		"Cache-Control":             "no-store",
		"X-Content-Type-Options":    "nosniff",
	} {
		if got := page.Header.Get(header); !strings.Contains(got, want) {
			t.Errorf("%s = %q, want it to contain %q", header, got, want)
		}
	}

	// In use all day, the session lasts until its absolute lifetime.
	for elapsed := time.Duration(0); elapsed < web.SessionLifetime-time.Minute; {
		step := min(web.SessionIdle/2, web.SessionLifetime-time.Minute-elapsed)
		h.Clock.Advance(step)
		elapsed += step
		if r := b.Get("/"); r.StatusCode != http.StatusOK {
			t.Fatalf("in use %v after login: %d", elapsed, r.StatusCode)
		}
	}
	h.Clock.Advance(2 * time.Minute)
	if r := b.Get("/"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("after %v: %d, want 303 to login", web.SessionLifetime, r.StatusCode)
	}
}

func TestIdleSessionEnds(t *testing.T) {
	h := webtest.New(t, webtest.Options{})
	h.AddUser(t, "ivy", web.RoleReception, testPassword)
	active, idle := h.NewBrowser(t), h.NewBrowser(t)
	active.Login("ivy", testPassword)
	idle.Login("ivy", testPassword)
	ctx := context.Background()
	lastSeen := func(b *webtest.Browser) time.Time {
		t.Helper()
		sess, _, err := h.Store.SessionByTokenHash(ctx, web.HashToken(b.Cookie(web.SessionCookie)), h.Clock.Now())
		if err != nil {
			t.Fatalf("session: %v", err)
		}
		return sess.LastSeen
	}
	login := h.Clock.Now()

	// Activity is written at most once a minute per session.
	h.Clock.Advance(30 * time.Second)
	if r := active.Get("/"); r.StatusCode != http.StatusOK {
		t.Fatalf("30s after login: %d", r.StatusCode)
	}
	if got := lastSeen(active); !got.Equal(login) {
		t.Errorf("LastSeen = %v after a request 30s in, want it left at login %v", got, login)
	}
	h.Clock.Advance(time.Minute)
	if r := active.Get("/"); r.StatusCode != http.StatusOK {
		t.Fatalf("90s after login: %d", r.StatusCode)
	}
	if got := lastSeen(active); !got.Equal(h.Clock.Now()) {
		t.Errorf("LastSeen = %v, want %v", got, h.Clock.Now())
	}

	// The active browser keeps going past the idle limit; the idle one,
	// untouched since login, is refused and its session deleted.
	for range 4 {
		h.Clock.Advance(web.SessionIdle / 3)
		if r := active.Get("/"); r.StatusCode != http.StatusOK {
			t.Fatalf("active session refused %v after login: %d", h.Clock.Now().Sub(login), r.StatusCode)
		}
	}
	idleFor := h.Clock.Now().Sub(login)
	if idleFor <= web.SessionIdle {
		t.Fatalf("test bug: idle browser only idle for %v", idleFor)
	}
	stale := idle.Cookie(web.SessionCookie)
	r := idle.Get("/tokens")
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/login") {
		t.Fatalf("idle for %v: status %d location %q, want 303 to /login", idleFor, r.StatusCode, r.Header.Get("Location"))
	}
	// Setting the clock back (a router without RTC before NTP) does not
	// bring it back.
	if _, _, err := h.Store.SessionByTokenHash(ctx, web.HashToken(stale), login.Add(time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("idle session still in the store: %v", err)
	}
	if r := active.Get("/"); r.StatusCode != http.StatusOK {
		t.Errorf("active session after the idle one ended: %d", r.StatusCode)
	}
}

func TestLogoutEndsTheSession(t *testing.T) {
	h := webtest.New(t, webtest.Options{})
	h.AddUser(t, "dave", web.RoleReception, testPassword)
	b := h.NewBrowser(t)
	b.Login("dave", testPassword)
	stolen := b.Cookie(web.SessionCookie)
	if r := b.Post("/logout", url.Values{"csrf": {b.CSRFFrom("/")}}); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login" {
		t.Fatalf("logout: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	// The cookie value itself no longer works, not just the browser's copy.
	if _, _, err := h.Store.SessionByTokenHash(context.Background(), web.HashToken(stolen), h.Clock.Now()); err == nil {
		t.Error("session still in the store after logout")
	}
	if r := b.Get("/"); r.StatusCode != http.StatusSeeOther {
		t.Errorf("after logout GET / = %d, want 303", r.StatusCode)
	}
}

func TestChangePassword(t *testing.T) {
	h := webtest.New(t, webtest.Options{})
	h.AddUser(t, "fran", web.RoleReception, testPassword)
	b := h.NewBrowser(t)
	b.Login("fran", testPassword)
	const next = "a brand new passphrase"
	if r := b.Post("/account", url.Values{"csrf": {b.CSRFFrom("/account")}, "current": {"wrong one"}, "password": {next}, "confirm": {next}}); r.StatusCode != http.StatusForbidden {
		t.Errorf("wrong current password: %d, want 403", r.StatusCode)
	}
	if u, _ := h.Store.UserByName(context.Background(), "fran"); u.FailedLogins != 1 {
		t.Errorf("wrong current password not counted: FailedLogins = %d", u.FailedLogins)
	}
	// Fran is also signed in elsewhere (perhaps by whoever learned the old
	// password), and so is another user.
	elsewhere, other := h.NewBrowser(t), h.NewBrowser(t)
	elsewhere.Login("fran", testPassword)
	h.AddUser(t, "gus", web.RoleReception, testPassword)
	other.Login("gus", testPassword)
	if r := b.Post("/account", url.Values{"csrf": {b.CSRFFrom("/account")}, "current": {testPassword}, "password": {next}, "confirm": {next}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("change: %d, want 303", r.StatusCode)
	}
	if r := b.Get("/account?done=password-changed"); r.StatusCode != http.StatusOK || !strings.Contains(r.Body, "Password changed") {
		t.Errorf("the browser that changed the password: %d, want 200 still signed in", r.StatusCode)
	}
	if r := elsewhere.Get("/"); r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/login") {
		t.Errorf("fran's other session after the change: %d %q, want 303 to /login", r.StatusCode, r.Header.Get("Location"))
	}
	if r := other.Get("/"); r.StatusCode != http.StatusOK {
		t.Errorf("another user's session after fran's change: %d, want 200", r.StatusCode)
	}
	if r := h.NewBrowser(t).TryLogin("fran", testPassword); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("old password still works: %d", r.StatusCode)
	}
	h.NewBrowser(t).Login("fran", next)
}

func TestSecretsAreNotLogged(t *testing.T) {
	h := webtest.New(t, webtest.Options{})
	h.AddUser(t, "gwen", web.RoleNetwork, testPassword)
	b := h.NewBrowser(t)
	b.TryLogin("gwen", "a wrong secret guess")
	b.TryLogin("hunter2-as-a-name", "whatever")
	b.Login("gwen", testPassword)
	tok := b.NewToken("ci")
	b.API(http.MethodGet, "/api/v1/whoami", tok, "")
	logs := h.Logs.String()
	if !strings.Contains(logs, "web: login") {
		t.Fatal("expected login log lines; is the logger wired?")
	}
	for _, secret := range []string{testPassword, "a wrong secret guess", "hunter2-as-a-name", tok, b.Cookie(web.SessionCookie)} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains a secret %q", secret)
		}
	}
}

// scrape returns /metrics as a loopback client sees it.
func scrape(t *testing.T, h *webtest.Site) string {
	t.Helper()
	r := h.NewBrowser(t).Get("/metrics")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d", r.StatusCode)
	}
	return r.Body
}
