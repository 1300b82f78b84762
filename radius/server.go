package radius

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"layeh.com/radius"
	"layeh.com/radius/rfc2869"

	"github.com/gatehouse-net/gatehouse/alert/finding"
	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/radius/eap"
)

// Client is a NAS (access point, controller, switch) allowed to use us.
type Client struct {
	Name    string
	Prefix  netip.Prefix // where its requests come from
	Secret  []byte
	CoAPort int // where it takes Disconnect/CoA requests; 0: 3799
	// RequireMessageAuthenticator drops its Access-Requests that lack a
	// valid Message-Authenticator. Only an old NAS that cannot send one
	// should have it off: without it, BlastRADIUS can forge an Accept.
	RequireMessageAuthenticator bool
	// Segment names the segment of its logins that name no SSID a segment
	// serves (a wired 802.1X switch sends none); "" rejects them.
	Segment string

	num uint16 // its place in Options.Clients: its part of a duplicate-cache key
	// hot holds its counters of the common case, resolved once (New
	// sets it; metrics.go).
	hot *hotCounters
}

// Segment is what this package needs of a segment.
type Segment struct {
	Name  string
	VLAN  int // 0: the Accept carries no VLAN
	SSIDs []string
	// Unknown is the segment's unknown_devices mode: allow or "" (accept),
	// alert (accept and raise a finding), quarantine (accept onto the
	// portal segment's VLAN and raise a finding) or deny (reject and raise
	// a finding).
	Unknown policy.UnknownDevices
	Portal  bool // the visitor segment: quarantine puts strangers here
}

// Options configure a Server.
type Options struct {
	AuthAddr string // host:port for Access-Request and Status-Server; "" = none
	AcctAddr string // host:port for Accounting-Request and Status-Server; "" = none
	Clients  []Client
	Segments []Segment

	Devices    Devices      // required; a StoreDevices over a DeviceChangeLog is held in memory (devcache.go)
	Identities Identities   // nil: PAP rejects everyone (no directory yet); one that is an IdentityChangeLog too is held in memory (identities.go)
	Sessions   SessionStore // required when AcctAddr is set, and for Disconnect
	Keys       *Keyring     // nil: no personal keys in Accepts
	PMKs       *PMKTable    // finds a stranger's key from hostapd's 4-way handshake; nil: plain MAB
	PMKKeys    KeySource    // keeps PMKs current (with Keys); nil: PMKs only as the caller sets them
	Auditor    Auditor      // records disconnects; nil: not recorded
	Events     *events.Hub  // nil: nothing published
	// Findings takes every finding this package raises, without loss: the
	// daemon's one finding sink. nil drops them (finding.Discard), for
	// benchmarks and tests that do not look.
	Findings finding.Sink
	// EAP configures WPA-Enterprise logins (package radius/eap); nil: an
	// Access-Request carrying EAP is rejected. Its CheckPassword, when
	// unset, checks Identities' argon2id hashes.
	EAP *eap.Options

	// CredentialCacheTTL is how long a verified PAP/TTLS-PAP password
	// (as a keyed hash bound to the stored argon2id hash, never the
	// password) lets the same person's re-authentication skip argon2id;
	// 0: 10 minutes; negative: no cache, every login pays argon2id.
	CredentialCacheTTL time.Duration
	// MaxCredentials bounds the credential cache; 0: 8192.
	MaxCredentials int

	InterimInterval time.Duration // Acct-Interim-Interval in every Accept; 0: 10 minutes
	MaxInFlight     int           // requests queued or in work at once; 0: 256
	DeviceCacheSize int           // devices held in memory; 0: 65536; negative: none, every lookup reads the store
	Workers         int           // requests in work at once; 0: 32 (at most MaxInFlight)
	RejectDelay     time.Duration // Access-Reject delay; 0: 1 s; negative: none (tests)
	DuplicateWindow time.Duration // 0: 5 s
	MaxDuplicates   int           // duplicate cache entries; 0: 65536
	// CoATimeouts are the waits before each Disconnect/CoA retransmission;
	// nil: 1 s, 2 s, 4 s.
	CoATimeouts []time.Duration

	Logger *slog.Logger
	Now    func() time.Time
}

