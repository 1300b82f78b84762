package dhcp

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/insomniacslk/dhcp/dhcpv4"
)

func TestOfferCarriesTheSegmentsOptionsAndPortalURIOnlyOnPortalSegments(t *testing.T) {
	st := newMemStore()
	st.setStatus("00:1c:b3:00:00:01", DeviceStatus{Known: true, Approved: true})
	h := newHarness(t, st, nil)
	for _, tc := range []struct {
		iface, mac string
		lo, hi     string
		gw, domain string
		lease      time.Duration
		wantPortal bool
		mask       net.IPMask
	}{
		{"v0", "00:1c:b3:00:00:02", "10.40.0.50", "10.40.0.70", "10.40.0.1", "", time.Hour, true, net.CIDRMask(24, 32)},
		{"s0", "00:1c:b3:00:00:01", "10.10.0.50", "10.10.0.52", "10.10.0.1", "staff.school.example", 8 * time.Hour, false, net.CIDRMask(24, 32)},
	} {
		t.Run(tc.iface, func(t *testing.T) {
			offer, dst := h.send(tc.iface, clientPort, msg(t, tc.mac, dhcpv4.MessageTypeDiscover))
			if offer == nil || offer.MessageType() != dhcpv4.MessageTypeOffer {
				t.Fatalf("no offer: %v", offer)
			}
			ip := addr4(offer.YourIPAddr)
			if ip.Less(netip.MustParseAddr(tc.lo)) || netip.MustParseAddr(tc.hi).Less(ip) {
				t.Errorf("offered %v outside %s-%s", ip, tc.lo, tc.hi)
			}
			if dst != bcast {
				t.Errorf("offer to a client without an address sent to %v, want broadcast", dst)
			}
			if r := offer.Router(); len(r) != 1 || r[0].String() != tc.gw {
				t.Errorf("router %v, want %s", r, tc.gw)
			}
			if d := offer.DNS(); len(d) != 1 || d[0].String() != tc.gw {
				t.Errorf("dns %v, want the gateway's DNS guard %s", d, tc.gw)
			}
			if sid := offer.ServerIdentifier(); sid.String() != tc.gw {
				t.Errorf("server id %v", sid)
			}
			if got := offer.IPAddressLeaseTime(0); got != tc.lease {
				t.Errorf("lease time %v, want %v", got, tc.lease)
			}
			if !bytes.Equal(offer.SubnetMask(), tc.mask) {
				t.Errorf("mask %v", offer.SubnetMask())
			}
			if offer.DomainName() != tc.domain {
				t.Errorf("domain %q, want %q", offer.DomainName(), tc.domain)
			}
			uri := offer.Options.Get(dhcpv4.OptionURL)
			if tc.wantPortal && string(uri) != portalURI {
				t.Errorf("option 114 = %q, want %q", uri, portalURI)
			}
			if !tc.wantPortal && uri != nil {
				t.Errorf("option 114 on a segment without a portal: %q", uri)
			}
		})
	}
}

func TestAckIsSentOnlyAfterTheLeaseIsCommitted(t *testing.T) {
	st := newMemStore()
	h := newHarness(t, st, nil)
	mac := "00:1c:b3:00:00:10"
	offer, _ := h.send("v0", clientPort, msg(t, mac, dhcpv4.MessageTypeDiscover))
	req := msg(t, mac, dhcpv4.MessageTypeRequest, withRequested(offer.YourIPAddr.String()), withServerID("10.40.0.1"),
		dhcpv4.WithOption(dhcpv4.OptHostName("tablet-7")))

	st.setFail(errDisk)
	if ack, _ := h.send("v0", clientPort, req); ack != nil {
		t.Fatalf("ACK sent although the commit failed: %v", ack)
	}
	if l, ok := st.lease("visitor", addr4(offer.YourIPAddr)); ok {
		t.Fatalf("lease stored although the commit failed: %+v", l)
	}
	if got := h.s.metrics.CommitErrors.Load(); got != 1 {
		t.Errorf("commit errors %d, want 1", got)
	}
	for _, l := range h.s.Leases() {
		if l.State == StateBound {
			t.Fatalf("failed commit left a binding in memory: %+v", l)
		}
	}

	st.setFail(nil)
	ack, _ := h.send("v0", clientPort, req)
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck {
		t.Fatalf("no ACK once the store works: %v", ack)
	}
	l, ok := st.lease("visitor", addr4(ack.YourIPAddr))
	if !ok || l.MAC.String() != mac || l.State != StateBound || l.Hostname != "tablet-7" || !l.Expires.Equal(h.clk.Now().Add(time.Hour)) {
		t.Fatalf("stored lease %+v %v", l, ok)
	}
}

