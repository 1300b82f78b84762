package dhcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/insomniacslk/dhcp/dhcpv4"
)

// The DHCP attacks of issue 13, first at the handler (with the frame's
// Ethernet source passed as the link socket reports it), then over real
// sockets in namespaces.

// sendHW is send with the frame's Ethernet source.
func (h *harness) sendHW(iface string, src netip.AddrPort, hwsrc string, b []byte) *dhcpv4.DHCPv4 {
	h.t.Helper()
	out, _, ok := h.s.handle(context.Background(), h.s.byIface[iface], src, hw(h.t, hwsrc), b)
	if !ok {
		return nil
	}
	r, err := dhcpv4.FromBytes(out)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

func TestRapidCommitIsOffUnlessTheSegmentOptsIn(t *testing.T) {
	h := newHarness(t, newMemStore(), nil)
	rapid := dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionRapidCommit, nil))
	// staff does not opt in (the default, as the daemon's dhcpSegments
	// leaves it: cmd/gatehouse's TestDHCPSegmentsFromTheConfiguration).
	r, _ := h.send("s0", clientPort, msg(t, "00:1c:b3:00:10:01", dhcpv4.MessageTypeDiscover, rapid))
	if r == nil || r.MessageType() != dhcpv4.MessageTypeOffer {
		t.Fatalf("rapid-commit discover on a segment without rapid commit: %v, want an OFFER", r)
	}
}

func TestMadeUpMACsAreRefused(t *testing.T) {
	h := newHarness(t, newMemStore(), nil)
	const attacker = "00:1c:b3:00:66:01"
	for i := range 30 {
		fake := fmt.Sprintf("02:66:00:00:00:%02x", i)
		if r := h.sendHW("v0", clientPort, attacker, msg(t, fake, dhcpv4.MessageTypeDiscover)); r != nil {
			t.Fatalf("discover for made-up %s from %s answered: %v", fake, attacker, r)
		}
	}
	if n := h.s.metrics.SpoofedMAC.Load(); n != 30 {
		t.Errorf("spoofed-MAC drops = %d, want 30", n)
	}
	// The pool is untouched: a real visitor gets an address.
	if r := h.sendHW("v0", clientPort, "00:1c:b3:00:66:02", msg(t, "00:1c:b3:00:66:02", dhcpv4.MessageTypeDiscover)); r == nil || r.MessageType() != dhcpv4.MessageTypeOffer {
		t.Fatalf("a real visitor after the flood: %v, want an OFFER", r)
	}
}

func TestNewMACCapRaisesAFinding(t *testing.T) {
	h := newHarness(t, newMemStore(), func(c *Config) {
		for i := range c.Segments {
			c.Segments[i].NewDevicesPerMinute = 5
			c.Segments[i].RangeEnd = c.Segments[i].RangeStart.Next().Next().Next().Next().Next().Next().Next().Next().Next().Next()
		}
	})
	known := "00:1c:b3:00:77:ff"
	h.dora("v0", known) // a device with a binding is never "new"
	// L2 spoofing too (frame source = chaddr): only the cap stands.
	answered := 0
	for i := range 20 {
		mac := fmt.Sprintf("02:77:00:00:00:%02x", i)
		if r := h.sendHW("v0", clientPort, mac, msg(t, mac, dhcpv4.MessageTypeDiscover)); r != nil {
			answered++
		}
	}
	if answered != 4 { // 5 a minute, one of them spent on the known device's first visit
		t.Errorf("%d of 20 new MACs answered in a minute, want 4", answered)
	}
	if r := h.sendHW("v0", clientPort, known, msg(t, known, dhcpv4.MessageTypeDiscover)); r == nil {
		t.Error("a known device was refused while the cap was tripped")
	}
	if floods := len(h.found.Class(FindingNewDeviceFlood)); floods != 1 {
		t.Errorf("%d new-device-flood findings, want 1 for the minute", floods)
	}
	h.clk.Advance(time.Minute)
	mac := "02:77:00:00:01:00"
	if r := h.sendHW("v0", clientPort, mac, msg(t, mac, dhcpv4.MessageTypeDiscover)); r == nil {
		t.Error("a new MAC in the next minute was refused")
	}
}

