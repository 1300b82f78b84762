// Command captivebench measures a morning rush at the captive portal, for
// bench/captive.sh: many visitors arrive at once, each phone's probe is
// redirected to the portal, the visitor signs in with a code and the
// phone's traffic is forwarded.
//
// It builds a testbed school whose visitor segment is a /20, runs the real
// daemon (`gatehouse run`) in its router, issues one code per visitor with
// `gatehouse voucher issue`, and simulates each visitor as a macvlan
// interface of its own (its own MAC and address) on the visitor
// namespace's link: the portal and the kernel's admitted set key a visitor
// by MAC and address, so visitors sharing one MAC would look like one
// returning device. The interfaces are spread over namespaces of their own,
// fifty to one (perNamespace says why). The load itself runs in a child
// process started inside the visitor namespace (this binary with -role),
// which opens each visitor's sockets in the visitor's namespace and binds
// them to its interface.
//
// Neighbour entries for the visitors are added as permanent entries on
// both sides: the kernel's neighbour table is one table for the whole host,
// and thousands of learned entries would overflow its gc_thresh3 (1024 on
// Debian), which only the host's sysctls can raise. ARP is not what is
// measured; the portal still looks every visitor's MAC up in the router's
// table, as in production.
//
// Figures: probe redirects per second (every visitor held, each request a
// new connection), logins per second and the time from the sign-in form's
// POST until the visitor's next probe comes from the internet (p50, p99),
// the daemon's peak resident memory, and the time a restarted daemon
// takes to put every visitor back in the kernel after a reboot (the table
// gone). It owns the testbed it builds and removes it on exit.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	benchdaemon "github.com/gatehouse-net/gatehouse/bench/internal/daemon"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
)

const (
	portal     = "http://10.40.0.1:8080"
	probeHost  = "captive.apple.com"
	probePath  = "/hotspot-detect.html"
	probeUA    = "CaptiveNetworkSupport-481.80.2 wispr"
	firstAddr  = "10.40.4.1" // visitors are numbered from here, inside 10.40.0.0/20
	visitorNet = "10.40.0.0/20"
)

func main() {
	role := flag.String("role", "", "internal: redirects or rush (run inside the visitor namespace)")
	bin := flag.String("gatehouse", "", "the gatehouse binary (required)")
	n := flag.Int("clients", 2000, "simulated visitors")
	conc := flag.Int("concurrency", 200, "visitors in flight at once")
	seconds := flag.Float64("redirect-seconds", 5, "length of the redirect-rate run")
	clients := flag.String("clients-file", "", "internal: the visitors (interface, address, code per line)")
	target := flag.String("target", "", "internal: base URL the redirect run expects in Location")
	opennds := flag.String("opennds", "", "Debian's opennds binary: measure its redirect rate with the same load")
	perfOut := flag.String("perf", "", "record `perf record -a -g` of the whole machine during the rush into this file (the daemon is comm gatehouse, the load generator captivebench)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch *role {
	case "":
		if *bin == "" {
			flag.Usage()
			os.Exit(2)
		}
		err = orchestrate(ctx, *bin, *opennds, *perfOut, *n, *conc, time.Duration(*seconds*float64(time.Second)))
	case "redirects":
		err = loadRedirects(ctx, *clients, *conc, time.Duration(*seconds*float64(time.Second)), *target)
	case "rush":
		err = loadRush(ctx, *clients, *conc)
	default:
		err = fmt.Errorf("unknown -role %q", *role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "captivebench:", err)
		os.Exit(1)
	}
}

// visitor is one simulated device.
type visitor struct {
	iface string
	mac   net.HardwareAddr
	ip    netip.Addr
	code  string
	group int // which of the phones' namespaces holds its interface
}