// TestMessageTypes walks each message type through the states that decide
// its answer.
func TestMessageTypes(t *testing.T) {
	const a, b = "00:1c:b3:00:00:0a", "00:1c:b3:00:00:0b"
	type result struct {
		mt  dhcpv4.MessageType // MessageTypeNone: no reply
		dst netip.AddrPort
	}
	cases := []struct {
		name  string
		setup func(h *harness) (ipA, ipB netip.Addr)
		send  func(h *harness, ipA, ipB netip.Addr) []byte
		src   netip.AddrPort
		want  result
		check func(t *testing.T, h *harness, reply *dhcpv4.DHCPv4, ipA, ipB netip.Addr)
	}{
		{
			name:  "request for another server cancels the offer silently",
			setup: func(h *harness) (netip.Addr, netip.Addr) { return h.offer(a), netip.Addr{} },
			send: func(h *harness, ipA, _ netip.Addr) []byte {
				return msg(t, a, dhcpv4.MessageTypeRequest, withRequested(ipA.String()), withServerID("10.40.0.254"))
			},
			want: result{mt: dhcpv4.MessageTypeNone},
			check: func(t *testing.T, h *harness, _ *dhcpv4.DHCPv4, ipA, _ netip.Addr) {
				// The address is free again: b's request for it succeeds.
				offer, _ := h.send("v0", clientPort, msg(t, b, dhcpv4.MessageTypeDiscover, withRequested(ipA.String())))
				if offer == nil || addr4(offer.YourIPAddr) != ipA {
					t.Errorf("cancelled offer still holds %v: %v", ipA, offer)
				}
			},
		},
		{
			name:  "request for an address offered to another client is refused",
			setup: func(h *harness) (netip.Addr, netip.Addr) { return h.offer(a), netip.Addr{} },
			send: func(h *harness, ipA, _ netip.Addr) []byte {
				return msg(t, b, dhcpv4.MessageTypeRequest, withRequested(ipA.String()), withServerID("10.40.0.1"))
			},
			want: result{mt: dhcpv4.MessageTypeNak, dst: bcast},
		},
		{
			name:  "init-reboot with the client's own address is acknowledged",
			setup: func(h *harness) (netip.Addr, netip.Addr) { return h.dora("v0", a), netip.Addr{} },
			send: func(h *harness, ipA, _ netip.Addr) []byte {
				return msg(t, a, dhcpv4.MessageTypeRequest, withRequested(ipA.String()))
			},
			want: result{mt: dhcpv4.MessageTypeAck, dst: bcast},
			check: func(t *testing.T, _ *harness, r *dhcpv4.DHCPv4, ipA, _ netip.Addr) {
				if addr4(r.YourIPAddr) != ipA {
					t.Errorf("init-reboot ACK for %v, want %v", r.YourIPAddr, ipA)
				}
			},
		},
		{
			name:  "init-reboot from another network is refused",
			setup: func(h *harness) (netip.Addr, netip.Addr) { return h.dora("v0", a), netip.Addr{} },
			send: func(h *harness, _, _ netip.Addr) []byte {
				return msg(t, a, dhcpv4.MessageTypeRequest, withRequested("192.168.1.20"))
			},
			want: result{mt: dhcpv4.MessageTypeNak, dst: bcast},
		},
		{
			name:  "init-reboot from a client with no record is left unanswered",
			setup: func(h *harness) (netip.Addr, netip.Addr) { return netip.Addr{}, netip.Addr{} },
			send: func(h *harness, _, _ netip.Addr) []byte {
				return msg(t, a, dhcpv4.MessageTypeRequest, withRequested("10.40.0.60"))
			},
			want: result{mt: dhcpv4.MessageTypeNone},
		},
		{
			name:  "init-reboot for another client's address is refused",
			setup: func(h *harness) (netip.Addr, netip.Addr) { return h.dora("v0", a), h.dora("v0", b) },
			send: func(h *harness, ipA, _ netip.Addr) []byte {
				return msg(t, b, dhcpv4.MessageTypeRequest, withRequested(ipA.String()))
			},
			want: result{mt: dhcpv4.MessageTypeNak, dst: bcast},
		},
		{
			name: "renewal keeps the address and is unicast to the client",
			setup: func(h *harness) (netip.Addr, netip.Addr) {
				ip := h.dora("v0", a)
				h.clk.Advance(30 * time.Minute)
				return ip, netip.Addr{}
			},
			send: func(h *harness, ipA, _ netip.Addr) []byte {
				return msg(t, a, dhcpv4.MessageTypeRequest, dhcpv4.WithClientIP(ipA.AsSlice()))
			},
			src:  netip.AddrPortFrom(netip.MustParseAddr("10.40.0.50"), 68),
			want: result{mt: dhcpv4.MessageTypeAck, dst: netip.AddrPortFrom(netip.MustParseAddr("10.40.0.50"), 68)},
			check: func(t *testing.T, h *harness, r *dhcpv4.DHCPv4, ipA, _ netip.Addr) {
				l, _ := h.st.lease("visitor", ipA)
				if addr4(r.YourIPAddr) != ipA || !l.Expires.Equal(h.clk.Now().Add(time.Hour)) {
					t.Errorf("renewal: yiaddr %v, stored expiry %v", r.YourIPAddr, l.Expires)
				}
			},
		},
		{
			name:  "rebinding with another client's address is refused",
			setup: func(h *harness) (netip.Addr, netip.Addr) { return h.dora("v0", a), h.dora("v0", b) },
			send: func(h *harness, ipA, _ netip.Addr) []byte {
				return msg(t, b, dhcpv4.MessageTypeRequest, dhcpv4.WithClientIP(ipA.AsSlice()))
			},
			want: result{mt: dhcpv4.MessageTypeNak, dst: bcast},
		},
		{
			name:  "release frees the address and is stored",
			setup: func(h *harness) (netip.Addr, netip.Addr) { return h.dora("v0", a), netip.Addr{} },
			src:   netip.AddrPortFrom(netip.MustParseAddr("10.40.0.50"), 68), // a client releases from its address
			send: func(h *harness, ipA, _ netip.Addr) []byte {
				return msg(t, a, dhcpv4.MessageTypeRelease, dhcpv4.WithClientIP(ipA.AsSlice()), withServerID("10.40.0.1"))
			},
			want: result{mt: dhcpv4.MessageTypeNone},
			check: func(t *testing.T, h *harness, _ *dhcpv4.DHCPv4, ipA, _ netip.Addr) {
				h.eventually(func() bool { l, _ := h.st.lease("visitor", ipA); return l.State == StateReleased }, "release stored")
				if h.s.metrics.Releases.Load() != 1 {
					t.Errorf("releases = %d", h.s.metrics.Releases.Load())
				}
			},
		},
		{
			name:  "release of someone else's address is ignored",
			setup: func(h *harness) (netip.Addr, netip.Addr) { return h.dora("v0", a), netip.Addr{} },
			send: func(h *harness, ipA, _ netip.Addr) []byte {
				return msg(t, b, dhcpv4.MessageTypeRelease, dhcpv4.WithClientIP(ipA.AsSlice()))
			},
			want: result{mt: dhcpv4.MessageTypeNone},
			check: func(t *testing.T, h *harness, _ *dhcpv4.DHCPv4, ipA, _ netip.Addr) {
				if l, _ := h.st.lease("visitor", ipA); l.State != StateBound || l.MAC.String() != a {
					t.Errorf("foreign release changed the lease: %+v", l)
				}
			},
		},
		{
			name:  "decline quarantines the address for the hold time",
			setup: func(h *harness) (netip.Addr, netip.Addr) { return h.dora("v0", a), netip.Addr{} },
			send: func(h *harness, ipA, _ netip.Addr) []byte {
				return msg(t, a, dhcpv4.MessageTypeDecline, withRequested(ipA.String()), withServerID("10.40.0.1"))
			},
			want: result{mt: dhcpv4.MessageTypeNone},
			check: func(t *testing.T, h *harness, _ *dhcpv4.DHCPv4, ipA, _ netip.Addr) {
				again, _ := h.send("v0", clientPort, msg(t, a, dhcpv4.MessageTypeDiscover, withRequested(ipA.String())))
				if again == nil || addr4(again.YourIPAddr) == ipA {
					t.Fatalf("declined address %v handed out again at once: %v", ipA, again)
				}
				h.clk.Advance(11 * time.Minute)
				offer, _ := h.send("v0", clientPort, msg(t, b, dhcpv4.MessageTypeDiscover, withRequested(ipA.String())))
				if offer == nil || addr4(offer.YourIPAddr) != ipA {
					t.Errorf("declined address not back after the hold: %v", offer)
				}
			},
		},
		{
			name:  "inform gets options without a lease, unicast to ciaddr",
			setup: func(h *harness) (netip.Addr, netip.Addr) { return netip.Addr{}, netip.Addr{} },
			send: func(h *harness, _, _ netip.Addr) []byte {
				return msg(t, a, dhcpv4.MessageTypeInform, dhcpv4.WithClientIP(net.ParseIP("10.40.0.9")))
			},
			want: result{mt: dhcpv4.MessageTypeAck, dst: netip.AddrPortFrom(netip.MustParseAddr("10.40.0.9"), 68)},
			check: func(t *testing.T, h *harness, r *dhcpv4.DHCPv4, _, _ netip.Addr) {
				if addr4(r.YourIPAddr).IsValid() || r.Options.Has(dhcpv4.OptionIPAddressLeaseTime) {
					t.Errorf("inform reply carries a lease: yiaddr %v lease %v", r.YourIPAddr, r.Options.Get(dhcpv4.OptionIPAddressLeaseTime))
				}
				if len(r.Router()) != 1 || string(r.Options.Get(dhcpv4.OptionURL)) != portalURI {
					t.Errorf("inform reply lacks options: %v", r)
				}
			},
		},
		{
			name:  "rapid commit answers a discover with a committed ACK",
			setup: func(h *harness) (netip.Addr, netip.Addr) { return netip.Addr{}, netip.Addr{} },
			send: func(h *harness, _, _ netip.Addr) []byte {
				return msg(t, a, dhcpv4.MessageTypeDiscover, dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionRapidCommit, nil)))
			},
			want: result{mt: dhcpv4.MessageTypeAck, dst: bcast},
			check: func(t *testing.T, h *harness, r *dhcpv4.DHCPv4, _, _ netip.Addr) {
				if !r.Options.Has(dhcpv4.OptionRapidCommit) {
					t.Error("rapid-commit ACK without option 80")
				}
				if l, ok := h.st.lease("visitor", addr4(r.YourIPAddr)); !ok || l.MAC.String() != a {
					t.Errorf("rapid-commit lease not stored: %+v", l)
				}
			},
		},
		{
			name:  "a message type only servers send is dropped",
			setup: func(h *harness) (netip.Addr, netip.Addr) { return netip.Addr{}, netip.Addr{} },
			send:  func(h *harness, _, _ netip.Addr) []byte { return msg(t, a, dhcpv4.MessageTypeOffer) },
			want:  result{mt: dhcpv4.MessageTypeNone},
			check: func(t *testing.T, h *harness, _ *dhcpv4.DHCPv4, _, _ netip.Addr) {
				if h.s.metrics.Unsupported.Load() != 1 {
					t.Errorf("unsupported = %d", h.s.metrics.Unsupported.Load())
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, newMemStore(), nil)
			ipA, ipB := tc.setup(h)
			src := tc.src
			if !src.IsValid() {
				src = clientPort
			}
			reply, dst := h.send("v0", src, tc.send(h, ipA, ipB))
			switch {
			case tc.want.mt == dhcpv4.MessageTypeNone && reply != nil:
				t.Fatalf("want no reply, got %v", reply)
			case tc.want.mt != dhcpv4.MessageTypeNone && reply == nil:
				t.Fatalf("want %v, got no reply", tc.want.mt)
			case reply != nil && reply.MessageType() != tc.want.mt:
				t.Fatalf("want %v, got %v", tc.want.mt, reply.MessageType())
			case reply != nil && dst != tc.want.dst:
				t.Fatalf("reply sent to %v, want %v", dst, tc.want.dst)
			}
			if tc.check != nil {
				tc.check(t, h, reply, ipA, ipB)
			}
		})
	}
}