// Server answers RADIUS on the configured addresses.
type Server struct {
	o       Options
	log     *slog.Logger
	now     func() time.Time
	clients []*Client
	byName  map[string]*Client
	ssid    map[string]*Segment
	segs    map[string]*Segment
	portal  *Segment
	// Reply attributes that depend only on the configuration (auth.go).
	vlanAttrs  map[*Segment]*radius.AVP
	interimAVP *radius.AVP

	dups     *dupCache
	sem      chan struct{} // a token per request in flight (queued or in work)
	jobs     chan job
	hashSem  chan struct{}
	creds    *credCache
	inFlight atomic.Int64
	delayed  chan delayedReply
	metrics  *metrics
	nas      *nasBook
	alerted  *alertLimiter
	eap      *eap.Engine
	nt       NTHashOpener // nil: the EAP options' own NTHash is used (eap.go)

	mu        sync.Mutex
	authConn  *net.UDPConn
	acctConn  *net.UDPConn
	authIO    *udpIO // raw reads and writes on authConn (udp_linux.go)
	acctIO    *udpIO
	listening bool
	// authReaders are the auth socket's read loops, once Run has started
	// them: an EAP round about to wait for argon2id starts another
	// (inline.go).
	authReaders atomic.Pointer[readers]
}

type delayedReply struct {
	at   time.Time
	conn *net.UDPConn
	to   netip.AddrPort
	b    []byte
}