func orchestrate(ctx context.Context, bin, opennds, perfOut string, n, conc int, redirectFor time.Duration) error {
	if n < 1 || n > 3000 {
		return fmt.Errorf("-clients %d: want 1 to 3000 (the /20 holds them from %s)", n, firstAddr)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	segs := testbed.DefaultSegments()
	for i := range segs {
		if segs[i].Name == "visitor" {
			segs[i].Subnet = netip.MustParsePrefix(visitorNet)
			segs[i].DHCPStart, segs[i].DHCPEnd = netip.MustParseAddr("10.40.0.50"), netip.MustParseAddr("10.40.0.250")
		}
	}
	s, err := benchdaemon.StartSchool(ctx, testbed.Options{Segments: segs})
	if err != nil {
		return err
	}
	defer s.Close()
	dir, err := os.MkdirTemp("", "gh-captive-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	files, err := s.Config(dir)
	if err != nil {
		return err
	}

	codes, err := issueCodes(ctx, bin, files.Path, n)
	if err != nil {
		return err
	}
	t0 := time.Now()
	phones, err := newPhoneNamespaces((n + perNamespace - 1) / perNamespace)
	if err != nil {
		return err
	}
	defer closeAll(phones)
	vs, err := addVisitors(s, phones, codes)
	if err != nil {
		return err
	}
	// Every visitor has a DHCP lease, as on a real visitor network: the
	// segment binds MAC and address (mac_ip_binding, on by default), and a
	// pair the router never gave out stays shut even with a code. The
	// leases go into the database as the DHCP server would have written
	// them; the daemon binds them at start.
	if err := saveLeases(ctx, files.Database, vs); err != nil {
		return err
	}
	fmt.Printf("setup: %d visitors (macvlan interfaces with their own MAC, address and DHCP lease, at most %d to a namespace) in %.1f s\n", len(vs), perNamespace, time.Since(t0).Seconds())
	list := filepath.Join(dir, "visitors")
	var b strings.Builder
	for _, v := range vs {
		fmt.Fprintf(&b, "%s %s %s %d\n", v.iface, v.ip, v.code, v.group)
	}
	if err := os.WriteFile(list, []byte(b.String()), 0o600); err != nil {
		return err
	}

	d, err := startDaemon(ctx, s, bin, files.Path, filepath.Join(dir, "daemon1.log"))
	if err != nil {
		return err
	}
	defer d.kill()

	if _, hwm, err := memory(d.cmd.Process.Pid); err == nil {
		fmt.Printf("daemon: resident memory after start %.1f MiB\n", hwm)
	}
	var red redirectResult
	if err := child(ctx, s, phones, self, &red, "-role", "redirects", "-clients-file", list, "-concurrency", strconv.Itoa(conc),
		"-redirect-seconds", fmt.Sprint(redirectFor.Seconds()), "-target", portal+"/"); err != nil {
		return err
	}
	fmt.Printf("redirects: %d probes answered with the portal's redirect in %.1f s by %d visitors, %d in flight: %.0f redirects/s (%d errors); p50 %.1f ms, p99 %.1f ms\n",
		red.OK, red.Seconds, len(vs), conc, float64(red.OK)/red.Seconds, red.Errors, red.P50ms, red.P99ms)

	var rush rushResult
	stopPerf, err := startPerf(perfOut)
	if err != nil {
		return err
	}
	cpu0, _ := cpuSeconds(d.cmd.Process.Pid)
	loadCPU, err := childCPU(ctx, s, phones, self, &rush, "-role", "rush", "-clients-file", list, "-concurrency", strconv.Itoa(conc))
	stopPerf()
	if err != nil {
		return err
	}
	cpu1, _ := cpuSeconds(d.cmd.Process.Pid)
	rss, hwm, err := memory(d.cmd.Process.Pid)
	if err != nil {
		return err
	}
	inKernel, err := admittedCount(s)
	if err != nil {
		return err
	}
	fmt.Printf("rush: %d of %d visitors signed in and forwarded in %.1f s, %d in flight: %.0f logins/s\n",
		rush.OK, len(vs), rush.Seconds, conc, float64(rush.OK)/rush.Seconds)
	fmt.Printf("rush: form POST -> first forwarded probe: p50 %.1f ms, p99 %.1f ms, max %.1f ms; POST alone: p50 %.1f ms, p99 %.1f ms\n",
		rush.ForwardP50ms, rush.ForwardP99ms, rush.ForwardMaxms, rush.PostP50ms, rush.PostP99ms)
	if rush.OK > 0 {
		// CPU time per login does not depend on what else the machine
		// runs; the latencies above do.
		fmt.Printf("rush: CPU per login: daemon %.2f ms, load generator %.2f ms (%.1f and %.1f CPU-seconds in all); %.1f TCP connections per login\n",
			(cpu1-cpu0)*1000/float64(rush.OK), loadCPU*1000/float64(rush.OK), cpu1-cpu0, loadCPU, float64(rush.Connections)/float64(rush.OK))
	}
	if len(rush.Failures) > 0 {
		fmt.Printf("rush: %d failures, first: %s\n", len(rush.Failures), rush.Failures[0])
	}
	if w := signInWaits(filepath.Join(dir, "daemon1.log")); w != "" {
		fmt.Println("rush: in the daemon, " + w)
	}
	fmt.Printf("daemon: peak resident memory %.1f MiB, now %.1f MiB; kernel admitted set: %d elements\n", hwm, rss, inKernel)

	// A reboot: the daemon dies, the kernel's table goes; a new daemon
	// rebuilds every admission from the database.
	d.kill()
	if out, err := s.Command(ctx, "router", "nft", "delete", "table", "inet", "gatehouse").CombinedOutput(); err != nil {
		return fmt.Errorf("delete the table: %v: %s", err, out)
	}
	start := time.Now()
	d2, err := launchDaemon(s, bin, files.Path, filepath.Join(dir, "daemon2.log"))
	if err != nil {
		return err
	}
	defer d2.kill()
	var restored time.Duration
	for deadline := start.Add(60 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		c, err := admittedCount(s)
		if err == nil && c >= rush.OK {
			restored = time.Since(start)
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after a restart the kernel held %d of %d admissions after 60 s (%v)", c, rush.OK, err)
		}
		if d2.exited() {
			return fmt.Errorf("the restarted daemon exited: see %s", d2.logPath)
		}
	}
	inDaemon := restoreLogged(d2.logPath)
	fmt.Printf("restore: %d visitors back in the kernel %.0f ms after the daemon was started (process start included)%s\n",
		rush.OK, float64(restored)/float64(time.Millisecond), inDaemon)
	if opennds == "" {
		return nil
	}

	// openNDS in the same router, with the same visitors and load; the
	// Gatehouse daemon and its table go first.
	d2.kill()
	if out, err := s.Command(ctx, "router", "nft", "delete", "table", "inet", "gatehouse").CombinedOutput(); err != nil {
		return fmt.Errorf("delete the table: %v: %s", err, out)
	}
	nds, err := startOpenNDS(ctx, s, opennds, dir, vs)
	if err != nil {
		return err
	}
	defer nds.kill()
	// The same load, then a light one: openNDS's best rate.
	var ndsRed redirectResult
	for _, c := range []int{conc, 4} {
		var r redirectResult
		if err := child(ctx, s, phones, self, &r, "-role", "redirects", "-clients-file", list, "-concurrency", strconv.Itoa(c),
			"-redirect-seconds", fmt.Sprint(redirectFor.Seconds()), "-target", "http://10.40.0.1:2050/"); err != nil {
			return err
		}
		state := "running"
		if nds.exited() {
			state = "exited; the end of its log:\n" + logTail(nds.logPath, 8)
		} else if _, hwm, err := memory(nds.cmd.Process.Pid); err == nil {
			state = fmt.Sprintf("running, peak memory %.1f MiB", hwm)
		}
		fmt.Printf("opennds redirects, %d in flight: %d probes answered with its redirect in %.1f s: %.0f redirects/s (%d errors%s); p50 %.1f ms, p99 %.1f ms; opennds %s\n",
			c, r.OK, r.Seconds, float64(r.OK)/r.Seconds, r.Errors, firstError(r), r.P50ms, r.P99ms, state)
		if c == conc {
			ndsRed = r
		}
	}
	if ndsRed.OK > 0 {
		fmt.Printf("ratio gatehouse/opennds redirects per second, %d in flight: %.0f\n", conc, (float64(red.OK)/red.Seconds)/(float64(ndsRed.OK)/ndsRed.Seconds))
	}
	return nil
}

// startPerf starts `perf record` of every CPU (the daemon, the load
// generator and the kernel's work for both) into out, and returns what
// stops it; with out empty it does nothing.
func startPerf(out string) (func(), error) {
	if out == "" {
		return func() {}, nil
	}
	cmd := exec.Command("perf", "record", "-q", "-F", "499", "-g", "-a", "-o", out)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("perf record: %w", err)
	}
	return func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}, nil
}

