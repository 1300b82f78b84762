package dhcp

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRealRelay puts ISC's dhcrelay between a client and the server, as an
// L3 switch would be: the server namespace reaches the relay namespace over
// a point-to-point link, the relay serves two remote subnets, and the
// server has no interface on either. The client's request must be served
// from the pool of the segment whose subnet holds the relay's giaddr, the
// answer must find its way back through the relay, and the lease must
// record the relay and the option 82 it added.
func TestRealRelay(t *testing.T) {
	requireNetAdmin(t, "dhcrelay", "udhcpc")
	b := newBed(t)
	relay := b.addNS()
	up := "ghu" + b.id[:4] // the server's side of the link to the relay
	sh(t, "ip", "link", "add", "up0", "netns", relay, "type", "veth", "peer", "name", up, "netns", b.router)
	sh(t, "ip", "-n", b.router, "addr", "add", "10.0.0.1/30", "dev", up)
	sh(t, "ip", "-n", b.router, "link", "set", up, "up")
	sh(t, "ip", "-n", relay, "addr", "add", "10.0.0.2/30", "dev", "up0")
	sh(t, "ip", "-n", relay, "link", "set", "up0", "up")
	// Replies go to giaddr: the server routes the remote subnets to the relay.
	sh(t, "ip", "-n", b.router, "route", "add", "10.60.0.0/15", "via", "10.0.0.2")

	// The client's wire ends on the relay's "annex" interface.
	client := b.addNS()
	const mac = "00:16:3e:70:00:01"
	sh(t, "ip", "link", "add", "eth0", "netns", client, "address", mac, "type", "veth", "peer", "name", "annex0", "netns", relay)
	sh(t, "ip", "-n", relay, "addr", "add", "10.70.0.1/24", "dev", "annex0")
	sh(t, "ip", "-n", relay, "link", "set", "annex0", "up")
	sh(t, "ip", "-n", client, "link", "set", "eth0", "up")

	remote := func(name, subnet, gw, lo, hi string) Segment {
		return Segment{Name: name, Subnet: netip.MustParsePrefix(subnet), Gateway: netip.MustParseAddr(gw),
			RangeStart: netip.MustParseAddr(lo), RangeEnd: netip.MustParseAddr(hi), Lease: time.Hour}
	}
	srv, _ := b.serveWith(filepath.Join(b.dir, "gatehouse.db"), Config{
		// The first segment would be the wrong answer: a server that
		// ignored giaddr would hand out its addresses.
		Segments: []Segment{
			remote("lab", "10.60.0.0/24", "10.60.0.1", "10.60.0.50", "10.60.0.99"),
			remote("annex", "10.70.0.0/24", "10.70.0.1", "10.70.0.50", "10.70.0.99"),
		},
		RelayInterfaces: []string{up},
		TrustedRelays:   []netip.Prefix{netip.MustParsePrefix("10.0.0.2/32")},
	})

	if segs := srv.Segments(); len(segs) != 2 || segs[1].Name != "annex" {
		t.Fatalf("Segments() = %+v", segs)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// -a: add option 82 (circuit id = the interface's name).
	rl := exec.CommandContext(ctx, "ip", "netns", "exec", relay, "dhcrelay", "-4", "-d", "-a", "--no-pid", "-iu", "up0", "-id", "annex0", "10.0.0.1")
	// A file, not a buffer: the relay writes it directly, so reading it
	// while the relay runs races with nothing.
	rlf, err := os.Create(filepath.Join(b.dir, "dhcrelay.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer rlf.Close()
	rl.Stdout, rl.Stderr = rlf, rlf
	if err := rl.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { rl.Process.Kill(); rl.Wait() }()
	rlog := func() string {
		b, _ := os.ReadFile(rlf.Name())
		return string(b)
	}

	out := filepath.Join(b.dir, "udhcpc-relay.log")
	script := b.script("udhcpc-relay.sh", out, "")
	// dhcrelay needs a moment to open its sockets; udhcpc's retries (5 ×
	// 1 s) cover it without a sleep here.
	o, err := shErr(20*time.Second, "ip", "netns", "exec", client, "udhcpc", "-f", "-q", "-n", "-i", "eth0", "-s", script, "-t", "8", "-T", "1")
	if err != nil {
		t.Fatalf("udhcpc behind the relay: %v\n%s\ndhcrelay:\n%s", err, o, rlog())
	}
	bound := last(hookEvents(t, out), "event", "bound")
	if bound == nil {
		t.Fatalf("no bound event: %v\n%s\ndhcrelay:\n%s", hookEvents(t, out), o, rlog())
	}
	ip := bound["ip"]
	if !inRange(ip, "10.70.0.50", "10.70.0.99") || bound["router"] != "10.70.0.1" || bound["subnet"] != "255.255.255.0" {
		t.Fatalf("lease behind the relay %v, want one from annex's pool with annex's router", bound)
	}
	l := leaseOf(srv, "annex", ip)
	if l.MAC.String() != mac || l.Relay != netip.MustParseAddr("10.70.0.1") {
		t.Fatalf("server's lease %+v, want %s relayed by 10.70.0.1", l, mac)
	}
	if !bytes.Contains(l.RelayInfo, []byte("annex0")) {
		t.Errorf("option 82 recorded as %q, want dhcrelay's circuit id naming annex0", l.RelayInfo)
	}
	for _, other := range srv.Leases() {
		if other.Segment == "lab" {
			t.Errorf("lab's pool handed out %v", other)
		}
	}
	if n := srv.Metrics().RelayUntrusted.Load(); n != 0 {
		t.Errorf("%d relayed messages refused as untrusted", n)
	}
	if strings.Contains(rlog(), "fatal") {
		t.Errorf("dhcrelay: %s", rlog())
	}
}
