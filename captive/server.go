// This file: the portal server (options, listener, routing, who a client is).

package captive

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-net/gatehouse/alert/finding"
	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/store"
)

// Admitter opens and closes the portal gate in the kernel. *policy.Enforcer
// satisfies it.
type Admitter interface {
	AdmitWith(ctx context.Context, d policy.Device, until time.Time, l policy.Limits) error
	Evict(ctx context.Context, d policy.Device) error
}

// Neighbours tells the portal which MAC an address belongs to (the DHCP
// leases, or the kernel's neighbour table: see NeighbourTable).
type Neighbours interface {
	MACFor(ip netip.Addr) (net.HardwareAddr, error)
}

// What this package publishes on the hub: events.SessionStarted and
// events.SessionEnded (Source events.SourcePortal) as guests come and go.
// It offers Options.Findings a finding.Finding of class code-guessing when
// failed codes across the site trip the breaker.

// Options are the portal's dependencies and settings.
type Options struct {
	Store      Store      // required
	Admitter   Admitter   // required
	Neighbours Neighbours // required
	// Bound reports whether the router gave ip to mac (a lease or a
	// reservation) where MAC-address binding is on; a code admits only
	// such a pair, so a static address nobody was given stays shut even
	// with a code. nil admits any pair (segments without binding).
	Bound func(mac net.HardwareAddr, ip netip.Addr) bool
	Hub   *events.Hub // nil: no events
	// Findings takes every finding this package raises, without loss: the
	// daemon's one finding sink. nil drops them (finding.Discard), for
	// tests that do not look.
	Findings finding.Sink
	Logger   *slog.Logger // nil: discard
	Now      func() time.Time
	Location *time.Location // for times shown to people; nil: time.Local

	School string // shown on every page and slip
	SSID   string // the guest network's name, printed on slips
	// PortalURL is the portal's base URL as visitors reach it, e.g.
	// "http://10.40.0.1:8080" (required). Requests for any other host are
	// treated as intercepted web traffic (OS probes included).
	PortalURL string
	VenueURL  string // optional "venue-info-url" of the RFC 8908 API

	Listen    string // host:port for plain HTTP in Run
	TLSListen string // host:port for HTTPS in Run; "" for none
	CertFile  string // PEM certificate and key for TLSListen
	KeyFile   string

	Limits Limits    // code-guessing limits; zero: defaults
	Rand   io.Reader // randomness for codes; nil: crypto/rand

	// CodeKey hashes codes (CodeKeyFrom the site key, kept in a file beside
	// the database, never in it, so a copied database alone reveals no
	// code). Codes issued before the site key, under the key an older
	// version kept in the database, still redeem. nil: that database key
	// only (tests, and tools that predate the site key).
	CodeKey []byte
}

// Portal is the captive portal: its HTTP server, the vouchers' life cycle
// and guest admissions. Build it with New.
type Portal struct {
	st       Store
	adm      Admitter
	nb       Neighbours
	bound    func(net.HardwareAddr, netip.Addr) bool
	hub      *events.Hub
	findings finding.Sink
	log      *slog.Logger
	now      func() time.Time
	loc      *time.Location
	school   string
	ssid     string
	base     *url.URL
	venue    string
	listen   string
	tlsAddr  string
	certFile string
	keyFile  string
	rand     io.Reader
	lim      *limiter
	tmpl     *template.Template
	// texts are every message in each language, built once for the
	// templates' .T (which only read them) instead of at every page.
	texts map[string]map[string]string

	keyMu     sync.Mutex
	key       []byte
	siteKeyed bool // key came from the site key file; the database's is legacy

	conns connTracker
	ends  endWatch // wakes ReportExpiries (expiry.go)

	signIns signIns // group commit of sign-ins (commit.go)

	brandMemo  brandMemo  // the branding as pages use it (branding.go)
	loginPages loginPages // the plain sign-in page, rendered (pagecache.go)

	panics atomic.Uint64 // requests whose handling panicked
}

// Panics returns how many requests' handling panicked (each was answered
// 500 and the portal went on serving).
func (p *Portal) Panics() uint64 { return p.panics.Load() }

