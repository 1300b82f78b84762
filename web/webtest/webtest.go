// Package webtest runs the admin web server for tests the way a school runs
// it: a real store (SQLite in a temporary directory), the real TLS listener
// on 127.0.0.1 with its auto-created certificate, and browsers that sign in
// through the login form and keep their cookie and CSRF token.
//
// It owns the test harness of package web and of every feature package
// that adds pages or API routes to it (captive, findingsweb, rulesweb,
// devicesweb, ...). It creates credentials only through the server's own
// code paths: users in the store with a real password hash, sessions by
// posting the login form, API tokens by posting the tokens page. It never
// computes a token hash itself, so a test cannot pass with a session the
// server would not have made.
//
// It does not own what the pages do; each package tests that with it.
package webtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store/storetest"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-net/gatehouse/internal/testkit"
	"github.com/gatehouse-net/gatehouse/password"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
)

// Password is the password of every user the site creates for a Browser.
const Password = "correct horse battery staple"

// Options are what a test may choose about its site; the zero value is a
// bare admin shell.
type Options struct {
	// Store is the database the server uses; nil opens a fresh one (see
	// OpenStore). A test that drives a feature over the same store (a
	// portal, a DHCP server) or registers pages that need it passes it.
	Store *store.Store
	// Now is the server's clock; nil uses Site.Clock, a testkit.Clock set
	// to the current time (whole seconds).
	Now func() time.Time
	// Site is the school's name in titles; "" means "Test School".
	Site string
	// Setup runs between web.New and Serve: the feature's Register call.
	// An error fails the test.
	Setup func(*web.Server) error
	// IdleTimeout and Location go to web.Options as they are.
	IdleTimeout map[string]time.Duration
	Location    *time.Location
}

// Site is a running admin server and what the test needs to drive it.
type Site struct {
	Server   *web.Server
	Store    *store.Store
	Clock    *testkit.Clock       // the server's clock, unless Options.Now was set
	Logs     *testkit.SyncBuffer  // everything the server logged (debug level)
	Registry *prometheus.Registry // the server's metrics
	URL      string               // https://127.0.0.1:port, no trailing slash
	Dir      string               // the temporary directory holding the TLS pair

	pool   *x509.CertPool
	mu     sync.Mutex
	n      int               // users created for Browser and Token, for unique names
	hashes map[string]string // password -> hash, see hashOf
}