func logTail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func firstError(r redirectResult) string {
	if r.FirstError == "" {
		return ""
	}
	return ", first: " + r.FirstError
}

// startOpenNDS runs Debian's openNDS (9.x, legacy configuration file) on
// the visitor segment of the router and waits for its web server.
func startOpenNDS(ctx context.Context, s *testbed.School, bin, dir string, vs []visitor) (*daemon, error) {
	// openNDS serves only addresses its DHCP server (dnsmasq) leased: it
	// greps a leases file at a fixed path, OpenWrt's first. The file is
	// written for the run and removed after; an existing one is left alone.
	const leases = "/tmp/dhcp.leases"
	if _, err := os.Stat(leases); err == nil {
		return nil, fmt.Errorf("opennds: %s exists; not overwriting it", leases)
	}
	seg, _ := s.Segment("visitor")
	var lb strings.Builder
	exp := time.Now().Add(8 * time.Hour).Unix()
	fmt.Fprintf(&lb, "%d %s %s testbed *\n", exp, seg.ClientMAC, seg.ClientAddr)
	for _, v := range vs {
		fmt.Fprintf(&lb, "%d %s %s %s *\n", exp, v.mac, v.ip, v.iface)
	}
	if err := os.WriteFile(leases, []byte(lb.String()), 0o644); err != nil {
		return nil, err
	}
	clients := len(vs)
	conf := filepath.Join(dir, "opennds.conf")
	cfg := fmt.Sprintf(`GatewayInterface gh-visitor
GatewayPort 2050
MaxClients %d
login_option_enabled 1
FirewallRuleSet authenticated-users {
}
FirewallRuleSet preauthenticated-users {
}
FirewallRuleSet users-to-router {
    FirewallRule allow udp port 53
    FirewallRule allow tcp port 53
    FirewallRule allow udp port 67
}
`, clients+100)
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "opennds.log")
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	d := &daemon{logPath: logPath, done: make(chan struct{})}
	d.cmd = s.Command(context.Background(), "router", bin, "-f", "-c", conf, "-w", filepath.Join(dir, "ndsctl.sock"), "-d", "1")
	d.cmd.Stdout, d.cmd.Stderr = log, log
	// Debian's openNDS 9.10 moves the nftables filter table's INPUT and
	// FORWARD chains to priority -100 with nft (OpenWrt's fw4 layout),
	// after which Debian's iptables-nft refuses to add its own INPUT
	// chain ("CHAIN_ADD failed (Operation not supported)") and openNDS
	// exits ("Error initializing firewall rules") a few seconds after it
	// began answering probes. With iptables-legacy first on its PATH its
	// rules go to the kernel's xtables instead, and the nft move finds no
	// table to move; only this process's PATH changes.
	if legacy, err := exec.LookPath("iptables-legacy"); err == nil {
		bindir := filepath.Join(dir, "opennds-bin")
		if err := os.MkdirAll(bindir, 0o755); err != nil {
			log.Close()
			return nil, err
		}
		for _, name := range []string{"iptables", "iptables-save", "iptables-restore"} {
			target := legacy
			if name != "iptables" {
				target = strings.Replace(legacy, "iptables-legacy", strings.Replace(name, "iptables", "iptables-legacy", 1), 1)
			}
			if err := os.Symlink(target, filepath.Join(bindir, name)); err != nil {
				log.Close()
				return nil, err
			}
		}
		d.cmd.Env = append(os.Environ(), "PATH="+bindir+":"+os.Getenv("PATH"))
	}
	if err := d.cmd.Start(); err != nil {
		log.Close()
		os.Remove(leases)
		return nil, err
	}
	go func() {
		_ = d.cmd.Wait()
		log.Close()
		os.Remove(leases)
		close(d.done)
	}()
	started := time.Now()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if d.exited() {
			b, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("opennds exited during start:\n%s", b)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			d.kill()
			b, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("opennds did not hold a visitor's probe within 60 s:\n%s", b)
		}
		// Ready once its web server answers and its firewall rules hold
		// a visitor's probe.
		c, err := s.DialContext(ctx, "visitor", "tcp4", "10.40.0.1:2050")
		if err != nil {
			continue
		}
		c.Close()
		res, err := s.HTTPClient("visitor").Get("http://" + testbed.WebIP + probePath)
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(res.Body, 300))
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			continue
		}
		fmt.Printf("opennds: ready %.1f s after start; a held probe gets %d, Location %q, body %q\n",
			time.Since(started).Seconds(), res.StatusCode, res.Header.Get("Location"), body)
		break
	}
	return d, nil
}

