package dhcp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/alert/finding/findingtest"
	"github.com/gatehouse-net/gatehouse/internal/testkit"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/insomniacslk/dhcp/dhcpv4"
)

// memStore is an in-memory LeaseStore with the same replacement rules as
// the SQL one, plus failure injection.
type memStore struct {
	mu      sync.Mutex
	leases  map[string]Lease // segment|ip
	devices map[string]Device
	status  map[string]DeviceStatus
	resv    []Reservation
	fail    error
	// statusFail makes DeviceStatus fail (a locked or broken database).
	statusFail error
	batches    int
	// gate, when set, runs at the start of every SaveBatch (outside mu).
	gate func()
}

func newMemStore() *memStore {
	return &memStore{leases: map[string]Lease{}, devices: map[string]Device{}, status: map[string]DeviceStatus{}}
}

func (m *memStore) LoadLeases(context.Context) ([]Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Lease
	for _, l := range m.leases {
		out = append(out, l)
	}
	return out, nil
}

func (m *memStore) LoadReservations(context.Context) ([]Reservation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Reservation(nil), m.resv...), nil
}

func (m *memStore) SaveBatch(_ context.Context, leases []Lease, devices []Device) error {
	if m.gate != nil {
		m.gate()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.batches++
	if m.fail != nil {
		return m.fail
	}
	for _, l := range leases {
		if len(l.MAC) > 0 {
			for k, o := range m.leases {
				if o.Segment == l.Segment && o.MAC.String() == l.MAC.String() && o.IP != l.IP {
					delete(m.leases, k)
				}
			}
		}
		m.leases[l.Segment+"|"+l.IP.String()] = l
	}
	for _, d := range devices {
		k := d.MAC.String()
		if o, ok := m.devices[k]; ok && o.FirstSeen.Before(d.FirstSeen) {
			d.FirstSeen = o.FirstSeen
		}
		m.devices[k] = d
		st := m.status[k]
		st.Known = true
		m.status[k] = st
	}
	return nil
}

func (m *memStore) DeviceStatus(_ context.Context, mac net.HardwareAddr) (DeviceStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.statusFail != nil {
		return DeviceStatus{}, m.statusFail
	}
	return m.status[mac.String()], nil
}

func (m *memStore) lease(seg string, ip netip.Addr) (Lease, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.leases[seg+"|"+ip.String()]
	return l, ok
}

func (m *memStore) device(mac string) (Device, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.devices[mac]
	return d, ok
}

func (m *memStore) setStatus(mac string, st DeviceStatus) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.status[mac] = st
}

func (m *memStore) setFail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = err
}

type enforcer struct {
	mu   sync.Mutex
	got  []netip.Addr
	fail error
}

func (e *enforcer) Quarantine(_ context.Context, d policy.Device) error {
	ip := d.IP
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fail != nil {
		return e.fail
	}
	e.got = append(e.got, ip)
	return nil
}

var (
	errDisk    = errors.New("disk on fire")
	portalURI  = "https://portal.school.example/api/captive"
	relayAddr  = netip.MustParseAddr("10.99.0.2")
	relayPort  = netip.AddrPortFrom(relayAddr, 67)
	clientPort = netip.AddrPortFrom(netip.IPv4Unspecified(), 68)
)

func testSegments() []Segment {
	return []Segment{
		{Name: "visitor", Interface: "v0", Subnet: netip.MustParsePrefix("10.40.0.0/24"), Gateway: netip.MustParseAddr("10.40.0.1"),
			RangeStart: netip.MustParseAddr("10.40.0.50"), RangeEnd: netip.MustParseAddr("10.40.0.70"), Lease: time.Hour, PortalURI: portalURI,
			RapidCommit: true},
		{Name: "staff", Interface: "s0", Subnet: netip.MustParsePrefix("10.10.0.0/24"), Gateway: netip.MustParseAddr("10.10.0.1"),
			RangeStart: netip.MustParseAddr("10.10.0.50"), RangeEnd: netip.MustParseAddr("10.10.0.52"), Lease: 8 * time.Hour,
			Unknown: policy.UnknownAlert, DomainName: "staff.school.example"},
		{Name: "pupil", Interface: "p0", Subnet: netip.MustParsePrefix("10.20.0.0/24"), Gateway: netip.MustParseAddr("10.20.0.1"),
			RangeStart: netip.MustParseAddr("10.20.0.50"), RangeEnd: netip.MustParseAddr("10.20.0.99"), Lease: 8 * time.Hour, Unknown: policy.UnknownQuarantine},
		{Name: "lab", Interface: "l0", Subnet: netip.MustParsePrefix("10.30.0.0/24"), Gateway: netip.MustParseAddr("10.30.0.1"),
			RangeStart: netip.MustParseAddr("10.30.0.50"), RangeEnd: netip.MustParseAddr("10.30.0.99"), Lease: 4 * time.Hour, Unknown: policy.UnknownDeny},
		{Name: "annexe", Subnet: netip.MustParsePrefix("10.50.0.0/24"), Gateway: netip.MustParseAddr("10.50.0.1"), ServerID: netip.MustParseAddr("10.99.0.1"),
			RangeStart: netip.MustParseAddr("10.50.0.100"), RangeEnd: netip.MustParseAddr("10.50.0.110"), Lease: time.Hour},
	}
}

