package inspect

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

var school = []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16")}

func TestTetheringNeedsTTLOneBelowDefaultFromInside(t *testing.T) {
	for _, tc := range []struct {
		name string
		ttl  uint8
		src  netip.Addr
		want int
	}{
		{"hotspot behind a phone", 63, pupil, 1},
		{"windows laptop behind a hotspot", 127, pupil, 1},
		{"device itself", 64, pupil, 0},
		{"routed from outside", 63, server, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []Finding
			e := collect(Options{InsideSubnets: school}, &got)
			for i := 0; i < 20; i++ {
				b := frame(t, pktSpec{src: tc.src, dst: netip.MustParseAddr("198.51.100.9"), ttl: tc.ttl, udp: true, sport: uint16(30000 + i), dport: 9999, payload: []byte("x")})
				e.HandlePacket(b, ci(t0.Add(time.Duration(i)*time.Second), len(b)))
			}
			n := 0
			for _, f := range got {
				if f.Class == ClassTethering {
					n++
					if f.SrcMAC.String() != macClient.String() || f.SrcIP != tc.src {
						t.Errorf("finding names %s/%s", f.SrcMAC, f.SrcIP)
					}
				}
			}
			if n != tc.want {
				t.Errorf("tethering findings = %d, want %d (%v)", n, tc.want, got)
			}
		})
	}
}

func TestTetheringByMixedOSDefaults(t *testing.T) {
	var got []Finding
	e := collect(Options{InsideSubnets: school}, &got)
	for i, ttl := range []uint8{64, 64, 128} {
		b := frame(t, pktSpec{src: pupil, dst: server, ttl: ttl, udp: true, sport: uint16(30000 + i), dport: 9999, payload: []byte("x")})
		e.HandlePacket(b, ci(t0, len(b)))
	}
	if len(got) != 1 || got[0].Class != ClassTethering || got[0].Detail != "os-mix" {
		t.Errorf("findings = %v, want one os-mix tethering finding", got)
	}
}

func TestUnapprovedDeviceOncePerMAC(t *testing.T) {
	var got []Finding
	known := func(mac net.HardwareAddr) (bool, error) { return mac.String() == macClient.String(), nil }
	e := collect(Options{InsideSubnets: school, KnownDevice: known}, &got)
	stranger := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
	for i := 0; i < 3; i++ {
		for _, mac := range []net.HardwareAddr{macClient, stranger} {
			b := frame(t, pktSpec{srcMAC: mac, src: pupil, dst: server, udp: true, sport: uint16(30000 + i), dport: 9999, payload: []byte("x")})
			e.HandlePacket(b, ci(t0, len(b)))
		}
	}
	if len(got) != 1 || got[0].Class != ClassUnapprovedDevice || got[0].SrcMAC.String() != stranger.String() {
		t.Errorf("findings = %v, want one unapproved-device for %s", got, stranger)
	}
}

// A lookup that fails says nothing about the device: no finding, however
// many packets arrive while the store is down; once it answers again, the
// stranger is flagged, once.
func TestUnapprovedDeviceNeverFromALookupError(t *testing.T) {
	var got []Finding
	storeDown := true
	asked := 0
	known := func(mac net.HardwareAddr) (bool, error) {
		asked++
		if storeDown {
			return false, errors.New("database is locked")
		}
		return false, nil
	}
	e := collect(Options{InsideSubnets: school, KnownDevice: known}, &got)
	stranger := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
	send := func(at time.Time, n int) {
		for i := range n {
			b := frame(t, pktSpec{srcMAC: stranger, src: pupil, dst: server, udp: true, sport: uint16(30000 + i), dport: 9999, payload: []byte("x")})
			e.HandlePacket(b, ci(at, len(b)))
		}
	}
	send(t0, 50)
	if len(got) != 0 {
		t.Fatalf("findings while the store fails: %v", got)
	}
	if asked != 1 || e.Stats().KnownDeviceErrors != 1 {
		t.Errorf("asked %d times, %d errors counted; want 1 and 1 (no lookup per packet)", asked, e.Stats().KnownDeviceErrors)
	}
	storeDown = false
	send(t0.Add(30*time.Second), 5)
	if len(got) != 0 || asked != 1 {
		t.Fatalf("asked again within the minute (%d) or raised %v", asked, got)
	}
	send(t0.Add(2*time.Minute), 5)
	if len(got) != 1 || got[0].Class != ClassUnapprovedDevice || asked != 2 {
		t.Errorf("after the store recovered: %d lookups, findings %v; want one unapproved-device", asked, got)
	}
}

