package web

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-net/gatehouse/web/httpx"
)

// Page is an admin page a feature package adds with AddPage.
type Page struct {
	Path  string   // absolute, e.g. "/vouchers"
	Title string   // navigation label; "" keeps the page out of the navigation
	Roles []string // roles allowed; at least one

	// Handlers; at least one. POST requests reach POST only after the
	// session, role and CSRF checks have passed.
	GET  httpx.HandlerFunc
	POST httpx.HandlerFunc

	// Menu places the page in the navigation: smaller comes first, so the
	// menu follows how often people need each page (MenuDaily, MenuWeekly,
	// MenuSetup); 0 means MenuWeekly. Equal values keep the order the pages
	// were added in.
	Menu int
	// LandingFor are the roles whose sign-in lands on this page (when no
	// other page was asked for): reception on its codes, the DSL on alerts.
	// A role no page claims lands on the home page.
	LandingFor []string

	// MaxBody bounds a POST's body for a page that takes an upload (an
	// MIS export); 0 keeps the 64 KiB every other form gets.
	MaxBody int64

	// Passive marks a GET a page makes on its own (a live feed of
	// server-sent events): it needs the session like any page but is not
	// a person's activity, so it never keeps an idle session alive.
	Passive bool
}

// Menu positions (Page.Menu), by how often people open the page.
const (
	MenuDaily  = 10 // the day's work: codes, alerts, devices, the overview
	MenuWeekly = 50 // looked at now and then: people, rules, sessions, audit
	MenuSetup  = 90 // set once: users, API tokens, portal text, the account
)

// access says how a route authenticates its caller.
type access int

const (
	accessPublic  access = iota // anyone (login form, health, stylesheet)
	accessSession               // browser session cookie + role
	accessBearer                // API token + role; cookies ignored
	accessMetrics               // configured scrape address, or network role by token or session
)

func (a access) String() string {
	switch a {
	case accessPublic:
		return "public"
	case accessSession:
		return "session"
	case accessBearer:
		return "bearer"
	case accessMetrics:
		return "metrics"
	}
	return fmt.Sprintf("access(%d)", int(a))
}

// route is one row of the route table: every route the server answers is
// declared here with who may call it, and buildEngine wraps each handler in
// the check its row asks for.
type route struct {
	method  string
	path    string
	access  access
	roles   []string // for session and bearer routes
	handler httpx.HandlerFunc
	maxBody int64 // 0: defaultMaxBody
	passive bool  // not activity: see Page.Passive
}

// AddPage adds a page (and its navigation entry, when it has a Title). It
// must be called before Handler or Run; like http.ServeMux.Handle it panics
// on a programming error: a bad path, no handler, no or unknown roles, a
// path already taken, or a call after the server was started.
func (s *Server) AddPage(p Page) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.built {
		panic(fmt.Sprintf("web: AddPage(%q) after the server was started", p.Path))
	}
	s.addPage(p)
}

func (s *Server) addPage(p Page) {
	if !strings.HasPrefix(p.Path, "/") || strings.HasPrefix(p.Path, "/api/") {
		panic(fmt.Sprintf("web: AddPage: bad path %q", p.Path))
	}
	if p.GET == nil && p.POST == nil {
		panic(fmt.Sprintf("web: AddPage(%q): no handler", p.Path))
	}
	if len(p.Roles) == 0 {
		panic(fmt.Sprintf("web: AddPage(%q): no roles", p.Path))
	}
	for _, r := range p.Roles {
		if !slices.Contains(Roles(), r) {
			panic(fmt.Sprintf("web: AddPage(%q): unknown role %q", p.Path, r))
		}
	}
	for _, r := range p.LandingFor {
		if !slices.Contains(p.Roles, r) {
			panic(fmt.Sprintf("web: AddPage(%q): landing role %q may not open it", p.Path, r))
		}
		for _, old := range s.pages {
			if slices.Contains(old.LandingFor, r) {
				panic(fmt.Sprintf("web: AddPage(%q): role %q already lands on %s", p.Path, r, old.Path))
			}
		}
	}
	if p.Menu == 0 {
		p.Menu = MenuWeekly
	}
	p.Roles = slices.Clone(p.Roles)
	p.LandingFor = slices.Clone(p.LandingFor)
	if p.GET != nil {
		s.addRoute(route{method: http.MethodGet, path: p.Path, access: accessSession, roles: p.Roles, handler: p.GET, passive: p.Passive})
	}
	if p.POST != nil {
		s.addRoute(route{method: http.MethodPost, path: p.Path, access: accessSession, roles: p.Roles, handler: p.POST, maxBody: p.MaxBody})
	}
	s.pages = append(s.pages, p)
}

