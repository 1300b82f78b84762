package dhcp

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-net/gatehouse/alert/finding"
	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// MaxDatagram is the largest DHCP message accepted: what fits an Ethernet
// frame unfragmented. Anything larger is dropped and counted.
const MaxDatagram = 1472

// Config is what a Server needs. Store and Segments are required; Enforcer
// is required when a segment quarantines.
type Config struct {
	Segments []Segment
	Store    LeaseStore
	Events   *events.Hub // nil: events are not published
	// Findings takes every finding this package raises, without loss: the
	// daemon's one finding sink. nil drops them (finding.Discard), for
	// benchmarks and tests that do not look.
	Findings finding.Sink
	Enforcer Enforcer
	// Binder, when set, is told every lease (before its ACK) and every
	// release, and at start every lease still active.
	Binder Binder
	// OnUnapprovedDevice is called (once per device, segment and hour) when
	// an unapproved device asks for a lease on a segment with an approval
	// mode, after the finding was offered. It must not block.
	OnUnapprovedDevice func(Segment, Device)
	OUI                *OUI         // nil: the built-in table
	Logger             *slog.Logger // nil: discard
	Now                func() time.Time
	// Listen opens the socket for an interface; nil means a UDP socket on
	// port 67 bound to the interface (SO_BINDTODEVICE). Tests pass one that
	// opens it inside a network namespace.
	Listen func(iface string) (net.PacketConn, error)
	// RelayInterfaces are extra interfaces that only carry relayed traffic
	// (an uplink towards L3 switches).
	RelayInterfaces []string
	// TrustedRelays are the source addresses relayed messages are accepted
	// from; a message with giaddr set from anywhere else is dropped, so a
	// client cannot draw addresses from another segment's pool.
	TrustedRelays []netip.Prefix
	OfferHold     time.Duration // how long an OFFER holds its address; 0: 30s
	DeclineHold   time.Duration // how long a declined address rests; 0: 10m
	// NoRapidCommit turns off RFC 4039 two-message exchanges on every
	// segment, whatever Segment.RapidCommit says.
	NoRapidCommit bool
	MaxInFlight   int // datagrams queued for the workers; 0: 1024
	// UnleasedRetention is how long device records that never completed a
	// lease are kept (when the Store is a DevicePurger); 0 means
	// DefaultUnleasedRetention.
	UnleasedRetention time.Duration
	// DeviceRetention is how long any device's record is kept after it
	// was last seen (when the Store is a StaleDevicePurger); 0 means
	// DefaultDeviceRetention.
	DeviceRetention time.Duration
	// PacketsPerSecond bounds the requests each interface's socket takes;
	// 0 means DefaultPacketsPerSecond.
	PacketsPerSecond int
}

type segState struct {
	Segment
	pool    *pool
	newMACs *window // offers to MACs never seen before, this minute
}

// Server serves DHCPv4 on every configured segment.
type Server struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	segs    []*segState
	byIface map[string]*segState
	oui     *OUI
	commit  *committer
	metrics Metrics
	timings Timings
	ready   chan struct{}
	// listenRelay opens relay interfaces' sockets (see New).
	listenRelay func(iface string) (net.PacketConn, error)

	// The workers (see serve and worker): the sockets' readers put what
	// they read in sched, a few workers take it out in the order it
	// chooses; bufs recycles datagram buffers, jobs recycles jobs.
	sched *scheduler
	bufs  sync.Pool
	jobs  sync.Pool
	// replies recycles reply buffers (replyBuf, freeReply), reqs parsed
	// requests and acks pending ACKs: the allocations an exchange used to
	// make for each, which paced the collector (see replyBuf).
	replies sync.Pool
	reqs    sync.Pool
	acks    sync.Pool

	alertMu sync.Mutex
	alerted map[string]time.Time // segment|mac -> when the finding was raised

	resvMu    sync.Mutex
	resvBound map[string]Reservation // "mac/ip" -> reservation bound in the kernel
}