func (h *harness) offer(mac string) netip.Addr {
	h.t.Helper()
	o, _ := h.send("v0", clientPort, msg(h.t, mac, dhcpv4.MessageTypeDiscover))
	if o == nil {
		h.t.Fatal("no offer")
	}
	return addr4(o.YourIPAddr)
}

// eventually waits (bounded) for writes nobody waits for to be committed.
func (h *harness) eventually(cond func() bool, what string) {
	h.t.Helper()
	for i := 0; i < 200; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.t.Fatalf("%s: not after 2s", what)
}

func TestMalformedPacketsAreDroppedAndCounted(t *testing.T) {
	h := newHarness(t, newMemStore(), nil)
	good := msg(t, "00:1c:b3:00:00:01", dhcpv4.MessageTypeDiscover)
	reply := func(mut func([]byte) []byte) []byte {
		b := append([]byte(nil), good...)
		return mut(b)
	}
	cases := map[string][]byte{
		"empty":            {},
		"truncated":        good[:100],
		"no magic cookie":  reply(func(b []byte) []byte { b[236] = 0; return b }),
		"reply opcode":     reply(func(b []byte) []byte { b[0] = 2; return b }),
		"hlen 16":          reply(func(b []byte) []byte { b[2] = 16; return b }),
		"multicast chaddr": reply(func(b []byte) []byte { b[28] = 0x01; return b }),
		"option overruns": reply(func(b []byte) []byte {
			b = b[:240]
			return append(b, 53, 1, 1, 12, 200, 'x')
		}),
		"no message type": reply(func(b []byte) []byte {
			return append(b[:240], 255)
		}),
	}
	for name, b := range cases {
		before := h.s.metrics.Malformed.Load()
		if r, _ := h.send("v0", clientPort, b); r != nil {
			t.Errorf("%s: answered %v", name, r)
		}
		if h.s.metrics.Malformed.Load() != before+1 {
			t.Errorf("%s: not counted as malformed", name)
		}
	}
}

