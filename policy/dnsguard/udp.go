package dnsguard

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// The UDP side of the guard is its own loop rather than miekg/dns's server:
// one socket per core (SO_REUSEPORT spreads clients over them by their
// address and port), each read by one goroutine that answers packed-cache
// hits itself, in place, without allocating; everything else is handed to
// a goroutine of its own that takes the long way through ServeDNS, so a
// query waiting for the upstream holds nobody else up.

// MaxInFlight bounds the UDP queries waiting for an upstream at once;
// past it new misses are dropped and counted (Stats.Overload), as a
// resolver under a flood must, rather than starting a goroutine each.
const MaxInFlight = 4096

// policyAnswerLife is how long a synthetic answer (blocked, canary,
// Private Relay) is kept; SetSegments empties the cache before that when
// the policy changes.
const policyAnswerLife = 5 * time.Minute

// maxQuery is the largest query read; a larger datagram is not a query a
// stub sends and is dropped.
const maxQuery = 4096

// cacheLife says whether an answer goes in the packed cache, and for how
// long: the upstream's TTLs for what came from it, policyAnswerLife for
// what the guard decided itself. Per-client answers (not admitted,
// refused, rate-limited) and failures never do.
func cacheLife(resp *dns.Msg, a Action) (time.Duration, bool) {
	switch a {
	case Forwarded, Cached, SafeSearch:
		if resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError {
			return 0, false
		}
		ttl, ok := ttlOf(resp)
		if !ok || ttl <= 0 {
			return 0, false
		}
		return min(ttl, maxCacheTTL), true
	case Blocked, Canary, Relay:
		return policyAnswerLife, true
	}
	return 0, false
}

// packedNote is what the long way leaves on its packetWriter for the
// answer to be cached once packed.
type packedNote struct {
	cache     *packedCache
	view      uint16
	life      time.Duration
	rec       Query
	admission bool
}

// listenUDP opens n UDP sockets on addr sharing the port with SO_REUSEPORT,
// each asking the kernel for the address a query was sent to, so that the
// answer leaves from it (a router has several).
func listenUDP(ctx context.Context, addr string, n int) ([]*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		return errors.Join(err, serr)
	}}
	var conns []*net.UDPConn
	for range n {
		pc, err := lc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, fmt.Errorf("dnsguard: listen udp %s: %w", addr, err)
		}
		conns = append(conns, pc.(*net.UDPConn))
	}
	return conns, nil
}

// socketBuffer is the receive buffer asked for on the guard's sockets: a
// morning's burst of queries (or of the upstream's answers to them) must
// wait in the kernel rather than be dropped while the workers catch up.
const socketBuffer = 1 << 20

// growReceiveBuffer raises c's receive buffer to socketBuffer, past the
// system's maximum where the process may (CAP_NET_ADMIN), else as far as
// the system allows.
func growReceiveBuffer(c net.Conn) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, socketBuffer) != nil {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, socketBuffer)
		}
	})
}

// askDestination turns on IP_PKTINFO (and IPV6_RECVPKTINFO on a v6 socket)
// where the socket allows it. A socket bound to one address needs neither.
func askDestination(c *net.UDPConn) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
	})
}

// destination reads the address a query was sent to from its control
// messages (IP_PKTINFO, IPV6_PKTINFO); invalid when there is none.
func destination(oob []byte) netip.Addr {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			return netip.Addr{}
		}
		data := oob[unix.CmsgLen(0):l]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			// struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }
			return netip.AddrFrom4([4]byte(data[8:12]))
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			return netip.AddrFrom16([16]byte(data[:16]))
		}
		oob = oob[min(len(oob), unix.CmsgSpace(l-unix.CmsgLen(0))):]
	}
	return netip.Addr{}
}

// sourceOOB writes into dst the control message that makes an answer leave
// from src, and returns it (empty for an invalid src).
func sourceOOB(dst []byte, src netip.Addr) []byte {
	if !src.IsValid() {
		return dst[:0]
	}
	if src.Is4() || src.Is4In6() {
		b := dst[:unix.CmsgSpace(unix.SizeofInet4Pktinfo)]
		clear(b)
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
		h.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
		a := src.Unmap().As4()
		copy(b[unix.CmsgLen(0)+4:], a[:]) // ipi_spec_dst
		return b
	}
	b := dst[:unix.CmsgSpace(unix.SizeofInet6Pktinfo)]
	clear(b)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
	a := src.As16()
	copy(b[unix.CmsgLen(0):], a[:])
	return b
}

