package captive

import (
	"bytes"
	"context"
	"crypto/tls"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

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

// codeLimits turns a code's options (bits per second, bytes) into the
// kernel limits its devices are admitted with.
func codeLimits(upBits, downBits, quota int64) policy.Limits {
	return policy.Limits{UpBps: uint64(upBits) / 8, DownBps: uint64(downBits) / 8, QuotaBytes: uint64(quota)}
}

// Neighbours tells the portal which MAC an address belongs to (the DHCP
// leases, or the kernel's neighbour table: see NeighbourTable).
type Neighbours interface {
	MACFor(ip netip.Addr) (net.HardwareAddr, error)
}

// Event kinds this package publishes besides events.SessionStarted and
// events.SessionEnded (whose Data is a GuestSession).
const (
	// BruteForce is published when failed codes across the site trip the
	// breaker; Data is a BruteForceAlert.
	BruteForce events.Kind = "voucher.bruteforce"
)

// GuestSession is the Data of SessionStarted and SessionEnded events.
type GuestSession struct {
	VoucherID int64
	MAC       net.HardwareAddr
	IP        netip.Addr
	Until     time.Time // zero on SessionEnded
	Reason    string    // "redeemed", "returned", "logout", "revoked"
}

// BruteForceAlert is the Data of a BruteForce event.
type BruteForceAlert struct {
	Failures int           // failed codes within the window that tripped it
	Window   time.Duration // that window
	Until    time.Time     // when the breaker lets go unless failures go on
	LastMAC  net.HardwareAddr
	LastIP   netip.Addr
}

// Options are the portal's dependencies and settings.
type Options struct {
	Store      *store.Store // required
	Admitter   Admitter     // required
	Neighbours Neighbours   // required
	Hub        *events.Hub  // nil: no events
	Logger     *slog.Logger // nil: discard
	Now        func() time.Time
	Location   *time.Location // for times shown to people; nil: time.Local

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
}

// Portal is the captive portal: its HTTP server, the vouchers' life cycle
// and guest admissions. Build it with New.
type Portal struct {
	st       *store.Store
	adm      Admitter
	nb       Neighbours
	hub      *events.Hub
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

	keyMu sync.Mutex
	key   []byte

	conns connTracker
}

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

//go:embed templates/*.html
var templateFS embed.FS

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
	p := &Portal{st: opts.Store, adm: opts.Admitter, nb: opts.Neighbours, hub: opts.Hub, log: opts.Logger,
		now: opts.Now, loc: opts.Location, school: opts.School, ssid: opts.SSID, base: base, venue: opts.VenueURL,
		listen: opts.Listen, tlsAddr: opts.TLSListen, certFile: opts.CertFile, keyFile: opts.KeyFile,
		rand: opts.Rand, lim: newLimiter(opts.Limits)}
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
	if p.tmpl, err = template.New("portal").ParseFS(templateFS, "templates/portal.html"); err != nil {
		return nil, fmt.Errorf("captive: new: parse templates: %w", err)
	}
	return p, nil
}

// PortalURL is the base URL of the portal pages.
func (p *Portal) PortalURL() string { return p.base.String() }

// APIURL is the RFC 8908 API's URL, for DHCP option 114 (RFC 8910).
func (p *Portal) APIURL() string { return p.base.String() + "/api/captive" }

// codeKey returns the site's code-hashing key, loading it once.
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

func (p *Portal) publish(kind events.Kind, data any) {
	if p.hub != nil {
		p.hub.Publish(events.Event{Kind: kind, At: p.now(), Data: data})
	}
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
	h := w.Header()
	// Pages carry their CSS inline and nothing else: no scripts, no
	// frames, forms only to ourselves.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
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
	case "/login":
		if r.Method != http.MethodPost {
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		p.login(w, r)
	case "/logout":
		if r.Method != http.MethodPost {
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		p.logout(w, r)
	case "/api/captive":
		p.api(w, r)
	default:
		lang := pickLang(r)
		p.render(w, http.StatusNotFound, "message", p.page(r, lang, tr(lang, "not_found")))
	}
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
		if err := p.admitDevice(ctx, v, mac, c.ip, "returned"); err != nil {
			p.log.Error("re-admit returning device", "mac", mac, "ip", c.ip, "err", err)
		}
	}
	return c
}