func TestReturningMACGetsItsAddressBackAfterRestart(t *testing.T) {
	st := newMemStore()
	h := newHarness(t, st, nil)
	const mac = "00:1c:b3:00:00:21"
	first := h.dora("v0", mac)
	// A release and a day away do not lose the address while others come.
	h.send("v0", netip.AddrPortFrom(first, 68), msg(t, mac, dhcpv4.MessageTypeRelease, dhcpv4.WithClientIP(first.AsSlice())))
	h.eventually(func() bool { l, _ := st.lease("visitor", first); return l.State == StateReleased }, "release stored")
	h.dora("v0", "00:1c:b3:00:00:22")
	h.dora("v0", "00:1c:b3:00:00:23")

	h2 := newHarness(t, st, nil)
	h2.clk.Advance(24 * time.Hour)
	if again := h2.dora("v0", mac); again != first {
		t.Fatalf("after restart %s got %v, want its old %v", mac, again, first)
	}
}

func TestExhaustedPoolStaysSilentRaisesOneFindingAndReclaimsExpiredLeases(t *testing.T) {
	st := newMemStore()
	for i := 1; i <= 4; i++ {
		st.setStatus(net.HardwareAddr{0, 0x1c, 0xb3, 0, 1, byte(i)}.String(), DeviceStatus{Known: true, Approved: true})
	}
	h := newHarness(t, st, nil)
	// staff has three addresses.
	for i := 1; i <= 3; i++ {
		h.dora("s0", net.HardwareAddr{0, 0x1c, 0xb3, 0, 1, byte(i)}.String())
	}
	fourth := "00:1c:b3:00:01:04"
	for i := 0; i < 5; i++ {
		if r, _ := h.send("s0", clientPort, msg(t, fourth, dhcpv4.MessageTypeDiscover)); r != nil {
			t.Fatalf("exhausted pool answered: %v", r)
		}
	}
	if got := h.s.metrics.PoolExhausted.Load(); got != 5 {
		t.Errorf("pool exhausted counted %d times, want 5", got)
	}
	if f := h.found.Class(FindingPoolExhausted); len(f) != 1 || f[0].Segment != "staff" {
		t.Fatalf("want one pool-exhausted finding, got %+v", f)
	}
	h.clk.Advance(8*time.Hour + time.Second)
	ip := h.dora("s0", fourth)
	if !netip.MustParsePrefix("10.10.0.0/24").Contains(ip) {
		t.Fatalf("reclaimed %v", ip)
	}
}