// issueCodes runs `gatehouse voucher issue` in batches of 500.
func issueCodes(ctx context.Context, bin, cfg string, n int) ([]string, error) {
	var codes []string
	for len(codes) < n {
		k := min(500, n-len(codes))
		out, err := exec.CommandContext(ctx, bin, "voucher", "issue", "--config", cfg, "--duration", "8h",
			"--count", strconv.Itoa(k), "--batch", fmt.Sprintf("rush %d", len(codes)/500)).Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return nil, fmt.Errorf("voucher issue: %v: %s", err, ee.Stderr)
			}
			return nil, fmt.Errorf("voucher issue: %w", err)
		}
		for line := range strings.Lines(string(out)) {
			if c := strings.TrimSpace(line); c != "" {
				codes = append(codes, c)
			}
		}
	}
	if len(codes) != n {
		return nil, fmt.Errorf("voucher issue printed %d codes, want %d", len(codes), n)
	}
	return codes, nil
}

// perNamespace is how many visitors' interfaces share one namespace.
//
// A phone has one interface and one default route. Visitors sharing a
// namespace share its routing table, where every visitor's interface adds
// a connected route for the segment and a default route of its own, and a
// socket bound to an interface finds its route by walking the routes of
// the same prefix until one leaves by that interface: with all 2,000
// visitors in one namespace that walk (about a thousand routes, twice a
// connection) was a quarter of the load generator's CPU, on the cores the
// daemon uses. Fifty to a namespace keeps the walk short for forty
// namespaces' cost.
const perNamespace = 50

// newPhoneNamespaces creates n network namespaces for the visitors'
// interfaces. They are anonymous, held only by the returned descriptors
// (handed to the load generator's children as well): when this process
// ends, however it ends, they and the interfaces in them are gone.
func newPhoneNamespaces(n int) ([]*os.File, error) {
	var fs []*os.File
	for range n {
		ch := make(chan error, 1)
		var f *os.File
		go func() {
			// The thread is left in the new namespace, locked: the
			// runtime discards it when this goroutine ends.
			runtime.LockOSThread()
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				ch <- fmt.Errorf("unshare: %w", err)
				return
			}
			var err error
			f, err = os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
			if err == nil {
				// Answer ARP only for an interface's own address, in
				// case anything asks.
				for k, v := range map[string]string{"arp_ignore": "1", "arp_announce": "2"} {
					if err = os.WriteFile("/proc/sys/net/ipv4/conf/all/"+k, []byte(v), 0o644); err != nil {
						break
					}
				}
			}
			ch <- err
		}()
		if err := <-ch; err != nil {
			if f != nil {
				f.Close()
			}
			closeAll(fs)
			return nil, fmt.Errorf("a namespace for the visitors: %w", err)
		}
		fs = append(fs, f)
	}
	return fs, nil
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// addVisitors makes one macvlan per code on the visitor namespace's link
// and moves it into one of the phones' namespaces, with permanent
// neighbour entries both ways (see the package comment).
func addVisitors(s *testbed.School, phones []*os.File, codes []string) ([]visitor, error) {
	seg, ok := s.Segment("visitor")
	if !ok {
		return nil, errors.New("no visitor segment")
	}
	vh, err := handleIn(s, "visitor")
	if err != nil {
		return nil, err
	}
	defer vh.Close()
	rh, err := handleIn(s, "router")
	if err != nil {
		return nil, err
	}
	defer rh.Close()
	ph := make([]*netlink.Handle, len(phones))
	for i, f := range phones {
		if ph[i], err = netlink.NewHandleAt(netns.NsHandle(f.Fd())); err != nil {
			return nil, err
		}
		defer ph[i].Close()
	}
	parent, err := vh.LinkByName(testbed.ClientInterface)
	if err != nil {
		return nil, err
	}
	routerSide, err := rh.LinkByName(seg.Interface)
	if err != nil {
		return nil, err
	}
	gw := net.ParseIP("10.40.0.1")
	addr := netip.MustParseAddr(firstAddr)
	vs := make([]visitor, len(codes))
	for i, code := range codes {
		v := visitor{iface: fmt.Sprintf("v%d", i), ip: addr, code: code, group: i / perNamespace,
			mac: net.HardwareAddr{0x02, 0x42, 0x0a, 0x28, byte(i >> 8), byte(i)}}
		addr = addr.Next()
		// Made in its namespace (the parent stays in the visitor's):
		// moving it after costs the kernel a synchronisation per link.
		ml := &netlink.Macvlan{LinkAttrs: netlink.LinkAttrs{Name: v.iface, ParentIndex: parent.Attrs().Index, HardwareAddr: v.mac,
			Namespace: netlink.NsFd(int(phones[v.group].Fd()))}, Mode: netlink.MACVLAN_MODE_BRIDGE}
		if err := vh.LinkAdd(ml); err != nil {
			return nil, fmt.Errorf("add %s: %w", v.iface, err)
		}
		h := ph[v.group]
		link, err := h.LinkByName(v.iface)
		if err != nil {
			return nil, err
		}
		if err := h.AddrAdd(link, &netlink.Addr{IPNet: &net.IPNet{IP: v.ip.AsSlice(), Mask: net.CIDRMask(20, 32)}}); err != nil {
			return nil, fmt.Errorf("address %s: %w", v.iface, err)
		}
		if err := h.LinkSetUp(link); err != nil {
			return nil, err
		}
		if err := h.NeighAdd(&netlink.Neigh{LinkIndex: link.Attrs().Index, Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT,
			IP: gw, HardwareAddr: seg.RouterMAC}); err != nil {
			return nil, fmt.Errorf("gateway neighbour on %s: %w", v.iface, err)
		}
		// A default route per interface, each with its own metric: a socket
		// bound to the interface uses its own.
		if err := h.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw, Priority: 100 + i}); err != nil {
			return nil, fmt.Errorf("route on %s: %w", v.iface, err)
		}
		if err := rh.NeighAdd(&netlink.Neigh{LinkIndex: routerSide.Attrs().Index, Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT,
			IP: v.ip.AsSlice(), HardwareAddr: v.mac}); err != nil {
			return nil, fmt.Errorf("router neighbour for %s: %w", v.ip, err)
		}
		vs[i] = v
	}
	return vs, nil
}

