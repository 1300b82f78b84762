package web_test

import (
	"context"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-net/gatehouse/web"
	"github.com/gatehouse-net/gatehouse/web/httpx"
	"github.com/gatehouse-net/gatehouse/web/webtest"
)

// The route table is the single place roles are declared; this walks every
// row for every role and for anonymous callers.
func TestEveryRouteRefusesRolesItDoesNotList(t *testing.T) {
	h := webtest.New(t, webtest.Options{Setup: func(s *web.Server) error {
		// A feature page, to prove AddPage routes get the same guard.
		s.AddPage(web.Page{Path: "/vouchers", Title: "Vouchers", Roles: []string{web.RoleReception},
			GET:  func(c *httpx.Context) { c.String(http.StatusOK, "vouchers") },
			POST: func(c *httpx.Context) { c.String(http.StatusOK, "voucher issued") }})
		// And feature API routes, to prove AddAPI routes do too.
		s.AddAPI(http.MethodGet, "/api/v1/vouchers", []string{web.RoleReception, web.RoleNetwork},
			func(c *httpx.Context) { c.JSON(http.StatusOK, httpx.H{"vouchers": []string{}}) })
		s.AddAPI(http.MethodPost, "/api/v1/vouchers/:id/revoke", []string{web.RoleReception},
			func(c *httpx.Context) { c.JSON(http.StatusOK, httpx.H{"id": c.Param("id")}) })
		return nil
	}})
	roleUsers(t, h)

	// Public routes are the exception and are pinned here, so a new route
	// cannot silently go without a check.
	wantPublic := []string{"GET /login", "POST /login", "GET /healthz", "GET /static/gatehouse.css"}
	var gotPublic []string
	for _, r := range h.Server.RouteTable() {
		if r.Access == "public" {
			gotPublic = append(gotPublic, r.Method+" "+r.Path)
		}
	}
	slices.Sort(wantPublic)
	slices.Sort(gotPublic)
	if !slices.Equal(gotPublic, wantPublic) {
		t.Fatalf("public routes = %v, want %v", gotPublic, wantPublic)
	}

	// The roles each route is declared with, pinned, so widening one is a
	// deliberate change here too.
	all, net := []string{web.RoleReception, web.RoleNetwork, web.RoleDSL}, []string{web.RoleNetwork}
	wantRoles := map[string][]string{
		"GET /": all, "GET /audit": net, "GET /audit.csv": net, "GET /users": net, "POST /users": net,
		"GET /tokens": all, "POST /tokens": all, "POST /tokens/delete": all,
		"GET /account": all, "POST /account": all, "POST /logout": all,
		"GET /vouchers": {web.RoleReception}, "POST /vouchers": {web.RoleReception},
		"GET /api/v1/whoami": all, "GET /api/v1/audit": net, "GET /api/v1/users": net,
		"GET /api/v1/vouchers": {web.RoleReception, web.RoleNetwork}, "POST /api/v1/vouchers/:id/revoke": {web.RoleReception},
		"GET /metrics": nil,
	}
	for _, rt := range h.Server.RouteTable() {
		if rt.Access == "public" {
			continue
		}
		key := rt.Method + " " + rt.Path
		want, ok := wantRoles[key]
		if !ok {
			t.Errorf("route %s is not pinned in this test", key)
		} else if !slices.Equal(rt.Roles, want) {
			t.Errorf("route %s roles = %v, want %v", key, rt.Roles, want)
		}
		delete(wantRoles, key)
	}
	for key := range wantRoles {
		t.Errorf("route %s is missing from the table", key)
	}

	// One logged-in browser per role; /logout gets a fresh login, since it
	// ends the session (the other POSTs, sent an empty form, change nothing).
	sessions := map[string]*webtest.Browser{}
	for _, role := range web.Roles() {
		b := h.NewBrowser(t)
		b.Login("u-"+role, testPassword)
		sessions[role] = b
	}
	tokens := map[string]string{}
	for _, role := range web.Roles() {
		tokens[role] = sessions[role].NewToken("matrix")
	}

	for _, rt := range h.Server.RouteTable() {
		t.Run(rt.Method+" "+rt.Path, func(t *testing.T) {
			switch rt.Access {
			case "public":
				return
			case "session":
				anon := h.NewBrowser(t)
				var r webtest.Response
				if rt.Method == http.MethodGet {
					r = anon.Get(rt.Path)
				} else {
					r = anon.Post(rt.Path, url.Values{})
				}
				if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/login") {
					t.Errorf("anonymous: status %d location %q, want 303 to /login", r.StatusCode, r.Header.Get("Location"))
				}
				for _, role := range web.Roles() {
					b := sessions[role].For(t)
					if rt.Method == http.MethodPost {
						if rt.Path == "/logout" {
							b = h.NewBrowser(t)
							b.Login("u-"+role, testPassword)
						}
						r = b.Post(rt.Path, url.Values{"csrf": {b.CSRFFrom("/")}})
					} else {
						r = b.Get(rt.Path)
					}
					allowed := slices.Contains(rt.Roles, role)
					switch {
					case !allowed && r.StatusCode != http.StatusForbidden:
						t.Errorf("role %s: status %d, want 403", role, r.StatusCode)
					case allowed && rt.Method == http.MethodGet && r.StatusCode != http.StatusOK:
						t.Errorf("role %s: status %d, want 200", role, r.StatusCode)
					case allowed && (r.StatusCode == http.StatusForbidden || strings.HasPrefix(r.Header.Get("Location"), "/login?")):
						t.Errorf("role %s: status %d location %q, want the handler's answer", role, r.StatusCode, r.Header.Get("Location"))
					}
				}
			case "bearer":
				b := h.NewBrowser(t)
				path := strings.ReplaceAll(rt.Path, ":id", "1")
				body := ""
				if rt.Method != http.MethodGet {
					body = "{}"
				}
				if r := b.API(rt.Method, path, "", body); r.StatusCode != http.StatusUnauthorized {
					t.Errorf("no token: status %d, want 401", r.StatusCode)
				}
				for _, role := range web.Roles() {
					r := b.API(rt.Method, path, tokens[role], body)
					allowed := slices.Contains(rt.Roles, role)
					switch {
					case !allowed && r.StatusCode != http.StatusForbidden:
						t.Errorf("role %s: status %d, want 403", role, r.StatusCode)
					case allowed && rt.Method == http.MethodGet && r.StatusCode != http.StatusOK:
						t.Errorf("role %s: status %d, want 200", role, r.StatusCode)
					case allowed && (r.StatusCode == http.StatusUnauthorized || r.StatusCode == http.StatusForbidden):
						t.Errorf("role %s: status %d, want the handler's answer", role, r.StatusCode)
					}
				}
			case "metrics":
				// Over TLS from 127.0.0.1, the harness's configured scrape address.
				if r := h.NewBrowser(t).Get(rt.Path); r.StatusCode != http.StatusOK {
					t.Errorf("scrape address: status %d, want 200", r.StatusCode)
				}
				// From elsewhere: only the network role (see TestMetricsAccess).
			default:
				t.Fatalf("route has unknown access %v", rt.Access)
			}
		})
	}
}