func TestRelayedRequestsAreServedFromGiaddrsSegmentAndAnsweredToTheRelay(t *testing.T) {
	h := newHarness(t, newMemStore(), func(c *Config) { c.RelayInterfaces = []string{"up0"} })
	const mac = "00:1c:b3:00:00:31"
	circuit := dhcpv4.OptRelayAgentInfo(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(1), []byte("sw3/port7")))
	mods := []dhcpv4.Modifier{dhcpv4.WithGatewayIP(net.ParseIP("10.50.0.1")), dhcpv4.WithOption(circuit)}

	offer, dst := h.send("", relayPort, msg(t, mac, dhcpv4.MessageTypeDiscover, mods...))
	if offer == nil {
		t.Fatal("relayed discover unanswered")
	}
	ip := addr4(offer.YourIPAddr)
	if !netip.MustParsePrefix("10.50.0.0/24").Contains(ip) || dst != netip.AddrPortFrom(netip.MustParseAddr("10.50.0.1"), 67) {
		t.Fatalf("relayed offer of %v sent to %v", ip, dst)
	}
	if !bytes.Equal(offer.Options.Get(dhcpv4.OptionRelayAgentInformation), circuit.Value.ToBytes()) {
		t.Errorf("option 82 not echoed to the relay")
	}
	req := append(mods, withRequested(ip.String()), withServerID("10.99.0.1"))
	ack, _ := h.send("", relayPort, msg(t, mac, dhcpv4.MessageTypeRequest, req...))
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck {
		t.Fatalf("relayed request: %v", ack)
	}
	l, ok := h.st.lease("annexe", ip)
	if !ok || l.Relay != netip.MustParseAddr("10.50.0.1") || !bytes.Equal(l.RelayInfo, circuit.Value.ToBytes()) {
		t.Errorf("relay not recorded: %+v", l)
	}

	for _, tc := range []struct {
		name    string
		iface   string
		src     netip.AddrPort
		mods    []dhcpv4.Modifier
		counter func() uint64
	}{
		{"giaddr on a segment interface", "v0", clientPort, mods, h.s.metrics.RelayOnSegment.Load},
		{"giaddr from an untrusted source", "", netip.AddrPortFrom(netip.MustParseAddr("192.0.2.7"), 67), mods, h.s.metrics.RelayUntrusted.Load},
		{"giaddr in no served subnet", "", relayPort, []dhcpv4.Modifier{dhcpv4.WithGatewayIP(net.ParseIP("172.16.0.1"))}, h.s.metrics.WrongSegment.Load},
		{"direct broadcast on a relay-only interface", "", clientPort, nil, h.s.metrics.WrongSegment.Load},
	} {
		before := tc.counter()
		if r, _ := h.send(tc.iface, tc.src, msg(t, "00:1c:b3:00:00:32", dhcpv4.MessageTypeDiscover, tc.mods...)); r != nil {
			t.Errorf("%s: answered %v", tc.name, r)
		}
		if tc.counter() != before+1 {
			t.Errorf("%s: not counted", tc.name)
		}
	}
}

