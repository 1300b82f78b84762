//go:build linux

package inspect

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/afpacket"
	"github.com/google/gopacket/layers"

	"github.com/gatehouse-net/gatehouse/testbed"
)

// The IPv6 addresses of TestOwnDNSReplyFilter's guard and client.
const (
	filterGuard6  = "fd00:99::1"
	filterClient6 = "fd00:99::5"
)

// TestOwnDNSReplyFilter runs the kernel filter on a real AF_PACKET ring: of
// the UDP datagrams on a segment, only the router's own port-53 replies
// from its guard's address are left out; queries to the guard, another
// resolver's replies (even one on the router, from an address not the
// guard's), port 53 coming in from a client and other ports are captured.
// Without OwnDNS the same traffic is all captured, so the test can fail.
func TestOwnDNSReplyFilter(t *testing.T) {
	const (
		guard  = "10.99.2.1" // the router's address the guard answers from
		other  = "10.99.2.2" // another address on the router, not the guard's
		client = "10.99.2.5"
		forged = "10.99.2.9" // listed as the guard's, but held by the client
	)
	// Each datagram the scenario sends, as src>dst.
	var (
		query      = client + ":40001>" + guard + ":53"
		reply      = guard + ":53>" + client + ":40001"
		queryOther = client + ":40002>" + other + ":53"
		replyOther = other + ":53>" + client + ":40002"
		fromClient = client + ":53>" + guard + ":9999" // a client's "port 53" traffic
		guardOther = guard + ":5300>" + client + ":40003"
		// Arriving from a client with a source the guard answers from:
		// only what leaves the router is left out.
		spoofed = forged + ":53>" + other + ":9999"
		query6  = "[" + filterClient6 + "]:40006>[" + filterGuard6 + "]:53"
		// A query to the guard from outside the guard's clients
		// (OwnDNSClients of "queries too").
		queryForeign = forged + ":40009>" + guard + ":53"
		reply6       = "[" + filterGuard6 + "]:53>[" + filterClient6 + "]:40006"
	)
	all := []string{query, reply, queryOther, replyOther, fromClient, guardOther, spoofed, query6, reply6, queryForeign}
	ownAll := []netip.Addr{netip.MustParseAddr(guard), netip.MustParseAddr(filterGuard6), netip.MustParseAddr(forged)}
	for _, tc := range []struct {
		name string
		cfg  CaptureConfig
		want []string
	}{
		{"filtered", CaptureConfig{OwnDNS: []netip.Addr{netip.MustParseAddr(guard), netip.MustParseAddr(filterGuard6), netip.MustParseAddr(forged)}},
			[]string{query, queryOther, replyOther, fromClient, guardOther, spoofed, query6, queryForeign}},
		{"v4 only", CaptureConfig{OwnDNS: []netip.Addr{netip.MustParseAddr(guard)}},
			[]string{query, queryOther, replyOther, fromClient, guardOther, spoofed, query6, reply6, queryForeign}},
		// The guard hands its clients' queries over (Site.NoteQuery):
		// those to its addresses are left out too; one to another
		// resolver, or from outside the clients, is still captured.
		{"queries too", CaptureConfig{OwnDNS: ownAll, OwnDNSClients: []netip.Prefix{netip.MustParsePrefix("10.99.2.4/30"), netip.MustParsePrefix("fd00:99::4/126")}},
			[]string{queryOther, replyOther, fromClient, guardOther, spoofed, queryForeign}},
		{"v6 clients only", CaptureConfig{OwnDNS: ownAll, OwnDNSClients: []netip.Prefix{netip.MustParsePrefix("fd00:99::/64")}},
			[]string{query, queryOther, replyOther, fromClient, guardOther, spoofed, queryForeign}},
		{"unfiltered", CaptureConfig{}, all},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := captureScenario(t, tc.cfg, guard, other, client, forged)
			for _, w := range all {
				if slices.Contains(got, w) != slices.Contains(tc.want, w) {
					t.Errorf("%s: captured %v, want %v (captured: %v)", w, slices.Contains(got, w), slices.Contains(tc.want, w), got)
				}
			}
		})
	}
}

