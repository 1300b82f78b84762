package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
)

// Visitors in the backup-under-load test. Each is a macvlan with its own
// MAC in the visitor namespace that takes a DHCP lease, is redirected by
// its probe and signs in with its own code; loadWorkers are in flight at
// once. Bounded: the test runs every visitor exactly once.
const (
	loadVisitors = 40
	loadWorkers  = 6
)

// ackedWrites is what the daemon (or `voucher issue`) acknowledged to a
// client: a DHCP lease the client was ACKed, a code reception was shown, a
// sign-in the portal answered with success.
type ackedWrites struct {
	mu       sync.Mutex
	leases   map[string]string // visitor MAC -> leased address
	codes    []string          // notes of the codes issued
	redeemed map[string]string // visitor MAC -> note of the code it redeemed
}

func newAckedWrites() *ackedWrites {
	return &ackedWrites{leases: map[string]string{}, redeemed: map[string]string{}}
}

func (a *ackedWrites) snapshot() *ackedWrites {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := newAckedWrites()
	for k, v := range a.leases {
		c.leases[k] = v
	}
	for k, v := range a.redeemed {
		c.redeemed[k] = v
	}
	c.codes = append(c.codes, a.codes...)
	return c
}

// loadVisitor is one simulated phone.
type loadVisitor struct {
	iface, note, code string
	mac               net.HardwareAddr
}

