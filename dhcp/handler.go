package dhcp

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse-net/gatehouse/alert/finding"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// alertEvery is how often the same unapproved device on the same segment
// raises a finding again.
const alertEvery = time.Hour

var (
	bcast = netip.AddrPortFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), dhcpv4.ClientPort)
)

func addr4(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	a = a.Unmap()
	if !a.Is4() || a.IsUnspecified() {
		return netip.Addr{}
	}
	return a
}

// declineWindow is how soon after its ACK a client may DECLINE its address:
// a client declines right after binding, when its ARP probe finds the
// address in use, never hours into a lease.
const declineWindow = 2 * time.Minute

// handle answers one datagram that arrived on recv's interface (recv is nil
// on a relay-only interface) from src, whose frame came from the Ethernet
// address hwsrc (nil when the socket does not tell). It returns the reply
// and where to send it, or ok false when the RFC or policy says to stay
// silent.
func (s *Server) handle(ctx context.Context, recv *segState, src netip.AddrPort, hwsrc net.HardwareAddr, data []byte) (out []byte, dst netip.AddrPort, ok bool) {
	return s.exchange(ctx, recv, src, hwsrc, data, nil)
}

// later sends a reply that was decided after handle returned: an ACK once
// its lease is durable. It runs on the committer's finisher.
type later func(out []byte, dst netip.AddrPort)

// exchange is handle. With later set, an ACK does not wait for its group
// commit: exchange returns ok false at once and later gets the ACK when the
// lease is durable (nothing, if it never is). The datagram's worker is then
// free for the next one, and a waiting ACK holds a closure rather than a
// goroutine's stack.
func (s *Server) exchange(ctx context.Context, recv *segState, src netip.AddrPort, hwsrc net.HardwareAddr, data []byte, lt later) (out []byte, dst netip.AddrPort, ok bool) {
	// From a pool, given back when the exchange returns: nothing keeps req
	// (an ACK that waits for its commit keeps a copy, see ack).
	req, _ := s.reqs.Get().(*request)
	if req == nil {
		req = new(request)
	}
	defer s.reqs.Put(req)
	if !parseRequest(data, req) || req.op != dhcpv4.OpcodeBootRequest || req.htype != byte(iana.HWTypeEthernet) || req.hlen != 6 {
		s.metrics.inc(&s.metrics.Malformed)
		return nil, dst, false
	}
	mac := req.mac()
	if mac[0]&0x01 != 0 || isZero(mac) {
		s.metrics.inc(&s.metrics.Malformed)
		return nil, dst, false
	}
	mt := req.mt
	seg := recv
	giaddr := req.gatewayIP()
	if giaddr.IsValid() {
		// Relays speak on the relay interfaces only: a segment's clients
		// could otherwise claim a trusted relay's address and giaddr and
		// draw an address from another segment's pool.
		if recv != nil {
			s.metrics.inc(&s.metrics.RelayOnSegment)
			return nil, dst, false
		}
		if !s.trustedRelay(src.Addr()) {
			s.metrics.inc(&s.metrics.RelayUntrusted)
			return nil, dst, false
		}
		seg = s.segmentFor(giaddr)
	}
	if seg == nil {
		s.metrics.inc(&s.metrics.WrongSegment)
		return nil, dst, false
	}
	// On a directly attached segment the frame's source is the client: a
	// chaddr that differs is a made-up MAC (pool exhaustion) or someone
	// else's (a forged DECLINE or RELEASE).
	if !giaddr.IsValid() && hwsrc != nil && !bytes.Equal(hwsrc, mac) {
		s.metrics.inc(&s.metrics.SpoofedMAC)
		return nil, dst, false
	}

	var a answer
	var answered bool
	switch mt {
	case dhcpv4.MessageTypeDiscover:
		a, answered = s.discover(ctx, seg, req, lt)
	case dhcpv4.MessageTypeRequest:
		a, answered = s.request(ctx, seg, req, lt)
	case dhcpv4.MessageTypeRelease:
		s.release(seg, req, src.Addr(), giaddr.IsValid())
	case dhcpv4.MessageTypeDecline:
		s.decline(seg, req)
	case dhcpv4.MessageTypeInform:
		a, answered = s.inform(seg, req)
	case dhcpv4.MessageTypeNone:
		s.metrics.inc(&s.metrics.Malformed)
	default:
		s.metrics.inc(&s.metrics.Unsupported)
	}
	if !answered {
		return nil, dst, false
	}
	return s.encode(seg, req, a), replyDest(req, a.mt, giaddr), true
}