// connTracker knows the portal's open client connections and their state,
// so that admitting a device can close the idle ones it opened while it
// was held. Their NAT entries tie them to the portal for their lifetime:
// a browser that opened a spare connection to some site before signing in
// (Chromium does, to save a round trip) would otherwise send its next page
// request for that site to the portal instead of the internet.
type connTracker struct {
	mu   sync.Mutex
	byIP map[netip.Addr]map[net.Conn]http.ConnState
}

func (c *connTracker) track(conn net.Conn, state http.ConnState) {
	ip := connPeer(conn)
	if !ip.IsValid() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.byIP[ip]
	switch state {
	case http.StateClosed, http.StateHijacked:
		delete(m, conn)
		if len(m) == 0 {
			delete(c.byIP, ip)
		}
		return
	}
	if m == nil {
		if c.byIP == nil {
			c.byIP = map[netip.Addr]map[net.Conn]http.ConnState{}
		}
		m = map[net.Conn]http.ConnState{}
		c.byIP[ip] = m
	}
	m[conn] = state
}

// closeIdle closes ip's connections that carry no request now (new or
// idle) and reports how many it closed. A browser notices an idle
// connection closed by the server and opens a new one for its next request.
func (c *connTracker) closeIdle(ip netip.Addr) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for conn, state := range c.byIP[ip] {
		if state == http.StateNew || state == http.StateIdle {
			_ = conn.Close()
			n++
		}
	}
	return n
}