// TestBackupUnderPortalLoadHoldsEveryAcknowledgedWrite takes `gatehouse
// backup` from the real daemon while visitors lease addresses and sign in at
// its portal and reception issues codes, then restores it with `gatehouse
// restore`: the restored database passes `gatehouse audit verify`, and holds
// every lease, code and sign-in acknowledged before the backup started.
// Visitors who arrive only after the backup has finished must be absent
// from it, which proves the restore replaced the database rather than
// leaving the live one in place.
func TestBackupUnderPortalLoadHoldsEveryAcknowledgedWrite(t *testing.T) {
	testbed.Require(t)
	for _, tool := range []string{"udhcpc", "curl", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("this test needs %s (see build/deps): %v", tool, err)
		}
	}
	bin := buildGatehouse(t)
	segs := testbed.DefaultSegments()
	for i := range segs {
		// Every visitor takes its address from the daemon.
		segs[i].Unconfigured = segs[i].Name == "visitor"
	}
	school := testbed.New(t, testbed.Options{Segments: segs})
	files, err := school.Config(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, school, bin, files.Path)
	visitorSeg, _ := school.Segment("visitor")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	acked := newAckedWrites()
	issue := func(note string) (string, error) {
		code, stdout, stderr := cli(t, "", "voucher", "issue", "--config", files.Path, "--duration", "2h", "--devices", "1", "--note", note)
		if code != 0 {
			return "", fmt.Errorf("voucher issue %s: exit %d: %s", note, code, stderr)
		}
		c := strings.TrimSpace(stdout)
		acked.mu.Lock()
		acked.codes = append(acked.codes, note)
		acked.mu.Unlock()
		return c, nil
	}
	visitors := make([]loadVisitor, loadVisitors)
	for i := range visitors {
		v := loadVisitor{iface: fmt.Sprintf("v%d", i), note: fmt.Sprintf("visitor-%02d", i),
			mac: net.HardwareAddr{0x02, 0x42, 0x0a, 0x28, 0x17, byte(i)}}
		if v.code, err = issue(v.note); err != nil {
			t.Fatal(err)
		}
		visitors[i] = v
	}
	addLoadVisitors(t, school, visitors)
	script := filepath.Join(t.TempDir(), "udhcpc.sh")
	// The lease configures the visitor's own interface, with a default
	// route of its own (metric by its number) for its probe.
	body := "#!/bin/sh\ncase \"$1\" in bound|renew) ip addr flush dev \"$interface\"; ip addr add \"$ip/$subnet\" dev \"$interface\"; " +
		"ip route replace default via \"$router\" dev \"$interface\" metric $((100 + ${interface#v}));; esac\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}

	run := func(args ...string) (string, error) {
		cctx, ccancel := context.WithTimeout(ctx, 40*time.Second)
		defer ccancel()
		out, err := school.Command(cctx, "visitor", args[0], args[1:]...).CombinedOutput()
		return string(out), err
	}
	portal := "http://" + visitorSeg.Gateway.String() + ":8080/"
	// arrive plays one visitor: lease, probe redirected to the portal,
	// sign-in with its code. Each acknowledgement is recorded as it comes.
	arrive := func(v loadVisitor) error {
		out, err := run("udhcpc", "-f", "-q", "-n", "-i", v.iface, "-s", script, "-t", "6", "-T", "2")
		m := leaseOf.FindStringSubmatch(out)
		if err != nil || m == nil {
			return fmt.Errorf("%s: no lease: %v\n%s", v.note, err, out)
		}
		acked.mu.Lock()
		acked.leases[v.mac.String()] = m[1]
		acked.mu.Unlock()
		curl := []string{"curl", "-sS", "--interface", v.iface, "--connect-timeout", "5", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}"}
		out, err = run(append(curl, "--resolve", "captive.apple.com:80:"+testbed.WebIP, "http://captive.apple.com/hotspot-detect.html")...)
		if err != nil || !strings.HasPrefix(out, "302 "+portal) {
			return fmt.Errorf("%s: probe before sign-in: %q (%v), want a 302 to %s", v.note, out, err, portal)
		}
		out, err = run(append(curl, "--data-urlencode", "code="+v.code, "-d", "accept=yes", "-d", "lang=en", portal+"login")...)
		if err != nil || !(strings.HasPrefix(out, "200") || strings.HasPrefix(out, "303")) {
			return fmt.Errorf("%s: sign-in: %q (%v)", v.note, out, err)
		}
		acked.mu.Lock()
		acked.redeemed[v.mac.String()] = v.note
		acked.mu.Unlock()
		return nil
	}

	// The first half arrives at once; when a quarter is signed in, the
	// backup starts while the rest of that half is still arriving and
	// reception keeps issuing codes. The second half is let in only after
	// the backup has returned.
	first, second := visitors[:loadVisitors/2], visitors[loadVisitors/2:]
	queue := make(chan loadVisitor)
	errs := make(chan error, loadVisitors+1)
	var workers sync.WaitGroup
	for range loadWorkers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for v := range queue {
				if err := arrive(v); err != nil {
					errs <- err
				}
			}
		}()
	}
	// Reception issues codes one after another until the backup has
	// returned (at most 200), so code writes run during the backup too.
	receptionDone, stopReception := make(chan struct{}), make(chan struct{})
	var stopOnce sync.Once
	stop := func() { stopOnce.Do(func() { close(stopReception) }) }
	defer stop()
	go func() {
		defer close(receptionDone)
		for i := range 200 {
			select {
			case <-stopReception:
				return
			default:
			}
			if _, err := issue(fmt.Sprintf("reception-%03d", i)); err != nil {
				errs <- err
				return
			}
		}
	}()
	feedDone := make(chan struct{})
	go func() {
		defer close(feedDone)
		for _, v := range first {
			select {
			case queue <- v:
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		acked.mu.Lock()
		n := len(acked.redeemed)
		acked.mu.Unlock()
		if n >= loadVisitors/4 {
			break
		}
		select {
		case err := <-errs:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatalf("only %d visitors signed in before the deadline", n)
		case <-time.After(50 * time.Millisecond):
		}
	}
	before := acked.snapshot()
	backup := filepath.Join(t.TempDir(), "under-load.db")
	out, err := exec.CommandContext(ctx, bin, "backup", "--config", files.Path, backup).CombinedOutput()
	if err != nil {
		t.Fatalf("gatehouse backup under load: %v\n%s", err, out)
	}
	during := acked.snapshot()
	stop()
	t.Logf("backup under load: %d leases, %d sign-ins, %d codes acknowledged before it started; %d, %d, %d when it returned",
		len(before.leases), len(before.redeemed), len(before.codes), len(during.leases), len(during.redeemed), len(during.codes))
	<-feedDone
	for _, v := range second {
		queue <- v
	}
	close(queue)
	workers.Wait()
	<-receptionDone
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	// An administrator's restore: stop the daemon, restore, verify.
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.exited:
		d.exited <- err
	case <-time.After(30 * time.Second):
		t.Fatalf("gatehouse did not stop on SIGTERM:\n%s", d.log.String())
	}
	if out, err := exec.CommandContext(ctx, bin, "restore", "--config", files.Path, backup).CombinedOutput(); err != nil || !strings.Contains(string(out), "audit log whole") {
		t.Fatalf("gatehouse restore: %v\n%s", err, out)
	}
	if out, err := exec.CommandContext(ctx, bin, "audit", "verify", "--config", files.Path).CombinedOutput(); err != nil || !strings.Contains(string(out), "chain whole") {
		t.Fatalf("gatehouse audit verify on the restored database: %v\n%s", err, out)
	}

	st, err := store.Open(ctx, files.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	leases, err := st.DHCPLeases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	restoredLease := map[string]string{}
	for _, l := range leases {
		if l.Segment == "visitor" && l.State == "bound" && l.MAC != nil {
			restoredLease[l.MAC.String()] = l.IP.String()
		}
	}
	for mac, ip := range before.leases {
		if restoredLease[mac] != ip {
			t.Errorf("lease %s -> %s was acknowledged before the backup; restored: %q", mac, ip, restoredLease[mac])
		}
	}
	vs, err := st.ListVouchers(ctx, store.VoucherFilter{})
	if err != nil {
		t.Fatal(err)
	}
	restoredCodes := map[string]bool{}
	for _, v := range vs {
		restoredCodes[v.Note] = true
	}
	for _, note := range before.codes {
		if !restoredCodes[note] {
			t.Errorf("code %s was issued before the backup and is not in the restored database", note)
		}
	}
	now := time.Now()
	for mac, note := range before.redeemed {
		hw, _ := net.ParseMAC(mac)
		v, _, err := st.VoucherForDevice(ctx, hw, now)
		if err != nil || v.Note != note {
			t.Errorf("visitor %s signed in with %s before the backup; restored: %q (%v)", mac, note, v.Note, err)
		}
	}
	for _, v := range second {
		if _, ok := restoredLease[v.mac.String()]; ok {
			t.Errorf("%s leased after the backup returned, yet its lease is in the restored database: the restore did not replace the database", v.note)
		}
		if _, _, err := st.VoucherForDevice(ctx, v.mac, now); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s signed in after the backup returned, yet the restored database has its sign-in (%v): the restore did not replace the database", v.note, err)
		}
	}
	t.Logf("restored: %d visitor leases, %d codes; every one of the %d leases, %d codes and %d sign-ins acknowledged before the backup is in it",
		len(restoredLease), len(vs), len(before.leases), len(before.codes), len(before.redeemed))
}

