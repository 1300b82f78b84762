package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse-net/gatehouse/web/httpx"

	"github.com/gatehouse-net/gatehouse/password"
	"github.com/gatehouse-net/gatehouse/store"
)

// Keys of the values the guards put on the request context (httpx.Context).
const (
	keyUser    = "gatehouse.web.user"
	keySession = "gatehouse.web.session"
	keyToken   = "gatehouse.web.apitoken"
)

// tokenLen is the length of a 32-byte random token in unpadded base64url.
const tokenLen = 43

// randomToken returns 32 random bytes, base64url-encoded.
func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("web: random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// hashToken is what the store keeps of a session or API token: a database
// leak must not hand out live credentials. Tokens are 256 random bits, so a
// plain SHA-256 is enough (argon2 is for guessable human passwords).
func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

func equalTokens(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// CurrentUser returns the user a guard authenticated for this request.
func CurrentUser(c *httpx.Context) (store.User, bool) {
	v, ok := c.Get(keyUser)
	if !ok {
		return store.User{}, false
	}
	u, ok := v.(store.User)
	return u, ok
}

// Actor names the current user in audit entries: "web:<name>".
func Actor(c *httpx.Context) string {
	u, _ := CurrentUser(c)
	return "web:" + u.Name
}

// CSRFToken returns the session's CSRF token, for a form's hidden "csrf"
// field. Render fills it in for templates; this is for other responses.
func CSRFToken(c *httpx.Context) string {
	sess, ok := currentSession(c)
	if !ok {
		// A public form (AddPublicForm) has its double-submit token.
		if tok, ok := c.Get(keyFormCSRF); ok {
			s, _ := tok.(string)
			return s
		}
	}
	return sess.CSRFToken
}

// currentSession returns the session requireSession authenticated.
func currentSession(c *httpx.Context) (store.Session, bool) {
	v, ok := c.Get(keySession)
	if !ok {
		return store.Session{}, false
	}
	sess, ok := v.(store.Session)
	return sess, ok && sess.TokenHash != ""
}

func isUnsafe(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// clientAddr is the TCP peer of r (IPv4-mapped addresses unmapped).
func clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func setCookie(c *httpx.Context, name, value string, maxAge int) {
	http.SetCookie(c.Writer, &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		Secure:   true,
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	})
}

// sessionFromCookie returns the live session named by the request's
// session cookie, or ok=false when there is none, and records the request
// as activity on it.
func (s *Server) sessionFromCookie(c *httpx.Context) (store.Session, store.User, bool, error) {
	return s.sessionOf(c, false)
}

// sessionOf is sessionFromCookie; a passive request (Page.Passive) is
// checked the same way but not recorded as activity.
func (s *Server) sessionOf(c *httpx.Context, passive bool) (store.Session, store.User, bool, error) {
	ck, err := c.Request.Cookie(sessionCookie)
	if err != nil || len(ck.Value) != tokenLen {
		return store.Session{}, store.User{}, false, nil
	}
	now := s.now()
	sess, u, err := s.store.SessionByTokenHash(c.Request.Context(), hashToken(ck.Value), now)
	if errors.Is(err, store.ErrNotFound) {
		return store.Session{}, store.User{}, false, nil
	}
	if err != nil {
		return store.Session{}, store.User{}, false, fmt.Errorf("web: look up session: %w", err)
	}
	if u.Disabled || !now.Before(sess.ExpiresAt) || now.Sub(sess.CreatedAt) >= s.lifetimeFor(u.Role) {
		return store.Session{}, store.User{}, false, nil
	}
	if now.Sub(sess.LastSeen) > s.idleFor(u.Role) {
		// Deleted, not just refused: a router clock that is later set back
		// (no RTC, NTP not yet synced) must not bring the session back.
		if err := s.store.DeleteSession(c.Request.Context(), sess.TokenHash); err != nil {
			s.log.Warn("web: delete idle session", "user", u.Name, "err", err)
		}
		s.log.Info("web: session ended after being idle", "user", u.Name, "idle", now.Sub(sess.LastSeen).Truncate(time.Second))
		return store.Session{}, store.User{}, false, nil
	}
	if !passive && now.Sub(sess.LastSeen) >= sessionTouchEvery {
		// A failed touch costs at most the session's idle allowance, not this
		// request: the session was valid when it arrived.
		if err := s.store.TouchSession(c.Request.Context(), sess.TokenHash, now); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("web: record session activity", "user", u.Name, "err", err)
		}
		sess.LastSeen = now
	}
	return sess, u, true, nil
}

// requireSession guards a page: anonymous visitors are sent to the login
// form, other roles get 403, and unsafe methods need the session's CSRF
// token.
func (s *Server) requireSession(roles []string, passive bool) httpx.HandlerFunc {
	return func(c *httpx.Context) {
		sess, u, ok, err := s.sessionOf(c, passive)
		if err != nil {
			s.log.Error("web: session", "err", err)
			s.RenderError(c, http.StatusInternalServerError, "The database could not be read.")
			c.Abort()
			return
		}
		if !ok {
			target := "/login"
			if c.Request.Method == http.MethodGet && c.Request.URL.Path != "/" {
				target += "?next=" + url.QueryEscape(c.Request.URL.RequestURI())
			}
			c.Redirect(http.StatusSeeOther, target)
			c.Abort()
			return
		}
		c.Set(keyUser, u)
		c.Set(keySession, sess)
		if !hasRole(roles, u.Role) {
			s.log.Warn("web: role refused", "user", u.Name, "role", u.Role, "method", c.Request.Method, "path", c.Request.URL.Path)
			s.RenderError(c, http.StatusForbidden, "Your role does not give you this page.")
			c.Abort()
			return
		}
		if isUnsafe(c.Request.Method) && !checkCSRF(c, sess.CSRFToken) {
			s.log.Warn("web: csrf token missing or wrong", "user", u.Name, "method", c.Request.Method, "path", c.Request.URL.Path)
			s.RenderError(c, http.StatusForbidden, "This form was out of date. Go back, reload the page and try again.")
			c.Abort()
			return
		}
	}
}

// checkCSRF compares the form field "csrf" (or the X-CSRF-Token header, for
// scripts) with want.
func checkCSRF(c *httpx.Context, want string) bool {
	got := c.PostForm("csrf")
	if got == "" {
		got = c.GetHeader("X-CSRF-Token")
	}
	return equalTokens(want, got)
}

// tokenFromHeader authenticates "Authorization: Bearer <token>".
func (s *Server) tokenFromHeader(c *httpx.Context) (store.APIToken, store.User, bool, error) {
	scheme, val, _ := strings.Cut(c.GetHeader("Authorization"), " ")
	val = strings.TrimSpace(val)
	if !strings.EqualFold(scheme, "Bearer") || val == "" || len(val) > 256 {
		return store.APIToken{}, store.User{}, false, nil
	}
	tok, u, err := s.store.APITokenByHash(c.Request.Context(), hashToken(val), s.now())
	if errors.Is(err, store.ErrNotFound) {
		return store.APIToken{}, store.User{}, false, nil
	}
	if err != nil {
		return store.APIToken{}, store.User{}, false, fmt.Errorf("web: look up api token: %w", err)
	}
	if u.Disabled || tokenExpired(tok, s.now()) {
		return store.APIToken{}, store.User{}, false, nil
	}
	return tok, u, true, nil
}

// tokenExpired reports whether tok is past its lifetime at now.
func tokenExpired(tok store.APIToken, now time.Time) bool {
	return !now.Before(tok.CreatedAt.Add(APITokenLifetime))
}

// requireBearer guards an API route. Cookies are ignored: a browser that
// happens to hold a session cannot be made to call the API cross-site, so
// the API needs no CSRF token.
func (s *Server) requireBearer(roles []string) httpx.HandlerFunc {
	return func(c *httpx.Context) {
		tok, u, ok, err := s.tokenFromHeader(c)
		if err != nil {
			s.log.Error("web: api token", "err", err)
			c.AbortWithStatusJSON(http.StatusInternalServerError, httpx.H{"error": "internal error"})
			return
		}
		if !ok {
			c.Header("WWW-Authenticate", `Bearer realm="gatehouse"`)
			c.AbortWithStatusJSON(http.StatusUnauthorized, httpx.H{"error": "missing or invalid bearer token"})
			return
		}
		c.Set(keyUser, u)
		c.Set(keyToken, tok)
		if !hasRole(roles, u.Role) {
			s.log.Warn("web: api role refused", "user", u.Name, "role", u.Role, "method", c.Request.Method, "path", c.Request.URL.Path)
			c.AbortWithStatusJSON(http.StatusForbidden, httpx.H{"error": "forbidden for role " + u.Role})
			return
		}
	}
}

// requireMetricsAccess lets /metrics through for the configured scrape
// addresses (Options.MetricsFrom) and otherwise only for the network role,
// by bearer token (a remote Prometheus) or session (a network manager
// looking in a browser). Loopback is not trusted by itself: any local
// process, and anything a port forward relays, comes from loopback.
func (s *Server) requireMetricsAccess(c *httpx.Context) {
	ip := clientAddr(c.Request)
	for _, p := range s.metricsFrom {
		if ip.IsValid() && p.Contains(ip) {
			return
		}
	}
	var u store.User
	if c.GetHeader("Authorization") != "" {
		_, tu, ok, err := s.tokenFromHeader(c)
		if err != nil {
			s.log.Error("web: metrics: api token", "err", err)
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
		if !ok {
			c.Header("WWW-Authenticate", `Bearer realm="gatehouse"`)
			c.AbortWithStatus(http.StatusUnauthorized)
			return
		}
		u = tu
	} else {
		_, su, ok, err := s.sessionFromCookie(c)
		if err != nil {
			s.log.Error("web: metrics: session", "err", err)
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
		if !ok {
			c.Header("WWW-Authenticate", `Bearer realm="gatehouse"`)
			c.AbortWithStatus(http.StatusUnauthorized)
			return
		}
		u = su
	}
	c.Set(keyUser, u)
	if u.Role != RoleNetwork {
		c.AbortWithStatus(http.StatusForbidden)
	}
}

// loginFailed is the one message for every refused login: wrong name, wrong
// password, locked account, throttled address all look the same, so the
// form tells an attacker nothing about which names exist.
const loginFailed = "Sign-in failed. Check your name and password; after repeated failures sign-in is paused for 15 minutes."

type loginData struct {
	Next, Name string
}

// safeNext keeps a post-login redirect on this site: only a plain path is
// accepted. Browsers drop TAB, CR and LF from URLs and read a backslash as a
// slash, so "/\t/evil.example" or "/\\evil.example" would be followed as
// "//evil.example", another site; any control or white-space character, a
// backslash, a scheme or a leading "//" sends the user home instead.
func safeNext(next string) string {
	if next == "" || next[0] != '/' || len(next) > 2048 || strings.HasPrefix(next, "/login") {
		return "/"
	}
	for _, r := range next {
		if r < 0x21 || r == 0x7f || r == '\\' || unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || strings.HasPrefix(next, "//") || !strings.HasPrefix(u.Path, "/") {
		return "/"
	}
	return next
}

// loginPage shows the login form. The form carries a CSRF token that must
// match a cookie set here (double submit): there is no session yet to tie
// it to, and without it a hostile site could log a browser in as the
// attacker.
func (s *Server) loginPage(c *httpx.Context) {
	if _, u, ok, err := s.sessionFromCookie(c); err == nil && ok {
		next := safeNext(c.Query("next"))
		if next == "/" {
			next = s.landing(u.Role)
		}
		c.Redirect(http.StatusSeeOther, next)
		return
	}
	csrf, err := s.loginCSRF(c)
	if err != nil {
		s.log.Error("web: login form", "err", err)
		s.RenderError(c, http.StatusInternalServerError, "Internal error.")
		return
	}
	s.renderLogin(c, http.StatusOK, csrf, loginData{Next: safeNext(c.Query("next"))}, "")
}

// loginCSRF returns the browser's login CSRF cookie, setting a fresh one if
// it has none (so two open login tabs both work).
func (s *Server) loginCSRF(c *httpx.Context) (string, error) {
	if ck, err := c.Request.Cookie(loginCSRF); err == nil && len(ck.Value) == tokenLen {
		return ck.Value, nil
	}
	tok, err := randomToken()
	if err != nil {
		return "", err
	}
	setCookie(c, loginCSRF, tok, int(time.Hour/time.Second))
	return tok, nil
}

func (s *Server) renderLogin(c *httpx.Context, status int, csrf string, d loginData, msg string) {
	s.renderPage(c, status, "login", &View{Site: s.site, Title: "Sign in", CSRF: csrf, Error: msg, Data: d})
}

func (s *Server) login(c *httpx.Context) {
	ck, err := c.Request.Cookie(loginCSRF)
	if err != nil || len(ck.Value) != tokenLen || !equalTokens(ck.Value, c.PostForm("csrf")) {
		s.log.Warn("web: login csrf token missing or wrong", "client", clientAddr(c.Request).String())
		s.RenderError(c, http.StatusForbidden, "This form was out of date. Go back, reload the page and try again.")
		return
	}
	name := strings.TrimSpace(c.PostForm("name"))
	d := loginData{Next: safeNext(c.PostForm("next")), Name: name}
	ip := clientAddr(c.Request)
	now := s.now()

	u, ok, err := s.authenticate(c.Request.Context(), ip, name, c.PostForm("password"), now)
	if err != nil {
		s.log.Error("web: login", "err", err)
		s.renderLogin(c, http.StatusInternalServerError, ck.Value, d, "Sign-in is not working right now; the database could not be read.")
		return
	}
	if !ok {
		s.metrics.logins.WithLabelValues("failure").Inc()
		attrs := []any{"client", ip.String()}
		if u.ID != 0 { // only names that exist: a password typed into the name field must not be logged
			attrs = append(attrs, "user", u.Name)
		}
		s.log.Info("web: login refused", attrs...)
		s.renderLogin(c, http.StatusUnauthorized, ck.Value, d, loginFailed)
		return
	}

	// A fresh token at every login: a token planted before login is useless.
	if old, err := c.Request.Cookie(sessionCookie); err == nil && len(old.Value) == tokenLen {
		if err := s.store.DeleteSession(c.Request.Context(), hashToken(old.Value)); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("web: login: delete previous session", "err", err)
		}
	}
	tok, err := randomToken()
	if err != nil {
		s.renderLogin(c, http.StatusInternalServerError, ck.Value, d, "Internal error.")
		return
	}
	csrf, err := randomToken()
	if err != nil {
		s.renderLogin(c, http.StatusInternalServerError, ck.Value, d, "Internal error.")
		return
	}
	sess := store.Session{TokenHash: hashToken(tok), UserID: u.ID, CSRFToken: csrf, CreatedAt: now, ExpiresAt: now.Add(s.lifetimeFor(u.Role))}
	if err := s.store.CreateSession(c.Request.Context(), sess); err != nil {
		s.log.Error("web: login: create session", "user", u.Name, "err", err)
		s.renderLogin(c, http.StatusInternalServerError, ck.Value, d, "Sign-in is not working right now; the session could not be saved.")
		return
	}
	setCookie(c, sessionCookie, tok, int(s.lifetimeFor(u.Role)/time.Second))
	setCookie(c, loginCSRF, "", -1)
	s.metrics.logins.WithLabelValues("success").Inc()
	s.log.Info("web: login", "user", u.Name, "role", u.Role, "client", ip.String())
	s.audit(c.Request.Context(), "web:"+u.Name, "login", "user:"+u.Name, ip)
	if d.Next == "/" {
		// No page asked for: each role starts where its daily work is.
		d.Next = s.landing(u.Role)
	}
	c.Redirect(http.StatusSeeOther, d.Next)
}

// authenticate checks a name and password against the store and the
// throttles. ok=false is every kind of refusal; u is set (ID != 0) when the
// name exists, for logging only.
func (s *Server) authenticate(ctx context.Context, ip netip.Addr, name, pw string, now time.Time) (u store.User, ok bool, err error) {
	if name == "" || pw == "" || len(name) > 128 || len(pw) > password.MaxLength {
		return store.User{}, false, nil
	}
	// An address that kept guessing unknown names is refused outright, before
	// any lookup: nothing to learn, no argon2 time to burn.
	if s.throttle.blocked(ip, now) {
		return store.User{}, false, nil
	}
	select {
	case s.verifySem <- struct{}{}:
	case <-ctx.Done():
		return store.User{}, false, fmt.Errorf("web: login: wait to verify: %w", ctx.Err())
	}
	defer func() { <-s.verifySem }()

	u, err = s.store.UserByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		s.burnUnknownUser(pw)
		s.throttle.fail(ip, now)
		return store.User{}, false, nil
	}
	if err != nil {
		return store.User{}, false, fmt.Errorf("web: login: look up user: %w", err)
	}
	match, verr := password.Verify(u.PasswordHash, pw)
	if verr != nil {
		s.log.Error("web: login: stored password hash unusable", "user", u.Name, "err", verr)
		match = false
	}
	// Checked after the verification so a locked account answers in the
	// same time as an open one. A locked account refuses even the right
	// password, and a refusal while locked does not extend the lock.
	if u.Disabled || now.Before(u.LockedUntil) {
		return u, false, nil
	}
	if !match {
		locked, err := s.store.RecordLoginFailure(ctx, u.Name, now, MaxLoginFailures, LockDuration)
		if err != nil {
			return u, false, fmt.Errorf("web: login: record failure: %w", err)
		}
		if locked {
			s.metrics.lockouts.Inc()
			// The store writes the "user.lock" audit row in the same transaction.
			s.log.Warn("web: account locked after repeated login failures", "user", u.Name, "client", ip.String(), "for", LockDuration)
		}
		return u, false, nil
	}
	if u.FailedLogins > 0 || !u.LockedUntil.IsZero() {
		if err := s.store.ResetLoginFailures(ctx, u.Name); err != nil {
			return u, false, fmt.Errorf("web: login: reset failures: %w", err)
		}
	}
	return u, true, nil
}

func (s *Server) logout(c *httpx.Context) {
	if ck, err := c.Request.Cookie(sessionCookie); err == nil {
		if err := s.store.DeleteSession(c.Request.Context(), hashToken(ck.Value)); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Error("web: logout: delete session", "err", err)
			s.RenderError(c, http.StatusInternalServerError, "Sign-out failed; the session could not be deleted.")
			return
		}
	}
	setCookie(c, sessionCookie, "", -1)
	u, _ := CurrentUser(c)
	s.log.Info("web: logout", "user", u.Name)
	s.audit(c.Request.Context(), Actor(c), "logout", "user:"+u.Name, clientAddr(c.Request))
	c.Redirect(http.StatusSeeOther, "/login")
}

// audit writes an entry for an event the store does not audit itself
// (login, logout), recording the client address. A failure is logged, not
// shown: the event happened either way.
func (s *Server) audit(ctx context.Context, actor, action, object string, client netip.Addr) {
	after, err := json.Marshal(struct {
		Client string `json:"client"`
	}{client.String()})
	if err != nil {
		s.log.Error("web: audit entry", "action", action, "err", err)
		return
	}
	e := store.AuditEntry{At: s.now(), Actor: actor, Action: action, Object: object, After: string(after)}
	if _, err := s.store.Audit(ctx, e); err != nil {
		s.log.Error("web: write audit entry", "action", action, "err", err)
	}
}

// burnUnknownUser spends on an unknown user name what a known one costs:
// one argon2 run. The dummy hash is made at the first unknown name rather
// than at start, where its memory (19 MiB) would set the daemon's peak
// and linger; making it is that first name's argon2 run.
func (s *Server) burnUnknownUser(pw string) {
	made := false
	s.dummyOnce.Do(func() {
		made = true
		h, err := password.Hash(s.dummyPW)
		if err != nil {
			s.log.Error("web: login: dummy hash", "err", err)
		}
		s.dummyHash = h
	})
	if !made {
		_, _ = password.Verify(s.dummyHash, pw)
	}
}