// AddPublicPage adds a GET page anyone may open without signing in, such
// as the Wi-Fi onboarding page that pupils and staff fetch on their own
// devices. It must show nothing secret and change nothing (there is no
// POST: a form needs a session for its CSRF token). It is never in the
// navigation. Like AddPage it panics on a programming error.
func (s *Server) AddPublicPage(path string, get httpx.HandlerFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.built {
		panic(fmt.Sprintf("web: AddPublicPage(%q) after the server was started", path))
	}
	if !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "/api/") || get == nil {
		panic(fmt.Sprintf("web: AddPublicPage: bad path %q or no handler", path))
	}
	s.addRoute(route{method: http.MethodGet, path: path, access: accessPublic, handler: get})
}

// AddAPI adds a JSON API route for scripts and kiosks: path must start
// with /api/v1/, callers need an API token ("Authorization: Bearer") whose
// user has one of roles (cookies are ignored, so there is no CSRF check);
// others get 401 or 403 as JSON. Like AddPage it must be called before
// Handler or Run and panics on a programming error: a bad method or path,
// no handler, no or unknown roles, a route already taken, or a call after
// the server was started.
func (s *Server) AddAPI(method, path string, roles []string, h httpx.HandlerFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.built {
		panic(fmt.Sprintf("web: AddAPI(%s %q) after the server was started", method, path))
	}
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		panic(fmt.Sprintf("web: AddAPI(%s %q): bad method", method, path))
	}
	if !strings.HasPrefix(path, apiPrefix) || len(path) == len(apiPrefix) || strings.HasSuffix(path, "/") {
		panic(fmt.Sprintf("web: AddAPI(%s %q): path must be under %s", method, path, apiPrefix))
	}
	if h == nil {
		panic(fmt.Sprintf("web: AddAPI(%s %q): no handler", method, path))
	}
	if len(roles) == 0 {
		panic(fmt.Sprintf("web: AddAPI(%s %q): no roles", method, path))
	}
	for _, r := range roles {
		if !slices.Contains(Roles(), r) {
			panic(fmt.Sprintf("web: AddAPI(%s %q): unknown role %q", method, path, r))
		}
	}
	s.addRoute(route{method: method, path: path, access: accessBearer, roles: slices.Clone(roles), handler: h})
}

// apiPrefix is where every bearer-token route lives.
const apiPrefix = "/api/v1/"

func (s *Server) addRoute(r route) {
	for _, old := range s.routes {
		if old.method == r.method && old.path == r.path {
			panic(fmt.Sprintf("web: route %s %s declared twice", r.method, r.path))
		}
	}
	if (r.access == accessSession || r.access == accessBearer) && len(r.roles) == 0 {
		panic(fmt.Sprintf("web: route %s %s has no roles", r.method, r.path))
	}
	s.routes = append(s.routes, r)
}

// registerBuiltins declares the shell's own routes. Pages come first, in
// navigation order.
func (s *Server) registerBuiltins() {
	all := Roles()
	network := []string{RoleNetwork}
	s.addPage(Page{Path: "/", Title: "Home", Roles: all, GET: s.homePage, Menu: MenuDaily})
	s.addPage(Page{Path: "/audit", Title: "Audit log", Roles: network, GET: s.auditPage, Menu: MenuWeekly + 10})
	s.addPage(Page{Path: "/audit.csv", Roles: network, GET: s.auditCSV})
	s.addPage(Page{Path: "/users", Title: "Users", Roles: network, GET: s.usersPage, POST: s.createUser, Menu: MenuSetup})
	s.addPage(Page{Path: "/account", Title: "Account", Roles: all, GET: s.accountPage, POST: s.changePassword, Menu: MenuSetup})
	s.addPage(Page{Path: "/tokens", Title: "API tokens", Roles: all, GET: s.tokensPage, POST: s.createToken, Menu: MenuSetup + 5})
	s.addPage(Page{Path: "/tokens/delete", Roles: all, POST: s.deleteToken})
	s.addPage(Page{Path: "/logout", Roles: all, POST: s.logout})

	s.addRoute(route{method: http.MethodGet, path: "/login", access: accessPublic, handler: s.loginPage})
	s.addRoute(route{method: http.MethodPost, path: "/login", access: accessPublic, handler: s.login})
	s.addRoute(route{method: http.MethodGet, path: "/healthz", access: accessPublic, handler: s.healthz})
	s.addRoute(route{method: http.MethodGet, path: "/static/gatehouse.css", access: accessPublic, handler: s.stylesheet})
	if s.gatherer != nil {
		s.addRoute(route{method: http.MethodGet, path: "/metrics", access: accessMetrics, handler: s.metricsHandler()})
	}

	s.addRoute(route{method: http.MethodGet, path: "/api/v1/whoami", access: accessBearer, roles: all, handler: s.apiWhoami})
	s.addRoute(route{method: http.MethodGet, path: "/api/v1/audit", access: accessBearer, roles: network, handler: s.apiAudit})
	s.addRoute(route{method: http.MethodGet, path: "/api/v1/users", access: accessBearer, roles: network, handler: s.apiUsers})
}

