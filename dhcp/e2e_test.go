package dhcp

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
)

// The end-to-end tests run real DHCP clients (dhclient from
// isc-dhcp-client, udhcpc from busybox/udhcpc, dhcpcd from dhcpcd-base)
// against the server in network namespaces they create: a router namespace
// with one bridge per segment, and one namespace per client, cabled to its
// segment's bridge with a veth pair.

// requireNetAdmin stops the test under testbed.Require's rule (root, or
// skip with -short) and fails it if ip or one of tools is missing.
func requireNetAdmin(t *testing.T, tools ...string) {
	t.Helper()
	testbed.Require(t)
	testbed.RequireTools(t, append([]string{"ip"}, tools...)...)
}

// sh runs a command with a bound time and fails the test on error.
func sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := shErr(10*time.Second, args...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func shErr(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	return string(out), err
}

type bed struct {
	t      *testing.T
	id     string
	router string // namespace name
	nsh    *testbed.NS
	dir    string
	n      int
	// open opens a server socket; nil means ListenLink, the server's
	// default, which sees each frame's Ethernet source.
	open func(iface string) (net.PacketConn, error)
}

func newBed(t *testing.T) *bed {
	t.Helper()
	var r [3]byte
	if _, err := rand.Read(r[:]); err != nil {
		t.Fatal(err)
	}
	b := &bed{t: t, id: hex.EncodeToString(r[:]), dir: t.TempDir()}
	b.nsh = b.newNS()
	b.router = b.nsh.Name
	return b
}

// addNS makes a namespace (removed, with whatever runs in it, when the
// test ends) with lo up, and returns its name.
func (b *bed) addNS() string { return b.newNS().Name }

func (b *bed) newNS() *testbed.NS {
	b.t.Helper()
	n := testbed.NewNS(b.t)
	sh(b.t, "ip", "-n", n.Name, "link", "set", "lo", "up")
	return n
}

// segment makes a bridge in the router namespace holding gw.
func (b *bed) segment(bridge, gw string) {
	b.t.Helper()
	sh(b.t, "ip", "-n", b.router, "link", "add", bridge, "type", "bridge")
	sh(b.t, "ip", "-n", b.router, "addr", "add", gw, "dev", bridge)
	sh(b.t, "ip", "-n", b.router, "link", "set", bridge, "up")
}

// client makes a namespace with one interface "eth0" of the given MAC,
// cabled to bridge, and returns the namespace name.
func (b *bed) client(bridge, mac string) string {
	b.t.Helper()
	b.n++
	ns := b.addNS()
	port := fmt.Sprintf("ghp%s%d", b.id[:4], b.n)
	sh(b.t, "ip", "link", "add", "eth0", "netns", ns, "address", mac, "type", "veth", "peer", "name", port, "netns", b.router)
	sh(b.t, "ip", "-n", b.router, "link", "set", port, "master", bridge, "up")
	sh(b.t, "ip", "-n", ns, "link", "set", "eth0", "up")
	return ns
}

// listen opens server sockets inside the router namespace.
func (b *bed) listen(iface string) (net.PacketConn, error) {
	open := b.open
	if open == nil {
		open = ListenLink
	}
	var c net.PacketConn
	err := b.nsh.Do(func() error {
		var err error
		c, err = open(iface)
		return err
	})
	return c, err
}

// serve runs a server over the database at path until the returned stop
// is called.
func (b *bed) serve(path string, segs []Segment) (*Server, func()) {
	b.t.Helper()
	return b.serveWith(path, Config{Segments: segs})
}

// serveWith is serve with more of the configuration given; Store and
// Listen are filled in.
func (b *bed) serveWith(path string, cfg Config) (*Server, func()) {
	b.t.Helper()
	st, err := store.Open(context.Background(), path)
	if err != nil {
		b.t.Fatal(err)
	}
	cfg.Store, cfg.Listen = NewSQLStore(st), b.listen
	s, err := New(cfg)
	if err != nil {
		b.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-done:
		cancel()
		b.t.Fatalf("server: %v", err)
	case <-time.After(10 * time.Second):
		b.t.Fatal("server not ready")
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			b.t.Errorf("server: %v", err)
		}
		st.Close()
	}
	b.t.Cleanup(stop)
	return s, stop
}

// Hook-script snippets that configure the leased address, so that the
// client can unicast its renewal and release from it.
const (
	configureUdhcpc   = "case \"$1\" in bound|renew) ip addr flush dev \"$interface\"; ip addr add \"$ip/$subnet\" dev \"$interface\";; esac\n"
	configureDhclient = "case \"$reason\" in BOUND|REBOOT|RENEW) ip addr flush dev \"$interface\"; ip addr add \"$new_ip_address/$new_subnet_mask\" dev \"$interface\";; esac\n"
)

// script writes a client hook script that appends the client's variables
// (one "key=value" per line, events separated by "--") to out, then runs
// configure.
func (b *bed) script(name, out, configure string) string {
	b.t.Helper()
	body := "#!/bin/sh\n{ echo \"event=$1\"; env; echo --; } >> " + out + "\n" + configure
	p := filepath.Join(b.dir, name)
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		b.t.Fatal(err)
	}
	return p
}

