// Package dnsguard is the router's DNS forwarder: every segment's port 53
// traffic is redirected to it (package policy does that in nftables), so it is
// the only way names get resolved. It forwards to the school's filtering
// resolver with a cache over UDP and TCP, passes EDNS0 through, answers
// SERVFAIL when no upstream answers, enforces SafeSearch per segment with the
// providers' strict hosts, answers the DoH canary and iCloud Private Relay
// NXDOMAIN, blocks listed DoH/VPN service names, and reports every lookup.
//
// It owns its UDP sockets (one per core, SO_REUSEPORT, read in batches by
// recvmmsg: udp.go, batch.go), a cache of the packed answers it sent, keyed
// by question and policy view (each segment's policy is a view), which
// answers a hit by patching a copy of the bytes with no allocation
// (packed.go), emptied whenever the segments' policies change, and the hit
// log that hands cached answers to the Recorder off their path (hitlog.go).
// Forwarded UDP queries share a rotating socket per upstream (upstream.go).
//
// It does not store the query log or purge it (the guard hands each record to
// a Recorder; policy/querylog writes them to package store and purges them
// after the retention), know which MAC has an IP (a ClientLookup, the DHCP
// server, answers that), classify traffic (it tells packet inspection what
// each client was answered through Config.Answers and hands it each UDP
// query it read, parsed, through Config.Queries), or program the kernel.
package dnsguard

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// SegmentPolicy is how the guard answers clients of one subnet.
type SegmentPolicy struct {
	Name       string
	Subnet     netip.Prefix
	SafeSearch bool
	// BlockPrivateRelay answers mask.icloud.com and mask-h2.icloud.com
	// NXDOMAIN, which makes Apple devices fall back to the school's DNS.
	BlockPrivateRelay bool
	// BlockedNames are names (and their subdomains) blocked on this
	// segment only, such as the domain lists of the school's rules.
	BlockedNames []string
	// Portal segments answer a client the portal has not admitted only
	// for the names the portal and the operating systems' captive-portal
	// probes need (PreAdmissionNames); every other name is NXDOMAIN, so
	// nothing tunnels through DNS before a code is redeemed.
	Portal bool
}

// PreAdmissionNames are the names a visitor's device may resolve before it
// is admitted: the OS probes that detect a captive portal (they must get a
// real answer so that the device notices the portal and opens it), and
// their subdomains. Config.PortalNames adds the portal's own.
var PreAdmissionNames = []string{
	"connectivitycheck.gstatic.com", "connectivitycheck.android.com", "clients3.google.com", "clients1.google.com",
	"www.gstatic.com", "play.googleapis.com",
	"captive.apple.com", "www.apple.com", "www.appleiphonecell.com", "www.thinkdifferent.us", "www.itools.info",
	"www.msftconnecttest.com", "www.msftncsi.com", "dns.msftncsi.com", "ipv6.msftconnecttest.com",
	"detectportal.firefox.com", "nmcheck.gnome.org", "connectivity-check.ubuntu.com", "network-test.debian.org",
}

// Action is what the guard did with a query.
type Action string

const (
	Forwarded  Action = "forwarded"
	Cached     Action = "cached"
	SafeSearch Action = "safesearch"
	Canary     Action = "canary"
	Relay      Action = "private-relay"
	Blocked    Action = "blocked"
	Failed     Action = "servfail"
	Refused    Action = "refused"
	// Limited: the client went over its query rate; answered REFUSED.
	Limited Action = "rate-limited"
	// NotAdmitted: a visitor not yet admitted asked for a name the portal
	// does not need; answered NXDOMAIN.
	NotAdmitted Action = "not-admitted"
)

// Query is one lookup as the query log and the event hub see it.
type Query struct {
	Time    time.Time
	Client  netip.Addr
	MAC     net.HardwareAddr // nil when unknown
	Segment string
	Name    string
	Type    string
	Answer  string // a short summary: the addresses or CNAME target, or the rcode
	Action  Action
}