// New checks o and returns a server that is not listening yet.
func New(o Options) (*Server, error) {
	if o.Devices == nil {
		return nil, errors.New("radius: Options.Devices is required")
	}
	if o.AcctAddr != "" && o.Sessions == nil {
		return nil, errors.New("radius: Options.Sessions is required to serve accounting")
	}
	if o.InterimInterval == 0 {
		o.InterimInterval = 10 * time.Minute
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 256
	}
	if o.Workers <= 0 {
		o.Workers = 32
	}
	o.Workers = min(o.Workers, o.MaxInFlight)
	if o.RejectDelay == 0 {
		o.RejectDelay = time.Second
	}
	if o.DuplicateWindow <= 0 {
		o.DuplicateWindow = 5 * time.Second
	}
	if o.MaxDuplicates <= 0 {
		o.MaxDuplicates = 65536
	}
	if o.CoATimeouts == nil {
		o.CoATimeouts = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}
	}
	if o.CredentialCacheTTL == 0 {
		o.CredentialCacheTTL = 10 * time.Minute
	}
	if o.MaxCredentials <= 0 {
		o.MaxCredentials = 8192
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Devices = cachedDevices(o.Devices, o.DeviceCacheSize)
	ntOpener, _ := o.Identities.(NTHashOpener)       // before the cache wraps it
	o.Identities = cachedIdentities(o.Identities, 0) // identities.go
	if o.Findings == nil {
		o.Findings = finding.Discard{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{
		o: o, log: o.Logger, now: o.Now,
		byName: map[string]*Client{}, ssid: map[string]*Segment{}, segs: map[string]*Segment{},
		dups:    newDupCache(o.DuplicateWindow, o.MaxDuplicates),
		sem:     make(chan struct{}, o.MaxInFlight),
		jobs:    make(chan job, o.MaxInFlight),
		hashSem: make(chan struct{}, runtime.NumCPU()),
		delayed: make(chan delayedReply, 4096),
		nas:     newNASBook(),
		alerted: newAlertLimiter(4096, time.Hour),
		nt:      ntOpener,
	}
	var err error
	if s.creds, err = newCredCache(o.CredentialCacheTTL, o.MaxCredentials); err != nil {
		return nil, fmt.Errorf("radius: %w", err)
	}
	s.metrics = newMetrics(func() float64 { return float64(s.inFlight.Load()) })
	for i := range o.Clients {
		c := o.Clients[i]
		if c.Name == "" || !c.Prefix.IsValid() || len(c.Secret) == 0 {
			return nil, fmt.Errorf("radius: client %d needs a name, an address and a secret", i)
		}
		if _, dup := s.byName[c.Name]; dup {
			return nil, fmt.Errorf("radius: client name %q used twice", c.Name)
		}
		if c.CoAPort == 0 {
			c.CoAPort = 3799
		}
		if i > math.MaxUint16 {
			return nil, fmt.Errorf("radius: more than %d clients", math.MaxUint16+1)
		}
		c.num = uint16(i)
		c.hot = &hotCounters{}
		c.Prefix = c.Prefix.Masked()
		s.clients = append(s.clients, &c)
		s.byName[c.Name] = &c
		s.nas.add(c.Name)
		if !c.RequireMessageAuthenticator {
			s.log.Warn("radius: this client's Access-Requests are accepted without Message-Authenticator; it is open to BlastRADIUS (CVE-2024-3596) forgery",
				"client", c.Name, "address", c.Prefix)
		}
	}
	// Most specific prefix first, so a single AP inside a controller's
	// range gets its own secret.
	sort.SliceStable(s.clients, func(i, j int) bool { return s.clients[i].Prefix.Bits() > s.clients[j].Prefix.Bits() })
	s.vlanAttrs = map[*Segment]*radius.AVP{}
	s.interimAVP = &radius.AVP{Type: rfc2869.AcctInterimInterval_Type, Attribute: radius.Attribute(binary.BigEndian.AppendUint32(nil, uint32(o.InterimInterval/time.Second)))}
	for i := range o.Segments {
		g := &o.Segments[i]
		s.vlanAttrs[g] = &radius.AVP{Type: 81, Attribute: radius.Attribute(strconv.Itoa(g.VLAN))}
		s.segs[g.Name] = g
		for _, id := range g.SSIDs {
			s.ssid[id] = g
		}
		if g.Portal && s.portal == nil {
			s.portal = g
		}
	}
	for _, c := range s.clients {
		if c.Segment != "" && s.segs[c.Segment] == nil {
			return nil, fmt.Errorf("radius: client %s: segment %q does not exist", c.Name, c.Segment)
		}
	}
	if o.EAP != nil {
		if s.eap, err = s.newEAP(*o.EAP); err != nil {
			return nil, fmt.Errorf("radius: %w", err)
		}
	}
	return s, nil
}

// Collector returns the server's metrics.
func (s *Server) Collector() prometheus.Collector { return s.metrics }

func (s *Server) clientFor(a netip.Addr) *Client {
	a = a.Unmap()
	for _, c := range s.clients {
		if c.Prefix.Contains(a) {
			return c
		}
	}
	return nil
}

// Listen binds the configured addresses. Run calls it; tests call it first
// to learn the ports.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listening {
		return nil
	}
	bind := func(addr string) (*net.UDPConn, error) {
		if addr == "" {
			return nil, nil
		}
		ua, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return nil, fmt.Errorf("radius: listen address %q: %w", addr, err)
		}
		c, err := net.ListenUDP("udp", ua)
		if err != nil {
			return nil, fmt.Errorf("radius: listening on %s: %w", addr, err)
		}
		return c, nil
	}
	var err error
	if s.authConn, err = bind(s.o.AuthAddr); err != nil {
		return err
	}
	if s.acctConn, err = bind(s.o.AcctAddr); err != nil {
		if s.authConn != nil {
			s.authConn.Close()
		}
		return err
	}
	for _, c := range []struct {
		conn *net.UDPConn
		io   **udpIO
	}{{s.authConn, &s.authIO}, {s.acctConn, &s.acctIO}} {
		if c.conn == nil {
			continue
		}
		if *c.io, err = newUDPIO(c.conn); err != nil {
			for _, c := range []*net.UDPConn{s.authConn, s.acctConn} {
				if c != nil {
					c.Close()
				}
			}
			return err
		}
	}
	s.listening = true
	return nil
}

// AuthAddr is the bound authentication address (after Listen).
func (s *Server) AuthAddr() netip.AddrPort { return boundAddr(s.authConn) }

// AcctAddr is the bound accounting address (after Listen).
func (s *Server) AcctAddr() netip.AddrPort { return boundAddr(s.acctConn) }