func TestForgedDeclineAndReleaseDoNotEndALease(t *testing.T) {
	h := newHarness(t, newMemStore(), nil)
	const victim = "00:1c:b3:00:88:01"
	ip := h.dora("v0", victim)
	h.clk.Advance(10 * time.Minute)

	// From the attacker's own frame: dropped as spoofed.
	if r := h.sendHW("v0", clientPort, "00:1c:b3:00:88:02", msg(t, victim, dhcpv4.MessageTypeDecline, withRequested(ip.String()), withServerID("10.40.0.1"))); r != nil {
		t.Fatalf("forged decline answered: %v", r)
	}
	// With the frame forged too, 10 minutes into the lease: too late.
	h.sendHW("v0", clientPort, victim, msg(t, victim, dhcpv4.MessageTypeDecline, withRequested(ip.String()), withServerID("10.40.0.1")))
	// A release from another address.
	h.sendHW("v0", netip.AddrPortFrom(netip.MustParseAddr("10.40.0.66"), 68), victim, msg(t, victim, dhcpv4.MessageTypeRelease, dhcpv4.WithClientIP(ip.AsSlice()), withServerID("10.40.0.1")))
	if h.s.metrics.Declines.Load() != 0 || h.s.metrics.Releases.Load() != 0 {
		t.Fatalf("declines %d, releases %d honoured, want none", h.s.metrics.Declines.Load(), h.s.metrics.Releases.Load())
	}
	if h.s.metrics.SpoofedMAC.Load() != 1 || h.s.metrics.ForgedRelease.Load() != 2 {
		t.Errorf("spoofed %d, forged release/decline %d; want 1 and 2", h.s.metrics.SpoofedMAC.Load(), h.s.metrics.ForgedRelease.Load())
	}
	// The victim renews as before.
	r := h.sendHW("v0", netip.AddrPortFrom(ip, 68), victim, msg(t, victim, dhcpv4.MessageTypeRequest, dhcpv4.WithClientIP(ip.AsSlice())))
	if r == nil || r.MessageType() != dhcpv4.MessageTypeAck {
		t.Fatalf("victim's renewal after the forgeries: %v, want ACK", r)
	}
	// A genuine decline right after binding still works.
	const fresh = "00:1c:b3:00:88:03"
	fip := h.dora("v0", fresh)
	h.sendHW("v0", clientPort, fresh, msg(t, fresh, dhcpv4.MessageTypeDecline, withRequested(fip.String()), withServerID("10.40.0.1")))
	if h.s.metrics.Declines.Load() != 1 {
		t.Errorf("a decline right after the ACK was not honoured")
	}
}

func TestTrustedRelayAddressOnASegmentGetsNothing(t *testing.T) {
	h := newHarness(t, newMemStore(), nil)
	// A visitor claims the trusted relay's address and a staff giaddr.
	forged := msg(t, "00:1c:b3:00:99:01", dhcpv4.MessageTypeDiscover, dhcpv4.WithGatewayIP(net.ParseIP("10.10.0.1")))
	if r := h.sendHW("v0", relayPort, "00:1c:b3:00:99:01", forged); r != nil {
		t.Fatalf("relayed discover on the visitor interface answered with %v", r.YourIPAddr)
	}
	if h.s.metrics.RelayOnSegment.Load() != 1 {
		t.Error("not counted as a relayed message on a segment interface")
	}
}

func TestHandlerPanicIsRecoveredAndCounted(t *testing.T) {
	st := &panicStore{memStore: newMemStore(), mac: "00:1c:b3:00:aa:01"}
	h := newHarness(t, st.memStore, nil)
	h.s.cfg.Store = st
	out, _, ok := h.s.handleSafely(context.Background(), h.s.byIface["v0"], clientPort, nil, msg(t, st.mac, dhcpv4.MessageTypeDiscover), nil)
	if ok || out != nil {
		t.Fatal("a panicking exchange produced a reply")
	}
	if h.s.metrics.Panics.Load() != 1 {
		t.Errorf("panics = %d, want 1", h.s.metrics.Panics.Load())
	}
	if _, _, ok := h.s.handleSafely(context.Background(), h.s.byIface["v0"], clientPort, nil, msg(t, "00:1c:b3:00:aa:02", dhcpv4.MessageTypeDiscover), nil); !ok {
		t.Error("the next client was not answered")
	}
}

// panicStore panics on the device lookup of one MAC: a bug one packet can
// reach, as a fuzzer would find.
type panicStore struct {
	*memStore
	mac string
}

func (p *panicStore) DeviceStatus(ctx context.Context, mac net.HardwareAddr) (DeviceStatus, error) {
	if mac.String() == p.mac {
		panic("injected: device lookup of " + p.mac)
	}
	return p.memStore.DeviceStatus(ctx, mac)
}

func TestPerInterfaceRateLimit(t *testing.T) {
	b := newBucket(10)
	now := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	n := 0
	for range 100 {
		if b.take(now) {
			n++
		}
	}
	if n != 20 {
		t.Errorf("burst let %d through, want 20", n)
	}
	if !b.take(now.Add(200 * time.Millisecond)) {
		t.Error("refilled bucket refused")
	}
}