func TestNavigationShowsOnlyOwnRolePages(t *testing.T) {
	h := webtest.New(t, webtest.Options{Setup: func(s *web.Server) error {
		s.AddPage(web.Page{Path: "/vouchers", Title: "Vouchers", Roles: []string{web.RoleReception, web.RoleNetwork},
			Menu: web.MenuDaily, LandingFor: []string{web.RoleReception},
			GET: func(c *httpx.Context) { c.String(http.StatusOK, "vouchers") }})
		// A feature page rendered in the shared layout.
		alerts := template.Must(template.New("alerts").Parse(`<form method="post">{{.CSRFField}}<p>{{.Data}}</p></form>`))
		s.AddPage(web.Page{Path: "/alerts", Title: "Alerts", Roles: []string{web.RoleDSL},
			Menu: web.MenuDaily, LandingFor: []string{web.RoleDSL},
			GET: func(c *httpx.Context) {
				v := s.View(c, "Alerts")
				v.Data = "3 open <alerts>"
				s.Render(c, http.StatusOK, alerts, v)
			}})
		return nil
	}})
	roleUsers(t, h)
	// By daily use, the role's landing page first (issue 15: reception's
	// "Visitor codes" came after "API tokens").
	want := map[string][]string{
		web.RoleReception: {"/vouchers", "/", "/account", "/tokens"},
		web.RoleNetwork:   {"/", "/vouchers", "/audit", "/users", "/account", "/tokens"},
		web.RoleDSL:       {"/alerts", "/", "/account", "/tokens"},
	}
	landing := map[string]string{web.RoleReception: "/vouchers", web.RoleNetwork: "/", web.RoleDSL: "/alerts"}
	for _, role := range web.Roles() {
		t.Run(role, func(t *testing.T) {
			b := h.NewBrowser(t)
			if got := b.Login("u-"+role, testPassword); got != landing[role] {
				t.Errorf("signing in landed on %q, want %q", got, landing[role])
			}
			r := b.Get("/")
			if r.StatusCode != http.StatusOK {
				t.Fatalf("GET /: %d", r.StatusCode)
			}
			if got := navLinks(t, r.Body); !slices.Equal(got, want[role]) {
				t.Errorf("nav = %v, want %v", got, want[role])
			}
			if role == web.RoleDSL {
				r := b.Get("/alerts")
				if !strings.Contains(r.Body, "<p>3 open &lt;alerts&gt;</p>") || !strings.Contains(r.Body, `<h1>Alerts</h1>`) ||
					!strings.Contains(r.Body, `name="csrf" value="`+b.CSRFFrom("/")+`"`) {
					t.Errorf("feature page not rendered in the layout with its data and CSRF field:\n%s", r.Body)
				}
			}
			// Every nav link opens.
			for _, p := range want[role] {
				if r := b.Get(p); r.StatusCode != http.StatusOK {
					t.Errorf("GET %s: %d", p, r.StatusCode)
				}
			}
		})
	}
}