// udpWorker is one socket's reader with its buffers, reused for every
// query it answers itself.
type udpWorker struct {
	g    *Guard
	conn *net.UDPConn
	// redirected: conn is Config.RedirectedListen's, whose queries are
	// not handed to Config.Queries.
	redirected bool
	in         []byte
	oob        []byte
	out        []byte
	key        []byte
	soob       []byte

	// What the hits of a batch leave for the hit log and the counters,
	// handed on once a batch (settle), before its answers are sent: the
	// workers on the other cores share the log's lock and the counters'
	// cache lines, which each hit taking them in turn kept moving.
	notes                                    [udpBatch]hitNote
	nnotes                                   int
	queries, hits, safe, blocked, limitedCnt uint64
}

// note keeps a hit for the hit log until the batch settles.
func (w *udpWorker) note(n hitNote) {
	if w.nnotes == len(w.notes) {
		w.settle()
	}
	w.notes[w.nnotes] = n
	w.nnotes++
}

// settle hands the notes and counts kept so far to the guard.
func (w *udpWorker) settle() {
	g := w.g
	if w.nnotes > 0 {
		g.hitLog.addAll(w.notes[:w.nnotes])
		clear(w.notes[:w.nnotes]) // drop the entries' references for the collector
		w.nnotes = 0
	}
	for _, c := range [...]struct {
		n   *uint64
		ctr *atomic.Uint64
	}{{&w.queries, &g.queries}, {&w.hits, &g.hits}, {&w.safe, &g.safe}, {&w.blocked, &g.blocked}, {&w.limitedCnt, &g.limited}} {
		if *c.n != 0 {
			c.ctr.Add(*c.n)
			*c.n = 0
		}
	}
}

func (g *Guard) newUDPWorker(c *net.UDPConn, redirected bool) *udpWorker {
	return &udpWorker{g: g, conn: c, redirected: redirected, in: make([]byte, maxQuery), oob: make([]byte, 256), out: make([]byte, 0xffff),
		key: make([]byte, 0, packedKeyLen+maxName), soob: make([]byte, 64)}
}

// serveUDP answers on conns and redirected (Config.RedirectedListen's)
// until ctx ends, then closes them.
func (g *Guard) serveUDP(ctx context.Context, conns, redirected []*net.UDPConn) error {
	var wg sync.WaitGroup
	n := len(conns)
	conns = append(slices.Clip(conns), redirected...)
	errc := make(chan error, len(conns))
	for i, c := range conns {
		askDestination(c)
		growReceiveBuffer(c)
		w := g.newUDPWorker(c, i >= n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- w.run(ctx)
		}()
	}
	stop := context.AfterFunc(ctx, func() {
		for _, c := range conns {
			c.Close()
		}
	})
	defer stop()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("dnsguard: serve udp: %w", err)
	}
	return nil
}

func (w *udpWorker) run(ctx context.Context) error {
	if w.g.cfg.UDPBatch != 1 {
		if b, err := newBatchIO(w.conn); err == nil {
			return w.runBatched(ctx, b)
		}
	}
	for {
		n, oobn, flags, from, err := w.conn.ReadMsgUDPAddrPort(w.in, w.oob)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return err
			}
			// A transient error (ICMP-reported, buffer pressure) is the
			// socket's, not the guard's: go on reading.
			w.g.log.Debug("read udp", "err", err)
			continue
		}
		if flags&unix.MSG_TRUNC != 0 {
			continue
		}
		w.handle(w.in[:n], w.oob[:oobn], from)
	}
}

// handle answers one datagram: a packed-cache hit here, anything else on a
// goroutine of its own.
func (w *udpWorker) handle(pkt, oob []byte, from netip.AddrPort) {
	if w.fast(pkt, oob, from) {
		return
	}
	g := w.g
	if g.inFlight.Add(1) > MaxInFlight {
		g.inFlight.Add(-1)
		g.overload.Add(1)
		w.inspectDropped(pkt, oob, from)
		return
	}
	p := append([]byte(nil), pkt...)
	local := destination(oob)
	go func() {
		defer g.inFlight.Add(-1)
		g.slowUDP(w.conn, p, from, local, w.redirected)
	}()
}

// inspectDropped hands a query dropped unanswered to Config.Queries all
// the same: a flood must not hide a tunnel's lookups from inspection.
func (w *udpWorker) inspectDropped(pkt, oob []byte, from netip.AddrPort) {
	g := w.g
	if g.cfg.Queries == nil || w.redirected {
		return
	}
	seg, _, inside := g.segment(g.state.Load(), from.Addr().Unmap())
	if !inside {
		return
	}
	// The long way's parse: this path sheds load, it is not the hot one.
	req := new(dns.Msg)
	if req.Unpack(pkt) != nil || req.Response || len(req.Question) == 0 {
		return
	}
	g.inspectQuery(from, seg.Name, req.Question[0], nil, false)
}

// fast answers pkt from the packed cache and reports whether it did.
func (w *udpWorker) fast(pkt, oob []byte, from netip.AddrPort) bool {
	ans, ok := w.answer(pkt, oob, from, w.out[:0], w.g.now())
	w.settle()
	if ok {
		w.send(ans, oob, from)
	}
	return ok
}