func dhcpReply(t *testing.T, srcMAC net.HardwareAddr, srvIP netip.Addr, msgType layers.DHCPMsgType) []byte {
	t.Helper()
	d := &layers.DHCPv4{
		Operation: layers.DHCPOpReply, HardwareType: layers.LinkTypeEthernet, HardwareLen: 6, Xid: 42,
		YourClientIP: net.IPv4(10, 20, 0, 50), ClientHWAddr: macClient,
		Options: layers.DHCPOptions{
			layers.NewDHCPOption(layers.DHCPOptMessageType, []byte{byte(msgType)}),
			layers.NewDHCPOption(layers.DHCPOptServerID, srvIP.AsSlice()),
		},
	}
	buf := gopacket.NewSerializeBuffer()
	if err := d.SerializeTo(buf, gopacket.SerializeOptions{FixLengths: true}); err != nil {
		t.Fatal(err)
	}
	return frame(t, pktSpec{srcMAC: srcMAC, dstMAC: layers.EthernetBroadcast, src: srvIP, dst: netip.MustParseAddr("255.255.255.255"), udp: true, sport: 67, dport: 68, payload: buf.Bytes()})
}

func TestRogueDHCPServer(t *testing.T) {
	ours := netip.MustParseAddr("10.20.0.1")
	rogue := netip.MustParseAddr("10.20.0.66")
	rogueMAC := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x66}
	for _, tc := range []struct {
		name string
		opt  Options
		mac  net.HardwareAddr
		ip   netip.Addr
		typ  layers.DHCPMsgType
		want int
	}{
		{"our server by address", Options{DHCPServerIPs: []netip.Addr{ours}}, macRouter, ours, layers.DHCPMsgTypeOffer, 0},
		{"our server by MAC", Options{DHCPServerMACs: []net.HardwareAddr{macRouter}}, macRouter, ours, layers.DHCPMsgTypeAck, 0},
		{"rogue offer", Options{DHCPServerIPs: []netip.Addr{ours}}, rogueMAC, rogue, layers.DHCPMsgTypeOffer, 1},
		{"rogue ack", Options{DHCPServerIPs: []netip.Addr{ours}}, rogueMAC, rogue, layers.DHCPMsgTypeAck, 1},
		{"rogue NAK is not a lease", Options{DHCPServerIPs: []netip.Addr{ours}}, rogueMAC, rogue, layers.DHCPMsgTypeNak, 0},
		{"no servers configured", Options{}, rogueMAC, rogue, layers.DHCPMsgTypeOffer, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []Finding
			e := collect(tc.opt, &got)
			for i := 0; i < 3; i++ { // repeated offers are one finding
				b := dhcpReply(t, tc.mac, tc.ip, tc.typ)
				e.HandlePacket(b, ci(t0.Add(time.Duration(i)*time.Second), len(b)))
			}
			if len(got) != tc.want {
				t.Fatalf("findings = %v, want %d", got, tc.want)
			}
			if tc.want == 1 && (got[0].Class != ClassRogueDHCP || got[0].SrcIP != tc.ip || got[0].SrcMAC.String() != tc.mac.String()) {
				t.Errorf("finding = %+v", got[0])
			}
		})
	}
}

func TestFlowTableStaysBoundedAndExpires(t *testing.T) {
	e := NewEngine(Options{MaxFlows: 8, FlowIdle: time.Minute})
	for i := 0; i < 100; i++ {
		b := frame(t, pktSpec{src: pupil, dst: server, udp: true, sport: uint16(20000 + i), dport: 9999, payload: []byte("x")})
		e.HandlePacket(b, ci(t0, len(b)))
	}
	if n := e.flows.len(); n != 8 || len(e.flows.index) != 8 {
		t.Errorf("table holds %d flows (%d indexed), want 8", n, len(e.flows.index))
	}
	if s := e.Stats(); s.Flows != 100 || s.Evicted != 92 {
		t.Errorf("stats = %+v, want 100 flows, 92 evicted", s)
	}
	// The most recent flow is still known; after the idle time it starts over.
	last := frame(t, pktSpec{src: pupil, dst: server, udp: true, sport: 20099, dport: 9999, payload: []byte("x")})
	e.HandlePacket(last, ci(t0.Add(time.Second), len(last)))
	if s := e.Stats(); s.Flows != 100 {
		t.Errorf("a packet of a live flow created a flow: %+v", s)
	}
	e.HandlePacket(last, ci(t0.Add(5*time.Minute), len(last)))
	if s := e.Stats(); s.Flows != 101 || s.Evicted != 92 {
		t.Errorf("after idle: stats = %+v, want a fresh flow and no eviction", s)
	}
}