// New checks cfg and returns a server; Run starts it.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("dhcp: no lease store")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Findings == nil {
		cfg.Findings = finding.Discard{}
	}
	if cfg.OUI == nil {
		cfg.OUI = BuiltinOUI()
	}
	listenRelay := cfg.Listen
	if cfg.Listen == nil {
		cfg.Listen = ListenLink
		// A relay interface needs no frame source: relayed requests are
		// never checked against it, and a plain UDP socket costs less.
		listenRelay = ListenUDP
	}
	if cfg.OfferHold <= 0 {
		cfg.OfferHold = 30 * time.Second
	}
	if cfg.DeclineHold <= 0 {
		cfg.DeclineHold = 10 * time.Minute
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 1024
	}
	if cfg.UnleasedRetention <= 0 {
		cfg.UnleasedRetention = DefaultUnleasedRetention
	}
	if cfg.DeviceRetention <= 0 {
		cfg.DeviceRetention = DefaultDeviceRetention
	}
	if cfg.PacketsPerSecond <= 0 {
		cfg.PacketsPerSecond = DefaultPacketsPerSecond
	}
	s := &Server{
		cfg:         cfg,
		log:         cfg.Logger,
		now:         cfg.Now,
		byIface:     map[string]*segState{},
		oui:         cfg.OUI,
		sched:       newScheduler(cfg.MaxInFlight, max(cfg.MaxInFlight/4, 1), workerCount()),
		ready:       make(chan struct{}),
		alerted:     map[string]time.Time{},
		listenRelay: listenRelay,
	}
	s.bufs.New = func() any { return new([MaxDatagram + 1]byte) }
	s.commit = newCommitter(cfg.Store, cfg.Binder, &s.metrics, &s.timings, s.log)
	names := map[string]bool{}
	for _, seg := range cfg.Segments {
		if err := seg.validate(); err != nil {
			return nil, fmt.Errorf("dhcp: %w", err)
		}
		if names[seg.Name] {
			return nil, fmt.Errorf("dhcp: segment %s configured twice", seg.Name)
		}
		names[seg.Name] = true
		for _, o := range s.segs {
			if o.Subnet.Overlaps(seg.Subnet) {
				return nil, fmt.Errorf("dhcp: segments %s and %s overlap", o.Name, seg.Name)
			}
		}
		if seg.Unknown == policy.UnknownQuarantine && cfg.Enforcer == nil {
			return nil, fmt.Errorf("dhcp: segment %s quarantines but no enforcer is wired", seg.Name)
		}
		limit := seg.NewDevicesPerMinute
		if limit == 0 {
			limit = DefaultNewDevicesPerMinute
		}
		st := &segState{Segment: seg, pool: newPool(seg, cfg.OfferHold), newMACs: &window{limit: limit}}
		s.segs = append(s.segs, st)
		if seg.Interface != "" {
			if _, dup := s.byIface[seg.Interface]; dup {
				return nil, fmt.Errorf("dhcp: interface %s serves two segments", seg.Interface)
			}
			s.byIface[seg.Interface] = st
		}
	}
	for _, ri := range cfg.RelayInterfaces {
		if _, dup := s.byIface[ri]; dup {
			return nil, fmt.Errorf("dhcp: relay interface %s also serves a segment", ri)
		}
	}
	return s, nil
}

// ListenUDP opens a UDP socket on port 67 bound to iface, allowed to
// broadcast.
func ListenUDP(iface string) (net.PacketConn, error) {
	c, err := server4.NewIPv4UDPConn(iface, &net.UDPAddr{Port: dhcpv4.ServerPort})
	if err != nil {
		return nil, fmt.Errorf("dhcp: listen on %s: %w", iface, err)
	}
	return c, nil
}

// Segments returns the segments the server serves, in configuration order
// (for the device pages' segment list and reservation checks).
func (s *Server) Segments() []Segment {
	out := make([]Segment, 0, len(s.segs))
	for _, seg := range s.segs {
		out = append(out, seg.Segment)
	}
	return out
}

// Metrics returns the server's counters.
func (s *Server) Metrics() *Metrics { return &s.metrics }

// Timings returns the server's stage latency histograms.
func (s *Server) Timings() *Timings { return &s.timings }

// Ready is closed once every socket is open and the leases are loaded.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Leases returns every binding the server remembers, by segment and address.
func (s *Server) Leases() []Lease {
	var out []Lease
	for _, seg := range s.segs {
		out = append(out, seg.pool.leases()...)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Segment != out[j].Segment {
			return out[i].Segment < out[j].Segment
		}
		return out[i].IP.Less(out[j].IP)
	})
	return out
}

// load reads leases and reservations into the pools.
func (s *Server) load(ctx context.Context) error {
	if err := s.ReloadReservations(ctx); err != nil {
		return err
	}
	ls, err := s.cfg.Store.LoadLeases(ctx)
	if err != nil {
		return fmt.Errorf("dhcp: load leases: %w", err)
	}
	bySeg := map[string][]Lease{}
	for _, l := range ls {
		bySeg[l.Segment] = append(bySeg[l.Segment], l)
	}
	for _, seg := range s.segs {
		seg.pool.restore(bySeg[seg.Name])
	}
	_, err = s.bindLeases(ctx, ls)
	return err
}