// New starts a site for t and stops it when t ends, failing t if the
// server does not shut down cleanly.
func New(t testing.TB, opts Options) *Site {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	s := &Site{
		Store:    opts.Store,
		Clock:    testkit.NewClock(time.Now().Truncate(time.Second)),
		Logs:     &testkit.SyncBuffer{},
		Registry: prometheus.NewRegistry(),
		Dir:      dir,
		hashes:   map[string]string{},
	}
	if s.Store == nil {
		s.Store = OpenStore(t)
	}
	now := opts.Now
	if now == nil {
		now = s.Clock.Now
	}
	site := opts.Site
	if site == "" {
		site = "Test School"
	}
	var err error
	s.Server, err = web.New(web.Options{
		Store:       s.Store,
		Logger:      slog.New(slog.NewTextHandler(s.Logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Site:        site,
		Listen:      "127.0.0.1:0",
		CertFile:    filepath.Join(dir, "tls", "cert.pem"),
		KeyFile:     filepath.Join(dir, "tls", "key.pem"),
		Auto:        true,
		Gatherer:    s.Registry,
		Registerer:  s.Registry,
		Now:         now,
		IdleTimeout: opts.IdleTimeout,
		Location:    opts.Location,
		// The Host check on, as in the daemon (the browser dials
		// 127.0.0.1), and 127.0.0.1 the configured scrape address.
		AllowedHosts: []string{},
		MetricsFrom:  []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	})
	if err != nil {
		t.Fatalf("webtest: web.New: %v", err)
	}
	if opts.Setup != nil {
		if err := opts.Setup(s.Server); err != nil {
			t.Fatalf("webtest: setup: %v", err)
		}
	}
	s.Server.Handler() // freeze the route table now, as Serve would, so tests need not race it
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("webtest: listen: %v", err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Server.Serve(sctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("webtest: Serve returned %v after cancel, want nil", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("webtest: Serve did not return within 20s of cancel")
		}
	})
	s.URL = "https://" + ln.Addr().String()
	s.pool = x509.NewCertPool()
	if !s.pool.AppendCertsFromPEM(s.Server.CertPEM()) {
		t.Fatal("webtest: the server certificate PEM did not parse")
	}
	return s
}

// OpenStore opens a fresh store in a temporary directory and closes it when
// t ends: for a test whose Setup needs the store before the site exists.
func OpenStore(t testing.TB) *store.Store {
	t.Helper()
	return storetest.Open(t)
}

// AddUser creates a user directly in the store, with a real password hash,
// as `gatehouse user add` does.
func (s *Site) AddUser(t testing.TB, name, role, pw string) store.User {
	t.Helper()
	hash, err := s.hashOf(pw)
	if err != nil {
		t.Fatalf("webtest: hash password: %v", err)
	}
	u, err := s.Store.CreateUser(context.Background(), "test", store.User{Name: name, Role: role, PasswordHash: hash})
	if err != nil {
		t.Fatalf("webtest: create user %s: %v", name, err)
	}
	return u
}

// hashOf returns an argon2 hash of pw, one per password and site: a hash
// costs 19 MiB and a noticeable fraction of a second, and one salted hash
// verifies for any number of users. Every login still runs the real
// verification.
func (s *Site) hashOf(pw string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h, ok := s.hashes[pw]; ok {
		return h, nil
	}
	h, err := password.Hash(pw)
	if err != nil {
		return "", err
	}
	s.hashes[pw] = h
	return h, nil
}

// NewBrowser returns a browser that has not signed in. It verifies the
// server's certificate against the auto-created one and does not follow
// redirects, so tests see the 303s.
func (s *Site) NewBrowser(t testing.TB) *Browser {
	t.Helper()
	return newBrowser(t, s, &tls.Config{RootCAs: s.pool})
}

// Remote returns a browser, not signed in, for an admin server this test
// did not start: a daemon under test at baseURL ("https://host:port").
// roots verifies its certificate; nil accepts the daemon's self-signed one
// unchecked, for a test that cannot read the daemon's certificate file.
// Site methods other than NewBrowser are not available through it.
func Remote(t testing.TB, baseURL string, roots *x509.CertPool) *Browser {
	t.Helper()
	conf := &tls.Config{RootCAs: roots, InsecureSkipVerify: roots == nil}
	return newBrowser(t, &Site{URL: strings.TrimSuffix(baseURL, "/"), pool: roots}, conf)
}

// RemoteVia is Remote through c's transport: a daemon under test reached
// from inside a testbed namespace (testbed.School.HTTPClient), with c's TLS
// settings and, when set, its timeout (argon2 on a loaded machine). The
// browser keeps cookies of its own and does not follow redirects.
func RemoteVia(t testing.TB, baseURL string, c *http.Client) *Browser {
	t.Helper()
	b := newBrowser(t, &Site{URL: strings.TrimSuffix(baseURL, "/")}, nil)
	b.c.Transport = c.Transport
	if c.Timeout > 0 {
		b.c.Timeout = c.Timeout
	}
	return b
}

func newBrowser(t testing.TB, s *Site, conf *tls.Config) *Browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Browser{t: t, site: s, c: &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: conf},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Browser creates a user of role (named "<role>-<n>") and returns a
// browser signed in as them.
func (s *Site) Browser(t testing.TB, role string) *Browser {
	t.Helper()
	return s.SignIn(t, s.nextName(role), role)
}

// SignIn creates the user name with role and Password, and returns a
// browser signed in as them through the login form.
func (s *Site) SignIn(t testing.TB, name, role string) *Browser {
	t.Helper()
	u := s.AddUser(t, name, role, Password)
	b := s.NewBrowser(t)
	b.Login(name, Password)
	b.User = u
	return b
}

// Token creates a user of role and returns an API bearer token of theirs,
// made on the tokens page as a person makes one.
func (s *Site) Token(t testing.TB, role string) string {
	t.Helper()
	return s.Browser(t, role).NewToken("test")
}

func (s *Site) nextName(role string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	return fmt.Sprintf("%s-%d", role, s.n)
}

// Audit returns the whole audit log, newest first.
func (s *Site) Audit(t testing.TB) []store.AuditEntry {
	t.Helper()
	const page = 1000 // the store's largest page
	var all []store.AuditEntry
	for {
		es, err := s.Store.AuditList(context.Background(), page, len(all))
		if err != nil {
			t.Fatalf("webtest: read the audit log: %v", err)
		}
		all = append(all, es...)
		if len(es) < page {
			return all
		}
	}
}

// LastAudit returns the newest audit entry, failing t if there is none.
func (s *Site) LastAudit(t testing.TB) store.AuditEntry {
	t.Helper()
	es, err := s.Store.AuditList(context.Background(), 1, 0)
	if err != nil || len(es) == 0 {
		t.Fatalf("webtest: newest audit entry: %v (%d entries)", err, len(es))
	}
	return es[0]
}

// AuditWith returns the audit entries with action, newest first.
func (s *Site) AuditWith(t testing.TB, action string) []store.AuditEntry {
	t.Helper()
	var out []store.AuditEntry
	for _, e := range s.Audit(t) {
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out
}

// Response is a finished response with its whole body.
type Response struct {
	StatusCode int
	Header     http.Header
	Body       string
}

// Cookie returns the cookie name the response sets, or nil.
func (r Response) Cookie(name string) *http.Cookie {
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Browser is one cookie jar talking TLS to the site. A signed-in browser
// (from Site.Browser or SignIn) knows its user and its session's CSRF
// token. Its methods fail the test given to the call that made it on
// transport errors, not on HTTP statuses.
type Browser struct {
	User store.User // zero for a browser that has not signed in
	CSRF string     // the session's CSRF token, set by Login

	t    testing.TB
	site *Site
	c    *http.Client
}

// For returns the same browser (cookies, CSRF token) reporting to t: for
// use inside a subtest, whose failures must not stop its parent.
func (b *Browser) For(t testing.TB) *Browser {
	c := *b
	c.t = t
	return &c
}

// Do sends req (its URL relative to the site) and reads the response.
func (b *Browser) Do(req *http.Request) Response {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("webtest: %s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatalf("webtest: %s %s: read body: %v", req.Method, req.URL.Path, err)
	}
	return Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: string(body)}
}

func (b *Browser) request(method, path string, body io.Reader) *http.Request {
	b.t.Helper()
	req, err := http.NewRequest(method, b.site.URL+path, body)
	if err != nil {
		b.t.Fatalf("webtest: %s %s: %v", method, path, err)
	}
	return req
}

// Get fetches path.
func (b *Browser) Get(path string) Response {
	b.t.Helper()
	return b.Do(b.request(http.MethodGet, path, nil))
}

// PostForm submits form to path with the session's CSRF token, as the
// page's form would; a form that sets "csrf" itself (even to "") is sent as
// it is, to test refusals.
func (b *Browser) PostForm(path string, form url.Values) Response {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, set := form["csrf"]; !set {
		if b.CSRF == "" {
			b.t.Fatalf("webtest: POST %s: the browser has no CSRF token (not signed in?)", path)
		}
		form.Set("csrf", b.CSRF)
	}
	return b.Post(path, form)
}

// Post submits form to path exactly as given.
func (b *Browser) Post(path string, form url.Values) Response {
	b.t.Helper()
	req := b.request(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.Do(req)
}

// API calls path with a bearer token (none if token is "") and, unless body
// is "", a JSON body.
func (b *Browser) API(method, path, token, body string) Response {
	b.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := b.request(method, path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return b.Do(req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// CSRFFrom fetches path and returns the CSRF token of its forms.
func (b *Browser) CSRFFrom(path string) string {
	b.t.Helper()
	r := b.Get(path)
	m := csrfField.FindStringSubmatch(r.Body)
	if m == nil {
		b.t.Fatalf("webtest: GET %s (%d): no csrf field in the page", path, r.StatusCode)
	}
	return m[1]
}

// TryLogin submits the login form and returns the response.
func (b *Browser) TryLogin(name, pw string) Response {
	b.t.Helper()
	tok := b.CSRFFrom("/login")
	return b.Post("/login", url.Values{"csrf": {tok}, "name": {name}, "password": {pw}})
}

// Login signs in and fails the test unless it worked; it then keeps the
// session's CSRF token from the landing page.
//
// It returns the page the sign-in landed on: each role lands where its work
// is ("/vouchers" for reception when the codes page is registered).
func (b *Browser) Login(name, pw string) string {
	b.t.Helper()
	r := b.TryLogin(name, pw)
	loc := r.Header.Get("Location")
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") {
		b.t.Fatalf("webtest: login as %s: status %d location %q, want 303 to a page of this site", name, r.StatusCode, loc)
	}
	b.CSRF = b.CSRFFrom("/")
	return loc
}

var shownToken = regexp.MustCompile(`<code class="secret">(gh_[A-Za-z0-9_-]{43})</code>`)

// NewToken creates an API token called name on the tokens page and returns
// it, as shown once to the person.
func (b *Browser) NewToken(name string) string {
	b.t.Helper()
	r := b.PostForm("/tokens", url.Values{"name": {name}})
	m := shownToken.FindStringSubmatch(r.Body)
	if r.StatusCode != http.StatusOK || m == nil {
		b.t.Fatalf("webtest: create token %s: status %d, no token shown", name, r.StatusCode)
	}
	return m[1]
}

// Cookie returns the value of the named cookie the jar holds for the site.
func (b *Browser) Cookie(name string) string {
	u, err := url.Parse(b.site.URL)
	if err != nil {
		return ""
	}
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}