// captureScenario sends the datagrams TestOwnDNSReplyFilter names between
// two namespaces, captures on the router's side with cfg and returns the
// UDP datagrams the ring held, as "src:port>dst:port".
func captureScenario(t *testing.T, cfg CaptureConfig, guard, other, client, forged string) []string {
	srvNS, cliNS := testbed.NewNS(t), testbed.NewNS(t)
	testbed.RequireTools(t, "ip")
	srv, cli := srvNS.Name, cliNS.Name
	const srvMAC, cliMAC = "02:00:00:00:99:01", "02:00:00:00:99:05"
	run(t, "ip", "-n", srv, "link", "add", "vsrv", "address", srvMAC, "type", "veth", "peer", "name", "vcli", "address", cliMAC, "netns", cli)
	run(t, "ip", "-n", srv, "addr", "add", guard+"/24", "dev", "vsrv")
	run(t, "ip", "-n", srv, "addr", "add", other+"/24", "dev", "vsrv")
	run(t, "ip", "-n", cli, "addr", "add", client+"/24", "dev", "vcli")
	run(t, "ip", "-n", cli, "addr", "add", forged+"/32", "dev", "vcli")
	run(t, "ip", "-n", srv, "addr", "add", filterGuard6+"/64", "dev", "vsrv", "nodad")
	run(t, "ip", "-n", cli, "addr", "add", filterClient6+"/64", "dev", "vcli", "nodad")
	run(t, "ip", "-n", srv, "link", "set", "vsrv", "up")
	run(t, "ip", "-n", cli, "link", "set", "vcli", "up")
	// Permanent neighbours, so that no datagram waits for ARP or neighbour
	// discovery (which may drop it while the links are still coming up).
	for _, a := range []string{client, forged, filterClient6} {
		run(t, "ip", "-n", srv, "neigh", "replace", a, "lladdr", cliMAC, "dev", "vsrv", "nud", "permanent")
	}
	for _, a := range []string{guard, other, filterGuard6} {
		run(t, "ip", "-n", cli, "neigh", "replace", a, "lladdr", srvMAC, "dev", "vcli", "nud", "permanent")
	}

	var capt *LiveCapture
	conns := map[string]*net.UDPConn{}
	listen := func(name, addr string) error {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
		if err != nil {
			return err
		}
		t.Cleanup(func() { c.Close() })
		conns[name] = c
		return nil
	}
	if err := srvNS.Do(func() error {
		var err error
		if capt, err = OpenCapture("vsrv", cfg); err != nil {
			return err
		}
		return errors.Join(listen("guard", guard+":53"), listen("other", other+":53"),
			listen("guard9999", guard+":9999"), listen("guard5300", guard+":5300"), listen("guard6", "["+filterGuard6+"]:53"))
	}); err != nil {
		t.Fatal(err)
	}
	defer capt.Close()
	if err := cliNS.Do(func() error {
		return errors.Join(listen("c1", client+":40001"), listen("c2", client+":40002"),
			listen("c3", client+":40003"), listen("c53", client+":53"), listen("forged", forged+":53"),
			listen("c6", "["+filterClient6+"]:40006"), listen("f2", forged+":40009"))
	}); err != nil {
		t.Fatal(err)
	}
	send := func(from, to string) {
		t.Helper()
		if _, err := conns[from].WriteToUDPAddrPort([]byte("x"), netip.MustParseAddrPort(to)); err != nil {
			t.Fatalf("%s to %s: %v", from, to, err)
		}
	}
	send("c1", guard+":53")
	send("guard", client+":40001")
	send("c2", other+":53")
	send("other", client+":40002")
	send("c53", guard+":9999")
	send("guard5300", client+":40003")
	send("forged", other+":9999")
	send("c6", "["+filterGuard6+"]:53")
	send("guard6", "["+filterClient6+"]:40006")
	send("f2", guard+":53")

	var got []string
	var eth layers.Ethernet
	var ip4 layers.IPv4
	var ip6 layers.IPv6
	var udp layers.UDP
	var payload gopacket.Payload
	parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &ip4, &ip6, &udp, &payload)
	parser.IgnoreUnsupported = true // DNS after UDP: the addresses are what counts
	decoded := []gopacket.LayerType{}
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		data, _, err := capt.tp.ZeroCopyReadPacketData()
		if errors.Is(err, afpacket.ErrTimeout) {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := parser.DecodeLayers(data, &decoded); err != nil || !slices.Contains(decoded, layers.LayerTypeUDP) {
			continue // ARP, IPv6 router solicitations
		}
		src, dst := ip4.SrcIP, ip4.DstIP
		if slices.Contains(decoded, layers.LayerTypeIPv6) {
			src, dst = ip6.SrcIP, ip6.DstIP
		}
		got = append(got, net.JoinHostPort(src.String(), fmt.Sprint(int(udp.SrcPort)))+">"+net.JoinHostPort(dst.String(), fmt.Sprint(int(udp.DstPort))))
	}
	return got
}
