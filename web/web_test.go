package web

import (
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/gatehouse-net/gatehouse/store"
)

// The route table is the single place roles are declared; this walks every
// row for every role and for anonymous callers.
func TestEveryRouteRefusesRolesItDoesNotList(t *testing.T) {
	h := newHarness(t, func(s *Server) {
		// A feature page, to prove AddPage routes get the same guard.
		s.AddPage(Page{Path: "/vouchers", Title: "Vouchers", Roles: []string{RoleReception},
			GET:  func(c *gin.Context) { c.String(http.StatusOK, "vouchers") },
			POST: func(c *gin.Context) { c.String(http.StatusOK, "voucher issued") }})
		// And feature API routes, to prove AddAPI routes do too.
		s.AddAPI(http.MethodGet, "/api/v1/vouchers", []string{RoleReception, RoleNetwork},
			func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"vouchers": []string{}}) })
		s.AddAPI(http.MethodPost, "/api/v1/vouchers/:id/revoke", []string{RoleReception},
			func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"id": c.Param("id")}) })
	})
	h.roleUsers()

	// Public routes are the exception and are pinned here, so a new route
	// cannot silently go without a check.
	wantPublic := []string{"GET /login", "POST /login", "GET /healthz", "GET /static/gatehouse.css"}
	var gotPublic []string
	for _, r := range h.srv.routes {
		if r.access == accessPublic {
			gotPublic = append(gotPublic, r.method+" "+r.path)
		}
	}
	slices.Sort(wantPublic)
	slices.Sort(gotPublic)
	if !slices.Equal(gotPublic, wantPublic) {
		t.Fatalf("public routes = %v, want %v", gotPublic, wantPublic)
	}

	// The roles each route is declared with, pinned, so widening one is a
	// deliberate change here too.
	all, net := []string{RoleReception, RoleNetwork, RoleDSL}, []string{RoleNetwork}
	wantRoles := map[string][]string{
		"GET /": all, "GET /audit": net, "GET /users": net, "POST /users": net,
		"GET /tokens": all, "POST /tokens": all, "POST /tokens/delete": all,
		"GET /account": all, "POST /account": all, "POST /logout": all,
		"GET /vouchers": {RoleReception}, "POST /vouchers": {RoleReception},
		"GET /api/v1/whoami": all, "GET /api/v1/audit": net, "GET /api/v1/users": net,
		"GET /api/v1/vouchers": {RoleReception, RoleNetwork}, "POST /api/v1/vouchers/:id/revoke": {RoleReception},
		"GET /metrics": nil,
	}
	for _, rt := range h.srv.routes {
		if rt.access == accessPublic {
			continue
		}
		key := rt.method + " " + rt.path
		want, ok := wantRoles[key]
		if !ok {
			t.Errorf("route %s is not pinned in this test", key)
		} else if !slices.Equal(rt.roles, want) {
			t.Errorf("route %s roles = %v, want %v", key, rt.roles, want)
		}
		delete(wantRoles, key)
	}
	for key := range wantRoles {
		t.Errorf("route %s is missing from the table", key)
	}

	// One logged-in browser per role; /logout gets a fresh login, since it
	// ends the session (the other POSTs, sent an empty form, change nothing).
	sessions := map[string]*browser{}
	for _, role := range Roles() {
		b := h.browser()
		b.login("u-"+role, testPassword)
		sessions[role] = b
	}
	tokens := map[string]string{}
	for _, role := range Roles() {
		tokens[role] = createToken(t, sessions[role], "matrix")
	}

	for _, rt := range h.srv.routes {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			switch rt.access {
			case accessPublic:
				return
			case accessSession:
				anon := h.browser()
				var r response
				if rt.method == http.MethodGet {
					r = anon.get(rt.path)
				} else {
					r = anon.post(rt.path, url.Values{})
				}
				if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/login") {
					t.Errorf("anonymous: status %d location %q, want 303 to /login", r.status, r.header.Get("Location"))
				}
				for _, role := range Roles() {
					b := sessions[role]
					if rt.method == http.MethodPost {
						if rt.path == "/logout" {
							b = h.browser()
							b.login("u-"+role, testPassword)
						}
						r = b.post(rt.path, url.Values{"csrf": {b.csrf("/")}})
					} else {
						r = b.get(rt.path)
					}
					allowed := slices.Contains(rt.roles, role)
					switch {
					case !allowed && r.status != http.StatusForbidden:
						t.Errorf("role %s: status %d, want 403", role, r.status)
					case allowed && rt.method == http.MethodGet && r.status != http.StatusOK:
						t.Errorf("role %s: status %d, want 200", role, r.status)
					case allowed && (r.status == http.StatusForbidden || strings.HasPrefix(r.header.Get("Location"), "/login?")):
						t.Errorf("role %s: status %d location %q, want the handler's answer", role, r.status, r.header.Get("Location"))
					}
				}
			case accessBearer:
				b := h.browser()
				path := strings.ReplaceAll(rt.path, ":id", "1")
				body := ""
				if rt.method != http.MethodGet {
					body = "{}"
				}
				if r := b.apiDo(rt.method, path, "", body); r.status != http.StatusUnauthorized {
					t.Errorf("no token: status %d, want 401", r.status)
				}
				for _, role := range Roles() {
					r := b.apiDo(rt.method, path, tokens[role], body)
					allowed := slices.Contains(rt.roles, role)
					switch {
					case !allowed && r.status != http.StatusForbidden:
						t.Errorf("role %s: status %d, want 403", role, r.status)
					case allowed && rt.method == http.MethodGet && r.status != http.StatusOK:
						t.Errorf("role %s: status %d, want 200", role, r.status)
					case allowed && (r.status == http.StatusUnauthorized || r.status == http.StatusForbidden):
						t.Errorf("role %s: status %d, want the handler's answer", role, r.status)
					}
				}
			case accessMetrics:
				// Over TLS from 127.0.0.1, the harness's configured scrape address.
				if r := h.browser().get(rt.path); r.status != http.StatusOK {
					t.Errorf("scrape address: status %d, want 200", r.status)
				}
				// From elsewhere: only the network role (see TestMetricsAccess).
			default:
				t.Fatalf("route has unknown access %v", rt.access)
			}
		})
	}
}