// bindLeases rebuilds the kernel's bindings from the leases: a device keeps
// its address across a restart without asking again. It reports how many
// it bound.
func (s *Server) bindLeases(ctx context.Context, ls []Lease) (int, error) {
	if s.cfg.Binder == nil {
		return 0, nil
	}
	now, n := s.now(), 0
	for _, l := range ls {
		if l.Active(now) && l.MAC != nil {
			if err := s.cfg.Binder.Bind(ctx, policy.Device{MAC: l.MAC, IP: l.IP}, l.Expires); err != nil {
				return n, fmt.Errorf("dhcp: bind restored lease %v/%v: %w", l.MAC, l.IP, err)
			}
			n++
		}
	}
	return n, nil
}

// Restore binds every reservation and active lease the store holds, before
// the enforcer's first Apply (the daemon's restore step), so the kernel's
// table is built whole and a restart neither cuts a device off nor rewrites
// its element. Run binds them again, which changes nothing. It reports how
// many bindings it made.
func (s *Server) Restore(ctx context.Context) (int, error) {
	if s.cfg.Binder == nil {
		return 0, nil
	}
	rs, err := s.cfg.Store.LoadReservations(ctx)
	if err != nil {
		return 0, fmt.Errorf("dhcp: restore bindings: %w", err)
	}
	if err := s.bindReservations(ctx, rs); err != nil {
		return 0, err
	}
	s.resvMu.Lock()
	n := len(s.resvBound)
	s.resvMu.Unlock()
	ls, err := s.cfg.Store.LoadLeases(ctx)
	if err != nil {
		return n, fmt.Errorf("dhcp: restore bindings: %w", err)
	}
	m, err := s.bindLeases(ctx, ls)
	return n + m, err
}

// ReloadReservations re-reads static reservations; the admin page calls it
// after a change.
func (s *Server) ReloadReservations(ctx context.Context) error {
	rs, err := s.cfg.Store.LoadReservations(ctx)
	if err != nil {
		return fmt.Errorf("dhcp: load reservations: %w", err)
	}
	bySeg := map[string][]Reservation{}
	for _, r := range rs {
		bySeg[r.Segment] = append(bySeg[r.Segment], r)
	}
	for _, seg := range s.segs {
		seg.pool.setReservations(bySeg[seg.Name])
	}
	return s.bindReservations(ctx, rs)
}

// bindReservations makes every reservation a binding (a device with a
// reserved address may use it without asking DHCP: the school's printers
// and servers with static addresses) and ends the bindings of reservations
// that were removed.
func (s *Server) bindReservations(ctx context.Context, rs []Reservation) error {
	if s.cfg.Binder == nil {
		return nil
	}
	s.resvMu.Lock()
	defer s.resvMu.Unlock()
	next := map[string]Reservation{}
	var errs []error
	for _, r := range rs {
		if s.segmentFor(r.IP) == nil {
			continue
		}
		k := r.MAC.String() + "/" + r.IP.String()
		next[k] = r
		// A zero until: bound for as long as the reservation exists.
		if err := s.cfg.Binder.Bind(ctx, policy.Device{MAC: r.MAC, IP: r.IP}, time.Time{}); err != nil {
			errs = append(errs, fmt.Errorf("bind reservation %s: %w", k, err))
		}
	}
	for k, r := range s.resvBound {
		if _, ok := next[k]; !ok {
			if err := s.cfg.Binder.Unbind(ctx, policy.Device{MAC: r.MAC, IP: r.IP}); err != nil {
				errs = append(errs, fmt.Errorf("unbind removed reservation %s: %w", k, err))
			}
		}
	}
	s.resvBound = next
	if len(errs) > 0 {
		return fmt.Errorf("dhcp: %w", errors.Join(errs...))
	}
	return nil
}