// saveLeases records one bound DHCP lease per visitor (eight hours, the
// rush's codes' length) and the device sightings that go with them.
func saveLeases(ctx context.Context, db string, vs []visitor) error {
	st, err := store.Open(ctx, db)
	if err != nil {
		return fmt.Errorf("open the database for the visitors' leases: %w", err)
	}
	defer st.Close()
	now := time.Now()
	leases := make([]store.DHCPLease, 0, len(vs))
	devices := make([]store.Device, 0, len(vs))
	for _, v := range vs {
		leases = append(leases, store.DHCPLease{Segment: "visitor", IP: v.ip, MAC: v.mac, State: "bound", Start: now, Expires: now.Add(8 * time.Hour)})
		devices = append(devices, store.Device{MAC: v.mac, FirstSeen: now, LastSeen: now, Segment: "visitor", IP: v.ip})
	}
	if err := st.SaveDHCP(ctx, leases, devices); err != nil {
		return fmt.Errorf("record the visitors' leases: %w", err)
	}
	return nil
}

func handleIn(s *testbed.School, ns string) (*netlink.Handle, error) {
	fd, err := s.OpenNS(ns)
	if err != nil {
		return nil, err
	}
	defer fd.Close()
	return netlink.NewHandleAt(fd)
}

// daemon is `gatehouse run` in the router.
type daemon struct {
	cmd     *testbed.Cmd
	logPath string
	done    chan struct{}
	once    sync.Once
}

func launchDaemon(s *testbed.School, bin, cfg, logPath string) (*daemon, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	d := &daemon{logPath: logPath, done: make(chan struct{})}
	// Not tied to ctx: kill decides when it ends.
	d.cmd = s.Command(context.Background(), "router", bin, "run", "--config", cfg)
	d.cmd.Stdout, d.cmd.Stderr = log, log
	if err := d.cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	go func() {
		_ = d.cmd.Wait()
		log.Close()
		close(d.done)
	}()
	return d, nil
}

// startDaemon launches the daemon and waits until its admin page and portal
// answer.
func startDaemon(ctx context.Context, s *testbed.School, bin, cfg, logPath string) (*daemon, error) {
	d, err := launchDaemon(s, bin, cfg, logPath)
	if err != nil {
		return nil, err
	}
	admin := s.HTTPClient("mgmt")
	admin.Transport.(*http.Transport).TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if d.exited() {
			return nil, fmt.Errorf("the daemon exited during start: see %s", logPath)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			d.kill()
			return nil, fmt.Errorf("the daemon did not become ready in 60 s: see %s", logPath)
		}
		res, err := admin.Get("https://" + testbed.MgmtRouterIP + ":" + strconv.Itoa(testbed.AdminPort) + "/healthz")
		if err != nil {
			continue
		}
		res.Body.Close()
		c, err := s.DialContext(ctx, "visitor", "tcp4", "10.40.0.1:8080")
		if err != nil {
			continue
		}
		c.Close()
		return d, nil
	}
}

func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// kill stops the daemon with SIGKILL, as a crash or power cut would.
func (d *daemon) kill() {
	d.once.Do(func() {
		_ = d.cmd.Process.Kill()
		<-d.done
	})
}