// TestHostileClientsOnARealSegment runs the attacks with real sockets: the
// server on ListenLink in a router namespace, an attacker and a victim in
// their own namespaces on the visitor bridge, dhclient as the victim.
func TestHostileClientsOnARealSegment(t *testing.T) {
	requireNetAdmin(t, "udhcpc")
	b := newBed(t)
	brV, brS := "ghv"+b.id[:4], "ghs"+b.id[:4]
	b.segment(brV, "10.40.0.1/24")
	b.segment(brS, "10.10.0.1/24")
	segs := e2eSegments(brV, brS)
	segs[0].RapidCommit = false // the default
	segs[0].RangeEnd = netip.MustParseAddr("10.40.0.70")
	srv, _ := b.serveWith(filepath.Join(b.dir, "gatehouse.db"), Config{Segments: segs,
		TrustedRelays: []netip.Prefix{netip.MustParsePrefix("10.40.0.0/24")}})
	attackerNS := b.client(brV, "02:00:00:66:00:01")
	victimNS := b.client(brV, "00:16:3e:66:00:02")
	conn := clientConn(t, attackerNS)
	bcastDst := &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ServerPort}

	// Pool exhaustion: 21 rapid-commit discovers with made-up MACs.
	for i := range 21 {
		m, err := dhcpv4.New(dhcpv4.WithHwAddr(net.HardwareAddr{0x02, 0x66, 0, 0, 0, byte(i)}), dhcpv4.WithMessageType(dhcpv4.MessageTypeDiscover),
			dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionRapidCommit, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.WriteTo(m.ToBytes(), bcastDst); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the made-up MACs counted", 10*time.Second, func() bool { return srv.Metrics().SpoofedMAC.Load() >= 21 })
	if n := len(srv.Leases()); n != 0 {
		t.Fatalf("%d leases after the made-up MACs, want 0: %v", n, srv.Leases())
	}

	// The victim gets its lease from a real client.
	out := sh(t, "ip", "netns", "exec", victimNS, "udhcpc", "-q", "-n", "-f", "-i", "eth0", "-s", "/bin/true", "-t", "5", "-T", "1")
	if !strings.Contains(out, "lease of 10.40.0.") {
		t.Fatalf("the victim got no lease after the flood:\n%s", out)
	}
	var victimIP netip.Addr
	for _, l := range srv.Leases() {
		if l.MAC.String() == "00:16:3e:66:00:02" {
			victimIP = l.IP
		}
	}
	if !victimIP.IsValid() {
		t.Fatalf("no lease for the victim: %v", srv.Leases())
	}

	// A forged DECLINE with the victim's MAC from the attacker.
	m, err := dhcpv4.New(dhcpv4.WithHwAddr(net.HardwareAddr{0x00, 0x16, 0x3e, 0x66, 0, 2}), dhcpv4.WithMessageType(dhcpv4.MessageTypeDecline),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(victimIP.AsSlice())), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 40, 0, 1))))
	if err != nil {
		t.Fatal(err)
	}
	before := srv.Metrics().SpoofedMAC.Load()
	if _, err := conn.WriteTo(m.ToBytes(), bcastDst); err != nil {
		t.Fatal(err)
	}
	// A relayed DISCOVER claiming the staff gateway as giaddr, on the
	// visitor segment.
	r, err := dhcpv4.New(dhcpv4.WithHwAddr(net.HardwareAddr{0x02, 0, 0, 0x66, 0, 1}), dhcpv4.WithMessageType(dhcpv4.MessageTypeDiscover),
		dhcpv4.WithGatewayIP(net.IPv4(10, 10, 0, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.WriteTo(r.ToBytes(), bcastDst); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the forgeries counted", 10*time.Second, func() bool {
		return srv.Metrics().SpoofedMAC.Load() > before && srv.Metrics().RelayOnSegment.Load() >= 1
	})
	for _, l := range srv.Leases() {
		if l.Segment == "staff" {
			t.Errorf("a visitor got a staff lease: %+v", l)
		}
		if l.IP == victimIP && !l.Active(time.Now()) {
			t.Errorf("the victim's lease ended: %+v", l)
		}
	}
	if srv.Metrics().Declines.Load() != 0 {
		t.Error("the forged decline was honoured")
	}
}

// fakeBinder records the bindings the server asks for.
type fakeBinder struct {
	mu      sync.Mutex
	bound   map[string]time.Time // "mac/ip" -> until
	fail    error
	failMAC string // refuses this MAC's bindings alone
	calls   int    // Bind calls
	batches [][]policy.Binding
}

func (b *fakeBinder) Bind(_ context.Context, d policy.Device, until time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	return b.bindLocked(d, until)
}

func (b *fakeBinder) bindLocked(d policy.Device, until time.Time) error {
	if b.fail != nil {
		return b.fail
	}
	if d.MAC.String() == b.failMAC {
		return errors.New("element refused")
	}
	b.bound[d.MAC.String()+"/"+d.IP.String()] = until
	return nil
}

