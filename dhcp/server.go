package dhcp

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-net/gatehouse/alert/finding"
	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
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
	ready   chan struct{}
	// listenRelay opens relay interfaces' sockets (see New).
	listenRelay func(iface string) (net.PacketConn, error)

	// The workers (see serve): work carries datagrams to them, bufs
	// recycles datagram buffers.
	work      chan job // everything but DISCOVERs
	discovers chan job
	bufs      sync.Pool
	workers   atomic.Int64
	idle      atomic.Int64

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
		work:        make(chan job, cfg.MaxInFlight),
		discovers:   make(chan job, max(cfg.MaxInFlight/4, 1)),
		ready:       make(chan struct{}),
		alerted:     map[string]time.Time{},
		listenRelay: listenRelay,
	}
	s.bufs.New = func() any { return new([MaxDatagram + 1]byte) }
	s.commit = newCommitter(cfg.Store, cfg.Binder, &s.metrics, s.log)
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

	stop := make(chan struct{})
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		s.commit.run(ctx, stop)
	}()
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serve(ctx, l.conn, l.seg, newBucket(s.cfg.PacketsPerSecond), &wg)
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
	return nil
}

// job is one datagram for a worker.
type job struct {
	send  later // writes a reply on the socket the datagram came from
	seg   *segState
	src   netip.AddrPort
	hwsrc net.HardwareAddr
	pkt   *[MaxDatagram + 1]byte
	n     int
}

// workerIdle is how long a worker beyond the first few waits for work
// before it exits: a burst's workers outlive it briefly, so the next one
// does not pay for new goroutines (and their stacks growing again).
const workerIdle = 10 * time.Second

// keepWorkers is how many workers stay however quiet it is.
const keepWorkers = 4

// maxWorkers bounds the workers. A worker does not wait for a group
// commit (an ACK is finished by the committer, see exchange), so it is
// busy only while it computes or asks the kernel something: a few per
// core keep the cores busy, and more would only hold memory (a stack
// each) after a burst.
const maxWorkers = 32

// serve reads one socket and hands each datagram to the server's workers
// through a queue of MaxInFlight; a datagram that finds it full is
// dropped and counted (Overload). A new worker starts when none is idle,
// up to maxWorkers.
func (s *Server) serve(ctx context.Context, conn net.PacketConn, seg *segState, limit *bucket, wg *sync.WaitGroup) {
	// One sender per socket, shared by its replies: the ACKs sent after
	// their commit use it from the committer's finisher.
	send := func(out []byte, dst netip.AddrPort) {
		if _, err := conn.WriteTo(out, net.UDPAddrFromAddrPort(dst)); err != nil && ctx.Err() == nil {
			s.metrics.inc(&s.metrics.SendErrors)
			s.log.Warn("dhcp: send", "to", dst, "err", err)
		}
	}
	buf := s.bufs.Get().(*[MaxDatagram + 1]byte)
	for {
		n, from, err := conn.ReadFrom(buf[:])
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				s.bufs.Put(buf)
				return
			}
			s.log.Warn("dhcp: read", "err", err)
			select {
			case <-ctx.Done():
				s.bufs.Put(buf)
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		s.metrics.inc(&s.metrics.Received)
		if n > MaxDatagram {
			s.metrics.inc(&s.metrics.Oversized)
			continue
		}
		var src netip.AddrPort
		var hwsrc net.HardwareAddr
		switch a := from.(type) {
		case *net.UDPAddr:
			src = a.AddrPort()
		case *LinkAddr:
			src, hwsrc = a.UDPAddr.AddrPort(), a.HW
		default:
			s.metrics.inc(&s.metrics.Malformed)
			continue
		}
		if !limit.take(s.now()) {
			s.metrics.inc(&s.metrics.RateLimited)
			continue
		}
		// DISCOVERs wait in a queue of their own, which workers serve
		// only when the other is empty: under overload the server
		// finishes the exchanges it started (a REQUEST's ACK is a lease)
		// before it starts new ones, and a DISCOVER that cannot be
		// answered soon is dropped at once rather than answered late.
		q := s.work
		if isDiscover(buf[:n]) {
			q = s.discovers
		}
		select {
		case q <- job{send: send, seg: seg, src: src, hwsrc: hwsrc, pkt: buf, n: n}:
		default:
			s.metrics.inc(&s.metrics.Overload)
			continue
		}
		// The worker owns buf now.
		buf = s.bufs.Get().(*[MaxDatagram + 1]byte)
		if s.idle.Load() == 0 {
			s.spawn(ctx, wg)
		}
	}
}

// spawn starts a worker unless MaxInFlight are running.
func (s *Server) spawn(ctx context.Context, wg *sync.WaitGroup) {
	for {
		n := s.workers.Load()
		if n >= int64(min(s.cfg.MaxInFlight, maxWorkers)) {
			return
		}
		if s.workers.CompareAndSwap(n, n+1) {
			break
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer s.workers.Add(-1)
		s.worker(ctx)
	}()
}

// worker handles datagrams until ctx is done, or until it has been idle
// for workerIdle while more than keepWorkers run.
func (s *Server) worker(ctx context.Context) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		select {
		case j := <-s.work:
			s.run(ctx, j)
			continue
		default:
		}
		s.idle.Add(1)
		select {
		case j := <-s.work:
			s.idle.Add(-1)
			s.run(ctx, j)
			idle.Reset(workerIdle)
		case j := <-s.discovers:
			s.idle.Add(-1)
			s.run(ctx, j)
			idle.Reset(workerIdle)
		case <-idle.C:
			s.idle.Add(-1)
			if s.workers.Load() > keepWorkers {
				return
			}
			idle.Reset(workerIdle)
		case <-ctx.Done():
			s.idle.Add(-1)
			// Datagrams still queued were read after the server was told
			// to stop: dropped, as they would be by a closed socket.
			return
		}
	}
}

// run handles one datagram and sends the reply.
func (s *Server) run(ctx context.Context, j job) {
	out, dst, ok := s.handleSafely(ctx, j.seg, j.src, j.hwsrc, j.pkt[:j.n], j.send)
	s.bufs.Put(j.pkt)
	if ok {
		j.send(out, dst)
	}
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