// Run loads the leases, opens a socket per segment interface and serves
// until ctx is done. It returns after every goroutine it started has
// stopped and every queued write is committed.
func (s *Server) Run(ctx context.Context) error {
	if err := s.load(ctx); err != nil {
		return err
	}
	type listener struct {
		conn net.PacketConn
		seg  *segState // nil on a relay-only interface
	}
	var ls []listener
	closeAll := func() {
		for _, l := range ls {
			l.conn.Close()
		}
	}
	for _, seg := range s.segs {
		if seg.Interface == "" {
			continue
		}
		c, err := s.cfg.Listen(seg.Interface)
		if err != nil {
			closeAll()
			return fmt.Errorf("dhcp: segment %s: %w", seg.Name, err)
		}
		ls = append(ls, listener{c, seg})
	}
	for _, ri := range s.cfg.RelayInterfaces {
		c, err := s.listenRelay(ri)
		if err != nil {
			closeAll()
			return fmt.Errorf("dhcp: relay interface %s: %w", ri, err)
		}
		ls = append(ls, listener{c, nil})
	}

	senders := make([]*sender, len(ls))
	for i, l := range ls {
		senders[i] = newSender(ctx, s, l.conn)
	}
	// The committer's finisher sends the ACKs of a batch itself, in one
	// write per socket, once their callbacks ran.
	s.commit.flush = func() {
		for _, o := range senders {
			o.flush()
		}
	}
	stop := make(chan struct{})
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		s.commit.run(ctx, stop)
	}()
	var wg sync.WaitGroup
	for range s.sched.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.worker(ctx)
		}()
	}
	for i, l := range ls {
		out := senders[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serve(ctx, l.conn, out, l.seg, newBucket(s.cfg.PacketsPerSecond))
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.sweep(ctx)
	}()
	close(s.ready)
	s.log.Info("dhcp: serving", "segments", len(s.segs), "sockets", len(ls))

	<-ctx.Done()
	closeAll()
	wg.Wait()
	close(stop)
	<-committed
	// The committer's finisher has sent its last ACK.
	s.LogTimings()
	return nil
}

// LogTimings logs the stage histograms (Timings) gathered since the last
// report, one record a stage, and empties them, when the server handled
// anything since. Run calls it as it stops, and the daemon on SIGUSR2: in
// the deployed daemon this is what splits a tail seen from outside into
// where it was spent (bench/dhcp.sh prints these lines per pass). Safe to
// call from any goroutine.
func (s *Server) LogTimings() {
	if s.timings.Empty() {
		return // nothing handled since the last report
	}
	r := strings.TrimSpace(s.timings.Report())
	for line := range strings.SplitSeq(r, "\n") {
		stage, summary, _ := strings.Cut(line, " ")
		s.log.Info("dhcp: stage timings", "stage", strings.TrimPrefix(stage, "t_"), "us", summary)
	}
}

// datagram is one request read from a socket.
type datagram struct {
	src   netip.AddrPort
	hwsrc net.HardwareAddr
	pkt   *[MaxDatagram + 1]byte
	n     int
}

// job is the datagrams of one read for a worker: one from a socket that
// reads one at a time, up to readBatch from one that reads in batches. A
// worker answers them all and sends the replies together, so a busy
// server pays a hand-off and a write per batch, not per datagram.
type job struct {
	out  *sender
	seg  *segState
	dgs  []datagram
	outs []reply   // the worker's replies, reused with the job
	at   time.Time // when it was read (monotonic: the scheduler's clock)
	disc bool      // DISCOVERs only (see scheduler)
}

// reply is one answer waiting to be sent.
type reply struct {
	b   []byte
	dst netip.AddrPort
}

// readBatch is how many datagrams one read takes from a socket that reads
// in batches (recvmmsg): a busy server's socket holds many, and each read
// and each hand-off to a worker costs a system call or a wake-up.
const readBatch = 32

// jobMax is the most datagrams a reader puts in one job: a read of
// readBatch is cut into several, so that the workers answer it side by
// side (a job's first reply waits for its last) while a write still
// carries several replies.
const jobMax = 8

// sender writes replies on one socket. A plain UDP socket writes a
// worker's replies in one sendmmsg, and the ACKs of a group commit are
// gathered as the committer's finisher decides them and written the same
// way when it flushes after the batch; any other socket writes each.
type sender struct {
	s     *Server
	ctx   context.Context
	conn  net.PacketConn
	udp   *net.UDPConn     // nil: conn is not a plain UDP socket
	pc    *ipv4.PacketConn // batched writes on udp
	msgs  []ipv4.Message   // reused by sendAll, which one caller at a time runs
	bufs  [][1][]byte      // msgs' Buffers
	mu    sync.Mutex       // guards msgs and bufs
	late  []reply          // ACKs waiting for flush; only the finisher touches it
	later later            // sendLater, made once (a method value allocates)
}

func newSender(ctx context.Context, s *Server, conn net.PacketConn) *sender {
	o := &sender{s: s, ctx: ctx, conn: conn}
	o.later = o.sendLater
	if u, ok := conn.(*net.UDPConn); ok {
		o.udp, o.pc = u, ipv4.NewPacketConn(u)
	}
	return o
}

// failed counts and logs a reply that could not be sent.
func (o *sender) failed(dst netip.AddrPort, err error) {
	if o.ctx.Err() == nil {
		o.s.metrics.inc(&o.s.metrics.SendErrors)
		o.s.log.Warn("dhcp: send", "to", dst, "err", err)
	}
}