// Recorder receives every query. It is called on the serving goroutine, so it
// must hand the record on rather than block (a buffered channel, a batch).
type Recorder interface {
	Record(Query)
}

// ClientLookup tells the MAC that holds an IP (from the DHCP leases):
// *dhcp.Server, as it is.
type ClientLookup interface {
	MACFor(ip netip.Addr) net.HardwareAddr
}

// Answers is told what every client was answered, as the query log's
// summary (addresses, "cname TARGET", or an rcode name): packet inspection
// uses it to tell which name an address a client connects to came from.
// It is called on the serving goroutine, so it must be quick and never
// block (inspect.Resolutions.NoteAnswer is a bounded in-memory table).
type Answers func(client netip.Addr, name, answer string, at time.Time)

// Inspected is one UDP query a client of the guard sent, as the guard read
// it, for packet inspection (Config.Queries).
type Inspected struct {
	Time       time.Time
	Client     netip.Addr
	ClientPort uint16
	MAC        net.HardwareAddr // from Config.Clients; nil when unknown
	Segment    string
	Name       string // lower case, no trailing dot
	Type       uint16
}

// Config is the guard's settings and dependencies.
type Config struct {
	// Listen is the address for both UDP and TCP, e.g. ":5353".
	Listen string
	// RedirectedListen, when set, is a second UDP address (e.g. ":5392")
	// where the kernel sends the segments' queries to other resolvers
	// (8.8.8.8 and the like). They are answered exactly as on Listen
	// (policy, caches, logs, rate limits; replies leave from the address
	// the datagram arrived at, which conntrack turns back into the one
	// the client asked) but are never handed to Queries: packet
	// inspection's capture still reads them off the wire, since their
	// destination is not the guard's, and judging them twice would
	// raise every finding twice.
	RedirectedListen string
	Upstreams        []netip.AddrPort
	Segments         []SegmentPolicy
	// Default applies to clients in no segment that are Local.
	Default SegmentPolicy
	// Local are the clients outside every segment that are still answered
	// (the router itself); nil means loopback. Everyone else is REFUSED.
	Local []netip.Prefix
	// BlockedNames are DoH/VPN service names; they and their subdomains
	// are answered NXDOMAIN and recorded as Blocked.
	BlockedNames []string
	// CacheSize bounds both caches: upstream answers, and the packed
	// answers as each segment's policy sees them. 0 means 4096, negative
	// disables both.
	CacheSize int
	// UDPSockets is how many UDP sockets Serve opens on Listen with
	// SO_REUSEPORT, each read by its own goroutine; 0 means one per core
	// (GOMAXPROCS).
	UDPSockets int
	// UDPBatch 1 reads and answers one datagram per system call; any other
	// value takes up to 64 with recvmmsg and answers cached ones with one
	// sendmmsg (batch.go).
	UDPBatch int
	Timeout  time.Duration // per upstream try; 0 means 2s
	Recorder Recorder      // optional
	Clients  ClientLookup  // optional
	Answers  Answers       // optional
	// Queries, when set, is handed every UDP query the guard reads with
	// a question in it from a client it answers (cached, forwarded,
	// decided by policy, over its rate or malformed, or dropped because
	// too many wait for an upstream): packet inspection judges these
	// from here instead of parsing them off the wire again (its capture
	// leaves them out). A cached answer's query is handed on from the
	// hit log, the others on the serving goroutine: it must be quick and
	// never block.
	Queries func(Inspected)
	// Admitted reports whether the portal admitted the client at ip (MAC
	// may be nil); required for Portal segments to answer more than
	// PreAdmissionNames. nil: nobody is admitted.
	Admitted func(ip netip.Addr, mac net.HardwareAddr) bool
	// PortalNames are the portal's own names, resolvable before admission.
	PortalNames []string
	// ClientQPS is each client's query rate (twice as many in a burst);
	// 0 means DefaultClientQPS, negative turns the limit off.
	ClientQPS int
	// ClientTable bounds the clients the rate limit tracks; 0 means
	// DefaultClientTable.
	ClientTable int
	Now         func() time.Time
	// Dial opens the connection to an upstream ("udp" or "tcp"); nil dials
	// from the process's own network namespace. A caller whose resolver is
	// reached from another namespace (tests, a router with a management
	// VRF) passes its own.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
}