func boundAddr(c *net.UDPConn) netip.AddrPort {
	if c == nil {
		return netip.AddrPort{}
	}
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Run serves until ctx ends, then waits for the requests in hand.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var loops sync.WaitGroup
	for _, c := range []struct {
		conn *net.UDPConn
		acct bool
	}{{s.authConn, false}, {s.acctConn, true}} {
		if c.conn == nil {
			continue
		}
		p := s.newReaders(ctx, &loops, c.conn, c.acct) // inline.go
		if !c.acct {
			s.authReaders.Store(p)
		}
		for range p.target {
			p.spawn()
		}
	}
	loops.Add(1)
	go func() {
		defer loops.Done()
		s.sendDelayed(ctx)
	}()
	if s.o.PMKs != nil && s.o.PMKKeys != nil && s.o.Keys != nil {
		loops.Add(1)
		go func() {
			defer loops.Done()
			s.refreshPMKs(ctx)
		}()
	}
	if dc, ok := s.o.Devices.(*deviceCache); ok {
		loops.Add(1)
		go func() {
			defer loops.Done()
			n, err := dc.preload(ctx)
			if err != nil && ctx.Err() == nil {
				// Not fatal: each device is read as it first asks.
				s.log.Warn("radius: preloading approved devices", "err", err)
				return
			}
			s.log.Debug("radius: preloaded approved devices", "devices", n)
		}()
	}
	for range s.o.Workers {
		loops.Add(1)
		go func() {
			defer loops.Done()
			s.worker(ctx)
		}()
	}
	s.log.Info("radius: serving", "auth", s.AuthAddr(), "accounting", s.AcctAddr(), "clients", len(s.clients))
	<-ctx.Done()
	for _, c := range []*net.UDPConn{s.authConn, s.acctConn} {
		if c != nil {
			c.Close()
		}
	}
	loops.Wait()
	if s.eap != nil {
		s.eap.Close()
	}
	return nil
}

// readLoop is one of p's read loops: it reads a batch, answers what it
// can itself, hands the rest to the workers, and flushes its replies. A
// loop beyond p's target (one that replaced a loop that was about to wait,
// readers.mayBlock) ends after its batch.
func (s *Server) readLoop(ctx context.Context, p *readers) {
	conn, acct := p.conn, p.acct
	// One octet more than the largest packet, to tell an oversize datagram
	// from a full-sized one. Whatever is queued is read at once and the
	// replies decided here go out together after it (udp_linux.go's
	// batchLen says why).
	io := s.ioFor(conn)
	r := io.newBatchReader(maxPacket + 1)
	out := io.newReplies()
	b := &batch{r: r, out: out}
	p.register(b)
	defer p.unregister(b)
	for {
		if p.surplus() {
			return
		}
		n, err := r.read()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("radius: read", "err", err)
			continue
		}
		b.start(n)
		for {
			// One at a time: a round about to wait hands the rest of the
			// batch to the workers (readers.handOver).
			i, ok := b.take()
			if !ok {
				break
			}
			pkt, src := r.packet(i)
			s.receiveTo(ctx, conn, acct, pkt, src, out, true)
		}
		if err := out.flush(); err != nil {
			s.log.Warn("radius: send", "err", err)
		}
	}
}

// ioFor is the raw reader/writer of one of the two bound sockets.
func (s *Server) ioFor(conn *net.UDPConn) *udpIO {
	if conn == s.acctConn {
		return s.acctIO
	}
	return s.authIO
}

// receive does what can be done without a worker: who sent it, framing,
// duplicates and the in-flight bound.
func (s *Server) receive(ctx context.Context, conn *net.UDPConn, acct bool, b []byte, src netip.AddrPort) {
	s.receiveTo(ctx, conn, acct, b, src, nil, true)
}

// receiveTo is receive queueing the replies it makes itself on out (nil:
// sent at once); the caller flushes out. Without inline, a request that
// is not a duplicate goes to a worker.
func (s *Server) receiveTo(ctx context.Context, conn *net.UDPConn, acct bool, b []byte, src netip.AddrPort, out *udpReplies, inline bool) {
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	c := s.clientFor(src.Addr())
	if c == nil {
		s.drop(nil, dropUnknownClient)
		return
	}
	// One clock read for the NAS's last-seen time and the duplicate
	// cache: a request read them apart, and the clock was 1.6% of a MAB
	// answer's CPU (bench/radius.sh, PERF).
	now := s.now()
	s.nas.seen(c.Name, now)
	pkt, maOff, err := frame(b)
	if err != nil {
		s.drop(c, frameReason(err))
		return
	}
	code := radius.Code(pkt[0])
	switch {
	case code == radius.CodeStatusServer:
	case !acct && code == radius.CodeAccessRequest:
	case acct && code == radius.CodeAccountingRequest:
	default:
		s.drop(c, dropUnexpectedCode)
		return
	}
	// Counted by code only now: the label takes the three codes we serve,
	// not any octet a sender puts there.
	s.metrics.request(c, code).Inc()
	k := newDupKey(c, src, pkt)
	state, cached := s.dups.begin(k, now)
	switch state {
	case dupInProgress:
		s.drop(c, dropDuplicate)
		return
	case dupReplay:
		s.metrics.retrans.WithLabelValues(c.Name).Inc()
		if out != nil && out.add(cached, src) {
			return
		}
		if err := s.ioFor(conn).writeTo(cached, src); err != nil {
			s.log.Warn("radius: resend", "client", c.Name, "err", err)
		}
		return
	case dupFull:
		s.drop(c, dropOverload)
		return
	}
	select {
	case s.sem <- struct{}{}:
	default:
		s.dups.forget(k)
		s.drop(c, dropOverload)
		return
	}
	s.inFlight.Add(1)
	if inline && s.answersInline(acct, pkt) && s.work(ctx, conn, acct, c, src, k, pkt, maOff, out, true) { // inline.go
		<-s.sem
		s.inFlight.Add(-1)
		return
	}
	// Not inline, or handed back by the inline decision (a PAP password
	// not in the credential cache): a worker takes it, in the same slot.
	// b is the read buffer, reused at once. The semaphore guarantees room.
	s.jobs <- job{conn: conn, acct: acct, c: c, src: src, k: k, pkt: append([]byte(nil), pkt...), maOff: maOff}
}

