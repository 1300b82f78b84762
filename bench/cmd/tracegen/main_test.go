package main

import (
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// build serialises an Ethernet/IP/transport packet with correct checksums.
func build(t *testing.T, src, dst string, udp bool) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC}
	var ip gopacket.NetworkLayer
	s, d := net.ParseIP(src), net.ParseIP(dst)
	proto := layers.IPProtocolTCP
	if udp {
		proto = layers.IPProtocolUDP
	}
	var ls []gopacket.SerializableLayer
	if s.To4() != nil {
		eth.EthernetType = layers.EthernetTypeIPv4
		ip4 := &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: s.To4(), DstIP: d.To4()}
		ip, ls = ip4, []gopacket.SerializableLayer{eth, ip4}
	} else {
		eth.EthernetType = layers.EthernetTypeIPv6
		ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: s, DstIP: d}
		ip, ls = ip6, []gopacket.SerializableLayer{eth, ip6}
	}
	payload := gopacket.Payload([]byte("hello, inspector"))
	if udp {
		u := &layers.UDP{SrcPort: 40000, DstPort: 1194}
		u.SetNetworkLayerForChecksum(ip)
		ls = append(ls, u, payload)
	} else {
		tc := &layers.TCP{SrcPort: 40000, DstPort: 443, Seq: 7, ACK: true, PSH: true, Window: 512}
		tc.SetNetworkLayerForChecksum(ip)
		ls = append(ls, tc, payload)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// reserialise decodes b and serialises it again computing checksums, the
// way to learn what the checksums should be for its (new) addresses.
func reserialise(t *testing.T, b []byte) []byte {
	t.Helper()
	p := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
	var ls []gopacket.SerializableLayer
	var nl gopacket.NetworkLayer
	for _, l := range p.Layers() {
		switch l := l.(type) {
		case *layers.IPv4:
			nl = l
		case *layers.IPv6:
			nl = l
		case *layers.TCP:
			l.SetNetworkLayerForChecksum(nl)
		case *layers.UDP:
			l.SetNetworkLayerForChecksum(nl)
		}
		ls = append(ls, l.(gopacket.SerializableLayer))
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRenumberKeepsChecksumsValid(t *testing.T) {
	cases := []struct {
		name, src, dst, wantSrc, wantDst string
		udp                              bool
	}{
		{"ipv4 tcp", "10.20.0.10", "192.0.2.11", "10.20.1.10", "192.0.3.11", false},
		{"ipv4 udp", "172.16.5.9", "203.0.113.80", "172.16.4.9", "203.0.112.80", true},
		{"ipv4 dhcp", "0.0.0.0", "255.255.255.255", "0.0.0.0", "255.255.255.255", true},
		{"ipv6 tcp", "2001:db8:1:2::10", "2001:db8:ffff:0::1", "2001:db8:0:2::10", "2001:db8:fffe::1", false},
		{"ipv6 loopback", "::1", "::1", "::1", "::1", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pkt := build(t, c.src, c.dst, c.udp)
			renumber(pkt, 1)
			p := gopacket.NewPacket(pkt, layers.LayerTypeEthernet, gopacket.Default)
			var src, dst net.IP
			if ip4, ok := p.NetworkLayer().(*layers.IPv4); ok {
				src, dst = ip4.SrcIP, ip4.DstIP
			} else {
				ip6 := p.NetworkLayer().(*layers.IPv6)
				src, dst = ip6.SrcIP, ip6.DstIP
			}
			if !src.Equal(net.ParseIP(c.wantSrc)) || !dst.Equal(net.ParseIP(c.wantDst)) {
				t.Errorf("renumbered to %v > %v, want %s > %s", src, dst, c.wantSrc, c.wantDst)
			}
			if want := reserialise(t, pkt); string(want) != string(pkt) {
				t.Errorf("checksums wrong after renumbering:\n got % x\nwant % x", pkt, want)
			}
		})
	}
}

func TestRenumberCopyZeroIsTheOriginal(t *testing.T) {
	pkt := build(t, "10.20.0.10", "192.0.2.11", false)
	orig := string(pkt)
	renumber(pkt, 0)
	if string(pkt) != orig {
		t.Error("copy 0 changed the packet")
	}
}

func TestToEthernet(t *testing.T) {
	full := build(t, "10.20.0.10", "192.0.2.11", true)
	ip := full[14:]
	sll := append(make([]byte, 16), ip...)
	null := append([]byte{2, 0, 0, 0}, ip...)
	for _, c := range []struct {
		name string
		lt   layers.LinkType
		b    []byte
		grow int
	}{
		{"ethernet", layers.LinkTypeEthernet, full, 0},
		{"raw", layers.LinkTypeRaw, ip, 14},
		{"sll", layers.LinkTypeLinuxSLL, sll, -2},
		{"null", layers.LinkTypeNull, null, 10},
	} {
		got, grow, ok := toEthernet(c.lt, c.b)
		if !ok || grow != c.grow || string(got[12:]) != string(full[12:]) {
			t.Errorf("%s: ok=%v grow=%d, frame % x", c.name, ok, grow, got)
		}
	}
	if _, _, ok := toEthernet(layers.LinkTypeRaw, []byte{0x12, 0x34}); ok {
		t.Error("a non-IP raw packet was converted")
	}
	if _, _, ok := toEthernet(layers.LinkTypeIEEE802_11, full); ok {
		t.Error("an unsupported link type was converted")
	}
}