// send writes one reply.
func (o *sender) send(b []byte, dst netip.AddrPort) {
	var err error
	if o.udp != nil {
		_, err = o.udp.WriteToUDPAddrPort(b, dst)
	} else {
		_, err = o.conn.WriteTo(b, net.UDPAddrFromAddrPort(dst))
	}
	if err != nil {
		o.failed(dst, err)
	}
}

// sendLater is the later of a socket's ACKs. It runs on the committer's
// finisher only: on a socket that writes in batches the ACK waits for
// the finisher's flush after its batch's callbacks (every ACK of a group
// commit is decided at once, and goes out in one sendmmsg, without a
// hand-off to another goroutine that would wait for a CPU); else it is
// written at once.
func (o *sender) sendLater(b []byte, dst netip.AddrPort) {
	if o.pc == nil {
		o.send(b, dst)
		o.s.freeReply(b)
		return
	}
	o.late = append(o.late, reply{b, dst})
	if len(o.late) >= readBatch*4 {
		o.flush()
	}
}

// flush writes the ACKs sendLater queued, readBatch to a sendmmsg. Only
// the finisher calls it.
func (o *sender) flush() {
	for i := 0; i < len(o.late); i += readBatch {
		o.sendAll(o.late[i:min(i+readBatch, len(o.late))])
	}
	for _, r := range o.late {
		o.s.freeReply(r.b)
	}
	clear(o.late)
	o.late = o.late[:0]
}