// memory reads a process's resident memory now and at its peak, in MiB.
func memory(pid int) (rss, hwm float64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		switch k {
		case "VmRSS":
			rss = kb / 1024
		case "VmHWM":
			hwm = kb / 1024
		}
	}
	return rss, hwm, sc.Err()
}

// admittedCount counts the elements of the router's admitted set.
func admittedCount(s *testbed.School) (int, error) {
	fd, err := s.OpenNS("router")
	if err != nil {
		return 0, err
	}
	defer fd.Close()
	c, err := nftables.New(nftables.WithNetNSFd(int(fd)))
	if err != nil {
		return 0, err
	}
	t := &nftables.Table{Name: "gatehouse", Family: nftables.TableFamilyINet}
	set, err := c.GetSetByName(t, "admitted")
	if err != nil {
		return 0, err
	}
	els, err := c.GetSetElements(set)
	if err != nil {
		return 0, err
	}
	return len(els), nil
}

// signInWaits summarises the daemon's own account of each sign-in (its
// "guest admitted" lines): how many sign-ins shared each one's database
// transaction, how long each waited for its writes to be durable (queue
// and commit), and then for the kernel's admission.
func signInWaits(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var batch, rec, commit, kern []float64
	for line := range strings.Lines(string(b)) {
		if !strings.Contains(line, `msg="guest admitted"`) || !strings.Contains(line, "reason=redeemed") {
			continue
		}
		vals := map[string]float64{}
		for _, f := range strings.Fields(line) {
			k, v, ok := strings.Cut(f, "=")
			if !ok {
				continue
			}
			if x, err := strconv.ParseFloat(v, 64); err == nil {
				vals[k] = x
			}
		}
		if _, ok := vals["recorded_ms"]; !ok {
			continue
		}
		batch, rec, kern = append(batch, vals["batch"]), append(rec, vals["recorded_ms"]), append(kern, vals["kernel_ms"])
		commit = append(commit, vals["commit_ms"])
	}
	if len(rec) == 0 {
		return ""
	}
	mean := 0.0
	for _, x := range batch {
		mean += x
	}
	mean /= float64(len(batch))
	return fmt.Sprintf("%d sign-ins: %.0f per transaction on average (max %.0f); waited for the durable write p50 %.1f ms, p99 %.1f ms (the transaction itself p50 %.1f ms, p99 %.1f ms), then for the kernel p50 %.1f ms, p99 %.1f ms",
		len(rec), mean, pct(batch, 100), pct(rec, 50), pct(rec, 99), pct(commit, 50), pct(commit, 99), pct(kern, 50), pct(kern, 99))
}

// restoreLogged reads the restarted daemon's own account of the restore.
func restoreLogged(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		if strings.Contains(line, "guest admissions restored") {
			return "; the daemon logged: " + strings.TrimSpace(line)
		}
	}
	return ""
}

// child runs this binary in the visitor namespace and decodes its JSON.
func child(ctx context.Context, s *testbed.School, phones []*os.File, self string, out any, args ...string) error {
	_, err := childCPU(ctx, s, phones, self, out, args...)
	return err
}

// childCPU is child that also returns the CPU-seconds the child used.
// The phones' namespaces are its descriptors 3, 4, ... (a visitor's group
// is its index among them).
func childCPU(ctx context.Context, s *testbed.School, phones []*os.File, self string, out any, args ...string) (float64, error) {
	cmd := s.Command(ctx, "visitor", self, args...)
	cmd.Stderr = os.Stderr
	cmd.ExtraFiles = phones
	b, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("load generator %s: %w", args[1], err)
	}
	cpu := 0.0
	if ps := cmd.ProcessState; ps != nil {
		cpu = (ps.UserTime() + ps.SystemTime()).Seconds()
	}
	return cpu, json.Unmarshal(b, out)
}

// cpuSeconds reads a process's user and system CPU time so far.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: utime and stime are the 12th and 13th of them.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	const ticks = 100 // USER_HZ on Linux
	return (ut + st) / ticks, nil
}

// The load generator's side, inside the visitor namespace.

func readVisitors(path string) ([]visitor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var vs []visitor
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) != 4 {
			continue
		}
		ip, err := netip.ParseAddr(f[1])
		if err != nil {
			return nil, err
		}
		g, err := strconv.Atoi(f[3])
		if err != nil {
			return nil, err
		}
		vs = append(vs, visitor{iface: f[0], ip: ip, code: f[2], group: g})
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("%s: no visitors", path)
	}
	return vs, nil
}

// visitorClient is a phone's HTTP client: every request opens a new
// connection from its interface and address, as a phone's probe does,
// and it follows no redirect. It writes the request and reads the answer
// with net/http's own request writer and response parser, but without
// http.Transport, whose per-connection goroutines and bookkeeping cost
// the load generator about as much CPU per login as the daemon spends
// answering: both share the same two cores, so a lighter client leaves
// the daemon what a real phone would.
//
// A browser keeps its connection to a site open between requests: the
// sign-in page and the form it posts go to the same portal, so the page
// is fetched with keep set and the POST reuses that connection (kept).
// The probes are the OS's own, each a new connection.
type visitorClient struct {
	v  visitor
	ns *phoneSockets

	kept     net.Conn // the connection a request with keep left open, or nil
	keptAddr string
	keptRd   *bufio.Reader
}