// createToken makes an API token through the tokens page and returns it.
func createToken(t *testing.T, b *browser, name string) string {
	t.Helper()
	r := b.post("/tokens", url.Values{"csrf": {b.csrf("/tokens")}, "name": {name}})
	if r.status != http.StatusOK {
		t.Fatalf("create token: status %d", r.status)
	}
	m := regexp.MustCompile(`<code class="secret">(gh_[A-Za-z0-9_-]{43})</code>`).FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("create token: no token shown in page")
	}
	return m[1]
}

func TestNavigationShowsOnlyOwnRolePages(t *testing.T) {
	h := newHarness(t, func(s *Server) {
		s.AddPage(Page{Path: "/vouchers", Title: "Vouchers", Roles: []string{RoleReception, RoleNetwork},
			GET: func(c *gin.Context) { c.String(http.StatusOK, "vouchers") }})
		// A feature page rendered in the shared layout.
		alerts := template.Must(template.New("alerts").Parse(`<form method="post">{{.CSRFField}}<p>{{.Data}}</p></form>`))
		s.AddPage(Page{Path: "/alerts", Title: "Alerts", Roles: []string{RoleDSL},
			GET: func(c *gin.Context) {
				v := s.View(c, "Alerts")
				v.Data = "3 open <alerts>"
				s.Render(c, http.StatusOK, alerts, v)
			}})
	})
	h.roleUsers()
	want := map[string][]string{
		RoleReception: {"/", "/tokens", "/account", "/vouchers"},
		RoleNetwork:   {"/", "/audit", "/users", "/tokens", "/account", "/vouchers"},
		RoleDSL:       {"/", "/tokens", "/account", "/alerts"},
	}
	for _, role := range Roles() {
		t.Run(role, func(t *testing.T) {
			b := h.browser()
			b.login("u-"+role, testPassword)
			r := b.get("/")
			if r.status != http.StatusOK {
				t.Fatalf("GET /: %d", r.status)
			}
			if got := navLinks(t, r.body); !slices.Equal(got, want[role]) {
				t.Errorf("nav = %v, want %v", got, want[role])
			}
			if role == RoleDSL {
				r := b.get("/alerts")
				if !strings.Contains(r.body, "<p>3 open &lt;alerts&gt;</p>") || !strings.Contains(r.body, `<h1>Alerts</h1>`) ||
					!strings.Contains(r.body, `name="csrf" value="`+b.csrf("/")+`"`) {
					t.Errorf("feature page not rendered in the layout with its data and CSRF field:\n%s", r.body)
				}
			}
			// Every nav link opens.
			for _, p := range want[role] {
				if r := b.get(p); r.status != http.StatusOK {
					t.Errorf("GET %s: %d", p, r.status)
				}
			}
		})
	}
}

func TestUnsafeRequestsNeedTheCSRFToken(t *testing.T) {
	h := newHarness(t, nil)
	h.addUser("net", RoleNetwork, testPassword)
	b := h.browser()
	b.login("net", testPassword)
	good := b.csrf("/users")
	otherSession := h.browser()
	otherSession.login("net", testPassword)
	foreign := otherSession.csrf("/users")

	form := func(csrf, name string) url.Values {
		v := url.Values{"name": {name}, "role": {RoleDSL}, "password": {"a long enough password"}, "confirm": {"a long enough password"}}
		if csrf != "" {
			v.Set("csrf", csrf)
		}
		return v
	}
	tests := []struct {
		name, csrf, user string
		want             int
	}{
		{"missing", "", "nocsrf", http.StatusForbidden},
		{"wrong", strings.Repeat("A", 43), "wrongcsrf", http.StatusForbidden},
		{"another session's", foreign, "foreigncsrf", http.StatusForbidden},
		{"right", good, "rightcsrf", http.StatusSeeOther},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := b.post("/users", form(tc.csrf, tc.user))
			if r.status != tc.want {
				t.Fatalf("status %d, want %d", r.status, tc.want)
			}
			_, err := h.st.UserByName(context.Background(), tc.user)
			if created := err == nil; created != (tc.want == http.StatusSeeOther) {
				t.Errorf("user created = %v (err %v), want %v", created, err, tc.want == http.StatusSeeOther)
			}
		})
	}

	t.Run("logout without token", func(t *testing.T) {
		if r := b.post("/logout", url.Values{}); r.status != http.StatusForbidden {
			t.Fatalf("status %d, want 403", r.status)
		}
		if r := b.get("/"); r.status != http.StatusOK {
			t.Errorf("session gone after refused logout: GET / = %d", r.status)
		}
	})

	t.Run("login form", func(t *testing.T) {
		fresh := h.browser()
		tok := fresh.csrf("/login")
		for _, tc := range []struct {
			name string
			csrf string
		}{{"missing", ""}, {"wrong", strings.Repeat("B", 43)}} {
			r := fresh.post("/login", url.Values{"csrf": {tc.csrf}, "name": {"net"}, "password": {testPassword}})
			if r.status != http.StatusForbidden {
				t.Errorf("%s csrf: status %d, want 403", tc.name, r.status)
			}
		}
		// A browser without the cookie cannot use a token it saw elsewhere.
		other := h.browser()
		if r := other.post("/login", url.Values{"csrf": {tok}, "name": {"net"}, "password": {testPassword}}); r.status != http.StatusForbidden {
			t.Errorf("token without cookie: status %d, want 403", r.status)
		}
		if r := fresh.post("/login", url.Values{"csrf": {tok}, "name": {"net"}, "password": {testPassword}}); r.status != http.StatusSeeOther {
			t.Errorf("right token: status %d, want 303", r.status)
		}
	})
}