// Stats are counters for the metrics page.
type Stats struct {
	Queries, CacheHits, Upstream, ServFail, Blocked, SafeSearch, BadQueries uint64
	// Outside counts queries refused because the client is in no segment
	// (an open resolver is what the uplink side must never find), Limited
	// those over a client's rate, NotAdmitted those a visitor asked before
	// redeeming a code.
	Outside, Limited, NotAdmitted uint64
	// Panics counts queries whose handling panicked (answered SERVFAIL,
	// the guard kept serving).
	Panics uint64
	// Overload counts UDP queries dropped unanswered because
	// MaxInFlight queries were already waiting for an upstream.
	Overload uint64
	// LogDropped counts cached answers sent but not handed to the
	// Recorder and Answers because the hit log's buffer was full.
	LogDropped uint64
}

// Guard answers DNS queries. Its handler is safe for concurrent use.
type Guard struct {
	cfg   Config
	log   *slog.Logger
	cache *cache
	now   func() time.Time
	state atomic.Pointer[state]
	limit *clientLimiter // nil: no per-client limit
	pre   []string       // names resolvable before admission

	queries, hits, upstream, servfail, blocked, safe, bad atomic.Uint64
	outside, limited, notAdmitted, panics, overload       atomic.Uint64
	inFlight                                              atomic.Int64

	hitLog  *hitLog
	flushMu sync.Mutex // one flushHits at a time

	poolMu sync.Mutex
	pools  map[netip.AddrPort]*upstreamPool // forwarded UDP, by upstream (upstream.go)
}

// state is the segments' policies and the packed answers computed under
// them, swapped together: an answer worked out under the old policies can
// only land in the old cache, which nobody reads any more.
type state struct {
	segs    []SegmentPolicy
	answers *packedCache // nil: caching is off
}