// replyDest applies RFC 2131 section 4.1. A reply to a client without an
// address goes to the limited broadcast address: unicasting to yiaddr
// would need an ARP entry planted first, and every client accepts the
// broadcast (the RFC allows it when unicast is not possible).
func replyDest(req *request, mt dhcpv4.MessageType, giaddr netip.Addr) netip.AddrPort {
	if giaddr.IsValid() {
		return netip.AddrPortFrom(giaddr, dhcpv4.ServerPort)
	}
	if mt == dhcpv4.MessageTypeNak {
		return bcast
	}
	if ci := req.clientIP(); ci.IsValid() {
		return netip.AddrPortFrom(ci, dhcpv4.ClientPort)
	}
	return bcast
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func (s *Server) trustedRelay(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.cfg.TrustedRelays {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (s *Server) segmentFor(giaddr netip.Addr) *segState {
	for _, seg := range s.segs {
		if seg.Subnet.Contains(giaddr) {
			return seg
		}
	}
	return nil
}

// admit applies blocking and the segment's approval mode. It returns
// whether to answer at all and whether the lease goes into quarantine.
func (s *Server) admit(ctx context.Context, seg *segState, req *request) (answer, quarantine bool) {
	st, err := s.cfg.Store.DeviceStatus(ctx, req.mac())
	lookupFailed := err != nil
	if lookupFailed {
		// Without an answer the device counts as unknown: quarantine and
		// deny segments fail closed, open segments keep working. But it is
		// not called unapproved: a database that could not answer is not
		// a finding about the device.
		s.metrics.inc(&s.metrics.StoreErrors)
		s.log.Warn("dhcp: device status", "mac", req.mac(), "err", err)
		st = DeviceStatus{}
	}
	if st.Blocked {
		s.metrics.inc(&s.metrics.Blocked)
		return false, false
	}
	if seg.Unknown.Welcomes() || st.Approved {
		return true, false
	}
	dev := s.device(seg, req, netip.Addr{}, s.now())
	if !lookupFailed {
		s.unapproved(seg, dev)
	}
	switch seg.Unknown {
	case policy.UnknownDeny:
		s.metrics.inc(&s.metrics.Denied)
		s.commit.record(nil, []Device{dev})
		return false, false
	case policy.UnknownQuarantine:
		return true, true
	}
	return true, false
}

// unapproved raises the finding, at most once per device, segment and hour.
func (s *Server) unapproved(seg *segState, dev Device) {
	key := seg.Name + "|" + dev.MAC.String()
	now := s.now()
	s.alertMu.Lock()
	at, seen := s.alerted[key]
	if seen && now.Sub(at) < alertEvery {
		s.alertMu.Unlock()
		return
	}
	s.alerted[key] = now
	s.alertMu.Unlock()
	// The log says it too, so the network manager sees strangers in the
	// journal whether or not anything acts on the finding.
	s.log.Warn("dhcp: unapproved device", "segment", seg.Name, "mac", dev.MAC.String(), "action", string(seg.Unknown), "hostname", dev.Hostname)
	// The label says what was seen: the device asked us for an address and
	// nobody approved it (inspect's "never asked" is another finding).
	ev := fmt.Sprintf("a device nobody approved asked for an address on %s; the segment's unknown_devices is %s", seg.Name, seg.Unknown)
	if dev.Hostname != "" {
		ev += "; it calls itself " + strconv.Quote(dev.Hostname)
	}
	if dev.Manufacturer != "" {
		ev += "; made by " + dev.Manufacturer
	}
	f := finding.NotApproved(finding.SourceDHCP, now, seg.Name, dev.MAC, dev.IP, ev)
	f.Proto = "dhcp"
	s.cfg.Findings.Offer(f)
	if s.cfg.OnUnapprovedDevice != nil {
		s.cfg.OnUnapprovedDevice(seg.Segment, dev)
	}
}

// newDeviceAllowed applies the segment's cap on never-seen MACs: one with a
// binding or an offer in the pool, or a device record, is not new. When the
// cap trips a finding says so, once per minute.
func (s *Server) newDeviceAllowed(ctx context.Context, seg *segState, req *request, mac string) bool {
	if seg.pool.knows(mac) {
		return true
	}
	st, err := s.cfg.Store.DeviceStatus(ctx, req.mac())
	if err == nil && st.Known {
		return true
	}
	now := s.now()
	ok, first := seg.newMACs.allow(now)
	if ok {
		return true
	}
	s.metrics.inc(&s.metrics.NewMACLimited)
	if first {
		s.log.Warn("dhcp: too many new devices, discovers refused for the rest of the minute", "segment", seg.Name, "limit", seg.newMACs.limit, "mac", mac)
		s.cfg.Findings.Offer(finding.Finding{Time: now, Source: finding.SourceDHCP, Class: FindingNewDeviceFlood,
			Segment: seg.Name, Proto: "dhcp", Detail: FindingNewDeviceFlood,
			Evidence: "more than " + strconv.Itoa(seg.newMACs.limit) + " devices never seen before asked for an address within a minute on " + seg.Name})
	}
	return false
}

func (s *Server) discover(ctx context.Context, seg *segState, req *request, lt later) (answer, bool) {
	mac := req.mac().String()
	if !s.newDeviceAllowed(ctx, seg, req, mac) {
		return answer{}, false
	}
	ok, quarantine := s.admit(ctx, seg, req)
	if !ok {
		return answer{}, false
	}
	ip, err := seg.pool.offer(mac, req.requestedIP(), s.now())
	if err != nil {
		s.metrics.inc(&s.metrics.PoolExhausted)
		if seg.pool.noteExhausted() {
			s.log.Warn("dhcp: pool exhausted", "segment", seg.Name)
			s.cfg.Findings.Offer(finding.Finding{Time: s.now(), Source: finding.SourceDHCP, Class: FindingPoolExhausted,
				Segment: seg.Name, Proto: "dhcp", Detail: "pool-exhausted",
				Evidence: "no free address in " + seg.RangeStart.String() + "-" + seg.RangeEnd.String()})
		}
		return answer{}, false
	}
	if seg.RapidCommit && !s.cfg.NoRapidCommit && req.rapid {
		return s.ack(ctx, seg, req, mac, ip, quarantine, true, lt)
	}
	s.metrics.inc(&s.metrics.Offers)
	return answer{mt: dhcpv4.MessageTypeOffer, yiaddr: ip, lease: true}, true
}

func (s *Server) request(ctx context.Context, seg *segState, req *request, lt later) (answer, bool) {
	mac := req.mac().String()
	sid := req.serverIdentifier()
	want := req.requestedIP()
	ciaddr := req.clientIP()
	now := s.now()
	var ip netip.Addr
	switch {
	case sid.IsValid(): // SELECTING
		if sid != seg.serverID() {
			seg.pool.cancelOffer(mac)
			s.metrics.inc(&s.metrics.Ignored)
			return answer{}, false
		}
		if !want.IsValid() {
			want = ciaddr
		}
		if !want.IsValid() {
			s.metrics.inc(&s.metrics.Malformed)
			return answer{}, false
		}
		ip = want
	case want.IsValid() && !ciaddr.IsValid(): // INIT-REBOOT
		if !seg.Subnet.Contains(want) {
			return s.nak(seg, req, "address not on this network")
		}
		holder, own, known := seg.pool.lookup(want, mac, now)
		switch {
		case holder != "" && holder != mac:
			return s.nak(seg, req, "address held by another client")
		case known && own != want:
			return s.nak(seg, req, "not your address")
		case !known:
			// RFC 2131 4.3.2: no record of the client, remain silent.
			s.metrics.inc(&s.metrics.Ignored)
			return answer{}, false
		}
		ip = want
	case ciaddr.IsValid(): // RENEWING or REBINDING
		if !seg.Subnet.Contains(ciaddr) {
			return s.nak(seg, req, "address not on this network")
		}
		ip = ciaddr
	default:
		s.metrics.inc(&s.metrics.Malformed)
		return answer{}, false
	}
	ok, quarantine := s.admit(ctx, seg, req)
	if !ok {
		return answer{}, false
	}
	if !seg.pool.canBind(ip, mac, now) {
		return s.nak(seg, req, "address not available")
	}
	return s.ack(ctx, seg, req, mac, ip, quarantine, false, lt)
}

// ack binds ip to the client, waits for the binding to be committed (and,
// under quarantine, for the enforcer), and only then builds the ACK. With
// lt set it does not wait: the rest runs when the group commit is done,
// and lt sends the ACK (see exchange).
func (s *Server) ack(ctx context.Context, seg *segState, req *request, mac string, ip netip.Addr, quarantine, rapid bool, lt later) (answer, bool) {
	now := s.now()
	// One allocation holds what the ACK needs until its commit is done:
	// the request (the lease keeps its client identifier and relay
	// information, and the ACK is encoded after the datagram's buffer is
	// reused), the lease and device the committer writes, the binding.
	var p *pendingAck
	if lt != nil {
		// Pooled: finish gives it back once its ACK is sent.
		p, _ = s.acks.Get().(*pendingAck)
	}
	if p == nil {
		p = new(pendingAck)
	}
	then := p.then
	*p = pendingAck{s: s, ctx: ctx, seg: seg, quarantine: quarantine, rapid: rapid, lt: lt, then: then}
	if p.then == nil {
		p.then = p.finish // a method value allocates: made once per pendingAck
	}
	req.cloneInto(&p.req)
	req = &p.req
	p.leases[0] = Lease{
		Segment: seg.Name,
		IP:      ip,
		// A copy of its own: the pool keeps the lease for hours, and a
		// slice of p would keep all of p.
		MAC:       append(net.HardwareAddr(nil), req.mac()...),
		ClientID:  req.clientID,
		Hostname:  clean(req.hostName(), 63),
		State:     StateBound,
		Start:     now,
		Expires:   now.Add(seg.Lease),
		Relay:     req.gatewayIP(),
		RelayInfo: req.relayInfo,
	}
	l := &p.leases[0]
	tok, ok := seg.pool.bindMAC(*l, mac)
	if !ok {
		return s.nak(seg, req, "address not available")
	}
	p.tok = tok
	p.devices[0] = s.device(seg, req, ip, now)
	p.pair = policy.Binding{Device: policy.Device{MAC: l.MAC, IP: ip}, Until: l.Expires}
	if lt == nil {
		err := s.commit.commit(ctx, p.leases[:], p.devices[:])
		return s.acked(ctx, seg, *l, tok, quarantine, rapid, err, func() error {
			return s.cfg.Binder.Bind(ctx, p.pair.Device, p.pair.Until)
		})
	}
	var bind *policy.Binding
	if s.cfg.Binder != nil {
		// Bound by the finisher with the rest of its batch.
		bind = &p.pair
	}
	if err := s.commit.commitThen(ctx, p.leases[:], p.devices[:], bind, p.then); err != nil {
		return s.acked(ctx, seg, *l, tok, quarantine, rapid, err, nil)
	}
	return answer{}, false // the ACK goes out through lt
}

// pendingAck is an ACK waiting for its group commit (see ack); finish,
// run by the committer's finisher, completes it.
type pendingAck struct {
	s                 *Server
	ctx               context.Context
	seg               *segState
	req               request
	leases            [1]Lease
	devices           [1]Device
	pair              policy.Binding
	tok               bindToken
	quarantine, rapid bool
	lt                later
	then              func(err, bindErr error) // finish, made once
}

func (p *pendingAck) finish(err, bindErr error) {
	a, ok := p.s.acked(p.ctx, p.seg, p.leases[0], p.tok, p.quarantine, p.rapid, err, func() error { return bindErr })
	if err != nil && bindErr == nil && p.s.cfg.Binder != nil {
		// The binder bound the pair while the lease was committing, and
		// the commit failed: acked gave the address back in memory, so
		// the kernel must not keep forwarding a lease that is not on disk.
		p.s.unbound(p.seg, p.pair.Device)
	}
	if ok {
		p.lt(p.s.encode(p.seg, &p.req, a), replyDest(&p.req, a.mt, p.req.gatewayIP()))
	}
	// Done: the committer copied the lease and device, the binder the
	// binding, and the pool and events hold copies of the lease (whose
	// slices are allocations of their own, not p's).
	s, then := p.s, p.then
	*p = pendingAck{then: then}
	s.acks.Put(p)
}

// acked finishes an ACK whose commit returned err: nothing but undoing the
// binding if the lease is not durable, else the kernel binding (bind does
// it, or reports how the finisher's batched binding went) and quarantine
// the ACK waits for.
func (s *Server) acked(ctx context.Context, seg *segState, l Lease, tok bindToken, quarantine, rapid bool, err error, bind func() error) (answer, bool) {
	ip := l.IP
	if err != nil {
		seg.pool.undo(tok)
		s.log.Error("dhcp: lease not committed, no ACK", "segment", seg.Name, "mac", l.MAC, "ip", ip, "err", err)
		return answer{}, false
	}
	if s.cfg.Binder != nil {
		// Bound before the ACK: a device that has its address can use it.
		if err := bind(); err != nil {
			s.metrics.inc(&s.metrics.BindErrors)
			s.log.Error("dhcp: binding failed, no ACK", "segment", seg.Name, "mac", l.MAC, "ip", ip, "err", err)
			return answer{}, false
		}
	}
	if quarantine {
		if err := s.cfg.Enforcer.Quarantine(ctx, policy.Device{MAC: l.MAC, IP: ip}); err != nil {
			s.metrics.inc(&s.metrics.QuarantineError)
			s.log.Error("dhcp: quarantine failed, no ACK", "segment", seg.Name, "mac", l.MAC, "ip", ip, "err", err)
			return answer{}, false
		}
		s.metrics.inc(&s.metrics.Quarantined)
	}
	seg.pool.noteAllocated()
	s.granted(l)
	s.metrics.inc(&s.metrics.Acks)
	return answer{mt: dhcpv4.MessageTypeAck, yiaddr: ip, lease: true, rapid: rapid}, true
}

// release ends a lease at the holder's request. A client releases from the
// address it holds (RFC 2131 4.4.6), so a RELEASE from any other source
// address is someone else's, and ignored.
func (s *Server) release(seg *segState, req *request, from netip.Addr, relayed bool) {
	ip := req.clientIP()
	if !ip.IsValid() {
		s.metrics.inc(&s.metrics.Malformed)
		return
	}
	if !relayed && from.Unmap() != ip {
		s.metrics.inc(&s.metrics.ForgedRelease)
		s.log.Warn("dhcp: release not from the address released, ignored", "segment", seg.Name, "ip", ip, "from", from, "mac", req.mac())
		return
	}
	l, ok := seg.pool.release(ip, req.mac().String(), s.now())
	if !ok {
		s.metrics.inc(&s.metrics.Ignored)
		return
	}
	s.metrics.inc(&s.metrics.Releases)
	s.commit.record([]Lease{l}, nil)
	s.unbind(seg, req.mac(), ip)
	s.released(l)
}

func (s *Server) decline(seg *segState, req *request) {
	ip := req.requestedIP()
	if !ip.IsValid() {
		s.metrics.inc(&s.metrics.Malformed)
		return
	}
	l, ok, late := seg.pool.decline(ip, req.mac().String(), s.now(), s.cfg.DeclineHold, declineWindow)
	if late {
		s.metrics.inc(&s.metrics.ForgedRelease)
		s.log.Warn("dhcp: decline long after the lease was granted, ignored", "segment", seg.Name, "ip", ip, "mac", req.mac())
		return
	}
	if !ok {
		s.metrics.inc(&s.metrics.Ignored)
		return
	}
	s.metrics.inc(&s.metrics.Declines)
	s.unbind(seg, req.mac(), ip)
	s.log.Warn("dhcp: address declined, held back", "segment", seg.Name, "ip", ip, "by", req.mac(), "until", l.Expires)
	s.commit.record([]Lease{l}, nil)
}

// unbound puts the kernel's binding of d back to what the pool holds after
// a failed commit was undone: the previous lease's end when the client
// already held the address (a renewal), else no binding at all. A failure
// is logged; the element then runs out with the lease's time.
func (s *Server) unbound(seg *segState, d policy.Device) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	if until, ok := seg.pool.heldUntil(d.IP, d.MAC.String(), s.now()); ok {
		err = s.cfg.Binder.Bind(ctx, d, until)
	} else {
		err = s.cfg.Binder.Unbind(ctx, d)
	}
	if err != nil {
		s.metrics.inc(&s.metrics.BindErrors)
		s.log.Error("dhcp: taking back the binding of a lease that was not committed", "segment", seg.Name, "mac", d.MAC, "ip", d.IP, "err", err)
	}
}

// unbind tells the Binder a client gave its address up. A failure leaves
// the element to run out with the lease's time; it is logged.
func (s *Server) unbind(seg *segState, mac net.HardwareAddr, ip netip.Addr) {
	if s.cfg.Binder == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.cfg.Binder.Unbind(ctx, policy.Device{MAC: mac, IP: ip}); err != nil {
		s.log.Warn("dhcp: unbind released address", "segment", seg.Name, "mac", mac, "ip", ip, "err", err)
	}
}

func (s *Server) inform(seg *segState, req *request) (answer, bool) {
	ci := req.clientIP()
	if !ci.IsValid() || !seg.Subnet.Contains(ci) {
		s.metrics.inc(&s.metrics.Ignored)
		return answer{}, false
	}
	s.commit.record(nil, []Device{s.device(seg, req, ci, s.now())})
	s.metrics.inc(&s.metrics.Informs)
	return answer{mt: dhcpv4.MessageTypeAck, ciaddr: ci}, true
}

func (s *Server) nak(seg *segState, req *request, why string) (answer, bool) {
	s.metrics.inc(&s.metrics.Naks)
	return answer{mt: dhcpv4.MessageTypeNak, why: why, broadcast: req.gatewayIP().IsValid()}, true
}

// device describes the client from what req tells.
func (s *Server) device(seg *segState, req *request, ip netip.Addr, now time.Time) Device {
	mac := append(net.HardwareAddr(nil), req.mac()...)
	var prl strings.Builder
	for i, c := range req.prl {
		if i > 0 {
			prl.WriteByte(',')
		}
		prl.WriteString(strconv.Itoa(int(c)))
	}
	host := clean(req.hostName(), 63)
	vendor := clean(req.vendor, 128)
	return Device{
		MAC:          mac,
		FirstSeen:    now,
		LastSeen:     now,
		Segment:      seg.Name,
		IP:           ip,
		Hostname:     host,
		VendorClass:  vendor,
		Fingerprint:  prl.String(),
		OS:           GuessOS(vendor, prl.String(), host),
		Manufacturer: s.oui.Manufacturer(mac),
		Randomised:   Randomised(mac),
	}
}

// clean keeps printable characters of a client-supplied string, at most max
// bytes, so that logs and admin pages show what was sent without control
// characters.
func clean[V ~[]byte | ~string](v V, max int) string {
	var b strings.Builder
	for _, r := range string(v) {
		if b.Len()+utf8.RuneLen(r) > max {
			break
		}
		if unicode.IsPrint(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}
