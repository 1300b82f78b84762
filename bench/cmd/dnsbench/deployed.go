package main

// The deployed comparison (-gatehouse): the real `gatehouse run` in a
// testbed router, inspection capturing every segment and the query log
// writing to its database, asked by dnsperf from a pupil's namespace
// through the router's veth (conntrack, the capture, the nftables
// redirect to the guard); and dnsmasq on the same router, listening on the
// pupil segment's gateway address, asked by the same dnsperf over the same
// veth. Both forward to one upstream in the testbed's internet namespace.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/gatehouse-net/gatehouse/bench/internal/daemon"
	"github.com/gatehouse-net/gatehouse/testbed"
)

// benchUpstreamPort is where the bench's upstream listens on the testbed
// resolver's address: a responder quick enough that neither server waits
// for it (the testbed's own resolver keeps a log per query).
const benchUpstreamPort = 5353

// dnsmasqPort is dnsmasq's port on the pupil gateway: not 53, which the
// router redirects to the guard.
const dnsmasqPort = 5300

// Targets of issue 16: the guard against dnsmasq with the same upstream.
const (
	targetCached    = 1.5
	targetForwarded = 1.2
)

type deployed struct {
	bin                  string
	perfDir              string // -perf: where the cached run's perf profile goes
	workloads            map[string]bool
	duration             time.Duration
	names, fwdNames      int
	clients, outstanding int
	dir                  string
	s                    *testbed.School
	gateway              netip.Addr
	cachedFile           string
	rounds               int
}

