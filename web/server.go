package web

import (
	"context"
	"crypto/tls"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-net/gatehouse/store"
)

// Roles a user can hold (the store's, repeated so feature packages declaring
// pages need not import store for them). Each user has exactly one.
const (
	RoleReception = store.RoleReception
	RoleNetwork   = store.RoleNetwork
	RoleDSL       = store.RoleDSL
)

// Roles returns every role, in the order pages show them.
func Roles() []string { return []string{RoleReception, RoleNetwork, RoleDSL} }

// Timings of the login and session policy.
const (
	// SessionLifetime is the absolute lifetime of a session: a login at the
	// start of the school day lasts the working day, never overnight.
	SessionLifetime = 8 * time.Hour
	// SessionIdle ends a session that made no request for this long: a
	// browser left signed in on a staffroom PC should not stay usable all
	// day. Activity is recorded at most once per sessionTouchEvery, so a busy
	// session may look up to that much idler than it is.
	SessionIdle = 30 * time.Minute
	// MaxLoginFailures bad passwords in a row lock an account for LockDuration.
	MaxLoginFailures = 10
	LockDuration     = 15 * time.Minute
)

// sessionTouchEvery is how stale a session's LastSeen may get before a
// request writes it again: one write per session per minute instead of one
// per request.
const sessionTouchEvery = time.Minute

// Cookie names. The __Host- prefix makes browsers refuse the cookie unless
// it is Secure, has Path=/ and no Domain: a sibling host or a plain-HTTP
// page on the school's network cannot plant or overwrite it.
const (
	SessionCookie   = "__Host-gh_session"
	LoginCSRFCookie = "__Host-gh_login_csrf"

	sessionCookie = SessionCookie
	loginCSRF     = LoginCSRFCookie
)

// APITokenLifetime is how long an API token works after it was created: a
// token copied into a script and forgotten stops working on its own. Tokens
// also end when their user's password changes.
const APITokenLifetime = 90 * 24 * time.Hour

//go:embed templates/*.html static/*
var assets embed.FS

// Options are the dependencies and settings of a Server.
type Options struct {
	Store  *store.Store // required
	Logger *slog.Logger // nil: discard
	Site   string       // shown in titles; "" means "Gatehouse"
	Listen string       // host:port for Run; its host also goes into an auto certificate

	// TLS: the certificate and key in PEM files. With Auto, a missing pair is
	// created (self-signed ECDSA P-256) on first start and kept there, so the
	// browser exception a school accepts once stays valid across restarts.
	CertFile, KeyFile string
	Auto              bool

	// AllowedHosts are the host names the Host header may carry (with any
	// port), besides "localhost" and IP addresses: any address when Listen's
	// host is unspecified, else only Listen's own and loopback. A name that
	// is not listed gets 421, which stops DNS-rebinding pages from talking
	// to the shell through a victim's browser. nil turns the check off, for
	// tests that build requests by hand; the daemon always sets it.
	AllowedHosts []string

	// MetricsFrom are addresses that may scrape /metrics without a token
	// (a Prometheus that cannot send one). Empty: only the network role, by
	// bearer token or session; loopback is not trusted by itself, as every
	// local process (and a forwarded port) is loopback.
	MetricsFrom []netip.Prefix

	// IdleTimeout is, per role, how long a session may make no request
	// before it ends; a role not in the map gets SessionIdle. A role whose
	// idle timeout is longer than SessionLifetime (a reception kiosk kept
	// signed in through opening hours) gets that long a lifetime too.
	IdleTimeout map[string]time.Duration
	// Location is the school's time zone, for times shown on pages; nil:
	// time.Local.
	Location *time.Location

	Gatherer   prometheus.Gatherer   // served on /metrics; nil: no /metrics route
	Registerer prometheus.Registerer // where the web's own metrics go; nil: not registered
	Now        func() time.Time      // nil: time.Now
}

// Server is the admin web server. Build it with New, add feature pages with
// AddPage, then call Run (or Handler, in tests).
type Server struct {
	store   *store.Store
	log     *slog.Logger
	site    string
	listen  string
	now     func() time.Time
	tlsConf *tls.Config
	certPEM []byte

	gatherer    prometheus.Gatherer
	metrics     *metrics
	hosts       *hostCheck // nil: Host headers are not checked
	metricsFrom []netip.Prefix
	idle        map[string]time.Duration
	loc         *time.Location

	tmpl   map[string]*template.Template
	layout *template.Template
	// dummyHash is verified against for unknown users, so they cost the
	// same time; made at the first one (see burnUnknownUser) from dummyPW.
	dummyPW   string
	dummyOnce sync.Once
	dummyHash string
	verifySem chan struct{} // bounds concurrent argon2 verifications (password.HashMemory each)
	throttle  *ipThrottle

	mu      sync.Mutex
	alarms  []func() []string // see AddAlarms
	pages   []Page
	routes  []route
	built   bool
	handler http.Handler
}