// phoneSockets opens sockets in one of the phones' namespaces (a child's
// descriptor 3+group, see childCPU): the dialling thread steps into the
// namespace until the socket exists and back before it connects, and the
// socket is used from any thread after. (A thread of its own per
// namespace, asked over a channel, cost two thread wake-ups a
// connection.)
type phoneSockets struct {
	ns, home int          // the phones' namespace, and the one the process runs in
	dials    atomic.Int64 // connections opened, for the connections per login
}

// openPhoneSockets returns a socket maker per namespace descriptor.
func openPhoneSockets(groups int) ([]*phoneSockets, error) {
	// Every thread of the process is still in the namespace it was
	// started in.
	home, err := unix.Open("/proc/self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("own namespace: %w", err)
	}
	ps := make([]*phoneSockets, groups)
	for g := range ps {
		ps[g] = &phoneSockets{ns: 3 + g, home: home}
	}
	return ps, nil
}

// groups is how many phones' namespaces the visitors are in.
func groups(vs []visitor) int {
	n := 0
	for _, v := range vs {
		n = max(n, v.group+1)
	}
	return n
}

func clientFor(v visitor, ps []*phoneSockets) *visitorClient {
	return &visitorClient{v: v, ns: ps[v.group]}
}

// dial connects to addr (ip:port) from the visitor's interface and
// address, with a socket made in the visitor's namespace.
func (c *visitorClient) dial(ctx context.Context, addr string) (net.Conn, error) {
	p := c.ns
	p.dials.Add(1)
	runtime.LockOSThread()
	if err := unix.Setns(p.ns, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("join the phones' namespace: %w", err)
	}
	away := true
	var homeErr error
	goHome := func() {
		if !away {
			return
		}
		away = false
		if err := unix.Setns(p.home, unix.CLONE_NEWNET); err != nil {
			// The thread stays locked to this goroutine, in the wrong
			// namespace: the runtime discards it when the goroutine
			// ends, and every dial steps into its namespace anyway.
			homeErr = fmt.Errorf("return from the phones' namespace: %w", err)
			return
		}
		runtime.UnlockOSThread()
	}
	d := net.Dialer{
		LocalAddr: &net.TCPAddr{IP: c.v.ip.AsSlice()},
		// Called once the socket exists, before it is bound and
		// connected: nothing else needs the namespace.
		Control: func(_, _ string, rc syscall.RawConn) error {
			goHome()
			if homeErr != nil {
				return homeErr
			}
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, c.v.iface)
			}); err != nil {
				return err
			}
			return serr
		},
	}
	conn, err := d.DialContext(ctx, "tcp4", addr)
	goHome() // when the dial failed before making a socket
	if err == nil && homeErr != nil {
		conn.Close()
		err = homeErr
	}
	return conn, err
}

// Do sends req on a new connection and returns the response with its
// body read (at most 1 MiB) and the connection closed; bounded to 10 s.
func (c *visitorClient) Do(req *http.Request) (*http.Response, error) {
	return c.do(req, false)
}

// do is Do that, with keep, leaves the connection open for the next
// request to the same address (as a browser does) and reuses one a
// previous request left open. A kept connection the server has closed in
// the meantime is retried once on a new one, as a browser retries.
func (c *visitorClient) do(req *http.Request, keep bool) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), 10*time.Second)
	defer cancel()
	addr := req.URL.Host
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "80")
	}
	if c.kept != nil && c.keptAddr == addr {
		conn, rd := c.kept, c.keptRd
		c.kept, c.keptRd = nil, nil
		res, err := c.exchange(ctx, req, conn, rd, keep, addr)
		if err == nil {
			return res, nil
		}
		if req.Body != nil { // the body is spent: send it again
			if req.GetBody == nil {
				return nil, err
			}
			if req.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
	}
	c.closeKept()
	conn, err := c.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	return c.exchange(ctx, req, conn, bufio.NewReader(conn), keep, addr)
}

// exchange sends req on conn and reads the answer; it closes conn unless
// keep is set and the server keeps it too, when it becomes the kept one.
func (c *visitorClient) exchange(ctx context.Context, req *http.Request, conn net.Conn, rd *bufio.Reader, keep bool, addr string) (*http.Response, error) {
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	req.Close = !keep
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, err
	}
	res, err := http.ReadResponse(rd, req)
	if err != nil {
		conn.Close()
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	res.Body.Close()
	if err != nil {
		conn.Close()
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	if keep && !res.Close {
		c.kept, c.keptAddr, c.keptRd = conn, addr, rd
	} else {
		conn.Close()
	}
	return res, nil
}

// closeKept closes the connection a request left open, if any.
func (c *visitorClient) closeKept() {
	if c.kept != nil {
		c.kept.Close()
		c.kept, c.keptRd = nil, nil
	}
}

func (c *visitorClient) Get(u string) (*http.Response, error) {
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		return nil, err
	}
	return c.Do(req)
}

// getKeep is Get that leaves the connection open for the next request.
func (c *visitorClient) getKeep(u string) (*http.Response, error) {
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		return nil, err
	}
	return c.do(req, true)
}

func (c *visitorClient) PostForm(u string, form url.Values) (*http.Response, error) {
	req, err := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.Do(req)
}

func probe(ctx context.Context, c *visitorClient) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+testbed.WebIP+probePath, nil)
	if err != nil {
		return nil, err
	}
	req.Host = probeHost
	req.Header.Set("User-Agent", probeUA)
	return c.Do(req)
}