// New checks cfg and returns a guard; it opens no sockets.
func New(cfg Config, logger *slog.Logger) (*Guard, error) {
	if len(cfg.Upstreams) == 0 {
		return nil, errors.New("dnsguard: no upstream resolver")
	}
	for _, u := range cfg.Upstreams {
		if !u.IsValid() || u.Port() == 0 {
			return nil, fmt.Errorf("dnsguard: bad upstream %v", u)
		}
	}
	if err := checkSegments(cfg.Segments); err != nil {
		return nil, err
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = 4096
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg.BlockedNames = normalize(cfg.BlockedNames)
	g := &Guard{cfg: cfg, log: logger.With("component", "dnsguard"), cache: newCache(cfg.CacheSize), now: now, hitLog: newHitLog(),
		pre: normalize(append(append([]string{}, PreAdmissionNames...), cfg.PortalNames...))}
	if cfg.ClientQPS >= 0 {
		qps, table := cfg.ClientQPS, cfg.ClientTable
		if qps == 0 {
			qps = DefaultClientQPS
		}
		if table <= 0 {
			table = DefaultClientTable
		}
		g.limit = newClientLimiter(qps, table)
	}
	g.SetSegments(cfg.Segments)
	return g, nil
}

func checkSegments(segs []SegmentPolicy) error {
	for _, s := range segs {
		if !s.Subnet.IsValid() {
			return fmt.Errorf("dnsguard: segment %q has no subnet", s.Name)
		}
	}
	return nil
}

func normalize(names []string) []string {
	var out []string
	for _, n := range names {
		out = append(out, strings.TrimSuffix(strings.ToLower(n), "."))
	}
	return out
}

// SetSegments replaces the per-segment policies while serving, as when a
// time-slotted domain rule starts or ends. Invalid policies are refused and the
// old ones kept.
func (g *Guard) SetSegments(segs []SegmentPolicy) error {
	if err := checkSegments(segs); err != nil {
		return err
	}
	cp := make([]SegmentPolicy, len(segs))
	for i, s := range segs {
		s.BlockedNames = normalize(s.BlockedNames)
		cp[i] = s
	}
	// A new policy starts with an empty packed cache: every decision in
	// the old one (blocked, SafeSearch, admitted-only) may have changed.
	g.state.Store(&state{segs: cp, answers: newPackedCache(g.cfg.CacheSize)})
	return nil
}

// Stats returns the counters so far.
func (g *Guard) Stats() Stats {
	return Stats{Queries: g.queries.Load(), CacheHits: g.hits.Load(), Upstream: g.upstream.Load(),
		ServFail: g.servfail.Load(), Blocked: g.blocked.Load(), SafeSearch: g.safe.Load(), BadQueries: g.bad.Load(),
		Outside: g.outside.Load(), Limited: g.limited.Load(), NotAdmitted: g.notAdmitted.Load(), Panics: g.panics.Load(),
		Overload: g.overload.Load(), LogDropped: g.hitLog.dropped.Load()}
}

// Serve listens on cfg.Listen over UDP (UDPSockets sockets sharing the
// port) and TCP and answers until ctx ends.
func (g *Guard) Serve(ctx context.Context) error {
	conns, err := listenUDP(ctx, g.cfg.Listen, g.udpSockets())
	if err != nil {
		return err
	}
	var redirected []*net.UDPConn
	if g.cfg.RedirectedListen != "" {
		if redirected, err = listenUDP(ctx, g.cfg.RedirectedListen, g.udpSockets()); err != nil {
			for _, c := range conns {
				c.Close()
			}
			return err
		}
	}
	ln, err := net.Listen("tcp", g.cfg.Listen)
	if err != nil {
		for _, c := range append(conns, redirected...) {
			c.Close()
		}
		return fmt.Errorf("dnsguard: listen tcp %s: %w", g.cfg.Listen, err)
	}
	return g.serve(ctx, conns, redirected, nil, ln)
}

// ServeConns answers on already open sockets until ctx ends, then closes them.
func (g *Guard) ServeConns(ctx context.Context, pc net.PacketConn, ln net.Listener) error {
	if uc, ok := pc.(*net.UDPConn); ok {
		return g.serve(ctx, []*net.UDPConn{uc}, nil, nil, ln)
	}
	return g.serve(ctx, nil, nil, pc, ln)
}

// serve answers UDP on conns and redirected (Config.RedirectedListen's)
// with the guard's own loop, on pc (a PacketConn that is not a UDP
// socket) through miekg/dns, and TCP on ln.
func (g *Guard) serve(ctx context.Context, conns, redirected []*net.UDPConn, pc net.PacketConn, ln net.Listener) error {
	servers := []*dns.Server{{Listener: ln, Handler: g, Net: "tcp", ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}}
	if pc != nil {
		servers = append(servers, &dns.Server{PacketConn: pc, Handler: g, Net: "udp"})
	}
	sctx, stopUDP := context.WithCancel(ctx)
	defer stopUDP()
	errc := make(chan error, len(servers)+1)
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- s.ActivateAndServe()
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		g.runHitLog(sctx)
	}()
	if len(conns)+len(redirected) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.serveUDP(sctx, conns, redirected); err != nil {
				errc <- err
			}
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("dnsguard: serve: %w", err)
	}
	stopUDP()
	for _, s := range servers {
		shctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.ShutdownContext(shctx)
		cancel()
	}
	// A server that had not started when ShutdownContext was called (it
	// says so and does nothing) would go on serving, and wg.Wait with it:
	// closing its socket ends it either way.
	if ln != nil {
		ln.Close()
	}
	if pc != nil {
		pc.Close()
	}
	wg.Wait()
	g.flushHits() // what the last answers left
	g.closePools()
	return err
}