// New checks opts, loads (or with Auto creates) the TLS certificate, and
// registers the built-in pages.
func New(opts Options) (*Server, error) {
	if opts.Store == nil {
		return nil, errors.New("web: new: Options.Store is nil")
	}
	s := &Server{
		store:     opts.Store,
		log:       opts.Logger,
		site:      opts.Site,
		listen:    opts.Listen,
		now:       opts.Now,
		gatherer:  opts.Gatherer,
		verifySem: make(chan struct{}, 2),

		metricsFrom: slices.Clone(opts.MetricsFrom),
		idle:        maps.Clone(opts.IdleTimeout),
		loc:         opts.Location,
	}
	if s.loc == nil {
		s.loc = time.Local
	}
	for role, d := range s.idle {
		if !slices.Contains(Roles(), role) || d < time.Minute {
			return nil, fmt.Errorf("web: new: idle timeout %v for role %q: want a known role and at least a minute", d, role)
		}
	}
	if opts.AllowedHosts != nil {
		s.hosts = newHostCheck(opts.Listen, opts.AllowedHosts)
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.site == "" {
		s.site = "Gatehouse"
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.throttle = newIPThrottle(MaxLoginFailures, LockDuration, 4096)

	cert, certPEM, err := loadOrCreateCert(opts.CertFile, opts.KeyFile, opts.Auto, opts.Listen, s.site, s.now(), s.log)
	if err != nil {
		return nil, err
	}
	s.certPEM = certPEM
	s.tlsConf = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}

	if s.metrics, err = newMetrics(opts.Registerer); err != nil {
		return nil, err
	}
	if err := s.parseTemplates(); err != nil {
		return nil, err
	}
	// A random password nobody knows: verifying against it gives unknown
	// user names the same argon2 cost as known ones.
	tok, err := randomToken()
	if err != nil {
		return nil, err
	}
	s.dummyPW = tok
	s.registerBuiltins()
	return s, nil
}

// idleFor is how long a session of role may stay idle.
func (s *Server) idleFor(role string) time.Duration {
	if d, ok := s.idle[role]; ok {
		return d
	}
	return SessionIdle
}

// lifetimeFor is a session's absolute lifetime for role: the working day,
// or the role's idle timeout when that is longer.
func (s *Server) lifetimeFor(role string) time.Duration {
	return max(SessionLifetime, s.idleFor(role))
}

// Location is the school's time zone, for feature pages that show times.
func (s *Server) Location() *time.Location { return s.loc }

// CertPEM returns the server certificate in PEM form, so a caller (or a
// test) can pin it.
func (s *Server) CertPEM() []byte { return append([]byte(nil), s.certPEM...) }

// Handler returns the server's HTTP handler. After the first call (Run calls
// it too) the route table is frozen and AddPage panics.
func (s *Server) Handler() http.Handler {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.built {
		s.handler = s.buildEngine()
		s.built = true
	}
	return s.handler
}

// Run listens on Options.Listen and serves HTTPS until ctx is done, then
// shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	if s.listen == "" {
		return errors.New("web: run: Options.Listen is empty")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.listen)
	if err != nil {
		return fmt.Errorf("web: listen %s: %w", s.listen, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves HTTPS on ln until ctx is done, then stops accepting, lets
// requests in flight finish (up to 10 s) and returns nil. It closes ln.
// While serving it also deletes expired sessions every few minutes.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		TLSConfig:         s.tlsConf.Clone(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		// Browsers that have not yet accepted the self-signed certificate
		// abort handshakes on every visit; that is not worth a warning.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelInfo),
	}
	s.log.Info("web: serving", "addr", ln.Addr().String())

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.ServeTLS(ln, "", "") }()

	sweepCtx, stopSweep := context.WithCancel(ctx)
	sweepDone := make(chan struct{})
	go func() {
		defer close(sweepDone)
		s.sweepSessions(sweepCtx, 5*time.Minute)
	}()
	defer func() {
		stopSweep()
		<-sweepDone
	}()

	select {
	case err := <-serveErr:
		return fmt.Errorf("web: serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		<-serveErr
		return fmt.Errorf("web: shutdown: %w", err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("web: serve %s: %w", ln.Addr(), err)
	}
	return nil
}

// sweepSessions deletes expired sessions every interval until ctx is done.
// Lookups already refuse expired sessions; this only keeps the table small.
func (s *Server) sweepSessions(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := s.store.DeleteExpiredSessions(ctx, s.now())
			if err != nil && ctx.Err() == nil {
				s.log.Warn("web: delete expired sessions", "err", err)
			} else if n > 0 {
				s.log.Debug("web: deleted expired sessions", "count", n)
			}
		}
	}
}