func connPeer(conn net.Conn) netip.Addr {
	ap, err := netip.ParseAddrPort(conn.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// New checks opts and parses the templates. It touches neither the
// database nor the network.
func New(opts Options) (*Portal, error) {
	switch {
	case opts.Store == nil:
		return nil, errors.New("captive: new: Options.Store is nil")
	case opts.Admitter == nil:
		return nil, errors.New("captive: new: Options.Admitter is nil")
	case opts.Neighbours == nil:
		return nil, errors.New("captive: new: Options.Neighbours is nil")
	}
	base, err := url.Parse(strings.TrimRight(opts.PortalURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" || base.Path != "" {
		return nil, fmt.Errorf("captive: new: PortalURL %q must be http(s)://host[:port] with no path", opts.PortalURL)
	}
	if opts.TLSListen != "" && (opts.CertFile == "" || opts.KeyFile == "") {
		return nil, errors.New("captive: new: TLSListen needs CertFile and KeyFile")
	}
	if opts.Findings == nil {
		opts.Findings = finding.Discard{}
	}
	p := &Portal{st: opts.Store, adm: opts.Admitter, nb: opts.Neighbours, bound: opts.Bound, hub: opts.Hub, findings: opts.Findings, log: opts.Logger,
		now: opts.Now, loc: opts.Location, school: opts.School, ssid: opts.SSID, base: base, venue: opts.VenueURL,
		listen: opts.Listen, tlsAddr: opts.TLSListen, certFile: opts.CertFile, keyFile: opts.KeyFile,
		rand: opts.Rand, lim: newLimiter(opts.Limits)}
	p.signIns.st = opts.Store
	if opts.CodeKey != nil {
		p.key, p.siteKeyed = slices.Clone(opts.CodeKey), true
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.log = p.log.With("component", "captive")
	if p.now == nil {
		p.now = time.Now
	}
	if p.loc == nil {
		p.loc = time.Local
	}
	if p.school == "" {
		p.school = "Gatehouse"
	}
	p.texts = map[string]map[string]string{}
	for _, lang := range []string{langEN, langCY} {
		t := make(map[string]string, len(messages))
		for k := range messages {
			t[k] = tr(lang, k)
		}
		p.texts[lang] = t
	}
	if p.tmpl, err = template.New("portal").ParseFS(templateFS, "templates/portal.html"); err != nil {
		return nil, fmt.Errorf("captive: new: parse templates: %w", err)
	}
	return p, nil
}

// PortalURL is the base URL of the portal pages.
func (p *Portal) PortalURL() string { return p.base.String() }

// APIURL is the RFC 8908 API's URL, for DHCP option 114 (RFC 8910).
func (p *Portal) APIURL() string { return p.base.String() + "/api/captive" }

// codeKey returns the site's code-hashing key (Options.CodeKey, or without
// it the database's), loading it once.
func (p *Portal) codeKey(ctx context.Context) ([]byte, error) {
	p.keyMu.Lock()
	defer p.keyMu.Unlock()
	if p.key == nil {
		k, err := p.st.VoucherKey(ctx)
		if err != nil {
			return nil, err
		}
		p.key = k
	}
	return p.key, nil
}

// issueKey is the key new codes are hashed with: the site key's, or nil
// (Issue then uses the database's) without one.
func (p *Portal) issueKey() []byte {
	if !p.siteKeyed {
		return nil
	}
	return p.key
}

// legacyKey returns the code key an older version kept in the database, if
// the portal now hashes with the site key and that older key exists: codes
// printed before the upgrade must still work.
func (p *Portal) legacyKey(ctx context.Context) ([]byte, bool) {
	if !p.siteKeyed {
		return nil, false
	}
	k, ok, err := p.st.LegacyVoucherKey(ctx)
	if err != nil {
		p.log.Warn("read the database's old code key", "err", err)
		return nil, false
	}
	return k, ok
}

// CodeKeyFrom derives the code-hashing key from the site key (package
// sitekey), so the site key itself never hashes anything directly.
func CodeKeyFrom(siteKey []byte) []byte {
	m := hmac.New(sha256.New, siteKey)
	m.Write([]byte("gatehouse/captive/code-hmac/v1"))
	return m.Sum(nil)
}

// Run serves the portal on Options.Listen (and Options.TLSListen when set)
// until ctx is done, then shuts down gracefully.
func (p *Portal) Run(ctx context.Context) error {
	if p.listen == "" {
		return errors.New("captive: run: Options.Listen is empty")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", p.listen)
	if err != nil {
		return fmt.Errorf("captive: listen %s: %w", p.listen, err)
	}
	if p.tlsAddr == "" {
		return p.Serve(ctx, ln)
	}
	cert, err := tls.LoadX509KeyPair(p.certFile, p.keyFile)
	if err != nil {
		ln.Close()
		return fmt.Errorf("captive: load certificate %s: %w", p.certFile, err)
	}
	tln, err := lc.Listen(ctx, "tcp", p.tlsAddr)
	if err != nil {
		ln.Close()
		return fmt.Errorf("captive: listen %s: %w", p.tlsAddr, err)
	}
	tln = tls.NewListener(tln, &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}})
	errs := make(chan error, 2)
	go func() { errs <- p.Serve(ctx, ln) }()
	go func() { errs <- p.Serve(ctx, tln) }()
	return errors.Join(<-errs, <-errs)
}

// Serve serves the portal on ln until ctx is done; it closes ln. Requests in
// flight get up to 5 s to finish.
func (p *Portal) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           p.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
		ConnState:         p.conns.track,
	}
	p.log.Info("portal serving", "addr", ln.Addr().String())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("captive: serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(shut)
	if serr := <-done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("captive: shutdown: %w", err)
	}
	return nil
}

// Handler returns the portal's HTTP handler.
func (p *Portal) Handler() http.Handler { return http.HandlerFunc(p.serveHTTP) }

func (p *Portal) serveHTTP(w http.ResponseWriter, r *http.Request) {
	// A panic in one request is answered 500, counted and logged; the
	// portal keeps serving everyone else. (net/http would also survive it,
	// but silently, with the connection dropped.)
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			p.panics.Add(1)
			p.log.Error("portal: handler panic", "method", r.Method, "path", r.URL.Path, "client", peerAddr(r), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			http.Error(w, "internal error", http.StatusInternalServerError)
		}
	}()
	h := w.Header()
	// Pages carry their CSS inline and nothing else: no scripts, no
	// frames, forms only to ourselves.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	// same-origin, not no-referrer: under no-referrer a browser sends
	// "Origin: null" even on the portal's own form posts, and the origin
	// is what the forms' CSRF check reads (see sameOrigin).
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)

	if !p.isPortalHost(r.Host) {
		p.intercepted(w, r)
		return
	}
	switch r.URL.Path {
	case "/", "/status":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		p.home(w, r)
	case "/login", "/logout":
		if r.Method != http.MethodPost {
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		if !p.sameOrigin(r) {
			p.log.Warn("portal form posted from another site", "path", r.URL.Path, "origin", clipHeader(r.Header.Get("Origin")),
				"fetch_site", clipHeader(r.Header.Get("Sec-Fetch-Site")), "client", peerAddr(r))
			lang := pickLang(r)
			p.renderLogin(w, r, http.StatusForbidden, lang, "", "", "", tr(lang, "err_form"))
			return
		}
		if r.URL.Path == "/login" {
			p.login(w, r)
		} else {
			p.logout(w, r)
		}
	case "/api/captive":
		p.api(w, r)
	default:
		lang := pickLang(r)
		p.render(w, http.StatusNotFound, "message", p.page(r, lang, tr(lang, "not_found")))
	}
}