// segment returns the policy for a client and its view (the segment's
// index + 1, 0 for Default), and false for a client in no segment that is
// not the router itself (loopback): those are refused.
func (g *Guard) segment(st *state, ip netip.Addr) (*SegmentPolicy, uint16, bool) {
	ip = ip.Unmap()
	for i := range st.segs {
		if st.segs[i].Subnet.Contains(ip) {
			return &st.segs[i], uint16(i + 1), true
		}
	}
	if g.cfg.Local == nil {
		return &g.cfg.Default, 0, ip.IsLoopback()
	}
	for _, p := range g.cfg.Local {
		if p.Contains(ip) {
			return &g.cfg.Default, 0, true
		}
	}
	return &g.cfg.Default, 0, false
}

const canaryName = "use-application-dns.net"

var privateRelay = map[string]bool{"mask.icloud.com": true, "mask-h2.icloud.com": true}

// safeSearchTarget returns the provider's strict host for name, if any.
var googleRE = regexp.MustCompile(`^(www\.)?google\.(com|[a-z]{2}|co\.[a-z]{2}|com\.[a-z]{2})$`)

func safeSearchTarget(name string) string {
	switch name {
	case "www.bing.com", "bing.com":
		return "strict.bing.com"
	case "www.youtube.com", "youtube.com", "m.youtube.com", "youtubei.googleapis.com",
		"youtube.googleapis.com", "www.youtube-nocookie.com":
		return "restrict.youtube.com"
	case "duckduckgo.com", "www.duckduckgo.com", "start.duckduckgo.com", "html.duckduckgo.com":
		return "safe.duckduckgo.com"
	}
	if googleRE.MatchString(name) {
		return "forcesafesearch.google.com"
	}
	return ""
}

func (g *Guard) blockedName(name string, seg *SegmentPolicy) bool {
	return matchesAny(name, g.cfg.BlockedNames) || matchesAny(name, seg.BlockedNames)
}

func matchesAny(name string, list []string) bool {
	for _, b := range list {
		if name == b || strings.HasSuffix(name, "."+b) {
			return true
		}
	}
	return false
}

// ServeDNS answers one query. A panic while answering is recovered: the
// query gets SERVFAIL, the panic is counted and logged with the query, and
// the guard keeps answering everyone else.
func (g *Guard) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	defer func() {
		if v := recover(); v != nil {
			g.panics.Add(1)
			packed, _ := req.Pack()
			g.log.Error("dnsguard: handler panic, query answered SERVFAIL", "panic", fmt.Sprint(v), "client", w.RemoteAddr().String(),
				"query", hex.EncodeToString(packed), "stack", string(debug.Stack()))
			_ = w.WriteMsg(servfail(req))
		}
	}()
	g.serveDNS(w, req)
}

