package dhcp

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

func realPackets(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob("testdata/clients/*.bin")
	if err != nil || len(files) == 0 {
		t.Fatalf("no real packets in testdata/clients: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".bin")] = b
	}
	return out
}

// TestRealClientPacketsAreServedAndFingerprinted feeds each captured
// packet to the handler and checks what the device record makes of it.
func TestRealClientPacketsAreServedAndFingerprinted(t *testing.T) {
	want := map[string]struct {
		answer dhcpv4.MessageType // MessageTypeNone: silence
		os     string
	}{
		"dhclient-discover":            {dhcpv4.MessageTypeOffer, OSLinux},
		"udhcpc-discover":              {dhcpv4.MessageTypeOffer, OSLinux},
		"dhcpcd-discover-rapid-commit": {dhcpv4.MessageTypeAck, OSLinux},
		"imac-discover":                {dhcpv4.MessageTypeOffer, OSMacOS},
		"apple-offer-from-server":      {dhcpv4.MessageTypeNone, ""},
		"apple-ack-from-server":        {dhcpv4.MessageTypeNone, ""},
	}
	pkts := realPackets(t)
	for name, w := range want {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, newMemStore(), nil)
			b, ok := pkts[name]
			if !ok {
				t.Fatalf("missing testdata/clients/%s.bin", name)
			}
			r, _ := h.send("v0", clientPort, b)
			switch {
			case w.answer == dhcpv4.MessageTypeNone && r != nil:
				t.Fatalf("answered %v", r)
			case w.answer != dhcpv4.MessageTypeNone && (r == nil || r.MessageType() != w.answer):
				t.Fatalf("answer %v, want %v", r, w.answer)
			}
			if w.os == "" {
				return
			}
			var req request
			if !parseRequest(b, &req) {
				t.Fatal("does not parse")
			}
			if d := h.s.device(h.s.byIface["v0"], &req, netip.Addr{}, h.clk.Now()); d.OS != w.os {
				t.Errorf("OS guess %q from vendor %q prl %q, want %q", d.OS, d.VendorClass, d.Fingerprint, w.os)
			}
		})
	}
}

// FuzzHandle checks that no input crashes the handler or makes it answer
// outside the rules: a reply is a BOOTREPLY for the same transaction, an
// address given on a direct request lies in the receiving segment, and a
// reply goes to the broadcast address, the client's own address or the
// relay.
func FuzzHandle(f *testing.F) {
	for _, b := range realPackets(f) {
		f.Add(b, false)
		f.Add(b, true)
	}
	for _, mt := range []dhcpv4.MessageType{dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeRelease,
		dhcpv4.MessageTypeDecline, dhcpv4.MessageTypeInform} {
		f.Add(msg(f, "00:1c:b3:00:00:01", mt, withRequested("10.40.0.55"), withServerID("10.40.0.1"),
			dhcpv4.WithClientIP(net.ParseIP("10.40.0.60")), dhcpv4.WithGatewayIP(net.ParseIP("10.50.0.1")),
			dhcpv4.WithOption(dhcpv4.OptRelayAgentInfo(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(1), []byte("p1"))))), true)
	}
	h := newHarness(f, newMemStore(), nil)
	visitor := netip.MustParsePrefix("10.40.0.0/24")
	f.Fuzz(func(t *testing.T, b []byte, relayed bool) {
		h.t = t
		recv, src := h.s.byIface["v0"], clientPort
		if relayed {
			recv, src = nil, relayPort
		}
		out, dst, ok := h.s.handle(context.Background(), recv, src, nil, b)
		if !ok {
			return
		}
		req, err := dhcpv4.FromBytes(b)
		if err != nil {
			t.Fatalf("answered an unparseable packet")
		}
		r, err := dhcpv4.FromBytes(out)
		if err != nil {
			t.Fatalf("reply does not parse: %v", err)
		}
		if r.OpCode != dhcpv4.OpcodeBootReply || r.TransactionID != req.TransactionID {
			t.Fatalf("reply op %v xid %v for xid %v", r.OpCode, r.TransactionID, req.TransactionID)
		}
		giaddr := addr4(req.GatewayIPAddr)
		if yi := addr4(r.YourIPAddr); yi.IsValid() && !giaddr.IsValid() && !visitor.Contains(yi) {
			t.Fatalf("direct request on visitor given %v", yi)
		}
		switch {
		case giaddr.IsValid():
			if dst != netip.AddrPortFrom(giaddr, 67) {
				t.Fatalf("relayed reply sent to %v", dst)
			}
		case dst == bcast:
		case dst.Port() == 68 && dst.Addr() == addr4(req.ClientIPAddr):
		default:
			t.Fatalf("reply sent to %v", dst)
		}
	})
}

// FuzzIsDiscover checks the read loop's sorting against the parser: a
// datagram it calls a DISCOVER is one the handler parses as a DISCOVER
// (the other way round it may be stricter: a type split over repeated
// options is left to the handler's queue).
func FuzzIsDiscover(f *testing.F) {
	for _, b := range realPackets(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !isDiscover(b) {
			return
		}
		m, err := dhcpv4.FromBytes(b)
		if err != nil {
			return // the handler drops it as malformed, from either queue
		}
		if m.MessageType() != dhcpv4.MessageTypeDiscover {
			t.Fatalf("isDiscover, but the parser says %v", m.MessageType())
		}
	})
}
