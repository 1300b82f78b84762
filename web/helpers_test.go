package web

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-net/gatehouse/password"
	"github.com/gatehouse-net/gatehouse/store"
)

// fakeClock is the server's injectable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
}

// syncBuffer collects log output from the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness is a Server on a real TLS listener on 127.0.0.1 with its
// auto-created certificate, over a real store in a temporary directory.
type harness struct {
	t     *testing.T
	dir   string
	srv   *Server
	st    *store.Store
	clock *fakeClock
	reg   *prometheus.Registry
	logs  *syncBuffer
	base  string
	pool  *x509.CertPool
}

// newHarness starts a server; setup (may be nil) runs between New and
// Serve, to add feature pages.
func newHarness(t *testing.T, setup func(*Server)) *harness {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(dir, "gatehouse.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	h := &harness{
		t:     t,
		dir:   dir,
		st:    st,
		clock: &fakeClock{t: time.Now().Truncate(time.Second)},
		reg:   prometheus.NewRegistry(),
		logs:  &syncBuffer{},
	}
	h.srv, err = New(Options{
		Store:      st,
		Logger:     slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Site:       "Test School",
		Listen:     "127.0.0.1:0",
		CertFile:   filepath.Join(dir, "tls", "cert.pem"),
		KeyFile:    filepath.Join(dir, "tls", "key.pem"),
		Auto:       true,
		Gatherer:   h.reg,
		Registerer: h.reg,
		Now:        h.clock.Now,
		// The Host check on, as in the daemon: the browser dials 127.0.0.1.
		AllowedHosts: []string{},
		MetricsFrom:  []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if setup != nil {
		setup(h.srv)
	}
	h.srv.Handler() // freeze the route table now, as Serve would, so tests need not race it
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- h.srv.Serve(sctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve returned %v after cancel, want nil", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("Serve did not return within 20s of cancel")
		}
	})
	h.base = "https://" + ln.Addr().String()
	h.pool = x509.NewCertPool()
	if !h.pool.AppendCertsFromPEM(h.srv.CertPEM()) {
		t.Fatal("server certificate PEM did not parse")
	}
	return h
}

// addUser creates a user directly in the store.
func (h *harness) addUser(name, role, pw string) store.User {
	h.t.Helper()
	hash, err := password.Hash(pw)
	if err != nil {
		h.t.Fatalf("hash: %v", err)
	}
	u, err := h.st.CreateUser(context.Background(), "test", store.User{Name: name, Role: role, PasswordHash: hash})
	if err != nil {
		h.t.Fatalf("create user %s: %v", name, err)
	}
	return u
}

// browser is one cookie jar talking TLS to the harness, verifying the
// server's certificate against the auto-created one. It does not follow
// redirects, so tests see the 303s.
type browser struct {
	h *harness
	c *http.Client
}

func (h *harness) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return &browser{h: h, c: &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: h.pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type response struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(req *http.Request) response {
	b.h.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.h.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.h.t.Fatalf("%s %s: read body: %v", req.Method, req.URL.Path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

func (b *browser) get(path string) response {
	b.h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.h.base+path, nil)
	if err != nil {
		b.h.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) response {
	b.h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.h.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// api GETs path with a bearer token (none if token is "").
func (b *browser) api(path, token string) response {
	b.h.t.Helper()
	return b.apiDo(http.MethodGet, path, token, "")
}

// apiDo calls path with a bearer token (none if token is "") and, unless
// body is "", a JSON body.
func (b *browser) apiDo(method, path, token, body string) response {
	b.h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, b.h.base+path, rd)
	if err != nil {
		b.h.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return b.do(req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf fetches path and returns the CSRF token of its forms.
func (b *browser) csrf(path string) string {
	b.h.t.Helper()
	r := b.get(path)
	m := csrfField.FindStringSubmatch(r.body)
	if m == nil {
		b.h.t.Fatalf("GET %s (%d): no csrf field in page", path, r.status)
	}
	return m[1]
}

// tryLogin submits the login form and returns the response.
func (b *browser) tryLogin(name, pw string) response {
	b.h.t.Helper()
	tok := b.csrf("/login")
	return b.post("/login", url.Values{"csrf": {tok}, "name": {name}, "password": {pw}})
}

// login logs in and fails the test unless it worked.
func (b *browser) login(name, pw string) {
	b.h.t.Helper()
	r := b.tryLogin(name, pw)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/" {
		b.h.t.Fatalf("login as %s: status %d location %q, want 303 to /", name, r.status, r.header.Get("Location"))
	}
}

// cookie returns the value of the named cookie the jar holds for the server.
func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.h.base)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
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

const testPassword = "correct horse battery"

// roleUsers creates one user per role, named after the role.
func (h *harness) roleUsers() map[string]store.User {
	users := map[string]store.User{}
	for _, r := range Roles() {
		users[r] = h.addUser("u-"+r, r, testPassword)
	}
	return users
}

func netipMust(s string) netip.Addr { return netip.MustParseAddr(s) }

func itoa(i int) string { return strconv.Itoa(i) }

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func parseCert(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatal("no CERTIFICATE block")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// scrape returns /metrics as the configured scrape address sees it.
func scrape(t *testing.T, h *harness) string {
	t.Helper()
	r := h.browser().get("/metrics")
	if r.status != http.StatusOK {
		t.Fatalf("GET /metrics: %d", r.status)
	}
	return r.body
}