func TestApprovalModes(t *testing.T) {
	const unknown = "00:1c:b3:00:00:41"
	t.Run("alert leases and raises one finding", func(t *testing.T) {
		var mu sync.Mutex
		var called []Device
		h := newHarness(t, newMemStore(), func(c *Config) {
			c.OnUnapprovedDevice = func(_ Segment, d Device) { mu.Lock(); called = append(called, d); mu.Unlock() }
		})
		h.dora("s0", unknown, dhcpv4.WithOption(dhcpv4.OptHostName("pupil-phone")))
		f := h.found.Class(FindingUnapprovedDevice)
		if len(f) != 1 || f[0].Segment != "staff" || f[0].Source != "dhcp" || f[0].Detail != "not-approved" || f[0].SrcMAC.String() != unknown ||
			!strings.Contains(f[0].Evidence, `"pupil-phone"`) || !strings.Contains(f[0].Evidence, "unknown_devices is alert") {
			t.Fatalf("findings %+v", f)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(called) != 1 {
			t.Errorf("callback called %d times", len(called))
		}
	})
	t.Run("approved device raises nothing", func(t *testing.T) {
		st := newMemStore()
		st.setStatus(unknown, DeviceStatus{Known: true, Approved: true})
		h := newHarness(t, st, nil)
		h.dora("s0", unknown)
		if f := h.found.Class(FindingUnapprovedDevice); len(f) != 0 {
			t.Fatalf("approved device raised %+v", f)
		}
	})
	t.Run("quarantine puts the address in the set before the ACK", func(t *testing.T) {
		h := newHarness(t, newMemStore(), nil)
		ip := h.dora("p0", unknown)
		if len(h.enf.got) != 1 || h.enf.got[0] != ip {
			t.Fatalf("enforcer got %v, want [%v]", h.enf.got, ip)
		}
		h.enf.fail = errDisk
		offer, _ := h.send("p0", clientPort, msg(t, "00:1c:b3:00:00:42", dhcpv4.MessageTypeDiscover))
		ack, _ := h.send("p0", clientPort, msg(t, "00:1c:b3:00:00:42", dhcpv4.MessageTypeRequest,
			withRequested(offer.YourIPAddr.String()), withServerID("10.20.0.1")))
		if ack != nil {
			t.Fatalf("ACK although quarantine failed: %v", ack)
		}
	})
	t.Run("a failed lookup fails closed but is not a finding", func(t *testing.T) {
		st := newMemStore()
		st.statusFail = errDisk
		h := newHarness(t, st, nil)
		if r, _ := h.send("l0", clientPort, msg(t, unknown, dhcpv4.MessageTypeDiscover)); r != nil {
			t.Fatalf("deny segment answered %v while the store could not say who it is", r)
		}
		h.dora("s0", unknown) // alert segment: still leased
		if f := h.found.Class(FindingUnapprovedDevice); len(f) != 0 {
			t.Fatalf("a store failure became a finding: %+v", f)
		}
	})
	t.Run("deny answers nothing but records the device", func(t *testing.T) {
		h := newHarness(t, newMemStore(), nil)
		if r, _ := h.send("l0", clientPort, msg(t, unknown, dhcpv4.MessageTypeDiscover)); r != nil {
			t.Fatalf("deny segment answered %v", r)
		}
		if h.s.metrics.Denied.Load() != 1 || len(h.found.Class(FindingUnapprovedDevice)) != 1 {
			t.Errorf("denied %d, findings %d", h.s.metrics.Denied.Load(), len(h.found.Class(FindingUnapprovedDevice)))
		}
		h.eventually(func() bool { _, ok := h.st.device(unknown); return ok }, "denied device recorded")
	})
	t.Run("blocked device gets nothing on an open segment", func(t *testing.T) {
		st := newMemStore()
		st.setStatus(unknown, DeviceStatus{Known: true, Approved: true, Blocked: true})
		h := newHarness(t, st, nil)
		if r, _ := h.send("v0", clientPort, msg(t, unknown, dhcpv4.MessageTypeDiscover)); r != nil {
			t.Fatalf("blocked device answered %v", r)
		}
	})
}

func TestDeviceRecordFromTheExchange(t *testing.T) {
	h := newHarness(t, newMemStore(), nil)
	cases := []struct {
		mac, host, vendor string
		prl               []dhcpv4.OptionCode
		os, maker         string
		random            bool
	}{
		{"10:40:f3:00:00:01", "Jos-iPhone", "", codes(1, 121, 3, 6, 15, 108, 114, 119, 252), OSIOS, "Apple", false},
		{"00:1c:b3:00:00:02", "DESKTOP-4F2", "MSFT 5.0", codes(1, 3, 6, 15, 31, 33, 43, 44, 46, 47, 119, 121, 249, 252), OSWindows, "", false},
		{"da:a1:19:00:00:03", "", "android-dhcp-13", codes(1, 3, 6, 15, 26, 28, 51, 58, 59, 43, 114, 108), OSAndroid, "", true},
		{"04:0e:3c:00:00:04", "NPI0A1B2C", "Hewlett-Packard JetDirect", codes(1, 3, 6, 15, 44, 47), OSPrinter, "HP", false},
	}
	for _, tc := range cases {
		mods := []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptParameterRequestList(tc.prl...))}
		if tc.host != "" {
			mods = append(mods, dhcpv4.WithOption(dhcpv4.OptHostName(tc.host)))
		}
		if tc.vendor != "" {
			mods = append(mods, dhcpv4.WithOption(dhcpv4.OptClassIdentifier(tc.vendor)))
		}
		ip := h.dora("v0", tc.mac, mods...)
		d, ok := h.st.device(tc.mac)
		if !ok {
			t.Fatalf("%s: no device record", tc.mac)
		}
		if d.IP != ip || d.Segment != "visitor" || d.Hostname != tc.host || d.VendorClass != tc.vendor || d.OS != tc.os ||
			d.Manufacturer != tc.maker || d.Randomised != tc.random || d.FirstSeen.IsZero() || d.LastSeen.IsZero() {
			t.Errorf("%s: device %+v; want os %q maker %q random %v", tc.mac, d, tc.os, tc.maker, tc.random)
		}
	}
}