// sendAll writes rs, in one sendmmsg where the socket allows.
func (o *sender) sendAll(rs []reply) {
	if len(rs) == 0 {
		return
	}
	if o.pc == nil || len(rs) == 1 {
		for _, r := range rs {
			o.send(r.b, r.dst)
		}
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if cap(o.msgs) < len(rs) {
		o.msgs = make([]ipv4.Message, len(rs))
		o.bufs = make([][1][]byte, len(rs))
	}
	ms := o.msgs[:len(rs)]
	var last *net.UDPAddr
	for i, r := range rs {
		// Replies of a batch mostly go to one place (the relay): its
		// address is made once.
		if last == nil || last.AddrPort() != r.dst {
			last = net.UDPAddrFromAddrPort(r.dst)
		}
		o.bufs[i][0] = r.b
		ms[i] = ipv4.Message{Buffers: o.bufs[i][:], Addr: last}
	}
	for len(ms) > 0 {
		n, err := o.pc.WriteBatch(ms, 0)
		if err != nil {
			// The first message failed (sendmmsg reports an error only
			// when none was sent): count it, go on with the rest.
			o.failed(rs[len(rs)-len(ms)].dst, err)
			n = 1
		}
		ms = ms[n:]
	}
	for i := range rs {
		o.bufs[i][0] = nil
		o.msgs[i] = ipv4.Message{}
	}
}

// serve reads one socket and hands what it read to the server's workers
// through the scheduler, whose queues hold at most MaxInFlight datagrams
// (DISCOVERs a quarter of that); datagrams that find them full are
// dropped and counted (Overload).
func (s *Server) serve(ctx context.Context, conn net.PacketConn, out *sender, seg *segState, limit *bucket) {
	var read func(dgs []datagram) (int, error)
	if out.pc != nil {
		read = s.batchReader(out)
	} else {
		read = func(dgs []datagram) (int, error) {
			n, from, err := conn.ReadFrom(dgs[0].pkt[:])
			if err != nil {
				return 0, err
			}
			switch a := from.(type) {
			case *net.UDPAddr:
				dgs[0].src, dgs[0].hwsrc = a.AddrPort(), nil
			case *LinkAddr:
				dgs[0].src, dgs[0].hwsrc = a.UDPAddr.AddrPort(), a.HW
			default:
				dgs[0].n = -1 // not an address a reply can go to
				return 1, nil
			}
			dgs[0].n = n
			return 1, nil
		}
	}
	size := 1
	if out.pc != nil {
		size = readBatch
	}
	// in holds the buffers the next read fills: the workers own the ones
	// handed to them, and return them to s.bufs.
	in := make([]datagram, size)
	for i := range in {
		in[i].pkt = s.bufs.Get().(*[MaxDatagram + 1]byte)
	}
	defer func() {
		for _, d := range in {
			if d.pkt != nil {
				s.bufs.Put(d.pkt)
			}
		}
	}()
	for {
		n, err := read(in)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("dhcp: read", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		// DISCOVERs wait in a queue of their own (see scheduler), so a
		// job holds one kind.
		var work, disc *job
		now, at := s.now(), time.Now()
		for i := range in[:n] {
			d := &in[i]
			s.metrics.inc(&s.metrics.Received)
			switch {
			case d.n < 0:
				s.metrics.inc(&s.metrics.Malformed)
				continue
			case d.n > MaxDatagram:
				s.metrics.inc(&s.metrics.Oversized)
				continue
			case !limit.take(now):
				s.metrics.inc(&s.metrics.RateLimited)
				continue
			}
			j := &work
			isDisc := isDiscover(d.pkt[:d.n])
			if isDisc {
				j = &disc
			}
			if *j == nil {
				*j = s.newJob(out, seg)
				(*j).at, (*j).disc = at, isDisc
			}
			(*j).dgs = append((*j).dgs, *d)
			// The job owns the buffer now.
			d.pkt = s.bufs.Get().(*[MaxDatagram + 1]byte)
			if len((*j).dgs) == jobMax {
				s.enqueue(*j)
				*j = nil
			}
		}
		s.enqueue(work)
		s.enqueue(disc)
	}
}

// batchReader reads up to len(dgs) datagrams with one recvmmsg.
func (s *Server) batchReader(out *sender) func(dgs []datagram) (int, error) {
	ms := make([]ipv4.Message, readBatch)
	bufs := make([][1][]byte, readBatch)
	return func(dgs []datagram) (int, error) {
		for i := range dgs {
			bufs[i][0] = dgs[i].pkt[:]
			ms[i] = ipv4.Message{Buffers: bufs[i][:]}
		}
		n, err := out.pc.ReadBatch(ms[:len(dgs)], 0)
		if err != nil {
			return 0, err
		}
		for i := range ms[:n] {
			a, ok := ms[i].Addr.(*net.UDPAddr)
			if !ok {
				dgs[i].n = -1
				continue
			}
			dgs[i].src, dgs[i].hwsrc, dgs[i].n = a.AddrPort(), nil, ms[i].N
			if ms[i].Flags&unix.MSG_TRUNC != 0 {
				dgs[i].n = MaxDatagram + 1 // oversized
			}
		}
		return n, nil
	}
}

// newJob returns an empty job from the pool.
func (s *Server) newJob(out *sender, seg *segState) *job {
	j, _ := s.jobs.Get().(*job)
	if j == nil {
		j = &job{dgs: make([]datagram, 0, readBatch)}
	}
	j.out, j.seg = out, seg
	return j
}

// freeJob returns j's buffers and j to their pools.
func (s *Server) freeJob(j *job) {
	for i, d := range j.dgs {
		s.bufs.Put(d.pkt)
		j.dgs[i] = datagram{}
	}
	clear(j.outs)
	j.dgs, j.outs, j.out, j.seg, j.at, j.disc = j.dgs[:0], j.outs[:0], nil, nil, time.Time{}, false
	s.jobs.Put(j)
}

// enqueue hands j (nil: nothing) to the workers; when its queue is full,
// j's datagrams are dropped and counted.
func (s *Server) enqueue(j *job) {
	if j == nil {
		return
	}
	if !s.sched.push(j) {
		s.metrics.add(&s.metrics.Overload, uint64(len(j.dgs)))
		s.freeJob(j)
	}
}

// workerCount is how many workers the server runs: one per core the Go
// runtime uses, and one more. A worker never waits for a group commit
// (an ACK is finished by the committer, see exchange); it leaves the CPU
// only to write its replies (a non-blocking sendmmsg), for the device
// states' periodic refresh from SQLite (one worker at a time, see
// SQLStore.DeviceStatus) or, under overload, when the committer's queue
// is full. The extra one keeps every core busy through those. More
// workers would not answer sooner: runnable goroutines beyond the cores
// wait in the Go scheduler's queue, first come first served, in front of
// the socket reader, the ACK finisher and the committer, where nothing
// can be put first; the backlog waits in the scheduler's queues instead,
// in the order they choose.
func workerCount() int {
	return runtime.GOMAXPROCS(0) + 1
}

// Scheduling bounds (see scheduler.next).
const (
	// discoverMaxWait is how long a DISCOVER may wait for a worker; one
	// that waited longer is dropped and counted (Overload) rather than
	// answered stale: the client retransmits, and the time is better
	// spent on fresh requests. It bounds an OFFER's delay under
	// overload. REQUESTs are never dropped for age: each is an exchange
	// the server started.
	discoverMaxWait = 100 * time.Millisecond
	// requestRun is how many REQUEST jobs in a row may go before a
	// DISCOVER job that waits: a flood of REQUESTs (renewals, which no
	// DISCOVER paces) cannot stop new devices joining.
	requestRun = 4
)

// scheduler holds the datagrams read but not yet handled, in two queues:
// DISCOVERs and everything else (REQUESTs mostly), and chooses what a
// worker handles next (next). Each queue is bounded in datagrams.
type scheduler struct {
	workers int
	wake    chan struct{} // one token per job pushed, up to workers
	mu      sync.Mutex
	reqs    jobQueue
	discs   jobQueue
	run     int // REQUEST jobs taken in a row while a DISCOVER waited
}

// jobQueue is a FIFO of jobs holding at most max datagrams.
type jobQueue struct {
	jobs []*job // jobs[head:] are queued
	head int
	n    int // datagrams queued
	max  int
}

func newScheduler(maxReqs, maxDiscs, workers int) *scheduler {
	return &scheduler{
		workers: workers,
		wake:    make(chan struct{}, workers),
		reqs:    jobQueue{max: maxReqs},
		discs:   jobQueue{max: maxDiscs},
	}
}

func (q *jobQueue) peek() *job {
	if q.head == len(q.jobs) {
		return nil
	}
	return q.jobs[q.head]
}

func (q *jobQueue) pop() *job {
	j := q.jobs[q.head]
	q.jobs[q.head] = nil
	q.head++
	q.n -= len(j.dgs)
	if q.head == len(q.jobs) {
		q.jobs, q.head = q.jobs[:0], 0
	} else if q.head >= 64 && q.head*2 >= len(q.jobs) {
		// Move the queued jobs to the front, so the slice does not grow
		// without bound while the queue never quite empties.
		k := copy(q.jobs, q.jobs[q.head:])
		clear(q.jobs[k:])
		q.jobs, q.head = q.jobs[:k], 0
	}
	return j
}

// push queues j and wakes a worker; it reports false, and queues nothing,
// when j's datagrams would not fit.
func (sc *scheduler) push(j *job) bool {
	q := &sc.reqs
	if j.disc {
		q = &sc.discs
	}
	sc.mu.Lock()
	if q.n+len(j.dgs) > q.max {
		sc.mu.Unlock()
		return false
	}
	q.jobs = append(q.jobs, j)
	q.n += len(j.dgs)
	sc.mu.Unlock()
	select {
	case sc.wake <- struct{}{}:
	default:
		// Every worker has a token already: each looks at the queues
		// again before it sleeps.
	}
	return true
}

// next returns the job a worker handles now, or a DISCOVER job too old to
// answer (stale, to drop), or neither when nothing is queued.
//
// REQUESTs (and the rare RELEASE, DECLINE, INFORM) go first, but never
// more than requestRun jobs in a row while a DISCOVER waits. Below the
// server's ceiling both queues are short and the order changes little;
// above it, this is what keeps the exchanges the server started
// finishing (a REQUEST's ACK also waits for a group commit, which it
// joins sooner): the excess is shed from the DISCOVERs, by their
// queue's smaller bound and by age (discoverMaxWait), so the OFFERs that
// are sent are fresh. In a DORA exchange a REQUEST only follows an
// OFFER, so REQUESTs cannot take every turn for long; requestRun bounds
// the wait of DISCOVERs behind REQUESTs that need none (renewals).
func (sc *scheduler) next(now time.Time) (j, stale *job) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	r, d := sc.reqs.peek(), sc.discs.peek()
	switch {
	case d != nil && now.Sub(d.at) > discoverMaxWait:
		return nil, sc.discs.pop()
	case r != nil && (d == nil || sc.run < requestRun):
		if d != nil {
			sc.run++
		}
		return sc.reqs.pop(), nil
	case d != nil:
		sc.run = 0
		return sc.discs.pop(), nil
	}
	return nil, nil
}

// worker handles the scheduler's jobs until ctx is done. Datagrams still
// queued then were read after the server was told to stop: dropped, as
// they would be by a closed socket.
func (s *Server) worker(ctx context.Context) {
	for ctx.Err() == nil {
		j, stale := s.sched.next(time.Now())
		switch {
		case stale != nil:
			s.metrics.add(&s.metrics.Overload, uint64(len(stale.dgs)))
			s.freeJob(stale)
		case j != nil:
			s.timings.JobWait.since(j.at)
			s.run(ctx, j)
			// Let what the job woke run before the next job: the
			// committer it handed leases to waits in this P's next
			// slot, and the reader and ACK finisher in the run queue,
			// until this goroutine leaves the CPU; under overload the
			// workers never block, and the runtime would preempt them
			// only every 10 ms.
			runtime.Gosched()
		default:
			select {
			case <-s.sched.wake:
			case <-ctx.Done():
			}
		}
	}
}

// run handles a job's datagrams and sends their replies together.
func (s *Server) run(ctx context.Context, j *job) {
	for _, d := range j.dgs {
		out, dst, ok := s.handleSafely(ctx, j.seg, d.src, d.hwsrc, d.pkt[:d.n], j.out.later)
		if ok {
			j.outs = append(j.outs, reply{out, dst})
		}
	}
	j.out.sendAll(j.outs)
	for _, r := range j.outs {
		s.freeReply(r.b)
	}
	s.freeJob(j)
}

// handleSafely is handle with a panic turned into a dropped packet: a bug
// one packet reaches must not stop DHCP for the school. The panic is
// counted and logged with the packet, so it can be replayed.
func (s *Server) handleSafely(ctx context.Context, seg *segState, src netip.AddrPort, hwsrc net.HardwareAddr, pkt []byte, lt later) (out []byte, dst netip.AddrPort, ok bool) {
	defer func() {
		if v := recover(); v != nil {
			s.metrics.inc(&s.metrics.Panics)
			s.log.Error("dhcp: handler panic, packet dropped", "panic", fmt.Sprint(v), "from", src, "packet", hex.EncodeToString(pkt), "stack", string(debug.Stack()))
			out, ok = nil, false
		}
	}()
	return s.exchange(ctx, seg, src, hwsrc, pkt, lt)
}

// sweep publishes expiries and forgets stale offers and alert throttles.
func (s *Server) sweep(ctx context.Context) {
	t := time.NewTicker(15 * time.Second)
	defer t.Stop()
	last := s.now()
	var lastPurge time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := s.now()
		for _, seg := range s.segs {
			for _, l := range seg.pool.expired(last, now) {
				s.released(l)
			}
		}
		last = now
		if now.Sub(lastPurge) >= time.Hour {
			lastPurge = now
			s.purgeUnleased(ctx, now)
			s.purgeStale(ctx, now)
		}
		s.alertMu.Lock()
		for k, at := range s.alerted {
			if now.Sub(at) > alertEvery {
				delete(s.alerted, k)
			}
		}
		s.alertMu.Unlock()
	}
}

