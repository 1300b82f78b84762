// Command dnsbench measures the DNS guard's queries per second side by side
// with dnsmasq forwarding to the same upstream, with the same load generator
// for both, for bench/dns.sh.
//
// With -gatehouse BINARY it measures the daemon as deployed (deployed.go):
// the real `gatehouse run` in a testbed router and dnsmasq on the same
// router, asked by dnsperf from a pupil's namespace, and prints PASS or FAIL
// against the targets of issue 16 (>= 1.5x dnsmasq cached, >= 1.2x
// forwarded). "cached" repeats a set of names, warmed by one pass first;
// "forwarded" asks unique names, so every query goes to the upstream.
//
// Without it, it measures the component: package dnsguard and dnsmasq on
// loopback, where bench/dns.sh starts it inside a network namespace of its
// own (dnsperf when installed, otherwise a built-in closed-loop client);
// "forwarded" there turns both caches off.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/gatehouse-net/gatehouse/policy/dnsguard"
)

// udpBatch is the -udp-batch flag, for the component run's A/B of batching.
var udpBatch int

const (
	upstreamAddr = "127.0.0.1:5300"
	guardAddr    = "127.0.0.1:5301"
	dnsmasqAddr  = "127.0.0.1:5302"
)

func main() {
	duration := flag.Duration("duration", 5*time.Second, "load time per server and workload")
	names := flag.Int("names", 1000, "distinct names in the query set")
	clients := flag.Int("clients", 8, "concurrent clients")
	outstanding := flag.Int("outstanding", 64, "queries in flight at most (dnsperf -q)")
	gatehouse := flag.String("gatehouse", "", "measure this gatehouse binary as deployed, in a testbed router")
	flag.IntVar(&udpBatch, "udp-batch", 0, "component run: the guard's Config.UDPBatch (1: one datagram per system call)")
	perfDir := flag.String("perf", "", "deployed run: record perf profiles of the guard's runs (perf record -a -g) into this directory")
	rounds := flag.Int("rounds", 1, "deployed run: rounds of each workload, the two sides alternating")
	workloads := flag.String("workloads", "cached,forwarded", "deployed run: which workloads to measure")
	fwdNames := flag.Int("fwd-names", 1_000_000, "unique names for the deployed forwarded run")
	flag.Parse()
	if *duration <= 0 || *duration > time.Minute || *names < 1 || *names > 100000 || *clients < 1 || *clients > 256 {
		log.Fatal("dnsbench: duration must be in (0, 1m], names in [1, 100000], clients in [1, 256]")
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if *gatehouse != "" {
		if *fwdNames < 1 || *fwdNames > 5_000_000 {
			log.Fatal("dnsbench: fwd-names must be in [1, 5000000]")
		}
		if *rounds < 1 || *rounds > 10 {
			log.Fatal("dnsbench: rounds must be in [1, 10]")
		}
		wl := map[string]bool{}
		for _, w := range strings.Split(*workloads, ",") {
			if w != "cached" && w != "forwarded" {
				log.Fatalf("dnsbench: unknown workload %q (cached, forwarded)", w)
			}
			wl[w] = true
		}
		if _, err := runDeployed(ctx, *gatehouse, *duration, *names, *fwdNames, *clients, *outstanding, *perfDir, wl, *rounds); err != nil {
			cancel()
			log.Fatalf("dnsbench: %v", err)
		}
		return
	}
	if err := run(ctx, *duration, *names, *clients, *outstanding); err != nil {
		log.Fatalf("dnsbench: %v", err)
	}
}

func run(ctx context.Context, d time.Duration, names, clients, outstanding int) error {
	stopUp, err := startUpstream()
	if err != nil {
		return err
	}
	defer stopUp()
	dir, err := os.MkdirTemp("", "dnsbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	queries := filepath.Join(dir, "queries")
	var b strings.Builder
	for i := range names {
		fmt.Fprintf(&b, "host%d.bench.example A\n", i)
	}
	if err := os.WriteFile(queries, []byte(b.String()), 0o600); err != nil {
		return err
	}
	load := "built-in Go client"
	if _, err := exec.LookPath("dnsperf"); err == nil {
		load = "dnsperf"
	}
	fmt.Printf("load generator: %s, %d clients, %v per run, %d distinct names, upstream on loopback\n", load, clients, d, names)
	for _, w := range []struct {
		name  string
		cache bool
	}{{"cached", true}, {"forwarded", false}} {
		guardQPS, err := measureGuard(ctx, w.cache, d, queries, names, clients, outstanding)
		if err != nil {
			return fmt.Errorf("guard, %s: %w", w.name, err)
		}
		dmQPS, err := measureDnsmasq(ctx, w.cache, d, queries, names, clients, outstanding)
		if err != nil {
			return fmt.Errorf("dnsmasq, %s: %w", w.name, err)
		}
		target := targetCached
		if !w.cache {
			target = targetForwarded
		}
		verdict("dns component "+w.name+" q/s", guardQPS, "dnsmasq", dmQPS, target)
	}
	return nil
}

// startUpstream is the school's resolver: every name under bench.example has
// one A record with a five-minute TTL; anything else is NXDOMAIN.
func startUpstream() (func(), error) {
	pc, err := net.ListenPacket("udp4", upstreamAddr)
	if err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	ln, err := net.Listen("tcp4", upstreamAddr)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("upstream: %w", err)
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if len(r.Question) == 1 && strings.HasSuffix(strings.ToLower(r.Question[0].Name), ".bench.example.") {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
				A: net.IPv4(192, 0, 2, 1)})
		} else {
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})
	servers := []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}}
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = s.ActivateAndServe()
		}()
	}
	return func() {
		for _, s := range servers {
			_ = s.Shutdown()
		}
		wg.Wait()
	}, nil
}