// job is one request handed to a worker.
type job struct {
	conn  *net.UDPConn
	acct  bool
	c     *Client
	src   netip.AddrPort
	k     dupKey
	pkt   []byte
	maOff int
}

// worker handles requests until ctx ends. Workers live as long as the
// server, so a request does not pay for a new goroutine growing its stack
// through the SQLite driver.
func (s *Server) worker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-s.jobs:
			s.work(ctx, j.conn, j.acct, j.c, j.src, j.k, j.pkt, j.maOff, nil, false)
			<-s.sem
			s.inFlight.Add(-1)
		}
	}
}

// hasAttr says whether pkt, checked by frame, has an attribute of type t.
func hasAttr(pkt []byte, t byte) bool {
	for i := headerLen; i+2 <= len(pkt); i += int(pkt[i+1]) {
		if pkt[i] == t {
			return true
		}
	}
	return false
}

func frameReason(err error) string {
	switch err {
	case errShort:
		return dropShort
	case errOversize:
		return dropOversize
	case errBadLength:
		return dropBadLength
	}
	return dropBadAttribute
}

func (s *Server) drop(c *Client, reason string) {
	name := unknownClient
	if c != nil {
		name = c.Name
		s.nas.dropped(name)
	}
	s.metrics.drops.WithLabelValues(name, reason).Inc()
}

// outcome is what handling a request decided.
type outcome struct {
	reply  *radius.Packet // nil: drop
	reason string         // drop reason when reply is nil
	delay  bool           // an Access-Reject: sent after RejectDelay
	// handoff: decided nothing; the request needs a worker (only when
	// handled inline: request.inline).
	handoff bool
	// pooled holds reply when it is a pooled Accept (auth.go): work
	// gives it back once the reply is encoded.
	pooled *acceptPacket
	// challenge, with reply nil, is an EAP round's Access-Challenge of
	// eapMsg and eapState: work encodes it straight from them
	// (encodeChallenge), without a radius.Packet between.
	challenge        bool
	eapMsg, eapState []byte
}