func TestWrongRoleCannotCreateUsers(t *testing.T) {
	h := newHarness(t, nil)
	h.roleUsers()
	for _, role := range []string{RoleReception, RoleDSL} {
		b := h.browser()
		b.login("u-"+role, testPassword)
		r := b.post("/users", url.Values{"csrf": {b.csrf("/")}, "name": {"sneaky-" + role}, "role": {RoleNetwork},
			"password": {"a long enough password"}, "confirm": {"a long enough password"}})
		if r.status != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", role, r.status)
		}
		if _, err := h.st.UserByName(context.Background(), "sneaky-"+role); err == nil {
			t.Errorf("%s: user was created", role)
		}
	}
}

func TestAccountLocksAfterTenBadPasswords(t *testing.T) {
	h := newHarness(t, nil)
	h.addUser("alice", RoleNetwork, testPassword)
	b := h.browser()

	var failBody string
	for i := 1; i <= MaxLoginFailures; i++ {
		r := b.tryLogin("alice", "wrong password")
		if r.status != http.StatusUnauthorized {
			t.Fatalf("bad attempt %d: status %d, want 401", i, r.status)
		}
		failBody = r.body
	}
	u, err := h.st.UserByName(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !h.clock.Now().Before(u.LockedUntil) {
		t.Fatalf("after %d failures LockedUntil = %v, want after %v", MaxLoginFailures, u.LockedUntil, h.clock.Now())
	}

	// Locked: the right password is refused, with the very same page as a
	// wrong password and as an unknown name.
	r := b.tryLogin("alice", testPassword)
	if r.status != http.StatusUnauthorized {
		t.Fatalf("right password while locked: status %d, want 401", r.status)
	}
	if !strings.Contains(r.body, loginFailed) || r.body != failBody {
		t.Errorf("locked refusal differs from a bad-password refusal")
	}
	unknown := b.tryLogin("nobody", testPassword)
	if unknown.status != http.StatusUnauthorized || strings.ReplaceAll(unknown.body, "nobody", "alice") != failBody {
		t.Errorf("unknown-user refusal differs from a bad-password refusal (status %d)", unknown.status)
	}
	if b.cookie(sessionCookie) != "" {
		t.Fatal("a session cookie was set while locked")
	}

	h.clock.Advance(LockDuration + time.Second)
	b.login("alice", testPassword)
	if u, _ := h.st.UserByName(context.Background(), "alice"); u.FailedLogins != 0 {
		t.Errorf("after a good login FailedLogins = %d, want 0", u.FailedLogins)
	}

	m := scrape(t, h)
	for _, want := range []string{`gatehouse_web_logins_total{result="failure"} 12`, `gatehouse_web_logins_total{result="success"} 1`, `gatehouse_web_account_lockouts_total 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// The store audited the lock.
	entries, err := h.st.AuditList(context.Background(), 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(entries, func(e store.AuditEntry) bool { return e.Action == "user.lock" && e.Object == "user:alice" }) {
		t.Error("no user.lock audit entry")
	}
}

func TestUnknownNamesThrottleTheClientAddress(t *testing.T) {
	h := newHarness(t, nil)
	h.addUser("bob", RoleDSL, testPassword)
	b := h.browser()
	for i := range MaxLoginFailures {
		if r := b.tryLogin("guess"+string(rune('a'+i)), "whatever"); r.status != http.StatusUnauthorized {
			t.Fatalf("unknown name %d: status %d", i, r.status)
		}
	}
	// 127.0.0.1 is now blocked for logins, even with a real account.
	if r := b.tryLogin("bob", testPassword); r.status != http.StatusUnauthorized {
		t.Fatalf("blocked address: status %d, want 401", r.status)
	}
	// The account itself is untouched: the block is per address.
	if u, _ := h.st.UserByName(context.Background(), "bob"); u.FailedLogins != 0 {
		t.Errorf("bob FailedLogins = %d, want 0", u.FailedLogins)
	}
	h.clock.Advance(LockDuration + time.Second)
	b.login("bob", testPassword)
}

func TestIPThrottle(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	a := netipMust("192.0.2.1")
	tests := []struct {
		name        string
		fails       int
		spread      time.Duration // between failures
		checkAfter  time.Duration // after the last failure
		wantBlocked bool
	}{
		{"below limit", 9, time.Second, 0, false},
		{"at limit", 10, time.Second, 0, true},
		{"block ends", 10, time.Second, 15*time.Minute + time.Second, false},
		{"failures outside the window do not add up", 10, 2 * time.Minute, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			th := newIPThrottle(10, 15*time.Minute, 100)
			now := t0
			for i := range tc.fails {
				if i > 0 {
					now = now.Add(tc.spread)
				}
				th.fail(a, now)
			}
			if got := th.blocked(a, now.Add(tc.checkAfter)); got != tc.wantBlocked {
				t.Errorf("blocked = %v, want %v", got, tc.wantBlocked)
			}
			if th.blocked(netipMust("192.0.2.2"), now) {
				t.Error("another address is blocked")
			}
		})
	}

	t.Run("ipv6 counts per /64", func(t *testing.T) {
		th := newIPThrottle(10, 15*time.Minute, 100)
		for i := range 10 {
			th.fail(netipMust("2001:db8:1:2::"+string(rune('1'+i%9))), t0)
		}
		if !th.blocked(netipMust("2001:db8:1:2::ffff"), t0) {
			t.Error("same /64 not blocked")
		}
		if th.blocked(netipMust("2001:db8:1:3::1"), t0) {
			t.Error("another /64 blocked")
		}
	})

	t.Run("bounded", func(t *testing.T) {
		th := newIPThrottle(10, 15*time.Minute, 50)
		for i := range 500 {
			th.fail(netipMust("10.0."+itoa(i/250)+"."+itoa(i%250)), t0.Add(time.Duration(i)*time.Millisecond))
			if n := th.len(); n > 50 {
				t.Fatalf("after %d addresses the map holds %d records, want at most 50", i+1, n)
			}
		}
		// Expired records go first when room is needed.
		later := t0.Add(time.Hour)
		th.fail(netipMust("192.0.2.99"), later)
		if n := th.len(); n != 1 {
			t.Errorf("after the window passed, adding one record left %d, want 1", n)
		}
	})
}

func TestAutoCertificateIsCreatedOnceAndReused(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(context.Background(), dir+"/gh.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cert, key := dir+"/tls/cert.pem", dir+"/tls/key.pem"
	opts := Options{Store: st, Listen: "gatehouse.school.test:8443", CertFile: cert, KeyFile: key, Auto: true}

	s1, err := New(opts)
	if err != nil {
		t.Fatalf("first New: %v", err)
	}
	keyBefore := readFile(t, key)
	if mode := fileMode(t, key); mode != 0o600 {
		t.Errorf("key mode %o, want 600", mode)
	}
	leaf := parseCert(t, s1.CertPEM())
	if leaf.PublicKeyAlgorithm.String() != "ECDSA" {
		t.Errorf("key algorithm %v, want ECDSA", leaf.PublicKeyAlgorithm)
	}
	for _, name := range []string{"localhost", "gatehouse.school.test"} {
		if err := leaf.VerifyHostname(name); err != nil {
			t.Errorf("certificate does not cover %s: %v", name, err)
		}
	}
	if err := leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Errorf("certificate does not cover 127.0.0.1: %v", err)
	}

	s2, err := New(opts)
	if err != nil {
		t.Fatalf("second New: %v", err)
	}
	if string(s2.CertPEM()) != string(s1.CertPEM()) || string(readFile(t, key)) != string(keyBefore) {
		t.Error("second start made a new certificate instead of reusing the first")
	}

	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"missing files without auto", Options{Store: st, CertFile: dir + "/none/cert.pem", KeyFile: dir + "/none/key.pem"}},
		{"half a pair", Options{Store: st, CertFile: cert, KeyFile: dir + "/other-key.pem", Auto: true}},
		{"no paths", Options{Store: st, Auto: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.opts); err == nil {
				t.Error("New succeeded, want an error")
			}
		})
	}
}

func TestBearerTokenAPI(t *testing.T) {
	h := newHarness(t, nil)
	h.roleUsers()
	net, rec := h.browser(), h.browser()
	net.login("u-network", testPassword)
	rec.login("u-reception", testPassword)
	netTok := createToken(t, net, "script")
	recTok := createToken(t, rec, "kiosk")
	client := h.browser()

	r := client.api("/api/v1/whoami", recTok)
	var who struct {
		Name, Role string
		Token      struct{ Name string }
	}
	if r.status != http.StatusOK || json.Unmarshal([]byte(r.body), &who) != nil {
		t.Fatalf("whoami: %d %s", r.status, r.body)
	}
	if who.Name != "u-reception" || who.Role != RoleReception || who.Token.Name != "kiosk" {
		t.Errorf("whoami = %+v", who)
	}

	if r := client.api("/api/v1/audit", recTok); r.status != http.StatusForbidden {
		t.Errorf("audit as reception: %d, want 403", r.status)
	}
	r = client.api("/api/v1/audit?limit=5", netTok)
	var audit struct {
		Entries []struct{ Action, Actor string }
	}
	if r.status != http.StatusOK || json.Unmarshal([]byte(r.body), &audit) != nil {
		t.Fatalf("audit as network: %d %s", r.status, r.body)
	}
	if len(audit.Entries) == 0 || len(audit.Entries) > 5 {
		t.Errorf("audit returned %d entries, want 1..5", len(audit.Entries))
	}
	if r := client.api("/api/v1/audit?limit=0", netTok); r.status != http.StatusBadRequest {
		t.Errorf("limit=0: %d, want 400", r.status)
	}
	if r := client.api("/api/v1/whoami", "gh_"+strings.Repeat("x", 43)); r.status != http.StatusUnauthorized {
		t.Errorf("unknown token: %d, want 401", r.status)
	}
	// A browser session is not an API credential.
	if r := net.get("/api/v1/whoami"); r.status != http.StatusUnauthorized {
		t.Errorf("session cookie on the API: %d, want 401", r.status)
	}

	// Revoking from the tokens page ends the token for the API.
	r = net.post("/tokens/delete", url.Values{"csrf": {net.csrf("/tokens")}, "id": {tokenID(t, net, "script")}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("revoke own token: %d, want 303", r.status)
	}
	if r := client.api("/api/v1/whoami", netTok); r.status != http.StatusUnauthorized {
		t.Errorf("revoked token: %d, want 401", r.status)
	}
}

var tokenRow = regexp.MustCompile(`<tr><td>([^<]+)</td><td>([^<]*)</td><td>[^<]*</td><td>([^<]*)</td><td><form method="post" action="/tokens/delete"><input type="hidden" name="csrf" value="[^"]+"><input type="hidden" name="id" value="(\d+)">`)

// tokenRows returns the rows of the token list on b's tokens page, by name:
// {created, last used, id}.
func tokenRows(t *testing.T, b *browser) map[string][3]string {
	t.Helper()
	r := b.get("/tokens")
	if r.status != http.StatusOK {
		t.Fatalf("GET /tokens: %d", r.status)
	}
	rows := map[string][3]string{}
	for _, m := range tokenRow.FindAllStringSubmatch(r.body, -1) {
		rows[m[1]] = [3]string{m[2], m[3], m[4]}
	}
	return rows
}

// tokenID returns the id the tokens page posts to revoke b's token name.
func tokenID(t *testing.T, b *browser, name string) string {
	t.Helper()
	row, ok := tokenRows(t, b)[name]
	if !ok {
		t.Fatalf("token %s not listed on the tokens page", name)
	}
	return row[2]
}

func TestTokensPageListsAndRevokesOwnTokens(t *testing.T) {
	h := newHarness(t, nil)
	h.roleUsers()
	net, rec := h.browser(), h.browser()
	net.login("u-network", testPassword)
	rec.login("u-reception", testPassword)
	netTok := createToken(t, net, "script")
	createToken(t, net, "backup")
	recTok := createToken(t, rec, "kiosk")
	client := h.browser()

	netRows, recRows := tokenRows(t, net), tokenRows(t, rec)
	if len(netRows) != 2 || len(recRows) != 1 {
		t.Fatalf("listed %v for network and %v for reception, want 2 own tokens and 1", netRows, recRows)
	}
	if _, ok := recRows["kiosk"]; !ok {
		t.Fatalf("reception's own token is not listed: %v", recRows)
	}
	for name, row := range netRows {
		if name != "script" && name != "backup" {
			t.Errorf("network's page lists %q, which is not theirs", name)
		}
		if row[0] == "" || row[0] == "never" || row[1] != "never" {
			t.Errorf("%s: created %q, last used %q; want a time and never", name, row[0], row[1])
		}
	}
	if r := client.api("/api/v1/whoami", netTok); r.status != http.StatusOK {
		t.Fatalf("whoami: %d", r.status)
	}
	if used := tokenRows(t, net)["script"][1]; used == "never" || used == "" {
		t.Errorf("after use, last used = %q, want a time", used)
	}

	recID, scriptID := recRows["kiosk"][2], netRows["script"][2]
	tests := []struct {
		name     string
		b        *browser
		form     url.Values
		want     int
		liveTok  string // still works afterwards
		deadTok  string // no longer works afterwards
		wantText string
	}{
		{"reception: someone else's id", rec, url.Values{"id": {scriptID}}, http.StatusNotFound, netTok, "", "not a token you can revoke"},
		{"an id that does not exist", net, url.Values{"id": {"99999"}}, http.StatusNotFound, netTok, "", "not a token you can revoke"},
		{"not an id", net, url.Values{"id": {"script"}}, http.StatusBadRequest, netTok, "", "Choose a token"},
		{"no CSRF token", net, url.Values{"id": {scriptID}, "csrf": {""}}, http.StatusForbidden, netTok, "", ""},
		{"own id", net, url.Values{"id": {scriptID}}, http.StatusSeeOther, recTok, netTok, ""},
		{"own id again", net, url.Values{"id": {scriptID}}, http.StatusNotFound, recTok, netTok, ""},
		// A network manager can stop anyone's token (a leaver's, a lost laptop's).
		{"network: reception's id", net, url.Values{"id": {recID}}, http.StatusSeeOther, "", recTok, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, set := tc.form["csrf"]; !set {
				tc.form.Set("csrf", tc.b.csrf("/tokens"))
			}
			r := tc.b.post("/tokens/delete", tc.form)
			if r.status != tc.want || !strings.Contains(r.body, tc.wantText) {
				t.Fatalf("status %d, want %d with %q; body %.300s", r.status, tc.want, tc.wantText, r.body)
			}
			if tc.liveTok != "" {
				if r := client.api("/api/v1/whoami", tc.liveTok); r.status != http.StatusOK {
					t.Errorf("token that should live: %d", r.status)
				}
			}
			if tc.deadTok != "" {
				if r := client.api("/api/v1/whoami", tc.deadTok); r.status != http.StatusUnauthorized {
					t.Errorf("revoked token: %d, want 401", r.status)
				}
			}
		})
	}
	if rows := tokenRows(t, net); len(rows) != 1 || rows["backup"][2] == "" {
		t.Errorf("after revoking script, network's list = %v, want only backup", rows)
	}
	if rows := tokenRows(t, rec); len(rows) != 0 {
		t.Errorf("reception's list = %v, want kiosk gone", rows)
	}
	entries, err := h.st.AuditList(context.Background(), 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	var deleted []string
	for _, e := range entries {
		if e.Action == "api_token.delete" {
			deleted = append(deleted, e.Object)
			if e.Actor != "web:u-network" {
				t.Errorf("delete audit row %+v", e)
			}
		}
	}
	slices.Sort(deleted)
	if want := []string{"api_token:" + scriptID, "api_token:" + recID}; !slices.Equal(deleted, want) && !slices.Equal(deleted, []string{want[1], want[0]}) {
		t.Errorf("api_token.delete audit rows for %v, want %v", deleted, want)
	}
}

func TestMetricsAccess(t *testing.T) {
	h := newHarness(t, nil)
	h.roleUsers()
	netB, dslB := h.browser(), h.browser()
	netB.login("u-network", testPassword)
	dslB.login("u-dsl", testPassword)
	netTok, dslTok := createToken(t, netB, "prom"), createToken(t, dslB, "prom")
	netCookie := netB.cookie(sessionCookie)

	// Handler() with a forged peer address: the TLS listener in the other
	// tests only ever sees 127.0.0.1.
	handler := h.srv.Handler()
	tests := []struct {
		name, remote, auth, cookie string
		want                       int
	}{
		// The harness configures 127.0.0.1/32 as a scrape address; other
		// loopback callers are not trusted for being local.
		{"configured scrape address", "127.0.0.1:5000", "", "", http.StatusOK},
		{"loopback not configured", "[::1]:5000", "", "", http.StatusUnauthorized},
		{"remote anonymous", "192.0.2.10:5000", "", "", http.StatusUnauthorized},
		{"remote dsl token", "192.0.2.10:5000", dslTok, "", http.StatusForbidden},
		{"remote network token", "192.0.2.10:5000", netTok, "", http.StatusOK},
		{"remote network session", "192.0.2.10:5000", "", netCookie, http.StatusOK},
		{"remote bad token", "192.0.2.10:5000", "gh_nope", "", http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "https://127.0.0.1/metrics", nil)
			req.RemoteAddr = tc.remote
			if tc.auth != "" {
				req.Header.Set("Authorization", "Bearer "+tc.auth)
			}
			if tc.cookie != "" {
				req.AddCookie(&http.Cookie{Name: sessionCookie, Value: tc.cookie})
			}
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d", rec.Code, tc.want)
			}
			if tc.want == http.StatusOK && !strings.Contains(rec.Body.String(), "gatehouse_web_logins_total") {
				t.Error("metrics body lacks gatehouse_web_logins_total")
			}
		})
	}
}