func measureGuard(ctx context.Context, cache bool, d time.Duration, queries string, names, clients, outstanding int) (float64, error) {
	size := 0
	if !cache {
		size = -1
	}
	g, err := dnsguard.New(dnsguard.Config{
		Upstreams: []netip.AddrPort{netip.MustParseAddrPort(upstreamAddr)},
		// The load comes from 127.0.0.1, a pupil here: the guard checks
		// SafeSearch, the canary, Private Relay and its block list on
		// every query, as it does on a school's busiest segment.
		Segments:     []dnsguard.SegmentPolicy{{Name: "pupil", Subnet: netip.MustParsePrefix("127.0.0.0/8"), SafeSearch: true, BlockPrivateRelay: true}},
		BlockedNames: []string{"dns.google", "cloudflare-dns.com", "dns.quad9.net", "nordvpn.com"},
		CacheSize:    size,
		UDPBatch:     udpBatch,
		Recorder:     discard{},
	}, nil)
	if err != nil {
		return 0, err
	}
	pc, err := net.ListenPacket("udp4", guardAddr)
	if err != nil {
		return 0, err
	}
	ln, err := net.Listen("tcp4", guardAddr)
	if err != nil {
		pc.Close()
		return 0, err
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- g.ServeConns(sctx, pc, ln) }()
	defer func() {
		stop()
		<-done
	}()
	return load(ctx, guardAddr, d, queries, names, clients, outstanding)
}

// discard stands in for the query log: the guard hands every record on, as
// it does in the daemon, without this benchmark measuring SQLite.
type discard struct{}

func (discard) Record(dnsguard.Query) {}

func measureDnsmasq(ctx context.Context, cache bool, d time.Duration, queries string, names, clients, outstanding int) (float64, error) {
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		return 0, fmt.Errorf("dnsmasq not installed (Debian package dnsmasq-base): %w", err)
	}
	size := "10000"
	if !cache {
		size = "0"
	}
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	cmd := exec.CommandContext(cctx, bin, "--keep-in-foreground", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
		"--user=root", "--pid-file", "--bind-interfaces", "--listen-address=127.0.0.1", "--port=5302",
		"--server=127.0.0.1#5300", "--cache-size="+size, "--dns-forward-max=1000")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() {
		stop()
		_ = cmd.Wait()
	}()
	// Ready when it answers.
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion("ready.bench.example.", dns.TypeA)
	for i := 0; ; i++ {
		if _, _, err := c.Exchange(m, dnsmasqAddr); err == nil {
			break
		}
		if i == 50 {
			return 0, fmt.Errorf("dnsmasq did not answer within 10 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	return load(ctx, dnsmasqAddr, d, queries, names, clients, outstanding)
}

var qpsLine = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)

// load runs the load generator against addr for d and returns the answered
// queries per second.
func load(ctx context.Context, addr string, d time.Duration, queries string, names, clients, outstanding int) (float64, error) {
	if _, err := exec.LookPath("dnsperf"); err != nil {
		return goLoad(addr, d, names, clients)
	}
	host, port, _ := net.SplitHostPort(addr)
	lctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(lctx, "dnsperf", "-s", host, "-p", port, "-d", queries,
		"-l", strconv.Itoa(int(d/time.Second)), "-c", strconv.Itoa(clients), "-q", strconv.Itoa(outstanding), "-t", "2").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("dnsperf: %w\n%s", err, out)
	}
	m := qpsLine.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("dnsperf printed no rate:\n%s", out)
	}
	if lost := lostLine(out); lost != "" {
		fmt.Printf("  %s: %s\n", addr, lost)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

func lostLine(out []byte) string {
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); strings.HasPrefix(l, "Queries lost:") && !strings.HasPrefix(l, "Queries lost:         0 ") {
			return l
		}
	}
	return ""
}

// goLoad is a closed-loop client: each of clients goroutines sends one query
// and waits for its answer, cycling through the names, until d has passed.
func goLoad(addr string, d time.Duration, names, clients int) (float64, error) {
	var answered atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, clients)
	start := time.Now()
	deadline := start.Add(d)
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("udp4", addr)
			if err != nil {
				errc <- err
				return
			}
			defer conn.Close()
			dc := &dns.Conn{Conn: conn}
			m := new(dns.Msg)
			for i := w; time.Now().Before(deadline); i += clients {
				m.SetQuestion(fmt.Sprintf("host%d.bench.example.", i%names), dns.TypeA)
				_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
				if err := dc.WriteMsg(m); err != nil {
					continue
				}
				if _, err := dc.ReadMsg(); err == nil {
					answered.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return 0, err
	}
	return float64(answered.Load()) / time.Since(start).Seconds(), nil
}