func (b *fakeBinder) BindMany(_ context.Context, bs []policy.Binding) []error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batches = append(b.batches, bs)
	errs := make([]error, len(bs))
	for i, p := range bs {
		errs[i] = b.bindLocked(p.Device, p.Until)
	}
	return errs
}

func (b *fakeBinder) Unbind(_ context.Context, d policy.Device) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.bound, d.MAC.String()+"/"+d.IP.String())
	return nil
}

func (b *fakeBinder) has(mac string, ip netip.Addr) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.bound[mac+"/"+ip.String()]
	return ok
}

func TestLeasesAndReservationsFeedTheBindings(t *testing.T) {
	st := newMemStore()
	const printer = "00:1c:b3:00:bb:09"
	st.resv = []Reservation{{Segment: "staff", MAC: hw(t, printer), IP: netip.MustParseAddr("10.10.0.9")}}
	b := &fakeBinder{bound: map[string]time.Time{}}
	h := newHarness(t, st, func(c *Config) { c.Binder = b })
	if !b.has(printer, netip.MustParseAddr("10.10.0.9")) {
		t.Error("a reservation is not bound at start")
	}
	const mac = "00:1c:b3:00:bb:01"
	ip := h.dora("v0", mac)
	if !b.has(mac, ip) {
		t.Fatal("a lease was acknowledged without its binding")
	}
	h.send("v0", netip.AddrPortFrom(ip, 68), msg(t, mac, dhcpv4.MessageTypeRelease, dhcpv4.WithClientIP(ip.AsSlice())))
	if b.has(mac, ip) {
		t.Error("a released lease is still bound")
	}
	// A restart binds the leases that are still active.
	const other = "00:1c:b3:00:bb:02"
	oip := h.dora("v0", other)
	h.eventually(func() bool { _, ok := st.lease("visitor", oip); return ok }, "lease stored")
	b2 := &fakeBinder{bound: map[string]time.Time{}}
	newHarness(t, st, func(c *Config) { c.Binder = b2 })
	if !b2.has(other, oip) {
		t.Error("an active lease was not bound again at start")
	}
	// No binding, no ACK.
	b.fail = errors.New("netlink down")
	offer, _ := h.send("v0", clientPort, msg(t, "00:1c:b3:00:bb:03", dhcpv4.MessageTypeDiscover))
	if offer == nil {
		t.Fatal("no offer")
	}
	ack, _ := h.send("v0", clientPort, msg(t, "00:1c:b3:00:bb:03", dhcpv4.MessageTypeRequest, withRequested(offer.YourIPAddr.String()), withServerID("10.40.0.1")))
	if ack != nil && ack.MessageType() == dhcpv4.MessageTypeAck {
		t.Error("acknowledged a lease whose binding failed")
	}
}

// The daemon's restore step: before the enforcer's first Apply, and before
// Run, the reservations and the leases still active are bound; an expired
// lease and a reservation in no segment are not.
func TestRestoreBindsReservationsAndActiveLeases(t *testing.T) {
	now := time.Date(2026, 1, 12, 8, 0, 0, 0, time.UTC)
	st := newMemStore()
	const printer, phone, gone, stray = "00:1c:b3:00:bb:09", "00:1c:b3:00:bb:01", "00:1c:b3:00:bb:02", "00:1c:b3:00:bb:03"
	st.resv = []Reservation{
		{Segment: "staff", MAC: hw(t, printer), IP: netip.MustParseAddr("10.10.0.9")},
		{Segment: "elsewhere", MAC: hw(t, stray), IP: netip.MustParseAddr("192.0.2.9")},
	}
	active, expired := netip.MustParseAddr("10.40.0.50"), netip.MustParseAddr("10.40.0.51")
	st.leases["visitor|"+active.String()] = Lease{Segment: "visitor", IP: active, MAC: hw(t, phone), State: StateBound, Start: now.Add(-time.Hour), Expires: now.Add(time.Hour)}
	st.leases["visitor|"+expired.String()] = Lease{Segment: "visitor", IP: expired, MAC: hw(t, gone), State: StateBound, Start: now.Add(-2 * time.Hour), Expires: now.Add(-time.Minute)}
	b := &fakeBinder{bound: map[string]time.Time{}}
	s, err := New(Config{Segments: testSegments(), Store: st, Binder: b, Enforcer: &enforcer{}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.Restore(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 || !b.has(printer, netip.MustParseAddr("10.10.0.9")) || !b.has(phone, active) || len(b.bound) != 2 {
		t.Errorf("restored %d bindings: %v; want the printer's reservation and the phone's active lease", n, b.bound)
	}
	// Without a binder (no segment binds MACs to addresses) there is nothing to restore.
	s, err = New(Config{Segments: testSegments(), Store: st, Enforcer: &enforcer{}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.Restore(context.Background()); n != 0 || err != nil {
		t.Errorf("restore without a binder: %d, %v", n, err)
	}
}
