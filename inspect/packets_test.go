package inspect

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// pktSpec describes one synthetic packet for tests.
type pktSpec struct {
	srcMAC, dstMAC net.HardwareAddr
	src, dst       netip.Addr
	ttl            uint8
	sport, dport   uint16
	udp            bool
	syn, ack, rst  bool
	seq            uint32
	payload        []byte
}

var (
	macClient = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x10}
	macRouter = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
)

// frame serialises s as an Ethernet frame.
func frame(t testing.TB, s pktSpec) []byte {
	t.Helper()
	if s.srcMAC == nil {
		s.srcMAC = macClient
	}
	if s.dstMAC == nil {
		s.dstMAC = macRouter
	}
	if s.ttl == 0 {
		s.ttl = 64
	}
	eth := &layers.Ethernet{SrcMAC: s.srcMAC, DstMAC: s.dstMAC, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: s.ttl, SrcIP: s.src.AsSlice(), DstIP: s.dst.AsSlice()}
	var l4 gopacket.SerializableLayer
	if s.udp {
		ip.Protocol = layers.IPProtocolUDP
		u := &layers.UDP{SrcPort: layers.UDPPort(s.sport), DstPort: layers.UDPPort(s.dport)}
		if err := u.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		l4 = u
	} else {
		ip.Protocol = layers.IPProtocolTCP
		tc := &layers.TCP{SrcPort: layers.TCPPort(s.sport), DstPort: layers.TCPPort(s.dport), SYN: s.syn, ACK: s.ack, RST: s.rst, Seq: s.seq, Window: 65535}
		if err := tc.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		l4 = tc
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, eth, ip, l4, gopacket.Payload(s.payload)); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// collect returns an engine whose findings are appended to *out.
func collect(opt Options, out *[]Finding) *Engine {
	opt.Sink = SinkFunc(func(f Finding) { *out = append(*out, f) })
	return NewEngine(opt)
}

func ci(ts time.Time, n int) gopacket.CaptureInfo {
	return gopacket.CaptureInfo{Timestamp: ts, CaptureLength: n, Length: n}
}

var (
	pupil  = netip.MustParseAddr("10.20.0.5")
	server = netip.MustParseAddr("203.0.113.7")
	t0     = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
)

// sshHandshake returns a TCP conversation that opens an SSH session.
func sshHandshake(t testing.TB, sport uint16) [][]byte {
	c := pktSpec{src: pupil, dst: server, sport: sport, dport: 22}
	s := pktSpec{src: server, dst: pupil, sport: 22, dport: sport, srcMAC: macRouter, dstMAC: macClient}
	syn, synack, ack := c, s, c
	syn.syn, syn.seq = true, 100
	synack.syn, synack.ack, synack.seq = true, true, 500
	ack.ack, ack.seq = true, 101
	banner := s
	banner.ack, banner.seq, banner.payload = true, 501, []byte("SSH-2.0-OpenSSH_9.6\r\n")
	return [][]byte{frame(t, syn), frame(t, synack), frame(t, ack), frame(t, banner)}
}

func TestSSHToOutsideRaisesFindingWithClientMAC(t *testing.T) {
	var got []Finding
	e := collect(Options{}, &got)
	for i, b := range sshHandshake(t, 40000) {
		e.HandlePacket(b, ci(t0.Add(time.Duration(i)*time.Millisecond), len(b)))
	}
	if len(got) != 1 {
		t.Fatalf("findings = %v, want one ssh finding", got)
	}
	f := got[0]
	if f.Class != ClassSSH || f.SrcIP != pupil || f.DstIP != server || f.DstPort != 22 || f.SrcMAC.String() != macClient.String() || f.Proto != "tcp" {
		t.Errorf("finding = %+v", f)
	}
}

func TestSSHInsideSchoolIsNotAFinding(t *testing.T) {
	var got []Finding
	e := collect(Options{InsideSubnets: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("203.0.113.0/24")}}, &got)
	for i, b := range sshHandshake(t, 40000) {
		e.HandlePacket(b, ci(t0.Add(time.Duration(i)*time.Millisecond), len(b)))
	}
	if len(got) != 0 {
		t.Fatalf("findings = %v, want none for a server inside the school", got)
	}
}

// TestEstablishedFlowPathDoesNotAllocate proves the packet path for a flow
// that is already classified, and for one that inspection gave up on, makes
// no heap allocation.
func TestEstablishedFlowPathDoesNotAllocate(t *testing.T) {
	var got []Finding
	e := collect(Options{MaxFlows: 1024}, &got)
	for i, b := range sshHandshake(t, 40000) {
		e.HandlePacket(b, ci(t0.Add(time.Duration(i)*time.Millisecond), len(b)))
	}
	if len(got) != 1 {
		t.Fatalf("setup: findings = %v", got)
	}
	classified := frame(t, pktSpec{src: pupil, dst: server, sport: 40000, dport: 22, ack: true, seq: 101, payload: make([]byte, 512)})

	// A flow of opaque bytes that is never classified: after
	// InspectPackets packets it is only counted.
	opaque := pktSpec{src: pupil, dst: server, sport: 40001, dport: 9999, ack: true, payload: []byte("hello, opaque protocol\n")}
	var last []byte
	for i := 0; i < 50; i++ {
		opaque.seq = uint32(1000 + i*len(opaque.payload))
		last = frame(t, opaque)
		e.HandlePacket(last, ci(t0.Add(time.Second), len(last)))
	}
	info := ci(t0.Add(2*time.Second), len(classified))
	for name, pkt := range map[string][]byte{"classified": classified, "given up": last} {
		if n := testing.AllocsPerRun(1000, func() { e.HandlePacket(pkt, info) }); n != 0 {
			t.Errorf("%s flow: %v allocations per packet, want 0", name, n)
		}
	}
}

func BenchmarkEstablishedFlow(b *testing.B) {
	e := NewEngine(Options{MaxFlows: 1024})
	for i, p := range sshHandshake(b, 40000) {
		e.HandlePacket(p, ci(t0.Add(time.Duration(i)*time.Millisecond), len(p)))
	}
	pkt := frame(b, pktSpec{src: pupil, dst: server, sport: 40000, dport: 22, ack: true, seq: 101, payload: make([]byte, 1200)})
	info := ci(t0.Add(time.Second), len(pkt))
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	for b.Loop() {
		e.HandlePacket(pkt, info)
	}
}

// BenchmarkDPIPath replays every packet of the shared captures (new flows,
// handshakes, classifiers) and reports time and allocations per packet.
func BenchmarkDPIPath(b *testing.B) {
	pkts := seeds(b, 1<<20)
	if len(pkts) == 0 {
		b.Fatal("the capture set holds no packets")
	}
	e := NewEngine(Options{MaxFlows: 4096})
	b.ReportAllocs()
	for b.Loop() {
		e.Reset()
		for i := range pkts {
			p := &pkts[i]
			e.HandlePacketLink(p.Link, p.Frame, gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Microsecond), CaptureLength: len(p.Frame), Length: len(p.Frame)})
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(pkts)), "ns/packet")
	b.ReportMetric(float64(len(pkts)), "packets/op")
}