func TestSessionCookieHeadersAndLifetime(t *testing.T) {
	h := newHarness(t, nil)
	h.addUser("carol", RoleDSL, testPassword)
	b := h.browser()

	login := b.tryLogin("carol", testPassword)
	var sc *http.Cookie
	for _, c := range (&http.Response{Header: login.header}).Cookies() {
		if c.Name == sessionCookie {
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
	if _, _, err := h.st.SessionByTokenHash(ctx, sc.Value, h.clock.Now()); err == nil {
		t.Error("the raw cookie value finds a session: the token is stored in clear")
	}
	if _, _, err := h.st.SessionByTokenHash(ctx, hashToken(sc.Value), h.clock.Now()); err != nil {
		t.Errorf("the hashed cookie value finds no session: %v", err)
	}

	page := b.get("/")
	for header, want := range map[string]string{
		"Strict-Transport-Security": "max-age=",
		"Content-Security-Policy":   "default-src 'self'",
		"X-Frame-Options":           "DENY",
		"Cache-Control":             "no-store",
		"X-Content-Type-Options":    "nosniff",
	} {
		if got := page.header.Get(header); !strings.Contains(got, want) {
			t.Errorf("%s = %q, want it to contain %q", header, got, want)
		}
	}

	// In use all day, the session lasts until its absolute lifetime.
	for elapsed := time.Duration(0); elapsed < SessionLifetime-time.Minute; {
		step := min(SessionIdle/2, SessionLifetime-time.Minute-elapsed)
		h.clock.Advance(step)
		elapsed += step
		if r := b.get("/"); r.status != http.StatusOK {
			t.Fatalf("in use %v after login: %d", elapsed, r.status)
		}
	}
	h.clock.Advance(2 * time.Minute)
	if r := b.get("/"); r.status != http.StatusSeeOther {
		t.Fatalf("after %v: %d, want 303 to login", SessionLifetime, r.status)
	}
}

func TestIdleSessionEnds(t *testing.T) {
	h := newHarness(t, nil)
	h.addUser("ivy", RoleReception, testPassword)
	active, idle := h.browser(), h.browser()
	active.login("ivy", testPassword)
	idle.login("ivy", testPassword)
	ctx := context.Background()
	lastSeen := func(b *browser) time.Time {
		t.Helper()
		sess, _, err := h.st.SessionByTokenHash(ctx, hashToken(b.cookie(sessionCookie)), h.clock.Now())
		if err != nil {
			t.Fatalf("session: %v", err)
		}
		return sess.LastSeen
	}
	login := h.clock.Now()

	// Activity is written at most once a minute per session.
	h.clock.Advance(30 * time.Second)
	if r := active.get("/"); r.status != http.StatusOK {
		t.Fatalf("30s after login: %d", r.status)
	}
	if got := lastSeen(active); !got.Equal(login) {
		t.Errorf("LastSeen = %v after a request 30s in, want it left at login %v", got, login)
	}
	h.clock.Advance(time.Minute)
	if r := active.get("/"); r.status != http.StatusOK {
		t.Fatalf("90s after login: %d", r.status)
	}
	if got := lastSeen(active); !got.Equal(h.clock.Now()) {
		t.Errorf("LastSeen = %v, want %v", got, h.clock.Now())
	}

	// The active browser keeps going past the idle limit; the idle one,
	// untouched since login, is refused and its session deleted.
	for range 4 {
		h.clock.Advance(SessionIdle / 3)
		if r := active.get("/"); r.status != http.StatusOK {
			t.Fatalf("active session refused %v after login: %d", h.clock.Now().Sub(login), r.status)
		}
	}
	idleFor := h.clock.Now().Sub(login)
	if idleFor <= SessionIdle {
		t.Fatalf("test bug: idle browser only idle for %v", idleFor)
	}
	stale := idle.cookie(sessionCookie)
	r := idle.get("/tokens")
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/login") {
		t.Fatalf("idle for %v: status %d location %q, want 303 to /login", idleFor, r.status, r.header.Get("Location"))
	}
	// Setting the clock back (a router without RTC before NTP) does not
	// bring it back.
	if _, _, err := h.st.SessionByTokenHash(ctx, hashToken(stale), login.Add(time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("idle session still in the store: %v", err)
	}
	if r := active.get("/"); r.status != http.StatusOK {
		t.Errorf("active session after the idle one ended: %d", r.status)
	}
}

func TestLogoutEndsTheSession(t *testing.T) {
	h := newHarness(t, nil)
	h.addUser("dave", RoleReception, testPassword)
	b := h.browser()
	b.login("dave", testPassword)
	stolen := b.cookie(sessionCookie)
	if r := b.post("/logout", url.Values{"csrf": {b.csrf("/")}}); r.status != http.StatusSeeOther || r.header.Get("Location") != "/login" {
		t.Fatalf("logout: %d %q", r.status, r.header.Get("Location"))
	}
	// The cookie value itself no longer works, not just the browser's copy.
	if _, _, err := h.st.SessionByTokenHash(context.Background(), hashToken(stolen), h.clock.Now()); err == nil {
		t.Error("session still in the store after logout")
	}
	if r := b.get("/"); r.status != http.StatusSeeOther {
		t.Errorf("after logout GET / = %d, want 303", r.status)
	}
}

func TestCreateUserAndAuditPages(t *testing.T) {
	h := newHarness(t, nil)
	h.addUser("admin", RoleNetwork, testPassword)
	b := h.browser()
	b.login("admin", testPassword)

	tests := []struct {
		name     string
		form     url.Values
		want     int
		wantText string
	}{
		{"short password", url.Values{"name": {"erin"}, "role": {RoleDSL}, "password": {"short"}, "confirm": {"short"}}, http.StatusBadRequest, "at least 12"},
		{"mismatch", url.Values{"name": {"erin"}, "role": {RoleDSL}, "password": {"a long enough password"}, "confirm": {"another long password"}}, http.StatusBadRequest, "do not match"},
		{"bad role", url.Values{"name": {"erin"}, "role": {"root"}, "password": {"a long enough password"}, "confirm": {"a long enough password"}}, http.StatusBadRequest, "Choose one of the roles"},
		{"bad name", url.Values{"name": {"erin smith"}, "role": {RoleDSL}, "password": {"a long enough password"}, "confirm": {"a long enough password"}}, http.StatusBadRequest, "letters, digits"},
		{"ok", url.Values{"name": {"erin"}, "role": {RoleDSL}, "password": {"a long enough password"}, "confirm": {"a long enough password"}}, http.StatusSeeOther, ""},
		{"duplicate", url.Values{"name": {"Erin"}, "role": {RoleDSL}, "password": {"a long enough password"}, "confirm": {"a long enough password"}}, http.StatusConflict, "already a user"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.form.Set("csrf", b.csrf("/users"))
			r := b.post("/users", tc.form)
			if r.status != tc.want || !strings.Contains(r.body, tc.wantText) {
				t.Fatalf("status %d, want %d with %q; body: %.300s", r.status, tc.want, tc.wantText, r.body)
			}
		})
	}

	// The store audited the creation with the web actor, and the new user can log in.
	entries, err := h.st.AuditList(context.Background(), 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(entries, func(e store.AuditEntry) bool {
		return e.Action == "user.create" && e.Actor == "web:admin" && e.Object == "user:erin"
	}) {
		t.Errorf("no user.create audit entry by web:admin for erin in %+v", entries)
	}
	h.browser().login("erin", "a long enough password")

	// Pagination: fill past two pages.
	for i := range 2 * auditPageSize {
		if _, err := h.st.Audit(context.Background(), store.AuditEntry{Actor: "test", Action: "fill", Object: "n:" + itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	rows := regexp.MustCompile(`<tr><td>\d+</td>`)
	p1 := b.get("/audit")
	if n := len(rows.FindAllString(p1.body, -1)); n != auditPageSize || !strings.Contains(p1.body, `href="/audit?page=2"`) {
		t.Errorf("page 1: %d rows (want %d) and a link to page 2", n, auditPageSize)
	}
	p3 := b.get("/audit?page=3")
	if n := len(rows.FindAllString(p3.body, -1)); n == 0 || n >= auditPageSize || strings.Contains(p3.body, `href="/audit?page=4"`) {
		t.Errorf("page 3: %d rows, want a partial last page without a next link", n)
	}
	if r := b.get("/audit?page=-1"); r.status != http.StatusBadRequest {
		t.Errorf("page=-1: %d, want 400", r.status)
	}
}

func TestChangePassword(t *testing.T) {
	h := newHarness(t, nil)
	h.addUser("fran", RoleReception, testPassword)
	b := h.browser()
	b.login("fran", testPassword)
	const next = "a brand new passphrase"
	if r := b.post("/account", url.Values{"csrf": {b.csrf("/account")}, "current": {"wrong one"}, "password": {next}, "confirm": {next}}); r.status != http.StatusForbidden {
		t.Errorf("wrong current password: %d, want 403", r.status)
	}
	if u, _ := h.st.UserByName(context.Background(), "fran"); u.FailedLogins != 1 {
		t.Errorf("wrong current password not counted: FailedLogins = %d", u.FailedLogins)
	}
	// Fran is also signed in elsewhere (perhaps by whoever learned the old
	// password), and so is another user.
	elsewhere, other := h.browser(), h.browser()
	elsewhere.login("fran", testPassword)
	h.addUser("gus", RoleReception, testPassword)
	other.login("gus", testPassword)
	if r := b.post("/account", url.Values{"csrf": {b.csrf("/account")}, "current": {testPassword}, "password": {next}, "confirm": {next}}); r.status != http.StatusSeeOther {
		t.Fatalf("change: %d, want 303", r.status)
	}
	if r := b.get("/account?done=password-changed"); r.status != http.StatusOK || !strings.Contains(r.body, "Password changed") {
		t.Errorf("the browser that changed the password: %d, want 200 still signed in", r.status)
	}
	if r := elsewhere.get("/"); r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/login") {
		t.Errorf("fran's other session after the change: %d %q, want 303 to /login", r.status, r.header.Get("Location"))
	}
	if r := other.get("/"); r.status != http.StatusOK {
		t.Errorf("another user's session after fran's change: %d, want 200", r.status)
	}
	if r := h.browser().tryLogin("fran", testPassword); r.status != http.StatusUnauthorized {
		t.Errorf("old password still works: %d", r.status)
	}
	h.browser().login("fran", next)
}

func TestHealthz(t *testing.T) {
	h := newHarness(t, nil)
	b := h.browser()
	r := b.get("/healthz")
	var got map[string]string
	if r.status != http.StatusOK || json.Unmarshal([]byte(r.body), &got) != nil || got["status"] != "ok" || got["db"] != "ok" {
		t.Fatalf("healthz: %d %s", r.status, r.body)
	}
	h.st.Close()
	if r := b.get("/healthz"); r.status != http.StatusServiceUnavailable {
		t.Errorf("healthz with the database closed: %d, want 503", r.status)
	}
}

func TestSecretsAreNotLogged(t *testing.T) {
	h := newHarness(t, nil)
	h.addUser("gwen", RoleNetwork, testPassword)
	b := h.browser()
	b.tryLogin("gwen", "a wrong secret guess")
	b.tryLogin("hunter2-as-a-name", "whatever")
	b.login("gwen", testPassword)
	tok := createToken(t, b, "ci")
	b.api("/api/v1/whoami", tok)
	logs := h.logs.String()
	if !strings.Contains(logs, "web: login") {
		t.Fatal("expected login log lines; is the logger wired?")
	}
	for _, secret := range []string{testPassword, "a wrong secret guess", "hunter2-as-a-name", tok, b.cookie(sessionCookie)} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains a secret %q", secret)
		}
	}
}

func TestAddPageRefusesMistakes(t *testing.T) {
	ok := func(c *gin.Context) {}
	tests := []struct {
		name string
		page Page
	}{
		{"no roles", Page{Path: "/x", GET: ok}},
		{"unknown role", Page{Path: "/x", Roles: []string{"admin"}, GET: ok}},
		{"no handler", Page{Path: "/x", Roles: []string{RoleDSL}}},
		{"relative path", Page{Path: "x", Roles: []string{RoleDSL}, GET: ok}},
		{"api path", Page{Path: "/api/v1/x", Roles: []string{RoleDSL}, GET: ok}},
		{"taken path", Page{Path: "/users", Roles: []string{RoleDSL}, GET: ok}},
	}
	panics := func(s *Server, p Page) (panicked bool) {
		defer func() { panicked = recover() != nil }()
		s.AddPage(p)
		return false
	}
	h := newHarness(t, func(s *Server) {
		for _, tc := range tests {
			if !panics(s, tc.page) {
				t.Errorf("%s: AddPage did not panic", tc.name)
			}
		}
		if panics(s, Page{Path: "/fine", Roles: []string{RoleDSL}, GET: ok}) {
			t.Error("a good page panicked")
		}
	})
	if !panics(h.srv, Page{Path: "/late", Roles: []string{RoleDSL}, GET: ok}) {
		t.Error("AddPage after the server started did not panic")
	}
}

func TestAddAPIRefusesMistakes(t *testing.T) {
	ok := func(c *gin.Context) {}
	reception := []string{RoleReception}
	tests := []struct {
		name, method, path string
		roles              []string
		h                  gin.HandlerFunc
	}{
		{"no roles", http.MethodGet, "/api/v1/x", nil, ok},
		{"unknown role", http.MethodGet, "/api/v1/x", []string{"admin"}, ok},
		{"no handler", http.MethodGet, "/api/v1/x", reception, nil},
		{"bad method", "FETCH", "/api/v1/x", reception, ok},
		{"page path", http.MethodGet, "/x", reception, ok},
		{"other api version", http.MethodGet, "/api/v2/x", reception, ok},
		{"bare prefix", http.MethodGet, "/api/v1/", reception, ok},
		{"trailing slash", http.MethodGet, "/api/v1/x/", reception, ok},
		{"taken path", http.MethodGet, "/api/v1/whoami", reception, ok},
	}
	panics := func(s *Server, method, path string, roles []string, h gin.HandlerFunc) (panicked bool) {
		defer func() { panicked = recover() != nil }()
		s.AddAPI(method, path, roles, h)
		return false
	}
	h := newHarness(t, func(s *Server) {
		for _, tc := range tests {
			if !panics(s, tc.method, tc.path, tc.roles, tc.h) {
				t.Errorf("%s: AddAPI did not panic", tc.name)
			}
		}
		if panics(s, http.MethodPost, "/api/v1/fine", reception, ok) {
			t.Error("a good API route panicked")
		}
	})
	if !panics(h.srv, http.MethodGet, "/api/v1/late", reception, ok) {
		t.Error("AddAPI after the server started did not panic")
	}
	// The good route is served with the bearer guard.
	if r := h.browser().apiDo(http.MethodPost, "/api/v1/fine", "", "{}"); r.status != http.StatusUnauthorized {
		t.Errorf("POST /api/v1/fine without a token: %d, want 401", r.status)
	}
}

func TestRun(t *testing.T) {
	h := newHarness(t, nil)
	tests := []struct {
		name    string
		listen  string
		wantErr bool
	}{
		// A context that is already done: Run listens, then shuts down at once.
		{"shuts down when the context ends", "127.0.0.1:0", false},
		{"bad address", "127.0.0.1:notaport", true},
		{"no address", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.srv.listen = tc.listen
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			err := h.srv.Run(ctx)
			if (err != nil) != tc.wantErr {
				t.Errorf("Run = %v, want error %v", err, tc.wantErr)
			}
		})
	}
}