func codes(cs ...uint8) []dhcpv4.OptionCode {
	out := make([]dhcpv4.OptionCode, len(cs))
	for i, c := range cs {
		out[i] = dhcpv4.GenericOptionCode(c)
	}
	return out
}

// TestConcurrentAcksShareOneCommit holds the first transaction until every
// other request is queued behind it, and expects them all in one more.
//
// The first request is sent alone and the rest only once its transaction
// has begun: sent together, all twenty could reach the committer before
// its first batch closed and share that one (seen under load in CI).
func TestConcurrentAcksShareOneCommit(t *testing.T) {
	st := newMemStore()
	const n = 20
	var h *harness
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	st.gate = func() {
		once.Do(func() {
			close(entered)
			<-release
		})
	}
	h = newHarness(t, st, nil)
	offers := make([][]byte, n)
	for i := range offers {
		mac := net.HardwareAddr{0x00, 0x1c, 0xb3, 0x10, 0, byte(i)}.String()
		o, _ := h.send("v0", clientPort, msg(t, mac, dhcpv4.MessageTypeDiscover))
		if o == nil {
			t.Fatalf("no offer for %d", i)
		}
		offers[i] = msg(t, mac, dhcpv4.MessageTypeRequest, withRequested(o.YourIPAddr.String()), withServerID("10.40.0.1"))
	}
	h.s.commit.maxBatch = 1 << 20
	// Only the pipelining is under test: no waiting for a batch to fill.
	h.s.commit.maxAge = 0
	acks := make(chan bool, n)
	request := func(req []byte) {
		r, _ := h.send("v0", clientPort, req)
		acks <- r != nil && r.MessageType() == dhcpv4.MessageTypeAck
	}
	go request(offers[0])
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("the first request's transaction did not begin within 10 s")
	}
	for _, req := range offers[1:] {
		go request(req)
	}
	// The first request's batch is stuck in the gate; wait for the other
	// n-1 to queue, bounded.
	deadline := time.Now().Add(10 * time.Second)
	for len(h.s.commit.reqs) < n-1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(release)
	for i := 0; i < n; i++ {
		if !<-acks {
			t.Fatal("a request was not acknowledged")
		}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.batches != 2 {
		t.Fatalf("%d leases took %d transactions, want 2", n, st.batches)
	}
	if got := h.s.metrics.LeasesCommitted.Load(); got != n {
		t.Errorf("leases committed %d", got)
	}
}