// hookEvents parses a script log into one map per event.
func hookEvents(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]string
	cur := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "--" {
			out = append(out, cur)
			cur = map[string]string{}
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			cur[k] = v
		}
	}
	return out
}

// last returns the last event whose key k is one of vals.
func last(evs []map[string]string, k string, vals ...string) map[string]string {
	for i := len(evs) - 1; i >= 0; i-- {
		for _, v := range vals {
			if evs[i][k] == v {
				return evs[i]
			}
		}
	}
	return nil
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func e2eSegments(bridgeV, bridgeS string) []Segment {
	return []Segment{
		{Name: "visitor", Interface: bridgeV, Subnet: netip.MustParsePrefix("10.40.0.0/24"), Gateway: netip.MustParseAddr("10.40.0.1"),
			RangeStart: netip.MustParseAddr("10.40.0.50"), RangeEnd: netip.MustParseAddr("10.40.0.99"), Lease: time.Hour, PortalURI: portalURI,
			RapidCommit: true}, // opted in, to prove dhcpcd's two-message exchange works
		{Name: "staff", Interface: bridgeS, Subnet: netip.MustParsePrefix("10.10.0.0/24"), Gateway: netip.MustParseAddr("10.10.0.1"),
			RangeStart: netip.MustParseAddr("10.10.0.50"), RangeEnd: netip.MustParseAddr("10.10.0.99"), Lease: 8 * time.Hour},
	}
}

func inRange(ip, lo, hi string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	return !a.Less(netip.MustParseAddr(lo)) && !netip.MustParseAddr(hi).Less(a)
}

func leaseOf(s *Server, seg, ip string) Lease {
	for _, l := range s.Leases() {
		if l.Segment == seg && l.IP.String() == ip {
			return l
		}
	}
	return Lease{}
}

func TestRealClients(t *testing.T) {
	requireNetAdmin(t, "dhclient", "udhcpc", "dhcpcd")
	b := newBed(t)
	bv, bs := "ghv"+b.id[:4], "ghs"+b.id[:4]
	b.segment(bv, "10.40.0.1/24")
	b.segment(bs, "10.10.0.1/24")
	segs := e2eSegments(bv, bs)
	db := filepath.Join(b.dir, "gatehouse.db")
	srv, stop := b.serve(db, segs)

	t.Run("dhclient on the portal segment: lease, option 114, reboot keeps it, release frees it", func(t *testing.T) {
		ns := b.client(bv, "00:16:3e:40:00:01")
		out := filepath.Join(b.dir, "dhclient.log")
		script := b.script("dhclient.sh", out, configureDhclient)
		lf, pf := filepath.Join(b.dir, "dhclient.leases"), filepath.Join(b.dir, "dhclient.pid")
		args := []string{"ip", "netns", "exec", ns, "dhclient", "-4", "-1", "-v", "-sf", script, "-lf", lf, "-pf", pf, "eth0"}
		if o, err := shErr(20*time.Second, args...); err != nil {
			t.Fatalf("dhclient: %v\n%s", err, o)
		}
		bound := last(hookEvents(t, out), "reason", "BOUND")
		if bound == nil {
			t.Fatalf("no BOUND in %v", hookEvents(t, out))
		}
		ip := bound["new_ip_address"]
		if !inRange(ip, "10.40.0.50", "10.40.0.99") || bound["new_routers"] != "10.40.0.1" || bound["new_domain_name_servers"] != "10.40.0.1" {
			t.Fatalf("dhclient lease %v", bound)
		}
		if bound["new_default_url"] != portalURI {
			t.Errorf("option 114 as dhclient saw it: %q, want %q", bound["new_default_url"], portalURI)
		}
		// A second run finds its lease file and asks for the same address
		// (INIT-REBOOT); the server must confirm it.
		shErr(5*time.Second, "ip", "netns", "exec", ns, "dhclient", "-x", "-sf", script, "-lf", lf, "-pf", pf, "eth0")
		if o, err := shErr(20*time.Second, args...); err != nil {
			t.Fatalf("dhclient again: %v\n%s", err, o)
		}
		again := last(hookEvents(t, out), "reason", "REBOOT", "BOUND")
		if again["new_ip_address"] != ip {
			t.Fatalf("second dhclient run got %v, want %s", again, ip)
		}
		o, err := shErr(20*time.Second, "ip", "netns", "exec", ns, "dhclient", "-r", "-v", "-sf", script, "-lf", lf, "-pf", pf, "eth0")
		if err != nil {
			t.Fatalf("dhclient -r: %v\n%s", err, o)
		}
		waitFor(t, "release recorded", 5*time.Second, func() bool { return leaseOf(srv, "visitor", ip).State == StateReleased })
	})

	var udhcpcIP, udhcpcNS string
	t.Run("udhcpc on staff: lease without option 114, renew keeps it, release frees it", func(t *testing.T) {
		ns := b.client(bs, "00:16:3e:10:00:02")
		out := filepath.Join(b.dir, "udhcpc.log")
		script := b.script("udhcpc.sh", out, configureUdhcpc)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "udhcpc", "-f", "-i", "eth0", "-s", script, "-t", "5", "-T", "1", "-A", "1", "-O", "114", "-x", "hostname:staff-pc")
		var log strings.Builder
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		waitFor(t, "udhcpc bound", 15*time.Second, func() bool { return last(hookEvents(t, out), "event", "bound") != nil })
		bound := last(hookEvents(t, out), "event", "bound")
		ip := bound["ip"]
		if !inRange(ip, "10.10.0.50", "10.10.0.99") || bound["router"] != "10.10.0.1" || bound["dns"] != "10.10.0.1" {
			t.Fatalf("udhcpc lease %v", bound)
		}
		if v, ok := bound["opt114"]; ok {
			t.Errorf("option 114 on a segment without a portal: %q", v)
		}
		l := leaseOf(srv, "staff", ip)
		if l.Hostname != "staff-pc" {
			t.Errorf("lease %+v lacks the host name", l)
		}
		startBefore := l.Start
		// SIGUSR1: renew, unicast from the configured address.
		cmd.Process.Signal(syscall.SIGUSR1)
		waitFor(t, "udhcpc renew", 10*time.Second, func() bool { return last(hookEvents(t, out), "event", "renew") != nil })
		if r := last(hookEvents(t, out), "event", "renew"); r["ip"] != ip {
			t.Fatalf("renew moved %s to %v", ip, r)
		}
		if !leaseOf(srv, "staff", ip).Start.After(startBefore) {
			t.Errorf("renewal not recorded")
		}
		if srv.Metrics().Naks.Load() != 0 {
			t.Errorf("NAKs sent: %d", srv.Metrics().Naks.Load())
		}
		// SIGUSR2: release.
		cmd.Process.Signal(syscall.SIGUSR2)
		waitFor(t, "release recorded", 10*time.Second, func() bool { return leaseOf(srv, "staff", ip).State == StateReleased })
		udhcpcIP, udhcpcNS = ip, ns
	})

	t.Run("dhcpcd on the portal segment: rapid commit lease with option 114", func(t *testing.T) {
		ns := b.client(bv, "00:16:3e:40:00:03")
		out := filepath.Join(b.dir, "dhcpcd.log")
		script := b.script("dhcpcd.sh", out, "")
		conf := filepath.Join(b.dir, "dhcpcd.conf")
		os.WriteFile(conf, []byte("option rapid_commit\noption domain_name_servers, routers\ndefine 114 string captive_portal_uri\noption captive_portal_uri\nnoipv4ll\nnoarp\nnohook resolv.conf\n"), 0o644)
		offersBefore := srv.Metrics().Offers.Load()
		// dhcpcd keeps its lease and DUID under /var/lib/dhcpcd and its
		// sockets under /run/dhcpcd, with no option to move them: give
		// it private, empty ones so no run sees another's state.
		o, err := shErr(30*time.Second, "ip", "netns", "exec", ns, "unshare", "--mount", "sh", "-c",
			"mkdir -p /var/lib/dhcpcd /run/dhcpcd && mount -t tmpfs gh-dhcpcd /var/lib/dhcpcd && mount -t tmpfs gh-dhcpcd /run/dhcpcd && "+
				"exec dhcpcd -4 -1 -B -t 15 -f "+conf+" -c "+script+" eth0")
		if err != nil {
			t.Fatalf("dhcpcd: %v\n%s", err, o)
		}
		bound := last(hookEvents(t, out), "reason", "BOUND", "REBOOT")
		if bound == nil {
			t.Fatalf("no BOUND: %v\n%s", hookEvents(t, out), o)
		}
		ip := bound["new_ip_address"]
		if !inRange(ip, "10.40.0.50", "10.40.0.99") || bound["new_routers"] != "10.40.0.1" || bound["new_domain_name_servers"] != "10.40.0.1" {
			t.Fatalf("dhcpcd lease %v", bound)
		}
		if bound["new_captive_portal_uri"] != portalURI {
			t.Errorf("option 114 as dhcpcd saw it: %q; all: %v", bound["new_captive_portal_uri"], bound)
		}
		if srv.Metrics().Offers.Load() != offersBefore {
			t.Errorf("dhcpcd asked for rapid commit but got an OFFER")
		}
	})

	t.Run("after a restart a returning client gets its old address", func(t *testing.T) {
		if udhcpcIP == "" {
			t.Skip("udhcpc run failed")
		}
		stop()
		srv, _ = b.serve(db, segs)
		ns := udhcpcNS // the same client, same MAC, nothing remembered on its side
		out := filepath.Join(b.dir, "udhcpc2.log")
		script := b.script("udhcpc2.sh", out, "")
		if o, err := shErr(20*time.Second, "ip", "netns", "exec", ns, "udhcpc", "-f", "-q", "-n", "-i", "eth0", "-s", script, "-t", "5", "-T", "1"); err != nil {
			t.Fatalf("udhcpc: %v\n%s", err, o)
		}
		if got := last(hookEvents(t, out), "event", "bound"); got["ip"] != udhcpcIP {
			t.Fatalf("after restart got %v, want %s", got, udhcpcIP)
		}
	})
}