func TestUnsafeRequestsNeedTheCSRFToken(t *testing.T) {
	h := webtest.New(t, webtest.Options{})
	h.AddUser(t, "net", web.RoleNetwork, testPassword)
	b := h.NewBrowser(t)
	b.Login("net", testPassword)
	good := b.CSRFFrom("/users")
	otherSession := h.NewBrowser(t)
	otherSession.Login("net", testPassword)
	foreign := otherSession.CSRFFrom("/users")

	form := func(csrf, name string) url.Values {
		v := url.Values{"name": {name}, "role": {web.RoleDSL}, "password": {"a long enough password"}, "confirm": {"a long enough password"}}
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
			r := b.Post("/users", form(tc.csrf, tc.user))
			if r.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", r.StatusCode, tc.want)
			}
			_, err := h.Store.UserByName(context.Background(), tc.user)
			if created := err == nil; created != (tc.want == http.StatusSeeOther) {
				t.Errorf("user created = %v (err %v), want %v", created, err, tc.want == http.StatusSeeOther)
			}
		})
	}

	t.Run("logout without token", func(t *testing.T) {
		if r := b.Post("/logout", url.Values{}); r.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d, want 403", r.StatusCode)
		}
		if r := b.Get("/"); r.StatusCode != http.StatusOK {
			t.Errorf("session gone after refused logout: GET / = %d", r.StatusCode)
		}
	})

	t.Run("login form", func(t *testing.T) {
		fresh := h.NewBrowser(t)
		tok := fresh.CSRFFrom("/login")
		for _, tc := range []struct {
			name string
			csrf string
		}{{"missing", ""}, {"wrong", strings.Repeat("B", 43)}} {
			r := fresh.Post("/login", url.Values{"csrf": {tc.csrf}, "name": {"net"}, "password": {testPassword}})
			if r.StatusCode != http.StatusForbidden {
				t.Errorf("%s csrf: status %d, want 403", tc.name, r.StatusCode)
			}
		}
		// A browser without the cookie cannot use a token it saw elsewhere.
		other := h.NewBrowser(t)
		if r := other.Post("/login", url.Values{"csrf": {tok}, "name": {"net"}, "password": {testPassword}}); r.StatusCode != http.StatusForbidden {
			t.Errorf("token without cookie: status %d, want 403", r.StatusCode)
		}
		if r := fresh.Post("/login", url.Values{"csrf": {tok}, "name": {"net"}, "password": {testPassword}}); r.StatusCode != http.StatusSeeOther {
			t.Errorf("right token: status %d, want 303", r.StatusCode)
		}
	})
}