// answer writes the packed-cache answer to pkt into out (whose capacity
// must hold it) and returns it, or reports false for a query the long
// way must answer. A nil answer with true means the query was dealt with
// (answered SERVFAIL after a panic). now is when the query was read: the
// batched loop reads the clock once a batch, since every query of a batch
// arrived before the one recvmmsg that took them (the clock read, through
// the hypervisor's, was 1-2% of the daemon's CPU per cached answer).
func (w *udpWorker) answer(pkt, oob []byte, from netip.AddrPort, out []byte, now time.Time) (ans []byte, done bool) {
	g := w.g
	q, ok := parseQuery(pkt)
	if !ok {
		return nil, false
	}
	st := g.state.Load()
	if st.answers == nil {
		return nil, false
	}
	client := from.Addr().Unmap()
	seg, view, inside := g.segment(st, client)
	if !inside {
		return nil, false
	}
	w.key = appendKey(w.key[:0], view, &q)
	e := st.answers.get(w.key, now)
	if e == nil || len(e.wire) > cap(out) {
		return nil, false
	}
	if e.admission && seg.Portal {
		// Whether this client may have the answer is its own, not the
		// name's: asked every time.
		var mac net.HardwareAddr
		if g.cfg.Clients != nil {
			mac = g.cfg.Clients.MACFor(client)
		}
		if g.cfg.Admitted == nil || !g.cfg.Admitted(client, mac) {
			return nil, false // the long way answers NXDOMAIN and counts it
		}
	}
	defer func() {
		if v := recover(); v != nil {
			g.panics.Add(1)
			g.log.Error("dnsguard: handler panic, query answered SERVFAIL", "panic", fmt.Sprint(v), "client", client.String(),
				"query", hex.EncodeToString(pkt), "stack", string(debug.Stack()))
			req := new(dns.Msg)
			if req.Unpack(pkt) == nil {
				w.send(w.packMsg(servfail(req)), oob, from)
			}
			ans, done = nil, true
		}
	}()
	w.queries++
	if g.limit != nil && !g.limit.allow(client, now) {
		w.limitedCnt++
		if g.cfg.Queries != nil && !w.redirected {
			// Inspection is told of it all the same (a tunnel over its
			// rate is still a tunnel); the query log is not.
			w.note(hitNote{at: now, client: client, port: from.Port(), segment: seg.Name, e: e, refused: true})
		}
		return refusedWire(out, pkt, len(q.qname)), true
	}
	switch e.action {
	case Forwarded:
		w.hits++
	case SafeSearch:
		w.safe++
		w.hits++
	case Blocked:
		w.blocked++
	}
	ans = e.patch(out, binary.BigEndian.Uint16(pkt), &q, now)
	w.note(hitNote{at: now, client: client, port: from.Port(), segment: seg.Name, e: e, uninspected: w.redirected})
	return ans, true
}

func (w *udpWorker) send(b, oob []byte, to netip.AddrPort) {
	if b == nil {
		return
	}
	if _, _, err := w.conn.WriteMsgUDPAddrPort(b, sourceOOB(w.soob, destination(oob)), to); err != nil {
		w.g.log.Debug("write answer", "client", to, "err", err)
	}
}

func (w *udpWorker) packMsg(m *dns.Msg) []byte {
	b, err := m.PackBuffer(w.out)
	if err != nil {
		return nil
	}
	return b
}

// refusedWire is REFUSED for the plain query pkt whose name is qlen bytes,
// as dns.Msg.SetRcode would make it: the header and question, no records.
func refusedWire(out, pkt []byte, qlen int) []byte {
	n := headerLen + qlen + 4
	out = append(out[:0], pkt[:n]...)
	// QR set; opcode, RD and CD kept; AA, TC, RA, Z, AD cleared; rcode 5.
	out[2] = out[2]&0x79 | 0x80
	out[3] = out[3]&0x10 | dns.RcodeRefused
	binary.BigEndian.PutUint16(out[6:], 0)
	binary.BigEndian.PutUint16(out[8:], 0)
	binary.BigEndian.PutUint16(out[10:], 0)
	return out
}