// admitDevice opens the gate for mac/ip until the code's end and records the
// address.
func (p *Portal) admitDevice(ctx context.Context, v store.Voucher, mac net.HardwareAddr, ip netip.Addr, reason string) error {
	until := v.Until()
	if err := p.adm.AdmitWith(ctx, policy.Device{MAC: mac, IP: ip}, until, codeLimits(v.RateUpBps, v.RateDownBps, v.QuotaBytes)); err != nil {
		return err
	}
	if n := p.conns.closeIdle(ip); n > 0 {
		p.log.Debug("closed connections opened before admission", "ip", ip, "connections", n)
	}
	if reason == "returned" {
		if err := p.st.TouchVoucherDevice(ctx, v.ID, mac, ip, p.now()); err != nil {
			p.log.Warn("record returning device's address", "mac", mac, "err", err)
		}
	}
	p.publish(events.SessionStarted, GuestSession{VoucherID: v.ID, MAC: mac, IP: ip, Until: until, Reason: reason})
	p.log.Info("guest admitted", "voucher", v.ID, "mac", mac, "ip", ip, "until", until, "reason", reason)
	return nil
}

// ReadmitOnLease is for the DHCP server's lease hook: a device that comes
// back (same MAC, maybe a new address) while its code is valid is admitted
// again without the portal. It reports whether it was.
func (p *Portal) ReadmitOnLease(ctx context.Context, mac net.HardwareAddr, ip netip.Addr) (bool, error) {
	v, d, err := p.st.VoucherForDevice(ctx, mac, p.now())
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("captive: readmit %v: %w", mac, err)
	}
	if d.IP.IsValid() && d.IP != ip {
		// The old address is no longer this device's: close it.
		if err := p.adm.Evict(ctx, policy.Device{MAC: mac, IP: d.IP}); err != nil {
			p.log.Warn("evict previous address", "mac", mac, "ip", d.IP, "err", err)
		}
	}
	if err := p.admitDevice(ctx, v, mac, ip, "returned"); err != nil {
		return false, fmt.Errorf("captive: readmit %v: %w", mac, err)
	}
	return true, nil
}

// Restore re-admits every signed-in device of a valid code, for daemon start:
// the kernel's admissions are rebuilt from the database. It returns how many
// were admitted and the errors of those that could not be.
func (p *Portal) Restore(ctx context.Context) (int, error) {
	gs, err := p.st.ActiveGuestDevices(ctx, p.now())
	if err != nil {
		return 0, fmt.Errorf("captive: restore: %w", err)
	}
	n := 0
	var errs []error
	for _, g := range gs {
		if !g.IP.IsValid() {
			continue
		}
		if err := p.adm.AdmitWith(ctx, policy.Device{MAC: g.MAC, IP: g.IP}, g.Until, codeLimits(g.RateUpBps, g.RateDownBps, g.QuotaBytes)); err != nil {
			errs = append(errs, fmt.Errorf("%v/%v: %w", g.MAC, g.IP, err))
			continue
		}
		n++
	}
	if len(errs) > 0 {
		return n, fmt.Errorf("captive: restore: %w", errors.Join(errs...))
	}
	p.log.Info("guest admissions restored", "devices", n)
	return n, nil
}

// Revoke ends a code now and evicts every device that used it.
func (p *Portal) Revoke(ctx context.Context, actor string, id int64) (store.Voucher, error) {
	v, ds, err := p.st.RevokeVoucher(ctx, actor, id, p.now())
	if err != nil {
		return store.Voucher{}, fmt.Errorf("captive: revoke %d: %w", id, err)
	}
	var errs []error
	for _, d := range ds {
		// MAC only: every address the device was admitted on.
		if err := p.adm.Evict(ctx, policy.Device{MAC: d.MAC}); err != nil {
			errs = append(errs, err)
			continue
		}
		p.publish(events.SessionEnded, GuestSession{VoucherID: id, MAC: d.MAC, IP: d.IP, Reason: "revoked"})
	}
	p.log.Info("voucher revoked", "voucher", id, "by", actor, "devices", len(ds))
	if len(errs) > 0 {
		return v, fmt.Errorf("captive: revoke %d: evict: %w", id, errors.Join(errs...))
	}
	return v, nil
}