func TestWrongRoleCannotCreateUsers(t *testing.T) {
	h := webtest.New(t, webtest.Options{})
	roleUsers(t, h)
	for _, role := range []string{web.RoleReception, web.RoleDSL} {
		b := h.NewBrowser(t)
		b.Login("u-"+role, testPassword)
		r := b.Post("/users", url.Values{"csrf": {b.CSRFFrom("/")}, "name": {"sneaky-" + role}, "role": {web.RoleNetwork},
			"password": {"a long enough password"}, "confirm": {"a long enough password"}})
		if r.StatusCode != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", role, r.StatusCode)
		}
		if _, err := h.Store.UserByName(context.Background(), "sneaky-"+role); err == nil {
			t.Errorf("%s: user was created", role)
		}
	}
}

func TestHealthz(t *testing.T) {
	h := webtest.New(t, webtest.Options{})
	b := h.NewBrowser(t)
	r := b.Get("/healthz")
	var got map[string]string
	if r.StatusCode != http.StatusOK || json.Unmarshal([]byte(r.Body), &got) != nil || got["status"] != "ok" || got["db"] != "ok" {
		t.Fatalf("healthz: %d %s", r.StatusCode, r.Body)
	}
	h.Store.Close()
	if r := b.Get("/healthz"); r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("healthz with the database closed: %d, want 503", r.StatusCode)
	}
}

func TestAddPageRefusesMistakes(t *testing.T) {
	ok := func(c *httpx.Context) {}
	tests := []struct {
		name string
		page web.Page
	}{
		{"no roles", web.Page{Path: "/x", GET: ok}},
		{"unknown role", web.Page{Path: "/x", Roles: []string{"admin"}, GET: ok}},
		{"no handler", web.Page{Path: "/x", Roles: []string{web.RoleDSL}}},
		{"relative path", web.Page{Path: "x", Roles: []string{web.RoleDSL}, GET: ok}},
		{"api path", web.Page{Path: "/api/v1/x", Roles: []string{web.RoleDSL}, GET: ok}},
		{"taken path", web.Page{Path: "/users", Roles: []string{web.RoleDSL}, GET: ok}},
	}
	panics := func(s *web.Server, p web.Page) (panicked bool) {
		defer func() { panicked = recover() != nil }()
		s.AddPage(p)
		return false
	}
	h := webtest.New(t, webtest.Options{Setup: func(s *web.Server) error {
		for _, tc := range tests {
			if !panics(s, tc.page) {
				t.Errorf("%s: AddPage did not panic", tc.name)
			}
		}
		if panics(s, web.Page{Path: "/fine", Roles: []string{web.RoleDSL}, GET: ok}) {
			t.Error("a good page panicked")
		}
		return nil
	}})
	if !panics(h.Server, web.Page{Path: "/late", Roles: []string{web.RoleDSL}, GET: ok}) {
		t.Error("AddPage after the server started did not panic")
	}
}