// slowUDP answers one datagram the long way: miekg/dns unpacks it (with
// the checks its own server makes first) and ServeDNS answers it; the
// answer is cached packed when ServeDNS says it may be.
//
// redirected: c is Config.RedirectedListen's; the query is not handed to
// Config.Queries.
func (g *Guard) slowUDP(c *net.UDPConn, p []byte, from netip.AddrPort, local netip.Addr, redirected bool) {
	if len(p) < headerLen {
		return // a reply to noise only helps amplify it
	}
	dh := dns.Header{Id: binary.BigEndian.Uint16(p), Bits: binary.BigEndian.Uint16(p[2:]),
		Qdcount: binary.BigEndian.Uint16(p[4:]), Ancount: binary.BigEndian.Uint16(p[6:]),
		Nscount: binary.BigEndian.Uint16(p[8:]), Arcount: binary.BigEndian.Uint16(p[10:])}
	pw := &packetWriter{conn: c, from: from, local: local, query: p, redirected: redirected}
	action := dns.DefaultMsgAcceptFunc(dh)
	req := new(dns.Msg)
	if action == dns.MsgAccept && req.Unpack(p) != nil {
		action = dns.MsgReject
	}
	switch action {
	case dns.MsgIgnore:
		return
	case dns.MsgReject, dns.MsgRejectNotImplemented:
		if !redirected {
			g.inspectRejected(p, from)
		}
		// As miekg/dns's server answers what it will not hand on.
		m := new(dns.Msg)
		m.Id, m.Response = dh.Id, true
		m.Opcode = int(dh.Bits>>11) & 0xf
		if m.Opcode == dns.OpcodeQuery {
			m.RecursionDesired = dh.Bits&(1<<8) != 0
			m.CheckingDisabled = dh.Bits&(1<<4) != 0
		}
		m.Rcode = dns.RcodeFormatError
		if action == dns.MsgRejectNotImplemented {
			m.Rcode = dns.RcodeNotImplemented
		}
		_ = pw.WriteMsg(m)
		return
	}
	g.ServeDNS(pw, req)
}

// inspectRejected hands a query the guard answers FORMERR or NOTIMP
// without looking at it (two questions, an opcode other than QUERY) to
// Config.Queries when it still parses: inspection judged its first
// question when it read queries off the wire.
func (g *Guard) inspectRejected(p []byte, from netip.AddrPort) {
	if g.cfg.Queries == nil {
		return
	}
	seg, _, inside := g.segment(g.state.Load(), from.Addr().Unmap())
	if !inside {
		return
	}
	req := new(dns.Msg)
	if req.Unpack(p) != nil || req.Response || len(req.Question) == 0 {
		return
	}
	g.inspectQuery(from, seg.Name, req.Question[0], nil, false)
}

// packetWriter is the dns.ResponseWriter of the long way over UDP.
type packetWriter struct {
	conn  *net.UDPConn
	from  netip.AddrPort
	local netip.Addr
	query []byte
	keep  *packedNote // set by serveDNS when the answer may be cached
	// redirected: the query came in on Config.RedirectedListen and is
	// not handed to Config.Queries.
	redirected bool
	oob        [64]byte
}

func (w *packetWriter) LocalAddr() net.Addr  { return w.conn.LocalAddr() }
func (w *packetWriter) RemoteAddr() net.Addr { return net.UDPAddrFromAddrPort(w.from) }
func (w *packetWriter) Close() error         { return nil }
func (w *packetWriter) TsigStatus() error    { return nil }
func (w *packetWriter) TsigTimersOnly(bool)  {}
func (w *packetWriter) Hijack()              {}

func (w *packetWriter) Write(b []byte) (int, error) {
	n, _, err := w.conn.WriteMsgUDPAddrPort(b, sourceOOB(w.oob[:], w.local), w.from)
	return n, err
}

func (w *packetWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return fmt.Errorf("dnsguard: pack answer: %w", err)
	}
	if k := w.keep; k != nil {
		w.keep = nil
		w.store(k, b)
	}
	_, err = w.Write(b)
	return err
}

// store puts answer b to w's query in the packed cache, if both are plain
// enough for a hit to be answered by patching.
func (w *packetWriter) store(k *packedNote, b []byte) {
	q, ok := parseQuery(w.query)
	if !ok {
		return
	}
	ttls, qend, ok := ttlOffsets(b, nil)
	if !ok || qend != headerLen+len(q.qname)+4 ||
		binary.BigEndian.Uint16(b[qend-4:]) != q.qtype || binary.BigEndian.Uint16(b[qend-2:]) != q.qclass {
		return
	}
	for i, c := range b[headerLen : qend-4] {
		if lower(c) != lower(q.qname[i]) {
			return
		}
	}
	e := &packedEntry{wire: b, ttls: ttls, qend: qend, stored: k.rec.Time, expires: k.rec.Time.Add(k.life),
		name: k.rec.Name, qtype: k.rec.Type, qtypeNum: q.qtype, summary: k.rec.Answer, action: k.rec.Action, admission: k.admission}
	if e.action == Cached {
		e.action = Forwarded
	}
	k.cache.put(appendKey(nil, k.view, &q), e) // copies b
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// udpSockets is how many sockets Serve opens.
func (g *Guard) udpSockets() int {
	if g.cfg.UDPSockets > 0 {
		return g.cfg.UDPSockets
	}
	return runtime.GOMAXPROCS(0)
}
