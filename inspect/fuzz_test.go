package inspect

import (
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/gatehouse-net/gatehouse/inspect/internal/pcapseed"
)

// seeds returns real packets from the shared captures.
func seeds(t testing.TB, max int) []pcapseed.Packet {
	t.Helper()
	return pcapseed.Read(pcapseed.Dir(t), max)
}

// FuzzHandlePacket feeds arbitrary frames of every supported link type
// through the whole packet path; two frames per input so that flows form.
func FuzzHandlePacket(f *testing.F) {
	for _, p := range seeds(f, 8) {
		f.Add(uint8(p.Link), p.Frame, []byte(nil))
	}
	f.Add(uint8(layers.LinkTypeEthernet), []byte{}, []byte{0})
	e := NewEngine(Options{MaxFlows: 64, InsideSubnets: nil})
	links := []layers.LinkType{layers.LinkTypeEthernet, layers.LinkTypeLinuxSLL, layers.LinkTypeNull, layers.LinkTypeRaw}
	f.Fuzz(func(t *testing.T, link uint8, a, b []byte) {
		lt := links[int(link)%len(links)]
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1700000000, 0), CaptureLength: len(a), Length: len(a)}
		e.HandlePacketLink(lt, a, ci)
		ci.Timestamp = ci.Timestamp.Add(time.Millisecond)
		e.HandlePacketLink(lt, b, ci)
	})
}

// FuzzOpenVPNTCP checks the OpenVPN reset matcher on arbitrary streams.
func FuzzOpenVPNTCP(f *testing.F) {
	f.Add([]byte("\x00\x0e\x38\x50\x7a\x28\xa7\x82\x75\x78\x8d\x00\x00\x00\x00\x00"),
		[]byte("\x00\x1a\x40\x9a\xd7\x47\xbe\xb2\x4d\x8a\x1b\x01\x00\x00\x00\x00\x50\x7a\x28\xa7\x82\x75\x78\x8d\x00\x00\x00\x00"))
	for _, p := range seeds(f, 4) {
		if len(p.Payload) > 0 {
			f.Add(p.Payload, p.Payload)
		}
	}
	f.Fuzz(func(t *testing.T, cs, ss []byte) {
		openVPNTCP(cs, ss, time.Time{})
		openVPNTCPClient(cs)
		socksHandshake(cs, ss)
		socksGreeting(cs)
		sslVPNRequest(cs)
		icmpCarrier(cs)
		webSocketTunnel(cs, ss)
		rdpConnectionRequest(cs)
		absoluteFormRequest(cs)
		pptpStart(cs)
		radminFrame(cs)
	})
}

// FuzzDNSTunnelHeuristics checks the per-name tunnel heuristics on
// arbitrary names and the DNS path on arbitrary UDP payloads.
func FuzzDNSTunnelHeuristics(f *testing.F) {
	f.Add("vaaaakardli.pirate.sea", uint16(10))
	f.Add("H4sICN03.2QAA3Rlc3QudHh0AAvJyCxWAKJ.example.com", uint16(1))
	f.Add("", uint16(16))
	tr := newDNSTunnelTracker(64)
	f.Fuzz(func(t *testing.T, name string, qtype uint16) {
		tr.query(name, layers.DNSType(qtype))
		encodedLabel(name)
		splitRegistered(name)
		torLikeSNI(name)
	})
}

// FuzzFullyEncrypted checks the entropy heuristics on arbitrary payloads.
func FuzzFullyEncrypted(f *testing.F) {
	for _, p := range seeds(f, 4) {
		if len(p.Payload) > 0 {
			f.Add(p.Payload)
		}
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		fullyEncrypted(b)
		lengthFramed(b)
		pingPattern(b)
		var r recTrace
		r.feed(0, b)
		r.feed(1, b)
	})
}

// FuzzVPNSignatures checks the ZeroTier, TeamViewer, SoftEther and DoH
// shape parsers on arbitrary datagrams, in both directions of a flow.
func FuzzVPNSignatures(f *testing.F) {
	f.Add(ztHello(ztClient, ztClient), ztPacket(ztClient, ztRoot, 0x08, 0x42, nil, 1))
	f.Add(softEtherPackBytes("host_name", "pc", "opcode", 1), []byte("IP=198.51.100.23,PORT=48211"))
	f.Add(tvFrame(0, 20), []byte("POST /vpnsvc/connect.cgi HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		fl := &flow{sport: ztPort}
		zeroTier(fl, dirC2S, a)
		zeroTier(fl, dirS2C, b)
		zeroTierHello(a)
		tv := &flow{sport: 5938}
		teamViewerUDP(tv, a)
		teamViewerUDP(tv, b)
		softEtherNATT(a)
		softEtherPack(a)
		softEtherRequest(a)
		var r recTrace
		r.doh.watch = true
		r.feed(dirC2S, a)
		r.feed(dirS2C, b)
		if r.doh.watch && r.doh.large > 1 {
			t.Fatal("the DoH shape kept watching after two oversized records")
		}
	})
}

// FuzzResolutions checks the name and answer handling of Resolutions and
// the name-shape tests on arbitrary strings.
func FuzzResolutions(f *testing.F) {
	f.Add("dns.example.net.", "cname edge.example.net 198.51.100.9 2001:db8::9")
	f.Add("www.q4cyamnc6mtokjurvdclt.com", "NXDOMAIN")
	f.Add("", "")
	r := NewResolutions(ResolutionsConfig{MaxEntries: 16})
	f.Fuzz(func(t *testing.T, name, answer string) {
		r.NoteAnswer(pupil, name, answer, t0)
		r.nameOf(pupil, server, t0)
		r.looked(pupil, name, t0)
		if label, ok := torSNILabel(name); ok {
			weakRandomLabel(label)
		}
		dnsLikeName(name)
		if r.addrs.len() > 32 || r.names.len() > 32 || r.clients.len() > 32 {
			t.Fatal("Resolutions grew past its bound")
		}
	})
}