// sameOrigin is the portal forms' CSRF check: a browser says where a form
// post comes from (Sec-Fetch-Site, Origin), and a post from any other site
// (a hostile page signing a visitor in with the attacker's code, or out) is
// refused. Clients that send neither header are not browsers acting for
// someone else: scripts and kiosks, which the code limits already bound.
// The portal is often plain HTTP, where a cookie token could be planted by
// anyone on the network, so the browser's own statement is the check.
func (p *Portal) sameOrigin(r *http.Request) bool {
	if fs := r.Header.Get("Sec-Fetch-Site"); fs != "" && fs != "same-origin" && fs != "none" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return false // "null" (sandboxed frames, data: pages) included
	}
	return p.isPortalHost(u.Host) || strings.EqualFold(u.Host, r.Host)
}

func clipHeader(v string) string {
	if len(v) > 100 {
		return v[:100]
	}
	return v
}

// isPortalHost reports whether a Host header names the portal itself.
func (p *Portal) isPortalHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	return strings.EqualFold(host, p.base.Hostname())
}

func peerAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// client is what the portal knows of the device behind a request.
type client struct {
	ip       netip.Addr
	mac      net.HardwareAddr // nil when unknown
	v        store.Voucher
	admitted bool // a signed-in device of a valid code
}

// lookup identifies the requester and its code, if any. If the device holds
// a valid code but asks from an address it was not admitted on (a new
// lease, a kernel element lost), it is admitted again at once: a returning
// device never sees the sheet while its code is valid.
func (p *Portal) lookup(ctx context.Context, r *http.Request) client {
	c := client{ip: peerAddr(r)}
	if !c.ip.IsValid() {
		return c
	}
	mac, err := p.nb.MACFor(c.ip)
	if err != nil || len(mac) == 0 {
		p.log.Debug("no MAC for client", "ip", c.ip, "err", err)
		return c
	}
	c.mac = mac
	v, d, err := p.st.VoucherForDevice(ctx, mac, p.now())
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			p.log.Error("look up guest device", "mac", mac, "err", err)
		}
		return c
	}
	c.v, c.admitted = v, true
	if d.IP != c.ip {
		if err := p.admitDevice(ctx, v, mac, c.ip, "returned", nil); err != nil {
			p.log.Error("re-admit returning device", "mac", mac, "ip", c.ip, "err", err)
		}
	}
	return c
}

// Purge deletes acceptance records and code attempts older than retention
// (the school's policy), for the daemon's scheduler; the deletion is
// audited as actor. It returns how many of each it deleted.
func (p *Portal) Purge(ctx context.Context, actor string, retention time.Duration) (acceptances, attempts int64, err error) {
	if retention < 24*time.Hour {
		return 0, 0, fmt.Errorf("captive: purge: retention %v is shorter than a day", retention)
	}
	acceptances, attempts, err = p.st.PurgeGuestRecords(ctx, actor, p.now().Add(-retention))
	if err != nil {
		return 0, 0, fmt.Errorf("captive: purge: %w", err)
	}
	p.log.Info("guest records purged", "acceptances", acceptances, "attempts", attempts, "retention", retention)
	return acceptances, attempts, nil
}