func (g *Guard) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	g.queries.Add(1)
	proto := "udp"
	var client netip.Addr
	switch a := w.RemoteAddr().(type) {
	case *net.UDPAddr:
		client, _ = netip.AddrFromSlice(a.IP)
	case *net.TCPAddr:
		proto = "tcp"
		client, _ = netip.AddrFromSlice(a.IP)
	}
	client = client.Unmap()
	st := g.state.Load()
	seg, view, inside := g.segment(st, client)
	if !inside {
		// Not an open resolver: the uplink side and anything routed in
		// from elsewhere get nothing resolved, and nothing recorded.
		g.outside.Add(1)
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeRefused)
		_ = w.WriteMsg(m)
		return
	}
	pw, _ := w.(*packetWriter)
	var mac net.HardwareAddr
	macKnown := false
	if pw != nil && !pw.redirected && g.cfg.Queries != nil && !req.Response && len(req.Question) > 0 {
		// Every query with a question, whatever the answer: inspection
		// no longer reads them off the wire.
		if g.cfg.Clients != nil {
			mac = g.cfg.Clients.MACFor(client)
		}
		macKnown = true
		g.inspectQuery(pw.from, seg.Name, req.Question[0], mac, true)
	}
	if g.limit != nil && !g.limit.allow(client, g.now()) {
		// Not recorded either: a flood must not push a client's real
		// lookups out of what the DSL sees.
		g.limited.Add(1)
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeRefused)
		_ = w.WriteMsg(m)
		return
	}
	if req.Response || req.Opcode != dns.OpcodeQuery || len(req.Question) != 1 {
		g.bad.Add(1)
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		if req.Opcode != dns.OpcodeQuery {
			m.Rcode = dns.RcodeNotImplemented
		}
		_ = w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.TrimSuffix(strings.ToLower(q.Name), ".")
	rec := Query{Time: g.now(), Client: client, Segment: seg.Name, Name: name, Type: dns.TypeToString[q.Qtype]}
	if macKnown {
		rec.MAC = mac
	} else if g.cfg.Clients != nil {
		rec.MAC = g.cfg.Clients.MACFor(client)
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.Timeout*time.Duration(len(g.cfg.Upstreams)+1))
	defer cancel()

	var resp *dns.Msg
	switch {
	case seg.Portal && !matchesAny(name, g.pre) && (g.cfg.Admitted == nil || !g.cfg.Admitted(client, rec.MAC)):
		g.notAdmitted.Add(1)
		resp, rec.Action = nxdomain(req), NotAdmitted
	case name == canaryName:
		resp, rec.Action = nxdomain(req), Canary
	case seg.BlockPrivateRelay && privateRelay[name]:
		resp, rec.Action = nxdomain(req), Relay
	case g.blockedName(name, seg):
		g.blocked.Add(1)
		resp, rec.Action = nxdomain(req), Blocked
	case seg.SafeSearch && safeSearchTarget(name) != "":
		g.safe.Add(1)
		resp, rec.Action = g.safeSearch(ctx, req, safeSearchTarget(name), proto), SafeSearch
	default:
		resp, rec.Action = g.forward(ctx, req, proto)
	}
	if resp.Rcode == dns.RcodeServerFailure {
		rec.Action = Failed
	}
	rec.Answer = summary(resp)
	if proto == "udp" {
		resp.Truncate(udpSize(req))
		if pw != nil && st.answers != nil {
			// What the next client asking the same in this view gets
			// from the packed cache, without coming here.
			if life, ok := cacheLife(resp, rec.Action); ok {
				pw.keep = &packedNote{cache: st.answers, view: view, life: life, rec: rec,
					admission: seg.Portal && !matchesAny(name, g.pre)}
			}
		}
	}
	// Recorded before the answer leaves, so the log never lags the client.
	if g.cfg.Recorder != nil {
		g.cfg.Recorder.Record(rec)
	}
	if g.cfg.Answers != nil {
		g.cfg.Answers(rec.Client, rec.Name, rec.Answer, rec.Time)
	}
	if err := w.WriteMsg(resp); err != nil {
		g.log.Debug("write answer", "client", client, "err", err)
	}
}

// inspectQuery hands q, from a client at from, to Config.Queries; mac is
// the client's when known is set, else looked up.
func (g *Guard) inspectQuery(from netip.AddrPort, segment string, q dns.Question, mac net.HardwareAddr, known bool) {
	client := from.Addr().Unmap()
	if !known && g.cfg.Clients != nil {
		mac = g.cfg.Clients.MACFor(client)
	}
	g.cfg.Queries(Inspected{Time: g.now(), Client: client, ClientPort: from.Port(), MAC: mac,
		Segment: segment, Name: strings.TrimSuffix(strings.ToLower(q.Name), "."), Type: q.Qtype})
}

func udpSize(req *dns.Msg) int {
	if o := req.IsEdns0(); o != nil {
		return max(int(o.UDPSize()), dns.MinMsgSize)
	}
	return dns.MinMsgSize
}

func nxdomain(req *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(req, dns.RcodeNameError)
	m.RecursionAvailable = true
	return m
}

func servfail(req *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(req, dns.RcodeServerFailure)
	m.RecursionAvailable = true
	return m
}