type redirectResult struct {
	OK, Errors   int
	Seconds      float64
	P50ms, P99ms float64
	FirstError   string
}

// loadRedirects has conc workers send probes from the visitors in turn for
// d, each expecting the redirect to target.
func loadRedirects(ctx context.Context, path string, conc int, d time.Duration, target string) error {
	vs, err := readVisitors(path)
	if err != nil {
		return err
	}
	ps, err := openPhoneSockets(groups(vs))
	if err != nil {
		return err
	}
	clients := make([]*visitorClient, len(vs))
	for i, v := range vs {
		clients[i] = clientFor(v, ps)
	}
	var next atomic.Int64
	var mu sync.Mutex
	var lat []float64
	var res redirectResult
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			var mine []float64
			for time.Now().Before(end) && ctx.Err() == nil {
				c := clients[int(next.Add(1))%len(clients)]
				t0 := time.Now()
				r, err := probe(ctx, c)
				ok := err == nil && r.StatusCode/100 == 3 && strings.HasPrefix(r.Header.Get("Location"), target)
				mu.Lock()
				if ok {
					res.OK++
				} else {
					res.Errors++
					if res.FirstError == "" {
						res.FirstError = fmt.Sprint(err)
						if err == nil {
							res.FirstError = fmt.Sprintf("%d to %q", r.StatusCode, r.Header.Get("Location"))
						}
					}
				}
				mu.Unlock()
				if ok {
					mine = append(mine, float64(time.Since(t0))/float64(time.Millisecond))
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	res.P50ms, res.P99ms = pct(lat, 50), pct(lat, 99)
	return json.NewEncoder(os.Stdout).Encode(res)
}

type rushResult struct {
	OK                         int
	Seconds                    float64
	ForwardP50ms, ForwardP99ms float64
	ForwardMaxms               float64
	PostP50ms, PostP99ms       float64
	Connections                int64 // TCP connections the visitors opened
	Failures                   []string
}

// loadRush signs every visitor in once, conc at a time: probe (redirected),
// the portal page, the form POST, then probes until one comes from the
// internet.
func loadRush(ctx context.Context, path string, conc int) error {
	vs, err := readVisitors(path)
	if err != nil {
		return err
	}
	ps, err := openPhoneSockets(groups(vs))
	if err != nil {
		return err
	}
	var next atomic.Int64
	var mu sync.Mutex
	var fwd, post []float64
	var res rushResult
	fail := func(v visitor, format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		res.Failures = append(res.Failures, v.ip.String()+": "+fmt.Sprintf(format, args...))
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(vs) {
					return
				}
				v := vs[i]
				c := clientFor(v, ps)
				r, err := probe(ctx, c)
				if err != nil || r.StatusCode != http.StatusFound {
					fail(v, "first probe: %v %v", err, status(r))
					continue
				}
				// The page and the form's POST share the browser's
				// connection to the portal.
				page, err := c.getKeep(r.Header.Get("Location"))
				if err != nil {
					fail(v, "portal page: %v", err)
					continue
				}
				_, _ = io.Copy(io.Discard, page.Body)
				page.Body.Close()
				t0 := time.Now()
				pr, err := c.PostForm(portal+"/login", url.Values{"code": {v.code}, "accept": {"yes"}, "lang": {"en"}})
				if err != nil {
					fail(v, "sign in: %v", err)
					continue
				}
				body, _ := io.ReadAll(io.LimitReader(pr.Body, 64<<10))
				pr.Body.Close()
				tPost := time.Since(t0)
				if pr.StatusCode != http.StatusSeeOther {
					fail(v, "sign in: status %d: %s", pr.StatusCode, pageError(body))
					continue
				}
				forwarded := false
				for range 100 { // bounded: 100 probes, 20 ms apart
					r, err := probe(ctx, c)
					if err == nil && r.StatusCode == http.StatusOK && r.Header.Get("X-Gatehouse-Testbed") == "web" {
						forwarded = true
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
				tFwd := time.Since(t0)
				if !forwarded {
					fail(v, "not forwarded after signing in")
					continue
				}
				mu.Lock()
				res.OK++
				fwd = append(fwd, float64(tFwd)/float64(time.Millisecond))
				post = append(post, float64(tPost)/float64(time.Millisecond))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	res.ForwardP50ms, res.ForwardP99ms, res.ForwardMaxms = pct(fwd, 50), pct(fwd, 99), pct(fwd, 100)
	res.PostP50ms, res.PostP99ms = pct(post, 50), pct(post, 99)
	for _, p := range ps {
		res.Connections += p.dials.Load()
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// pageError is the error summary of a portal page that refused a sign-in,
// so a failed run says why.
func pageError(body []byte) string {
	s := string(body)
	i := strings.Index(s, "role=\"alert\"")
	if i < 0 {
		return "(no error on the page)"
	}
	s = s[i:]
	var b strings.Builder
	in := false
	for _, r := range s {
		switch {
		case r == '<':
			in = true
		case r == '>':
			in = false
			b.WriteByte(' ')
		case !in:
			b.WriteRune(r)
		}
		if b.Len() > 300 {
			break
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

func status(r *http.Response) string {
	if r == nil {
		return ""
	}
	return fmt.Sprintf("%d %s", r.StatusCode, r.Header.Get("Location"))
}

// pct is the p-th percentile (nearest rank) of xs.
func pct(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}
