package dhcp

import (
	"bytes"
	"net"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// FuzzParseRequest checks parseRequest against the library's parser it
// replaced: the same datagrams are refused, and every field the handler
// reads has the value the library's accessors give.
func FuzzParseRequest(f *testing.F) {
	for _, b := range realPackets(f) {
		f.Add(b)
	}
	for _, mt := range []dhcpv4.MessageType{dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeInform} {
		m := msg(f, "00:1c:b3:00:00:01", mt, withRequested("10.40.0.55"), withServerID("10.40.0.1"),
			dhcpv4.WithClientIP(net.ParseIP("10.40.0.60")), dhcpv4.WithGatewayIP(net.ParseIP("10.50.0.1")),
			dhcpv4.WithOption(dhcpv4.OptRelayAgentInfo(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(1), []byte("p1")))),
			dhcpv4.WithOption(dhcpv4.OptClientIdentifier([]byte{1, 2, 3})), dhcpv4.WithOption(dhcpv4.OptHostName("pc\x00")),
			dhcpv4.WithOption(dhcpv4.OptClassIdentifier("MSFT 5.0")), dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionRapidCommit, nil)))
		f.Add(m)
		// Repeated options are joined (RFC 3396), an empty one is absent.
		n := len(m) - 1 // before End
		f.Add(append(append(m[:n:n], 12, 2, 'a', 'b', 61, 0, 55, 3, 1, 3, 6), 255))
		f.Add(m[:headerLen])
		f.Add(m[:len(m)-1])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r request
		ok := parseRequest(b, &r)
		m, err := dhcpv4.FromBytes(b)
		if ok != (err == nil) {
			t.Fatalf("parseRequest %v, library error %v", ok, err)
		}
		if !ok {
			return
		}
		eq := func(what string, got, want []byte) {
			if !bytes.Equal(got, want) || (got == nil) != (want == nil) {
				t.Fatalf("%s: %x (nil %v), library %x (nil %v)", what, got, got == nil, want, want == nil)
			}
		}
		if r.op != m.OpCode || r.htype != byte(m.HWType) || r.xid != m.TransactionID || r.flags != m.Flags || r.mt != m.MessageType() {
			t.Fatalf("header %+v, library %v", r, m)
		}
		eq("chaddr", r.mac(), m.ClientHWAddr)
		if r.clientIP() != addr4(m.ClientIPAddr) || r.gatewayIP() != addr4(m.GatewayIPAddr) ||
			r.requestedIP() != addr4(m.RequestedIPAddress()) || r.serverIdentifier() != addr4(m.ServerIdentifier()) {
			t.Fatalf("addresses %v %v %v %v, library %v %v %v %v", r.clientIP(), r.gatewayIP(), r.requestedIP(), r.serverIdentifier(),
				m.ClientIPAddr, m.GatewayIPAddr, m.RequestedIPAddress(), m.ServerIdentifier())
		}
		eq("client id", r.clientID, m.Options.Get(dhcpv4.OptionClientIdentifier))
		eq("relay info", r.relayInfo, m.Options.Get(dhcpv4.OptionRelayAgentInformation))
		eq("prl", r.prl, m.Options.Get(dhcpv4.OptionParameterRequestList))
		if string(r.hostName()) != m.HostName() || string(r.vendor) != m.ClassIdentifier() {
			t.Fatalf("host %q vendor %q, library %q %q", r.hostName(), r.vendor, m.HostName(), m.ClassIdentifier())
		}
		if r.rapid != m.Options.Has(dhcpv4.OptionRapidCommit) {
			t.Fatalf("rapid commit %v, library %v", r.rapid, m.Options.Has(dhcpv4.OptionRapidCommit))
		}
		// A clone is equal and shares nothing with the datagram.
		c := r.clone()
		for i := range b {
			b[i] ^= 0xff
		}
		eq("cloned client id", c.clientID, m.Options.Get(dhcpv4.OptionClientIdentifier))
		eq("cloned relay info", c.relayInfo, m.Options.Get(dhcpv4.OptionRelayAgentInformation))
		eq("cloned prl", c.prl, m.Options.Get(dhcpv4.OptionParameterRequestList))
	})
}

// TestParseRequestDoesNotAllocate: parsing a request allocates nothing (the library's
// parser made a message, an options map and a slice per option).
func TestParseRequestDoesNotAllocate(t *testing.T) {
	b := msg(t, "00:1c:b3:00:00:01", dhcpv4.MessageTypeRequest, withRequested("10.40.0.55"), withServerID("10.40.0.1"),
		dhcpv4.WithOption(dhcpv4.OptClientIdentifier([]byte{1, 2, 3})), dhcpv4.WithOption(dhcpv4.OptHostName("pc")))
	var r request
	n := testing.AllocsPerRun(100, func() {
		if !parseRequest(b, &r) {
			t.Fatal("does not parse")
		}
	})
	if n != 0 {
		t.Errorf("%.0f allocations per parse, want 0", n)
	}
}