// buildEngine turns the route table into a router. Called once.
func (s *Server) buildEngine() http.Handler {
	// The client address is the TCP peer (clientAddr), never a header a
	// client can forge; a path is served as asked or not at all (no
	// trailing-slash or case redirects), and a method a path does not
	// take gets the same 404 page as an unknown path.
	e := httpx.NewRouter()

	limits := map[string]int64{}
	for _, r := range s.routes {
		if r.maxBody > 0 {
			limits[r.method+" "+r.path] = r.maxBody
		}
	}
	e.Use(s.recoverPanic, s.accessLog, s.securityHeaders, s.checkHost, limitBody(limits))
	e.NoRoute(func(c *httpx.Context) { s.RenderError(c, http.StatusNotFound, "There is no such page.") })

	for _, r := range s.routes {
		var guard httpx.HandlerFunc
		switch r.access {
		case accessPublic:
			guard = func(*httpx.Context) {}
		case accessSession:
			guard = s.requireSession(r.roles, r.passive)
		case accessBearer:
			guard = s.requireBearer(r.roles)
		case accessMetrics:
			guard = s.requireMetricsAccess
		default:
			panic(fmt.Sprintf("web: route %s %s: unknown access %v", r.method, r.path, r.access))
		}
		e.Handle(r.method, r.path, guard, r.handler)
	}
	return e
}

// hasRole reports whether role is one of roles.
func hasRole(roles []string, role string) bool { return slices.Contains(roles, role) }

// securityHeaders sets the headers every response carries. Authenticated
// responses and forms must never sit in a shared or back-button cache, so
// everything but the stylesheet is no-store.
func (s *Server) securityHeaders(c *httpx.Context) {
	h := c.Writer.Header()
	h.Set("Strict-Transport-Security", "max-age=63072000")
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if c.Request.URL.Path != "/static/gatehouse.css" {
		h.Set("Cache-Control", "no-store")
	}
	c.Next()
}

// defaultMaxBody bounds request bodies: every form here is a few fields.
const defaultMaxBody = 64 << 10

// limitBody bounds request bodies, by the route's own limit where a page
// declared one (keyed "METHOD /path").
func limitBody(limits map[string]int64) httpx.HandlerFunc {
	return func(c *httpx.Context) {
		if c.Request.Body != nil {
			n, ok := limits[c.Request.Method+" "+c.FullPath()]
			if !ok {
				n = defaultMaxBody
			}
			c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, n)
		}
		c.Next()
	}
}

// accessLog logs each request: path only (no query), never headers or body,
// so no password or token can end up in a log.
func (s *Server) accessLog(c *httpx.Context) {
	start := time.Now()
	c.Next()
	attrs := []any{
		"method", c.Request.Method,
		"path", c.Request.URL.Path,
		"status", c.Writer.Status(),
		"client", clientAddr(c.Request).String(),
		"duration", time.Since(start),
	}
	if u, ok := CurrentUser(c); ok {
		attrs = append(attrs, "user", u.Name)
	}
	s.log.Debug("web: request", attrs...)
}

// recoverPanic turns a handler panic into a 500 and an error log line. The
// request itself is not dumped: its headers hold cookies and tokens.
func (s *Server) recoverPanic(c *httpx.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("web: handler panic", "method", c.Request.Method, "path", c.Request.URL.Path, "panic", fmt.Sprint(v))
			if !c.Writer.Written() {
				c.AbortWithStatus(http.StatusInternalServerError)
			} else {
				c.Abort()
			}
		}
	}()
	c.Next()
}

// logUser is the user part of a log line.
func logUser(c *httpx.Context) slog.Attr {
	if u, ok := CurrentUser(c); ok {
		return slog.String("user", u.Name)
	}
	return slog.String("user", "")
}