// TestGroupCommitClosesBySize lets a batch wait as long as it likes for
// company (maxAge far beyond the test) and expects it to close, and
// commit, as soon as it holds maxBatch writes: n concurrent ACKs, one
// transaction, each ACK's lease and device sighting counting as writes.
func TestGroupCommitClosesBySize(t *testing.T) {
	st := newMemStore()
	const n = 8
	h := newHarness(t, st, nil)
	reqs := make([][]byte, n)
	for i := range reqs {
		mac := net.HardwareAddr{0x00, 0x1c, 0xb3, 0x11, 0, byte(i)}.String()
		o, _ := h.send("v0", clientPort, msg(t, mac, dhcpv4.MessageTypeDiscover))
		if o == nil {
			t.Fatalf("no offer for %d", i)
		}
		reqs[i] = msg(t, mac, dhcpv4.MessageTypeRequest, withRequested(o.YourIPAddr.String()), withServerID("10.40.0.1"))
	}
	st.mu.Lock()
	before := st.batches
	st.mu.Unlock()
	h.s.commit.maxAge = time.Hour
	h.s.commit.maxBatch = 2 * n
	acks := make(chan bool, n)
	for i := range reqs {
		go func() {
			r, _ := h.send("v0", clientPort, reqs[i])
			acks <- r != nil && r.MessageType() == dhcpv4.MessageTypeAck
		}()
	}
	for range n {
		if !<-acks {
			t.Fatal("a request was not acknowledged")
		}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if got := st.batches - before; got != 1 {
		t.Fatalf("%d ACKs took %d transactions, want 1", n, got)
	}
}

func TestNewRejectsBadConfiguration(t *testing.T) {
	seg := testSegments()[0]
	bad := func(mut func(*Segment)) []Segment { s := seg; mut(&s); return []Segment{s} }
	for name, segs := range map[string][]Segment{
		"range outside subnet":    bad(func(s *Segment) { s.RangeEnd = netip.MustParseAddr("10.41.0.1") }),
		"reversed range":          bad(func(s *Segment) { s.RangeStart, s.RangeEnd = s.RangeEnd, s.RangeStart }),
		"short lease":             bad(func(s *Segment) { s.Lease = time.Second }),
		"ipv6 subnet":             bad(func(s *Segment) { s.Subnet = netip.MustParsePrefix("fd00::/64") }),
		"unknown approval":        bad(func(s *Segment) { s.Unknown = "maybe" }),
		"quarantine, no enforcer": bad(func(s *Segment) { s.Unknown = policy.UnknownQuarantine }),
		"overlap":                 {seg, func() Segment { s := seg; s.Name, s.Interface = "other", "o0"; return s }()},
	} {
		if _, err := New(Config{Segments: segs, Store: newMemStore()}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(Config{Segments: []Segment{seg}}); err == nil {
		t.Error("no store: accepted")
	}
}

func TestStopCommitsQueuedWrites(t *testing.T) {
	st := newMemStore()
	s, err := New(Config{Segments: testSegments()[:1], Store: st, Listen: func(string) (net.PacketConn, error) {
		return net.ListenPacket("udp4", "127.0.0.1:0")
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	<-s.Ready()
	s.commit.record(nil, []Device{{MAC: hw(t, "00:1c:b3:00:00:51"), FirstSeen: time.Now(), LastSeen: time.Now()}})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, ok := st.device("00:1c:b3:00:00:51"); !ok {
		t.Fatal("write queued before stop was lost")
	}
}

func TestMACForNamesTheHolderOfABoundLeaseOnly(t *testing.T) {
	h := newHarness(t, newMemStore(), nil)
	mac := "00:1c:b3:00:00:11"
	offer, _ := h.send("v0", clientPort, msg(t, mac, dhcpv4.MessageTypeDiscover))
	ip := addr4(offer.YourIPAddr)
	if got := h.s.MACFor(ip); got != nil {
		t.Errorf("an offered address is held by %v; want nobody until the ACK", got)
	}
	req := msg(t, mac, dhcpv4.MessageTypeRequest, withRequested(ip.String()), withServerID("10.40.0.1"))
	if ack, _ := h.send("v0", clientPort, req); ack == nil {
		t.Fatal("no ACK")
	}
	if got := h.s.MACFor(ip); got.String() != mac {
		t.Errorf("MACFor(%s) = %v, want %s", ip, got, mac)
	}
	if got := h.s.MACFor(netip.MustParseAddr("192.0.2.1")); got != nil {
		t.Errorf("an address outside every segment is held by %v", got)
	}
	h.clk.Advance(2 * time.Hour)
	if got := h.s.MACFor(ip); got != nil {
		t.Errorf("an expired lease is still held by %v", got)
	}
}