// inline says the read loop calls it (inline.go); it then returns false
// when the request needs a worker after all, having done nothing with it.
// out, when not nil, takes the reply to send with the read loop's batch.
func (s *Server) work(ctx context.Context, conn *net.UDPConn, acct bool, c *Client, src netip.AddrPort, k dupKey, pkt []byte, maOff int, out *udpReplies, inline bool) (done bool) {
	defer func() {
		if p := recover(); p != nil {
			done = true
			s.dups.forget(k)
			s.drop(c, dropPanic)
			s.log.Error("radius: panic handling a packet; dropped it and carried on", "client", c.Name, "src", src,
				"panic", fmt.Sprint(p), "packet", hex.EncodeToString(pkt), "stack", string(debug.Stack()))
		}
	}()
	o := s.handle(ctx, acct, c, src, pkt, maOff, inline)
	if o.handoff {
		return false
	}
	if o.reply == nil && !o.challenge {
		s.dups.forget(k)
		s.drop(c, o.reason)
		return true
	}
	var (
		req  [16]byte
		code radius.Code
		b    []byte
		err  error
	)
	copy(req[:], pkt[4:20])
	proxy := proxyStates(pkt) // copied into every reply (RFC 2865 5.33)
	if o.reply == nil {
		code = radius.CodeAccessChallenge
		b, err = encodeChallenge(pkt[1], req, o.eapMsg, o.eapState, c.Secret, proxy)
	} else {
		code = o.reply.Code
		b, err = encodeResponse(o.reply, radius.Code(pkt[0]), req, c.Secret, proxy)
	}
	if o.pooled != nil {
		// Encoded: b holds everything the reply was.
		*o.pooled = acceptPacket{}
		acceptPackets.Put(o.pooled)
		o.reply = nil
	}
	if err != nil {
		s.dups.forget(k)
		s.log.Error("radius: encoding a reply", "client", c.Name, "err", err)
		s.drop(c, dropBadAttribute)
		return true
	}
	s.metrics.response(c, code).Inc()
	now := s.now()
	if o.delay && s.o.RejectDelay > 0 {
		at := now.Add(s.o.RejectDelay)
		s.dups.complete(k, b, at)
		select {
		case s.delayed <- delayedReply{at: at, conn: conn, to: src, b: b}:
		default:
			s.drop(c, dropRejectQueueFull)
		}
		return true
	}
	s.dups.complete(k, b, now)
	if out != nil && out.add(b, src) {
		return true
	}
	if err := s.ioFor(conn).writeTo(b, src); err != nil {
		s.log.Warn("radius: send", "client", c.Name, "err", err)
	}
	return true
}

// sendDelayed sends Access-Rejects when they fall due. Every reject waits
// the same delay, so the queue is in due order and one goroutine serves it
// without a worker held per reject.
func (s *Server) sendDelayed(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case d := <-s.delayed:
			if wait := d.at.Sub(s.now()); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
			}
			if err := s.ioFor(d.conn).writeTo(d.b, d.to); err != nil {
				s.log.Warn("radius: send reject", "to", d.to, "err", err)
			}
		}
	}
}

// handle authenticates the request and decides the reply.
func (s *Server) handle(ctx context.Context, acct bool, c *Client, src netip.AddrPort, pkt []byte, maOff int, inline bool) outcome {
	var p *radius.Packet
	if inline && !hasAttr(pkt, typeEAPMessage) {
		// A MAB or PAP answer from the read loop: nothing keeps the
		// parsed request once it is decided (the reply copies what it
		// needs; a hand-off to a worker parses its own copy), so its space is
		// reused: the parse was a third of the octets a request
		// allocated, which the collector paces by.
		sp := smallPackets.Get().(*smallPacket)
		defer smallPackets.Put(sp)
		p = parsePacketInto(pkt, c.Secret, sp) // frame has checked pkt
	} else if inline {
		// An EAP round from the read loop: nothing keeps the parsed
		// request either. The engine reads its EAP message and State
		// only during the round (eap.Request), the replies are the
		// engine's octets or copies (eapAccess, accept, reject), and
		// work encodes from them alone.
		ep := eapPackets.Get().(*eapPacket)
		defer eapPackets.Put(ep)
		p = parseEAPPacketInto(pkt, c.Secret, ep)
	} else {
		p = parsePacket(pkt, c.Secret)
	}
	switch p.Code {
	case radius.CodeAccessRequest:
		if maOff < 0 {
			if c.RequireMessageAuthenticator {
				return outcome{reason: dropNoMA}
			}
		} else if !validMA(pkt, maOff, c.Secret, nil) {
			return outcome{reason: dropBadMA}
		}
		return s.access(ctx, c, p, inline)
	case radius.CodeStatusServer:
		// RFC 5997 3: a Status-Server without a valid
		// Message-Authenticator is silently discarded.
		if maOff < 0 {
			return outcome{reason: dropNoMA}
		}
		if !validMA(pkt, maOff, c.Secret, nil) {
			return outcome{reason: dropBadMA}
		}
		code := radius.CodeAccessAccept
		if acct {
			code = radius.CodeAccountingResponse
		}
		return outcome{reply: p.Response(code)}
	case radius.CodeAccountingRequest:
		if !radius.IsAuthenticRequest(pkt, c.Secret) {
			return outcome{reason: dropBadAuthenticatr}
		}
		if maOff >= 0 && !validMA(pkt, maOff, c.Secret, make([]byte, 16)) {
			return outcome{reason: dropBadMA}
		}
		return s.accounting(ctx, c, src, p)
	}
	return outcome{reason: dropUnexpectedCode}
}