// forward answers from the cache or the upstreams, in order.
func (g *Guard) forward(ctx context.Context, req *dns.Msg, proto string) (*dns.Msg, Action) {
	k := keyOf(req.Question[0], req)
	if m := g.cache.get(k, g.now()); m != nil {
		g.hits.Add(1)
		m.Id = req.Id
		return m, Cached
	}
	m, err := g.exchange(ctx, req, proto)
	if err != nil {
		g.servfail.Add(1)
		g.log.Warn("no upstream answered", "name", req.Question[0].Name, "err", err)
		return servfail(req), Failed
	}
	g.cache.put(k, m, g.now())
	m.Id = req.Id
	return m, Forwarded
}

// exchange asks each upstream in turn over the client's protocol, and over TCP
// when a UDP answer came back truncated.
func (g *Guard) exchange(ctx context.Context, req *dns.Msg, proto string) (*dns.Msg, error) {
	out := req.Copy()
	out.Id = dns.Id()
	var errs error
	for _, u := range g.cfg.Upstreams {
		g.upstream.Add(1)
		c := &dns.Client{Net: proto, Timeout: g.cfg.Timeout, UDPSize: dns.DefaultMsgSize}
		var m *dns.Msg
		var err error
		if proto == "udp" {
			m, err = g.pool(u).exchangeUDP(ctx, out, g.cfg.Timeout)
		} else {
			m, err = g.ask(ctx, c, out, u.String())
		}
		if err == nil && m.Truncated && proto == "udp" {
			c.Net = "tcp"
			m, err = g.ask(ctx, c, out, u.String())
		}
		if err != nil {
			errs = errors.Join(errs, fmt.Errorf("%v: %w", u, err))
			continue
		}
		if m.Rcode == dns.RcodeServerFailure || m.Rcode == dns.RcodeRefused {
			errs = errors.Join(errs, fmt.Errorf("%v: %s", u, dns.RcodeToString[m.Rcode]))
			continue
		}
		return m, nil
	}
	return nil, errs
}

// ask sends one query to one upstream over c.Net, through cfg.Dial if set.
func (g *Guard) ask(ctx context.Context, c *dns.Client, m *dns.Msg, addr string) (*dns.Msg, error) {
	if g.cfg.Dial == nil {
		r, _, err := c.ExchangeContext(ctx, m, addr)
		return r, err
	}
	dctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	conn, err := g.cfg.Dial(dctx, c.Net, addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	r, _, err := c.ExchangeWithConnContext(dctx, m, &dns.Conn{Conn: conn, UDPSize: c.UDPSize})
	return r, err
}

// safeSearch answers name with a CNAME to the provider's strict host followed
// by that host's records, the shape the providers document for DNS-based
// SafeSearch.
func (g *Guard) safeSearch(ctx context.Context, req *dns.Msg, target, proto string) *dns.Msg {
	q := req.Question[0]
	sub := req.Copy()
	sub.Question[0].Name = dns.Fqdn(target)
	ans, _ := g.forward(ctx, sub, proto)
	if ans.Rcode == dns.RcodeServerFailure {
		return servfail(req)
	}
	m := ans.Copy()
	m.Id = req.Id
	m.Question = []dns.Question{q}
	cname := &dns.CNAME{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 300}, Target: dns.Fqdn(target)}
	m.Answer = append([]dns.RR{cname}, ans.Answer...)
	return m
}

func summary(m *dns.Msg) string {
	if m.Rcode != dns.RcodeSuccess {
		return dns.RcodeToString[m.Rcode]
	}
	var parts []string
	for _, rr := range m.Answer {
		switch v := rr.(type) {
		case *dns.A:
			parts = append(parts, v.A.String())
		case *dns.AAAA:
			parts = append(parts, v.AAAA.String())
		case *dns.CNAME:
			parts = append(parts, "cname "+strings.TrimSuffix(v.Target, "."))
		default:
			parts = append(parts, dns.TypeToString[rr.Header().Rrtype])
		}
	}
	return strings.Join(parts, " ")
}