func TestAddAPIRefusesMistakes(t *testing.T) {
	ok := func(c *httpx.Context) {}
	reception := []string{web.RoleReception}
	tests := []struct {
		name, method, path string
		roles              []string
		h                  httpx.HandlerFunc
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
	panics := func(s *web.Server, method, path string, roles []string, h httpx.HandlerFunc) (panicked bool) {
		defer func() { panicked = recover() != nil }()
		s.AddAPI(method, path, roles, h)
		return false
	}
	h := webtest.New(t, webtest.Options{Setup: func(s *web.Server) error {
		for _, tc := range tests {
			if !panics(s, tc.method, tc.path, tc.roles, tc.h) {
				t.Errorf("%s: AddAPI did not panic", tc.name)
			}
		}
		if panics(s, http.MethodPost, "/api/v1/fine", reception, ok) {
			t.Error("a good API route panicked")
		}
		return nil
	}})
	if !panics(h.Server, http.MethodGet, "/api/v1/late", reception, ok) {
		t.Error("AddAPI after the server started did not panic")
	}
	// The good route is served with the bearer guard.
	if r := h.NewBrowser(t).API(http.MethodPost, "/api/v1/fine", "", "{}"); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST /api/v1/fine without a token: %d, want 401", r.StatusCode)
	}
}

const testPassword = "correct horse battery"

// roleUsers creates one user per role, named u-<role>.
func roleUsers(t *testing.T, h *webtest.Site) {
	t.Helper()
	for _, r := range web.Roles() {
		h.AddUser(t, "u-"+r, r, testPassword)
	}
}

// navLinks returns the hrefs of the navigation in a page.
func navLinks(t *testing.T, body string) []string {
	t.Helper()
	start := strings.Index(body, `<nav id="nav"`)
	if start < 0 {
		return nil
	}
	end := strings.Index(body[start:], "</nav>")
	if end < 0 {
		t.Fatal("unterminated nav")
	}
	var links []string
	for _, m := range regexp.MustCompile(`href="([^"]+)"`).FindAllStringSubmatch(body[start:start+end], -1) {
		links = append(links, m[1])
	}
	return links
}

func TestRun(t *testing.T) {
	h := webtest.New(t, webtest.Options{})
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
			srv, err := web.New(web.Options{Store: h.Store, Listen: tc.listen, Auto: true,
				CertFile: filepath.Join(h.Dir, "tls", "cert.pem"), KeyFile: filepath.Join(h.Dir, "tls", "key.pem")})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			err = srv.Run(ctx)
			if (err != nil) != tc.wantErr {
				t.Errorf("Run = %v, want error %v", err, tc.wantErr)
			}
		})
	}
}

func TestHomeShowsAlarmsToTheNetworkManagerAndTheDSL(t *testing.T) {
	var lines []string
	h := webtest.New(t, webtest.Options{Setup: func(s *web.Server) error {
		s.AddAlarms(func() []string { return lines })
		return nil
	}})
	net, dsl, rec := h.Browser(t, web.RoleNetwork), h.Browser(t, web.RoleDSL), h.Browser(t, web.RoleReception)
	if r := net.Get("/"); r.StatusCode != http.StatusOK || strings.Contains(r.Body, `role="alert"`) {
		t.Fatalf("home with no alarms: %d\n%s", r.StatusCode, r.Body)
	}
	lines = []string{"The database's disk is nearly full: 90 MB free of 8.0 GB. <b>"}
	for _, b := range []*webtest.Browser{net, dsl} {
		if r := b.Get("/"); !strings.Contains(r.Body, "The database&#39;s disk is nearly full: 90 MB free of 8.0 GB. &lt;b&gt;") {
			t.Errorf("the alarm is not on the home page (escaped):\n%s", r.Body)
		}
	}
	if r := rec.Get("/"); strings.Contains(r.Body, "nearly full") {
		t.Error("reception is shown the alarm")
	}
}