// Extend lengthens a code by d and moves its signed-in devices' admissions
// to the new end.
func (p *Portal) Extend(ctx context.Context, actor string, id int64, d time.Duration) (store.Voucher, error) {
	v, ds, err := p.st.ExtendVoucher(ctx, actor, id, d.Round(time.Second))
	if err != nil {
		return store.Voucher{}, fmt.Errorf("captive: extend %d: %w", id, err)
	}
	until := v.Until()
	var errs []error
	if !until.IsZero() && until.After(p.now()) {
		for _, dev := range ds {
			if !dev.LoggedOutAt.IsZero() || !dev.IP.IsValid() {
				continue
			}
			if err := p.adm.AdmitWith(ctx, policy.Device{MAC: dev.MAC, IP: dev.IP}, until, codeLimits(v.RateUpBps, v.RateDownBps, v.QuotaBytes)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	p.log.Info("voucher extended", "voucher", id, "by", actor, "until", until)
	if len(errs) > 0 {
		return v, fmt.Errorf("captive: extend %d: admit: %w", id, errors.Join(errs...))
	}
	return v, nil
}

// Outcomes of a code attempt, as logged.
const (
	outcomeOK         = "ok"
	outcomeInvalid    = "invalid"
	outcomeMalformed  = "malformed"
	outcomeExpired    = "expired"
	outcomeNotYet     = "not-yet-valid"
	outcomeRevoked    = "revoked"
	outcomeDevices    = "device-limit"
	outcomeThrottled  = "throttled"
	outcomeNoDevice   = "unknown-device"
	outcomeAdmitError = "admit-failed"
)

// refusal is why redeem refused a code, with what the page should say.
type refusal struct {
	outcome string
	msg     func(lang string) string
}

func (e *refusal) Error() string { return "captive: code refused: " + e.outcome }

// redeem checks a typed code for the device mac/ip, records the acceptance
// and admits the device. The attempt is logged and counted by the limits.
func (p *Portal) redeem(ctx context.Context, typed string, mac net.HardwareAddr, ip netip.Addr, name, company string) (store.Voucher, error) {
	now := p.now()
	var v store.Voucher
	outcome := outcomeOK
	defer func() {
		if err := p.st.RecordVoucherAttempt(context.WithoutCancel(ctx), store.VoucherAttempt{At: now, MAC: mac, IP: ip, Outcome: outcome}); err != nil {
			p.log.Error("record code attempt", "err", err)
		}
	}()
	if len(mac) == 0 {
		outcome = outcomeNoDevice
		return v, &refusal{outcome, func(l string) string { return tr(l, "err_device") }}
	}
	key := mac.String()
	if wait := p.lim.allow(key, now); wait > 0 {
		outcome = outcomeThrottled
		return v, &refusal{outcome, func(l string) string { return tr(l, "err_throttled", durationText(l, wait)) }}
	}
	fail := func(o string) error {
		outcome = o
		if p.lim.fail(key, now) {
			alert := BruteForceAlert{Failures: p.lim.lim.SiteFailures, Window: p.lim.lim.Window,
				Until: now.Add(p.lim.lim.BreakerHold), LastMAC: mac, LastIP: ip}
			p.log.Warn("code guessing breaker tripped: every device slowed", "failures", alert.Failures, "window", alert.Window, "mac", mac, "ip", ip)
			p.publish(BruteForce, alert)
		}
		return &refusal{o, func(l string) string { return tr(l, "err_invalid") }}
	}
	code, err := NormaliseCode(typed)
	if err != nil {
		return v, fail(outcomeMalformed)
	}
	k, err := p.codeKey(ctx)
	if err != nil {
		outcome = "error"
		return v, err
	}
	aup := p.currentAUP(ctx)
	red := store.Redemption{CodeHash: HashCode(k, code), MAC: mac, IP: ip, At: now,
		Name: clip(name, 100), Company: clip(company, 100), AUPVersion: aup.Version}
	v, err = p.st.RedeemVoucher(ctx, red, func(v store.Voucher, known bool) error {
		switch {
		case !v.RevokedAt.IsZero():
			return &refusal{outcomeRevoked, func(l string) string { return tr(l, "err_revoked") }}
		case !v.NotBefore.IsZero() && now.Before(v.NotBefore):
			at := v.NotBefore.In(p.loc).Format("2 Jan 2006 15:04")
			return &refusal{outcomeNotYet, func(l string) string { return tr(l, "err_notyet", at) }}
		case !v.NotAfter.IsZero() && !now.Before(v.NotAfter), !v.ExpiresAt.IsZero() && !now.Before(v.ExpiresAt):
			return &refusal{outcomeExpired, func(l string) string { return tr(l, "err_expired") }}
		case !known && v.MaxDevices > 0 && v.Devices >= v.MaxDevices:
			n := v.MaxDevices
			return &refusal{outcomeDevices, func(l string) string { return tr(l, "err_devices", n) }}
		}
		return nil
	})
	var ref *refusal
	switch {
	case errors.As(err, &ref):
		outcome = ref.outcome
		return v, ref
	case errors.Is(err, store.ErrNotFound):
		return v, fail(outcomeInvalid)
	case err != nil:
		outcome = "error"
		return v, err
	}
	p.lim.succeed(key)
	if err := p.admitDevice(ctx, v, mac, ip, "redeemed"); err != nil {
		outcome = outcomeAdmitError
		return v, err
	}
	return v, nil
}

func clip(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// DefaultAUP is shown until a network manager sets the school's own.
const DefaultAUP = `This Wi-Fi is provided by the school for visitors. By connecting you agree to use it lawfully and responsibly.

Do not try to get round the school's filtering, access or share illegal, harmful or offensive material, or interfere with the network or other people's devices.

Your device's address and the times you used the network are recorded, and may be checked by the school to keep pupils safe.`

// DefaultAUPWelsh is the Welsh text of DefaultAUP.
const DefaultAUPWelsh = `Mae'r ysgol yn darparu'r Wi-Fi hwn ar gyfer ymwelwyr. Drwy gysylltu rydych yn cytuno i'w ddefnyddio'n gyfreithlon ac yn gyfrifol.

Peidiwch â cheisio osgoi hidlo'r ysgol, cael gafael ar ddeunydd anghyfreithlon, niweidiol neu dramgwyddus na'i rannu, nac ymyrryd â'r rhwydwaith na dyfeisiau pobl eraill.

Mae cyfeiriad eich dyfais a'r amseroedd y gwnaethoch ddefnyddio'r rhwydwaith yn cael eu cofnodi, a gall yr ysgol eu gwirio i gadw disgyblion yn ddiogel.`

// currentAUP returns the AUP in force, or the built-in default (with its
// own version hash) when the school has set none.
func (p *Portal) currentAUP(ctx context.Context) store.PortalAUP {
	a, err := p.st.CurrentPortalAUP(ctx)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			p.log.Error("read AUP", "err", err)
		}
		return store.PortalAUP{Version: store.AUPVersion(DefaultAUP, DefaultAUPWelsh), TextEN: DefaultAUP, TextCY: DefaultAUPWelsh}
	}
	return a
}

// pageData is what the portal templates are executed with.
type pageData struct {
	Lang, OtherLang, OtherLangURL string
	T                             map[string]string
	Title, School                 string
	AUP                           []string
	Code, Name, Company           string
	Error, Notice                 string
	Left, Until, UntilISO         string
	VenueURL                      string
}

func (p *Portal) page(r *http.Request, lang, title string) *pageData {
	d := &pageData{Lang: lang, Title: title, School: p.school, VenueURL: p.venue, T: make(map[string]string, len(messages))}
	for k := range messages {
		d.T[k] = tr(lang, k)
	}
	d.OtherLang = langCY
	if lang == langCY {
		d.OtherLang = langEN
	}
	q := url.Values{"lang": {d.OtherLang}}
	if c := r.URL.Query().Get("code"); c != "" && len(c) <= 32 {
		q.Set("code", c)
	}
	path := r.URL.Path
	if path != "/status" {
		path = "/"
	}
	d.OtherLangURL = path + "?" + q.Encode()
	return d
}

func (p *Portal) render(w http.ResponseWriter, status int, name string, d *pageData) {
	var b bytes.Buffer
	if err := p.tmpl.ExecuteTemplate(&b, name, d); err != nil {
		p.log.Error("render portal page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Language", d.Lang)
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

func aupParagraphs(text string) []string {
	var out []string
	for _, para := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n\n") {
		if para = strings.TrimSpace(para); para != "" {
			out = append(out, para)
		}
	}
	return out
}

// home shows the status page to an admitted device and the sign-in page to
// everyone else.
func (p *Portal) home(w http.ResponseWriter, r *http.Request) {
	lang := pickLang(r)
	c := p.lookup(r.Context(), r)
	if c.admitted {
		p.renderStatus(w, r, lang, c.v, "")
		return
	}
	code := r.URL.Query().Get("code")
	if len(code) > 32 {
		code = ""
	}
	p.renderLogin(w, r, http.StatusOK, lang, code, "", "", "")
}

func (p *Portal) renderLogin(w http.ResponseWriter, r *http.Request, status int, lang, code, name, company, msg string) {
	d := p.page(r, lang, tr(lang, "title"))
	aup := p.currentAUP(r.Context())
	text := aup.TextEN
	if lang == langCY && aup.TextCY != "" {
		text = aup.TextCY
	}
	d.AUP = aupParagraphs(text)
	d.Code, d.Name, d.Company, d.Error = code, name, company, msg
	if r.URL.Query().Get("out") == "1" {
		d.Notice = tr(lang, "logged_out")
	}
	p.render(w, status, "login", d)
}

func (p *Portal) renderStatus(w http.ResponseWriter, r *http.Request, lang string, v store.Voucher, msg string) {
	d := p.page(r, lang, tr(lang, "connected"))
	until := v.Until()
	left := until.Sub(p.now())
	if left < 0 {
		left = 0
	}
	d.Left = durationText(lang, left)
	d.Until = until.In(p.loc).Format("15:04, 2 Jan 2006")
	d.UntilISO = until.In(p.loc).Format(time.RFC3339)
	d.Error = msg
	p.render(w, http.StatusOK, "status", d)
}

func (p *Portal) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	lang := pickLang(r)
	code, name, company := r.PostFormValue("code"), r.PostFormValue("name"), r.PostFormValue("company")
	if len(code) > 32 {
		code = code[:32]
	}
	if r.PostFormValue("accept") != "yes" {
		p.renderLogin(w, r, http.StatusBadRequest, lang, code, name, company, tr(lang, "err_accept"))
		return
	}
	ctx := r.Context()
	ip := peerAddr(r)
	mac, err := p.nb.MACFor(ip)
	if err != nil {
		mac = nil
	}
	_, err = p.redeem(ctx, code, mac, ip, name, company)
	var ref *refusal
	switch {
	case errors.As(err, &ref):
		status := http.StatusForbidden
		if ref.outcome == outcomeThrottled {
			status = http.StatusTooManyRequests
		}
		p.renderLogin(w, r, status, lang, code, name, company, ref.msg(lang))
		return
	case err != nil:
		p.log.Error("redeem code", "mac", mac, "ip", ip, "err", err)
		p.renderLogin(w, r, http.StatusInternalServerError, lang, code, name, company, tr(lang, "err_internal"))
		return
	}
	http.Redirect(w, r, "/status?lang="+lang, http.StatusSeeOther)
}

func (p *Portal) logout(w http.ResponseWriter, r *http.Request) {
	lang := pickLang(r)
	ctx := r.Context()
	c := p.lookup(ctx, r)
	if c.admitted {
		if err := p.st.SignOutVoucherDevice(ctx, c.v.ID, c.mac, p.now()); err != nil {
			p.log.Error("sign out guest", "mac", c.mac, "err", err)
			p.renderStatus(w, r, lang, c.v, tr(lang, "err_internal"))
			return
		}
		if err := p.adm.Evict(ctx, policy.Device{MAC: c.mac, IP: c.ip}); err != nil {
			p.log.Error("evict guest on logout", "mac", c.mac, "ip", c.ip, "err", err)
		}
		p.publish(events.SessionEnded, GuestSession{VoucherID: c.v.ID, MAC: c.mac, IP: c.ip, Reason: "logout"})
		p.log.Info("guest logged out", "voucher", c.v.ID, "mac", c.mac, "ip", c.ip)
	}
	http.Redirect(w, r, "/?out=1&lang="+lang, http.StatusSeeOther)
}

// apiState is the RFC 8908 API's JSON.
type apiState struct {
	Captive          bool   `json:"captive"`
	UserPortalURL    string `json:"user-portal-url,omitempty"`
	VenueInfoURL     string `json:"venue-info-url,omitempty"`
	SecondsRemaining *int64 `json:"seconds-remaining,omitempty"`
	CanExtendSession *bool  `json:"can-extend-session,omitempty"`
}

func (p *Portal) api(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	c := p.lookup(r.Context(), r)
	s := apiState{Captive: !c.admitted, UserPortalURL: p.base.String() + "/", VenueInfoURL: p.venue}
	if c.admitted {
		secs := int64(c.v.Until().Sub(p.now()) / time.Second)
		if secs < 0 {
			secs = 0
		}
		no := false
		s.SecondsRemaining, s.CanExtendSession = &secs, &no
	}
	b, err := json.Marshal(s)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/captive+json")
	w.Header().Set("Cache-Control", "private, no-store")
	_, _ = w.Write(b)
}

// probe answers, by path: what each OS expects from the open internet.
var probeAnswers = map[string]struct {
	status int
	ctype  string
	body   string
}{
	"/hotspot-detect.html":       {200, "text/html", "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"},
	"/library/test/success.html": {200, "text/html", "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"},
	"/generate_204":              {204, "", ""},
	"/gen_204":                   {204, "", ""},
	"/connecttest.txt":           {200, "text/plain", "Microsoft Connect Test"},
	"/ncsi.txt":                  {200, "text/plain", "Microsoft NCSI"},
	"/canonical.html":            {200, "text/html", `<meta http-equiv="refresh" content="0;url=https://support.mozilla.org/kb/captive-portal"/>`},
	"/success.txt":               {200, "text/plain", "success\n"},
}

// intercepted answers web traffic for other hosts that the kernel sent
// here: the OS probes and any page a visitor opens before signing in. A
// device not admitted is sent to the portal, which makes every OS show its
// sign-in sheet; an admitted one (whose kernel admission lookup has just
// restored) gets the answer the open internet would give a probe.
func (p *Portal) intercepted(w http.ResponseWriter, r *http.Request) {
	// The client thinks it talks to the site; the kernel's NAT entry ties
	// this connection to the portal for as long as it lives. Closing it
	// makes the next request open a new one, which, once the device is
	// admitted, goes to the internet: otherwise a browser reuses the
	// kept-alive connection and keeps landing here after signing in.
	w.Header().Set("Connection", "close")
	c := p.lookup(r.Context(), r)
	if !c.admitted {
		target := p.base.String() + "/"
		if lang := pickLang(r); lang == langCY {
			target += "?lang=cy"
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Location", target)
		w.WriteHeader(http.StatusFound)
		if r.Method != http.MethodHead {
			fmt.Fprintf(w, "<!doctype html><html lang=\"en\"><title>Sign in</title><p><a href=\"%s\">Sign in to the Wi-Fi</a></p></html>\n", template.HTMLEscapeString(target))
		}
		return
	}
	if a, ok := probeAnswers[r.URL.Path]; ok {
		if a.ctype != "" {
			w.Header().Set("Content-Type", a.ctype)
		}
		w.WriteHeader(a.status)
		if r.Method != http.MethodHead {
			_, _ = io.WriteString(w, a.body)
		}
		return
	}
	http.Redirect(w, r, p.base.String()+"/status", http.StatusFound)
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
