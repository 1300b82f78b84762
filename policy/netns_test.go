package policy

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/testbed"
)

// newNS is a namespace of the test's own with the tools these tests run in
// it; it returns its name too, for `ip netns exec`.
func newNS(t testing.TB) (string, *testbed.NS) {
	t.Helper()
	n := testbed.NewNS(t)
	testbed.RequireTools(t, "ip", "nft")
	return n.Name, n
}

func run(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func nsRun(t testing.TB, ns string, args ...string) string {
	t.Helper()
	return run(t, append([]string{"ip", "netns", "exec", ns}, args...)...)
}

func testNetwork() Network {
	seg := func(name, iface, subnet, gw string) SegmentSpec {
		return Defaults(name, iface, netip.MustParsePrefix(subnet), netip.MustParseAddr(gw), false)
	}
	return Network{
		Uplink: "wan0",
		Segments: []SegmentSpec{
			seg("staff", "lan10", "10.10.0.0/22", "10.10.0.1"),
			seg("pupil", "lan20", "10.20.0.0/21", "10.20.0.1"),
			seg("byod", "lan30", "10.30.0.0/22", "10.30.0.1"),
			seg("visitor", "lan40", "10.40.0.0/23", "10.40.0.1"),
		},
		Servers:    map[string]netip.Prefix{"mis": netip.MustParsePrefix("10.5.0.0/24")},
		AdminAddr:  netip.MustParseAddrPort("10.99.0.1:8443"),
		PortalPort: 8080,
		DNSPort:    5353,
	}
}

func newEnforcer(t testing.TB, fd *testbed.NS, n Network, now func() time.Time) *Enforcer {
	t.Helper()
	e, err := New(Options{NetNSFd: int(fd.Fd()), Now: now}, n, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func TestApplyBuildsOwnTableAndLeavesOthersAlone(t *testing.T) {
	ns, fd := newNS(t)
	nsRun(t, ns, "nft", "add table ip other; add chain ip other c { type filter hook forward priority 10; }; add rule ip other c tcp dport 22 counter accept")
	otherBefore := nsRun(t, ns, "nft", "list", "table", "ip", "other")

	e := newEnforcer(t, fd, testNetwork(), time.Now)
	ctx := context.Background()
	if err := e.Apply(ctx); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	first := nsRun(t, ns, "nft", "list", "table", "inet", TableName)
	for _, want := range []string{
		"type filter hook forward priority filter; policy drop;",
		"ct state established,related accept",
		`iifname "lan20" jump seg_pupil`,
		`oifname "lan20" counter packets 0 bytes 0 drop comment "pupil: client isolation`,
		`ip daddr 10.10.0.0/22 counter packets 0 bytes 0 drop comment "pupil: no staff subnet`,
		`ip daddr 10.5.0.0/24 accept comment "staff: server mis`,
		`ether saddr . ip saddr != @admitted jump deny`,
		`iifname "lan40" tcp dport 80 ether saddr . ip saddr != @admitted redirect to :8080`,
		`iifname "lan20" udp dport 53 redirect to :5353`,
		`oifname "wan0" meta nfproto ipv4 masquerade`,
		`iifname "lan20" tcp dport 8443 jump deny`,
		"tcp dport 853 counter packets 0 bytes 0 reject with tcp reset",
		"update @rate_visitor_up { ip saddr limit rate over 1250000 bytes/second burst 1250000 bytes } drop",
		`oifname "lan40" update @rate_visitor_down { ip daddr limit rate over 1250000 bytes/second`,
	} {
		if !strings.Contains(first, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(first)
	}
	if err := e.Apply(ctx); err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	second := nsRun(t, ns, "nft", "list", "table", "inet", TableName)
	if first != second {
		t.Errorf("re-Apply changed the table:\n--- first\n%s\n--- second\n%s", first, second)
	}
	if got := nsRun(t, ns, "nft", "list", "table", "ip", "other"); got != otherBefore {
		t.Errorf("other table changed:\n--- before\n%s\n--- after\n%s", otherBefore, got)
	}
}

func listSet(t *testing.T, ns, set string) string {
	t.Helper()
	return nsRun(t, ns, "nft", "list", "set", "inet", TableName, set)
}

func TestMembershipIsOneElementOperation(t *testing.T) {
	ns, fd := newNS(t)
	e := newEnforcer(t, fd, testNetwork(), time.Now)
	ctx := context.Background()
	visitor := Device{MAC: mac("02:00:00:00:40:0a"), IP: netip.MustParseAddr("10.40.0.10")}

	// Before the first Apply a call only records desired state, which Apply
	// then builds in: this is how the daemon reloads its database on start.
	if err := e.Admit(ctx, visitor, time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("Admit before Apply: %v", err)
	}
	if err := e.Apply(ctx); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if got := listSet(t, ns, SetAdmitted); !strings.Contains(got, "02:00:00:00:40:0a . 10.40.0.10 timeout 1h") {
		t.Fatalf("admitted set lacks the visitor with a 1h timeout:\n%s", got)
	}
	// Re-admitting changes the element's timeout in place.
	if err := e.Admit(ctx, visitor, time.Now().Add(2*time.Hour)); err != nil {
		t.Fatalf("re-Admit: %v", err)
	}
	if got := listSet(t, ns, SetAdmitted); !strings.Contains(got, "02:00:00:00:40:0a . 10.40.0.10 timeout 2h") {
		t.Fatalf("re-admit did not set a 2h timeout:\n%s", got)
	}
	if err := e.Evict(ctx, visitor); err != nil {
		t.Fatalf("Evict: %v", err)
	}
	if got := listSet(t, ns, SetAdmitted); strings.Contains(got, "10.40.0.10") {
		t.Fatalf("evicted visitor still in set:\n%s", got)
	}

	// Evicting by MAC alone ends every admission of that MAC.
	renumbered := Device{MAC: visitor.MAC, IP: netip.MustParseAddr("10.40.0.77")}
	other := Device{MAC: mac("02:00:00:00:40:0c"), IP: netip.MustParseAddr("10.40.0.12")}
	for _, d := range []Device{visitor, renumbered, other} {
		if err := e.Admit(ctx, d, time.Now().Add(time.Hour)); err != nil {
			t.Fatalf("Admit %v: %v", d, err)
		}
	}
	if err := e.Evict(ctx, Device{MAC: visitor.MAC}); err != nil {
		t.Fatalf("Evict by MAC: %v", err)
	}
	if got := listSet(t, ns, SetAdmitted); strings.Contains(got, "02:00:00:00:40:0a") || !strings.Contains(got, "02:00:00:00:40:0c . 10.40.0.12") {
		t.Fatalf("after evicting 02:00:00:00:40:0a by MAC:\n%s", got)
	}

	dev := Device{MAC: mac("02:00:00:00:30:0b"), IP: netip.MustParseAddr("10.30.0.11")}
	steps := []struct {
		name string
		do   func() error
		set  string
		want string
		gone bool
	}{
		{"approve", func() error { return e.Approve(ctx, dev) }, SetApproved, "02:00:00:00:30:0b", false},
		{"quarantine mac", func() error { return e.Quarantine(ctx, dev) }, SetQuarantineMAC, "02:00:00:00:30:0b", false},
		{"quarantine ip", func() error { return nil }, SetQuarantineIP, "10.30.0.11", false},
		{"release", func() error { return e.Release(ctx, dev) }, SetQuarantineMAC, "02:00:00:00:30:0b", true},
		{"revoke", func() error { return e.Revoke(ctx, dev) }, SetRevokedIP, "10.30.0.11", false},
		{"revoke drops approval", func() error { return nil }, SetApproved, "02:00:00:00:30:0b", true},
		{"reinstate", func() error { return e.Reinstate(ctx, dev) }, SetRevokedMAC, "02:00:00:00:30:0b", true},
		{"block", func() error { return e.Block(ctx, netip.MustParseAddr("198.51.100.7")) }, SetBlocked, "198.51.100.7", false},
		{"unblock", func() error { return e.Unblock(ctx, netip.MustParseAddr("198.51.100.7")) }, SetBlocked, "198.51.100.7", true},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		got := listSet(t, ns, s.set)
		if strings.Contains(got, s.want) == s.gone {
			t.Fatalf("%s: set %s (want %q present=%v):\n%s", s.name, s.set, s.want, !s.gone, got)
		}
	}
}

func TestMembershipRejectsBadDevices(t *testing.T) {
	ns, fd := newNS(t)
	_ = ns
	e := newEnforcer(t, fd, testNetwork(), time.Now)
	ctx := context.Background()
	cases := []struct {
		name string
		err  error
	}{
		{"admit without IP", e.Admit(ctx, Device{MAC: mac("02:00:00:00:00:01")}, time.Now().Add(time.Hour))},
		{"admit IPv6", e.Admit(ctx, Device{MAC: mac("02:00:00:00:00:01"), IP: netip.MustParseAddr("2001:db8::1")}, time.Now().Add(time.Hour))},
		{"admit in the past", e.Admit(ctx, Device{MAC: mac("02:00:00:00:00:01"), IP: netip.MustParseAddr("10.40.0.9")}, time.Now().Add(-time.Second))},
		{"quarantine nothing", e.Quarantine(ctx, Device{})},
		{"approve 8-byte MAC", e.Approve(ctx, Device{MAC: mac("02:00:00:00:00:00:00:01")})},
	}
	for _, c := range cases {
		if c.err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
}

func TestCheckRepairsDriftAndCountsIt(t *testing.T) {
	ns, fd := newNS(t)
	e := newEnforcer(t, fd, testNetwork(), time.Now)
	ctx := context.Background()
	visitor := Device{MAC: mac("02:00:00:00:40:0a"), IP: netip.MustParseAddr("10.40.0.10")}
	if err := e.Apply(ctx); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if err := e.Admit(ctx, visitor, time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("Admit: %v", err)
	}
	if err := e.Block(ctx, netip.MustParseAddr("203.0.113.9")); err != nil {
		t.Fatalf("Block: %v", err)
	}
	want := nsRun(t, ns, "nft", "list", "table", "inet", TableName)
	// A repaired element's timeout is what was left of it, and expiry counts
	// down between listings; the re-timed case shows timeouts are compared.
	timeouts := regexp.MustCompile(` timeout \S+ expires \S+`)
	clean := func(s string) string { return timeouts.ReplaceAllString(s, "") }

	cases := []struct {
		name    string
		tamper  string
		repairs int
	}{
		{"nothing changed", "", 0},
		{"element deleted", "delete element inet gatehouse admitted { 02:00:00:00:40:0a . 10.40.0.10 }", 1},
		{"stray element added", "add element inet gatehouse approved { 02:00:00:00:99:99 }", 1},
		{"two elements changed", "delete element inet gatehouse blocked { 203.0.113.9 }; add element inet gatehouse revoked_ip { 10.20.0.5 }", 2},
		{"element re-timed", "delete element inet gatehouse admitted { 02:00:00:00:40:0a . 10.40.0.10 }; add element inet gatehouse admitted { 02:00:00:00:40:0a . 10.40.0.10 timeout 30d }", 1},
		{"chain flushed", "flush chain inet gatehouse seg_pupil", 1},
		{"rule added", "insert rule inet gatehouse forward accept", 1},
		{"policy changed", "add chain inet gatehouse forward { type filter hook forward priority filter; policy accept; }", 1},
		{"stray chain", "add chain inet gatehouse extra", 1},
		{"table deleted", "delete table inet gatehouse", 1},
	}
	for _, c := range cases {
		if c.tamper != "" {
			nsRun(t, ns, "nft", c.tamper)
		}
		n, err := e.Check(ctx)
		if err != nil {
			t.Fatalf("%s: Check: %v", c.name, err)
		}
		if n != c.repairs {
			t.Errorf("%s: Check repaired %d, want %d", c.name, n, c.repairs)
		}
		if got := nsRun(t, ns, "nft", "list", "table", "inet", TableName); clean(got) != clean(want) {
			t.Fatalf("%s: table not restored:\n--- want\n%s\n--- got\n%s", c.name, want, got)
		}
		if n, err := e.Check(ctx); err != nil || n != 0 {
			t.Fatalf("%s: second Check = %d, %v; want 0, nil", c.name, n, err)
		}
	}
}

func TestRunRepairsDriftUntilStopped(t *testing.T) {
	ns, fd := newNS(t)
	e := newEnforcer(t, fd, testNetwork(), time.Now)
	ctx, cancel := context.WithCancel(context.Background())
	if err := e.Apply(ctx); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if err := e.Block(ctx, netip.MustParseAddr("203.0.113.9")); err != nil {
		t.Fatalf("Block: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, 20*time.Millisecond) }()
	nsRun(t, ns, "nft", "delete element inet gatehouse blocked { 203.0.113.9 }")
	repaired := false
	for range 250 { // 5 s at most
		if strings.Contains(listSet(t, ns, SetBlocked), "203.0.113.9") {
			repaired = true
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !repaired {
		t.Fatal("Run did not put the deleted element back")
	}
}

func TestRestartChangesNothing(t *testing.T) {
	ns, fd := newNS(t)
	ctx := context.Background()
	until := time.Now().Add(time.Hour)
	load := func(e *Enforcer) {
		t.Helper()
		if err := e.Admit(ctx, Device{MAC: mac("02:00:00:00:40:0a"), IP: netip.MustParseAddr("10.40.0.10")}, until); err != nil {
			t.Fatal(err)
		}
		if err := e.Approve(ctx, Device{MAC: mac("02:00:00:00:30:0b")}); err != nil {
			t.Fatal(err)
		}
		if err := e.Apply(ctx); err != nil {
			t.Fatal(err)
		}
	}
	first := newEnforcer(t, fd, testNetwork(), time.Now)
	load(first)
	before := nsRun(t, ns, "nft", "list", "table", "inet", TableName)
	// The daemon stops: the kernel keeps enforcing.
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// An element's timeout is what was left of it when it was added, and its
	// expiry counts down between listings.
	timeouts := regexp.MustCompile(` timeout \S+ expires \S+`)
	if got := nsRun(t, ns, "nft", "list", "table", "inet", TableName); timeouts.ReplaceAllString(got, "") != timeouts.ReplaceAllString(before, "") {
		t.Fatalf("Close changed the table:\n--- before\n%s\n--- after\n%s", before, got)
	}
	second := newEnforcer(t, fd, testNetwork(), time.Now)
	load(second)
	after := nsRun(t, ns, "nft", "list", "table", "inet", TableName)
	if timeouts.ReplaceAllString(before, "") != timeouts.ReplaceAllString(after, "") {
		t.Fatalf("restart changed the table:\n--- before\n%s\n--- after\n%s", before, after)
	}
}

func TestStartAdoptsTheTableAPreviousRunLeft(t *testing.T) {
	ns, fd := newNS(t)
	ctx := context.Background()
	guest := Device{MAC: mac("02:00:00:00:40:0a"), IP: netip.MustParseAddr("10.40.0.10")}
	until := time.Now().Add(time.Hour)
	first := newEnforcer(t, fd, testNetwork(), time.Now)
	if err := first.Admit(ctx, guest, until); err != nil {
		t.Fatal(err)
	}
	if rebuilt, _, err := first.Start(ctx); err != nil || !rebuilt {
		t.Fatalf("first Start on an empty kernel: rebuilt %v, err %v; want a build", rebuilt, err)
	}
	// Only the countdown may differ: the element keeps the timeout it was
	// added with, because a restart that adopts the table re-adds nothing.
	expires := regexp.MustCompile(` expires \S+`)
	before := expires.ReplaceAllString(nsRun(t, ns, "nft", "list", "table", "inet", TableName), "")
	first.Close()

	second := newEnforcer(t, fd, testNetwork(), time.Now)
	if err := second.Admit(ctx, guest, until); err != nil {
		t.Fatal(err)
	}
	rebuilt, repairs, err := second.Start(ctx)
	if err != nil || rebuilt || repairs != 0 {
		t.Fatalf("Start over an identical table: rebuilt %v, repairs %d, err %v; want neither", rebuilt, repairs, err)
	}
	if after := expires.ReplaceAllString(nsRun(t, ns, "nft", "list", "table", "inet", TableName), ""); after != before {
		t.Fatalf("Start changed the table:\n--- before\n%s\n--- after\n%s", before, after)
	}

	// A table someone changed by hand is rebuilt, and a guest the
	// database no longer holds is removed.
	nsRun(t, ns, "nft", "flush", "chain", "inet", TableName, "forward")
	second.Close()
	third := newEnforcer(t, fd, testNetwork(), time.Now)
	if rebuilt, _, err := third.Start(ctx); err != nil || !rebuilt {
		t.Fatalf("Start over a changed table: rebuilt %v, err %v; want a rebuild", rebuilt, err)
	}
	if got := nsRun(t, ns, "nft", "list", "set", "inet", TableName, "admitted"); strings.Contains(got, "10.40.0.10") {
		t.Errorf("a guest nobody admitted any more is still in the kernel:\n%s", got)
	}
}