func runDeployed(ctx context.Context, bin string, d time.Duration, names, fwdNames, clients, outstanding int, perfDir string, workloads map[string]bool, rounds int) (bool, error) {
	if _, err := exec.LookPath("dnsperf"); err != nil {
		return false, errors.New("dnsperf not installed (Debian package dnsperf)")
	}
	if _, err := exec.LookPath("dnsmasq"); err != nil {
		return false, errors.New("dnsmasq not installed (Debian package dnsmasq-base)")
	}
	dir, err := os.MkdirTemp("", "gh-dns-bench-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	s, err := daemon.StartSchool(ctx, testbed.Options{})
	if err != nil {
		return false, err
	}
	defer s.Close()
	pupil, ok := s.Segment("pupil")
	if !ok {
		return false, errors.New("the testbed has no pupil segment")
	}
	b := &deployed{bin: bin, duration: d, names: names, fwdNames: fwdNames, clients: clients, outstanding: outstanding,
		dir: dir, s: s, gateway: pupil.Gateway, perfDir: perfDir, workloads: workloads, rounds: rounds}
	stopUp, err := startBenchUpstream(s)
	if err != nil {
		return false, err
	}
	defer stopUp()
	if err := b.writeQueries(); err != nil {
		return false, err
	}
	files, err := s.Config(dir)
	if err != nil {
		return false, err
	}
	// The same upstream for both; and a per-client query limit above what
	// one dnsperf address sends, so that the figure is answers, not
	// REFUSED (the limit is still checked on every query).
	if err := editConfig(files.Path,
		"\n    upstream:\n        - "+testbed.ResolverIP+"\n", fmt.Sprintf("\n    upstream:\n        - %s:%d\n    client_qps: 10000000\n", testbed.ResolverIP, benchUpstreamPort)); err != nil {
		return false, err
	}
	daemon, err := startDaemon(ctx, s, bin, files.Path, filepath.Join(dir, "daemon.log"), pupil.Gateway)
	if err != nil {
		return false, err
	}
	defer daemon.stop()
	dm, err := startDnsmasq(ctx, s, pupil.Gateway)
	if err != nil {
		return false, err
	}
	defer dm.stop()

	fmt.Printf("deployed: %s run in a testbed router (inspection on every segment, query log on); dnsmasq %s on the same router; "+
		"dnsperf in the pupil namespace, %d clients, %d in flight, %v per run; upstream %s:%d in the internet namespace; %d cores\n",
		bin, dnsmasqVersion(), clients, outstanding, d, testbed.ResolverIP, benchUpstreamPort, numCPU())
	guardAddr := netip.AddrPortFrom(pupil.Gateway, 53)
	dmAddr := netip.AddrPortFrom(pupil.Gateway, dnsmasqPort)
	ok = true
	for _, w := range []struct {
		name   string
		target float64
	}{{"cached", targetCached}, {"forwarded", targetForwarded}} {
		if !b.workloads[w.name] {
			continue
		}
		// Rounds alternate the two sides, so that a swing in the
		// machine's load falls on both; the verdict is on the mean q/s
		// of each side over the rounds.
		var sum [2]float64
		var ratios []float64
		for round := range b.rounds {
			var qps [2]float64
			for i, addr := range []netip.AddrPort{guardAddr, dmAddr} {
				side := []string{"gatehouse", "dnsmasq"}[i]
				file := b.cachedFile
				if w.name == "forwarded" {
					if file, err = b.fwdFile(side, round); err != nil {
						return false, err
					}
				} else if round == 0 {
					if _, err := b.dnsperf(ctx, addr, b.cachedFile, 0, true); err != nil {
						return false, fmt.Errorf("warming %v: %w", addr, err)
					}
				}
				var stopPerf func()
				if b.perfDir != "" && round == 0 {
					stopPerf = b.startPerf(w.name+"-"+side, []int{daemon.cmd.Process.Pid, dm.cmd.Process.Pid}[i])
				}
				server := []*proc{daemon, dm}[i]
				cpu0, dcpu0 := server.cpu(), daemon.cpu()
				r, err := b.dnsperf(ctx, addr, file, d, false)
				cpu, dcpu := server.cpu()-cpu0, daemon.cpu()-dcpu0
				if stopPerf != nil {
					stopPerf()
				}
				if w.name == "forwarded" {
					os.Remove(file)
				}
				if err != nil {
					return false, fmt.Errorf("%s %v: %w", w.name, addr, err)
				}
				label := w.name
				if b.rounds > 1 {
					label = fmt.Sprintf("%s#%d", w.name, round+1)
				}
				fmt.Printf("  %-11s %-9s %9.0f q/s  sent %d, lost %d, %s\n", label, side, r.qps, r.sent, r.lost, r.rcodes)
				if r.sent > 0 {
					// CPU per query is the figure the machine's load moves least.
					fmt.Printf("  %-11s %-9s CPU per query: server %.1f us, dnsperf %.1f us", "", "", cpu.Seconds()*1e6/float64(r.sent), r.cpu.Seconds()*1e6/float64(r.sent))
					if i == 1 {
						fmt.Printf(" (the daemon meanwhile, capturing the segment: %.1f us)", dcpu.Seconds()*1e6/float64(r.sent))
					}
					fmt.Println()
				}
				if w.name == "forwarded" && r.sent > int64(b.fwdNames) {
					fmt.Printf("  note: %d queries for %d unique names: some repeated and were answered from a cache\n", r.sent, b.fwdNames)
				}
				qps[i] = r.qps
				sum[i] += r.qps
			}
			if qps[1] > 0 {
				ratios = append(ratios, qps[0]/qps[1])
			}
		}
		if b.rounds > 1 && len(ratios) > 0 {
			fmt.Printf("  %s: ratio per round %.2f to %.2f; the verdict is on the means over %d rounds\n", w.name, slices.Min(ratios), slices.Max(ratios), b.rounds)
		}
		n := float64(b.rounds)
		if !verdict("dns "+w.name+" q/s", sum[0]/n, "dnsmasq", sum[1]/n, w.target) {
			ok = false
		}
	}
	if daemon.exited() {
		return false, fmt.Errorf("the daemon exited during the run: see its log")
	}
	return ok, nil
}

// verdict prints the line every bench script prints per target (see
// bench/README.md) and reports whether it passed.
func verdict(what string, gh float64, peer string, pv float64, target float64) bool {
	ratio := 0.0
	if pv > 0 {
		ratio = gh / pv
	}
	v := "PASS"
	if ratio < target {
		v = "FAIL"
	}
	fmt.Printf("%s %s: gatehouse %.0f, %s %.0f, ratio %.2f, target >= %.2f\n", v, what, gh, peer, pv, ratio, target)
	return v == "PASS"
}

func (b *deployed) writeQueries() error {
	var err error
	b.cachedFile, err = writeNames(filepath.Join(b.dir, "cached"), b.names, "host%d.bench.example")
	return err
}

// fwdFile writes the unique names of one side's forwarded round: a set
// for each side and round, so that no server finds the other's (or its
// own earlier) answers in a cache.
func (b *deployed) fwdFile(side string, round int) (string, error) {
	return writeNames(filepath.Join(b.dir, fmt.Sprintf("fwd-%s-%d", side, round)), b.fwdNames,
		fmt.Sprintf("%c%d-%%d.fwd.bench.example", side[0], round))
}

// writeNames writes a dnsperf query file of n A questions named by
// format (with %d for the line number) at p.
func writeNames(p string, n int, format string) (string, error) {
	f, err := os.Create(p)
	if err != nil {
		return "", err
	}
	w := bufio.NewWriter(f)
	for i := range n {
		fmt.Fprintf(w, format+" A\n", i)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return "", err
	}
	return p, f.Close()
}

type perfResult struct {
	qps        float64
	sent, lost int64
	rcodes     string
	cpu        time.Duration // dnsperf's own CPU time
}

var (
	sentLine  = regexp.MustCompile(`Queries sent:\s+(\d+)`)
	lostLine2 = regexp.MustCompile(`Queries lost:\s+(\d+)`)
	rcodeLine = regexp.MustCompile(`Response codes:\s+(.*)`)
)

// dnsperf runs dnsperf in the pupil namespace against addr: for d, or one
// pass over the file when once.
func (b *deployed) dnsperf(ctx context.Context, addr netip.AddrPort, file string, d time.Duration, once bool) (perfResult, error) {
	args := []string{"-s", addr.Addr().String(), "-p", strconv.Itoa(int(addr.Port())), "-d", file,
		"-c", strconv.Itoa(b.clients), "-q", strconv.Itoa(b.outstanding), "-t", "2"}
	limit := 60 * time.Second
	if once {
		args = append(args, "-n", "1")
	} else {
		args = append(args, "-l", strconv.Itoa(int(d/time.Second)))
		limit = d + 30*time.Second
	}
	lctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := b.s.Command(lctx, "pupil", "dnsperf", args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return perfResult{}, fmt.Errorf("dnsperf: %w\n%s", err, out)
	}
	var r perfResult
	if ps := cmd.ProcessState; ps != nil {
		r.cpu = ps.UserTime() + ps.SystemTime()
	}
	m := qpsLine.FindSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("dnsperf printed no rate:\n%s", out)
	}
	r.qps, _ = strconv.ParseFloat(string(m[1]), 64)
	if m := sentLine.FindSubmatch(out); m != nil {
		r.sent, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	if m := lostLine2.FindSubmatch(out); m != nil {
		r.lost, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	if m := rcodeLine.FindSubmatch(out); m != nil {
		r.rcodes = strings.TrimSpace(string(m[1]))
	}
	return r, nil
}

func editConfig(path, old, new string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out := strings.Replace(string(b), old, new, 1)
	if out == string(b) {
		return fmt.Errorf("%s: no %q to change", path, old)
	}
	return os.WriteFile(path, []byte(out), 0o600)
}

// proc is a process the bench started in a namespace of the testbed.
type proc struct {
	cmd  *testbed.Cmd
	done chan struct{}
	once sync.Once
}

func startProc(s *testbed.School, ns, logPath, bin string, args ...string) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	p := &proc{cmd: s.Command(context.Background(), ns, bin, args...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() { _ = p.cmd.Wait(); logf.Close(); close(p.done) }()
	return p, nil
}

// cpu is the CPU time the process (all its threads) has used so far,
// from /proc/PID/stat; 0 when it cannot be read.
func (p *proc) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) in parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on Linux.
const clockTicks = 100

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process with SIGTERM (SIGKILL after 10 s) and waits.
func (p *proc) stop() {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

// waitAnswer waits until something at addr answers from the pupil's
// namespace, or the process exits, or 90 s pass.
func waitAnswer(ctx context.Context, s *testbed.School, p *proc, addr netip.AddrPort, logPath string) error {
	var conn net.Conn
	if err := s.Do("pupil", func() (err error) {
		conn, err = net.Dial("udp4", addr.String())
		return err
	}); err != nil {
		return err
	}
	defer conn.Close()
	dc := &dns.Conn{Conn: conn}
	m := new(dns.Msg)
	m.SetQuestion("ready.bench.example.", dns.TypeA)
	for deadline := time.Now().Add(90 * time.Second); ; {
		if p.exited() {
			b, _ := os.ReadFile(logPath)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			return fmt.Errorf("exited during start:\n%s", strings.Join(lines[max(0, len(lines)-15):], "\n"))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("no answer at %v within 90 s: see %s", addr, logPath)
		}
		_ = conn.SetDeadline(time.Now().Add(300 * time.Millisecond))
		if dc.WriteMsg(m) == nil {
			if r, err := dc.ReadMsg(); err == nil && r.Rcode == dns.RcodeSuccess {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func startDaemon(ctx context.Context, s *testbed.School, bin, cfg, logPath string, gw netip.Addr) (*proc, error) {
	p, err := startProc(s, "router", logPath, bin, "run", "--config", cfg)
	if err != nil {
		return nil, err
	}
	if err := waitAnswer(ctx, s, p, netip.AddrPortFrom(gw, 53), logPath); err != nil {
		p.stop()
		return nil, fmt.Errorf("gatehouse: %w", err)
	}
	return p, nil
}

func startDnsmasq(ctx context.Context, s *testbed.School, gw netip.Addr) (*proc, error) {
	logPath := filepath.Join(os.TempDir(), fmt.Sprintf("gh-dns-bench-dnsmasq-%d.log", os.Getpid()))
	defer os.Remove(logPath)
	p, err := startProc(s, "router", logPath, "dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
		"--user=root", "--pid-file", "--bind-interfaces", "--listen-address="+gw.String(), "--port="+strconv.Itoa(dnsmasqPort),
		fmt.Sprintf("--server=%s#%d", testbed.ResolverIP, benchUpstreamPort), "--cache-size=10000", "--dns-forward-max=1000")
	if err != nil {
		return nil, err
	}
	if err := waitAnswer(ctx, s, p, netip.AddrPortFrom(gw, dnsmasqPort), logPath); err != nil {
		p.stop()
		return nil, fmt.Errorf("dnsmasq: %w", err)
	}
	return p, nil
}

func dnsmasqVersion() string {
	out, err := exec.Command("dnsmasq", "--version").Output()
	if err != nil {
		return "?"
	}
	if f := strings.Fields(strings.SplitN(string(out), "\n", 2)[0]); len(f) >= 3 {
		return f[2]
	}
	return "?"
}

// startBenchUpstream answers every A question under bench.example with
// one address and a five-minute TTL, anything else NXDOMAIN, on two
// SO_REUSEPORT sockets at the testbed resolver's address.
func startBenchUpstream(s *testbed.School) (func(), error) {
	addr := fmt.Sprintf("%s:%d", testbed.ResolverIP, benchUpstreamPort)
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) })
		return errors.Join(err, serr)
	}}
	var conns []*net.UDPConn
	err := s.Do("internet", func() error {
		for range 2 {
			pc, err := lc.ListenPacket(context.Background(), "udp4", addr)
			if err != nil {
				return err
			}
			conns = append(conns, pc.(*net.UDPConn))
		}
		return nil
	})
	if err != nil {
		for _, c := range conns {
			c.Close()
		}
		return nil, fmt.Errorf("upstream: %w", err)
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in, out := make([]byte, 4096), make([]byte, 0, 4096)
			for {
				n, from, err := c.ReadFromUDPAddrPort(in)
				if err != nil {
					return
				}
				if r := answerBench(out[:0], in[:n]); r != nil {
					_, _ = c.WriteToUDPAddrPort(r, from)
				}
			}
		}()
	}
	return func() {
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
	}, nil
}

// answerBench builds the upstream's answer to query q in out, or nil for
// something that is not a one-question query.
func answerBench(out, q []byte) []byte {
	if len(q) < 17 || q[2]&0x80 != 0 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil
	}
	off := 12
	for off < len(q) && q[off] != 0 {
		off += 1 + int(q[off])
	}
	if off+5 > len(q) {
		return nil
	}
	qend := off + 5
	name := strings.ToLower(string(q[12:off]))
	qtype := binary.BigEndian.Uint16(q[off+1:])
	out = append(out, q[:qend]...)
	out[2] = 0x80 | q[2]&0x79 // QR, opcode and RD kept
	out[3] = 0x80             // RA, rcode 0
	binary.BigEndian.PutUint16(out[6:], 0)
	binary.BigEndian.PutUint16(out[8:], 0)
	binary.BigEndian.PutUint16(out[10:], 0)
	if !strings.HasSuffix(name, "\x05bench\x07example") {
		out[3] |= dns.RcodeNameError
		return out
	}
	if qtype == dns.TypeA {
		binary.BigEndian.PutUint16(out[6:], 1)
		out = append(out, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0x01, 0x2c, 0, 4, 192, 0, 2, 1)
	}
	return out
}

func numCPU() int { return runtime.NumCPU() }

// startPerf records, while the guard is measured, the whole machine's CPU
// with call graphs (perf record -a -g: the daemon, the kernel's share of
// its packets, dnsperf) into DIR/WORKLOAD.perf.data, and the daemon's pid
// beside it, for `perf report --pid`. Diagnostics only (-perf).
func (b *deployed) startPerf(workload string, pid int) func() {
	out := filepath.Join(b.perfDir, workload+".perf.data")
	_ = os.WriteFile(filepath.Join(b.perfDir, workload+".pid"), []byte(strconv.Itoa(pid)+"\n"), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), b.duration+30*time.Second)
	cmd := exec.CommandContext(ctx, "perf", "record", "-q", "-a", "-g", "-F", "499", "-o", out)
	if err := cmd.Start(); err != nil {
		cancel()
		fmt.Printf("  perf: %v\n", err)
		return nil
	}
	return func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
		cancel()
		fmt.Printf("  perf profile of the %s run: %s (daemon pid %d)\n", workload, out, pid)
	}
}