// purgeUnleased forgets devices that never completed a lease, so a flood of
// made-up MACs does not stay in the inventory for ever.
func (s *Server) purgeUnleased(ctx context.Context, now time.Time) {
	p, ok := s.cfg.Store.(DevicePurger)
	if !ok {
		return
	}
	n, err := p.PurgeUnleasedDevices(ctx, now.Add(-s.cfg.UnleasedRetention))
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Warn("dhcp: purge devices that never completed a lease", "err", err)
	case n > 0:
		s.log.Info("dhcp: purged devices that never completed a lease", "count", n, "retention", s.cfg.UnleasedRetention)
	}
}

// purgeStale forgets every device not seen for DeviceRetention: the
// inventory is personal data, kept only while it is of use.
func (s *Server) purgeStale(ctx context.Context, now time.Time) {
	p, ok := s.cfg.Store.(StaleDevicePurger)
	if !ok {
		return
	}
	n, err := p.PurgeStaleDevices(ctx, now.Add(-s.cfg.DeviceRetention), now)
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Warn("dhcp: purge devices not seen within the retention", "err", err)
	case n > 0:
		s.log.Info("dhcp: purged devices not seen within the retention", "count", n, "retention", s.cfg.DeviceRetention)
	}
}

func (s *Server) granted(l Lease) {
	events.Publish(s.cfg.Events, events.LeaseGranted{Segment: l.Segment, MAC: l.MAC, IP: l.IP, Hostname: l.Hostname, Start: l.Start, Expires: l.Expires})
}

func (s *Server) released(l Lease) {
	events.Publish(s.cfg.Events, events.LeaseReleased{Segment: l.Segment, MAC: l.MAC, IP: l.IP, At: s.now()})
}

// MACFor returns the MAC that holds a bound lease on ip now, or nil. The DNS
// guard and the portal use it to name the device behind an address.
func (s *Server) MACFor(ip netip.Addr) net.HardwareAddr {
	now := s.now()
	for _, seg := range s.segs {
		if !seg.Subnet.Contains(ip) {
			continue
		}
		holder, _, _ := seg.pool.lookup(ip, "", now)
		if holder == "" {
			return nil
		}
		mac, err := net.ParseMAC(holder)
		if err != nil {
			return nil
		}
		return mac
	}
	return nil
}