type harness struct {
	t     testing.TB
	s     *Server
	st    *memStore
	found *findingtest.Collector
	enf   *enforcer
	clk   *testkit.Clock
}

// newHarness builds a server over st with its committer running; no
// sockets are opened: packets go straight to the handler.
func newHarness(t testing.TB, st *memStore, mod func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, st: st, found: &findingtest.Collector{}, enf: &enforcer{}, clk: testkit.NewClock(time.Date(2026, 1, 12, 8, 0, 0, 0, time.UTC))}
	cfg := Config{
		Segments:      testSegments(),
		Store:         st,
		Findings:      h.found,
		Enforcer:      h.enf,
		Now:           h.clk.Now,
		TrustedRelays: []netip.Prefix{netip.MustParsePrefix("10.99.0.0/24")},
	}
	if mod != nil {
		mod(&cfg)
	}
	s, stop := loadedServer(t, cfg)
	t.Cleanup(stop)
	h.s = s
	return h
}

// loadedServer is New(cfg) with its state loaded and its committer
// running, no sockets open; stop ends the committer and waits for it.
func loadedServer(tb testing.TB, cfg Config) (s *Server, stop func()) {
	tb.Helper()
	s, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.load(context.Background()); err != nil {
		tb.Fatal(err)
	}
	stopc := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.commit.run(context.Background(), stopc)
	}()
	return s, func() { close(stopc); <-done }
}

func hw(t testing.TB, s string) net.HardwareAddr {
	t.Helper()
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func msg(t testing.TB, mac string, mt dhcpv4.MessageType, mods ...dhcpv4.Modifier) []byte {
	t.Helper()
	m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(hw(t, mac)), dhcpv4.WithMessageType(mt)}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m.ToBytes()
}

func withRequested(ip string) dhcpv4.Modifier {
	return dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP(ip)))
}

func withServerID(ip string) dhcpv4.Modifier {
	return dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP(ip)))
}

// send hands b to the handler as if it arrived on iface ("" for a
// relay-only socket) from src, and parses the reply.
func (h *harness) send(iface string, src netip.AddrPort, b []byte) (*dhcpv4.DHCPv4, netip.AddrPort) {
	h.t.Helper()
	var recv *segState
	if iface != "" {
		recv = h.s.byIface[iface]
		if recv == nil {
			h.t.Fatalf("no segment on %s", iface)
		}
	}
	out, dst, ok := h.s.handle(context.Background(), recv, src, nil, b)
	if !ok {
		return nil, dst
	}
	r, err := dhcpv4.FromBytes(out)
	if err != nil {
		h.t.Fatalf("server sent an unparseable reply: %v", err)
	}
	return r, dst
}

// dora runs DISCOVER/OFFER/REQUEST/ACK on iface and returns the address.
func (h *harness) dora(iface, mac string, mods ...dhcpv4.Modifier) netip.Addr {
	h.t.Helper()
	offer, _ := h.send(iface, clientPort, msg(h.t, mac, dhcpv4.MessageTypeDiscover, mods...))
	if offer == nil || offer.MessageType() != dhcpv4.MessageTypeOffer {
		h.t.Fatalf("%s on %s: no offer (%v)", mac, iface, offer)
	}
	req := append([]dhcpv4.Modifier{withRequested(offer.YourIPAddr.String()), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(offer.ServerIdentifier()))}, mods...)
	ack, _ := h.send(iface, clientPort, msg(h.t, mac, dhcpv4.MessageTypeRequest, req...))
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck {
		h.t.Fatalf("%s on %s: no ack (%v)", mac, iface, ack)
	}
	return addr4(ack.YourIPAddr)
}