// addLoadVisitors makes one macvlan per visitor on the visitor namespace's
// interface, with no address (DHCP gives it one). The namespace answers ARP
// only on the interface that holds an address, so the router's neighbour
// table, which the portal reads, maps each address to its own visitor's
// MAC; reverse-path filtering is off since every visitor shares the subnet.
func addLoadVisitors(t *testing.T, school *testbed.School, vs []loadVisitor) {
	t.Helper()
	if err := school.Do("visitor", func() error {
		for _, k := range []string{"all/arp_ignore=1", "all/arp_announce=2", "all/rp_filter=0", "default/rp_filter=0"} {
			name, val, _ := strings.Cut(k, "=")
			if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+name, []byte(val), 0o644); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("visitor namespace sysctls: %v", err)
	}
	fd, err := school.OpenNS("visitor")
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	h, err := netlink.NewHandleAt(fd)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	parent, err := h.LinkByName(testbed.ClientInterface)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		ml := &netlink.Macvlan{LinkAttrs: netlink.LinkAttrs{Name: v.iface, ParentIndex: parent.Attrs().Index, HardwareAddr: v.mac},
			Mode: netlink.MACVLAN_MODE_BRIDGE}
		if err := h.LinkAdd(ml); err != nil {
			t.Fatalf("add %s: %v", v.iface, err)
		}
		if err := h.LinkSetUp(ml); err != nil {
			t.Fatalf("up %s: %v", v.iface, err)
		}
	}
}
