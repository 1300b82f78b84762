// Command memorybench measures the daemon's memory against the budget of
// issue 17, for bench/memory.sh: the real `gatehouse run` in a testbed
// router with four inspected segments, first idle on an empty database,
// then with 5,000 known devices and 2,000 admitted visitors in its database,
// then with FLOWS TCP flows per segment in flight through the router.
//
// Devices and visitors are seeded through package store before the daemon
// starts, as DHCP and the portal would have written them: devices with
// their last lease, visitors as redeemed codes with the MAC and address
// they signed in from. The daemon puts them back in the kernel at start,
// which is what a router does after a reboot with a full school.
//
// The flows are a bounded generator: in each segment's client namespace,
// FLOWS TLS connections to a server in the fake internet (192.0.2.44:443),
// each with a ClientHello naming a server, a short request and the echo
// back, then kept open and sending a small write every few seconds for the
// hold time, so every engine holds FLOWS established flows that keep
// seeing packets. The four segment clients are approved devices (the
// visitor client one of the admitted visitors), so nothing is blocked.
//
// It prints resident memory (VmRSS) and peak resident memory (VmHWM) of
// the daemon's process from /proc, and the Go heap in use from the
// daemon's own /metrics, for each phase, with PASS or FAIL against the
// budget. The same figures for another binary (-before) are measured on
// the same load in the same run and printed beside them.
package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
)

const (
	serverAddr = "192.0.2.44:443"
	visitorNet = "10.40.0.0/20" // room for 2,000 visitors
	mib        = 1 << 20
)

// The budget of issue 17.
const (
	budgetIdle   = 40 // MiB resident, idle
	budgetLoaded = 64 // MiB resident, whole daemon, under the load
)

func main() {
	now := flag.String("gatehouse", "", "the gatehouse binary to measure (required)")
	before := flag.String("before", "", "a gatehouse binary from before the change, measured on the same load for comparison")
	devices := flag.Int("devices", 5000, "known devices in the database")
	visitors := flag.Int("visitors", 2000, "admitted visitors in the database")
	flows := flag.Int("flows", 2000, "TCP flows per segment in flight")
	hold := flag.Duration("hold", 20*time.Second, "how long the flows are held open, writing")
	settle := flag.Duration("settle", 10*time.Second, "how long the daemon is left alone after start before the idle figures")
	smaps := flag.String("smaps", "", "copy the daemon's /proc/PID/smaps at each phase into this directory, to see which mappings the resident set is in")
	profiles := flag.String("heap-profiles", "", "write the daemon's heap profile at each phase into this directory (a binary built with -tags gatehouse_pprof)")
	flag.Parse()
	if *now == "" {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	l := load{devices: *devices, visitors: *visitors, flows: *flows, hold: *hold, settle: *settle, profiles: *profiles, smaps: *smaps}
	if err := l.check(); err != nil {
		fmt.Fprintln(os.Stderr, "memorybench:", err)
		os.Exit(2)
	}
	fmt.Printf("load: 4 inspected segments, %d known devices, %d admitted visitors, %d TCP flows per segment held %s; %d cores\n",
		l.devices, l.visitors, l.flows, l.hold, numCPU())
	var old *figures
	if *before != "" {
		f, err := l.measure(ctx, *before)
		if err != nil {
			fmt.Fprintln(os.Stderr, "memorybench: before:", err)
			os.Exit(1)
		}
		old = &f
	}
	cur, err := l.measure(ctx, *now)
	if err != nil {
		fmt.Fprintln(os.Stderr, "memorybench:", err)
		os.Exit(1)
	}
	if !report(os.Stdout, old, cur) {
		os.Exit(1)
	}
}

type load struct {
	devices, visitors, flows int
	hold, settle             time.Duration
	profiles                 string
	smaps                    string
}

func (l load) check() error {
	switch {
	case l.devices < 0 || l.devices > 20000:
		return fmt.Errorf("-devices %d: want 0..20000", l.devices)
	case l.visitors < 1 || l.visitors > 3000:
		return fmt.Errorf("-visitors %d: want 1..3000 (the visitor /20 holds them)", l.visitors)
	case l.flows < 0 || l.flows > 10000:
		return fmt.Errorf("-flows %d: want 0..10000", l.flows)
	case l.hold < time.Second || l.hold > 10*time.Minute:
		return fmt.Errorf("-hold %s: want 1s..10m", l.hold)
	}
	return nil
}

// sample is the daemon's memory at one moment.
type sample struct {
	rss, hwm   float64 // MiB, from /proc
	anon, file float64 // MiB: RssAnon (the daemon's own) and RssFile (mostly the binary's pages)
	heap       float64 // MiB, go_memstats_heap_inuse_bytes
}

// figures are one binary's measurements.
type figures struct {
	binary string
	idle   sample // empty database, after settling
	seeded sample // devices and visitors restored, after settling
	flows  sample // with every flow open, at the end of the hold
	peak   float64
	held   int // flows that were open at the end of the hold
}

// measure runs the whole load against one binary in a testbed of its own.
func (l load) measure(ctx context.Context, bin string) (figures, error) {
	f := figures{binary: bin}
	segs := testbed.DefaultSegments()
	for i := range segs {
		if segs[i].Name == "visitor" {
			segs[i].Subnet = netip.MustParsePrefix(visitorNet)
			segs[i].DHCPStart, segs[i].DHCPEnd = netip.MustParseAddr("10.40.0.50"), netip.MustParseAddr("10.40.0.250")
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	s, err := testbed.Start(sctx, testbed.Options{Segments: segs})
	cancel()
	if err != nil {
		return f, err
	}
	defer s.Close()
	dir, err := os.MkdirTemp("", "gh-memory-bench-")
	if err != nil {
		return f, err
	}
	defer os.RemoveAll(dir)
	files, err := s.Config(dir)
	if err != nil {
		return f, err
	}
	// The bench reads the daemon's heap from /metrics on the management
	// network, as a scraper would.
	if err := allowScrape(files.Path, testbed.MgmtNet); err != nil {
		return f, err
	}

	fmt.Printf("%s: idle on an empty database\n", bin)
	d, err := l.startDaemon(ctx, s, bin, files.Path, filepath.Join(dir, "daemon-idle.log"))
	if err != nil {
		return f, err
	}
	sleep(ctx, l.settle)
	f.idle, err = d.sample(s, "idle")
	d.stop()
	if err != nil {
		return f, err
	}

	t0 := time.Now()
	if err := l.seed(ctx, s, files.Database); err != nil {
		return f, fmt.Errorf("seeding the database: %w", err)
	}
	fmt.Printf("%s: seeded %d devices and %d visitors in %.1f s; starting again\n", bin, l.devices, l.visitors, time.Since(t0).Seconds())
	d, err = l.startDaemon(ctx, s, bin, files.Path, filepath.Join(dir, "daemon-load.log"))
	if err != nil {
		return f, err
	}
	defer d.stop()
	sleep(ctx, l.settle)
	if f.seeded, err = d.sample(s, "seeded"); err != nil {
		return f, err
	}

	srv, err := startEchoServer(s)
	if err != nil {
		return f, err
	}
	defer srv.Close()
	start := time.Now()
	conns := make([][]*tls.Conn, len(segs))
	defer func() {
		for _, cs := range conns {
			for _, c := range cs {
				c.Close()
			}
		}
	}()
	if err := eachSegment(segs, func(i int, seg string) (err error) {
		conns[i], err = l.open(ctx, s, seg)
		return err
	}); err != nil {
		return f, fmt.Errorf("opening flows: %w", err)
	}
	for _, cs := range conns {
		f.held += len(cs)
	}
	fmt.Printf("%s: %d flows open in %.1f s; holding them %s\n", bin, f.held, time.Since(start).Seconds(), l.hold)
	end := time.Now().Add(l.hold)
	if err := eachSegment(segs, func(i int, seg string) error {
		return hold(ctx, seg, conns[i], end)
	}); err != nil {
		return f, fmt.Errorf("holding flows: %w", err)
	}
	if d.exited() {
		return f, fmt.Errorf("the daemon exited under load: see %s", d.logPath)
	}
	// Sampled with every flow still open.
	if f.flows, err = d.sample(s, "flows"); err != nil {
		return f, err
	}
	return f, nil
}

// eachSegment runs fn for every segment at once and joins their errors.
func eachSegment(segs []testbed.Segment, fn func(i int, segment string) error) error {
	errs := make([]error, len(segs))
	var wg sync.WaitGroup
	for i, seg := range segs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(i, seg.Name); err != nil {
				errs[i] = fmt.Errorf("%s: %w", seg.Name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// allowScrape adds admin.metrics_from to the testbed's configuration.
func allowScrape(path, from string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out := strings.Replace(string(b), "\nadmin:\n", "\nadmin:\n    metrics_from: ["+from+"]\n", 1)
	if out == string(b) {
		return fmt.Errorf("%s has no admin section", path)
	}
	return os.WriteFile(path, []byte(out), 0o600)
}

// seed writes the devices and visitors into the database as DHCP and the
// portal would have, with the segments' clients among them.
func (l load) seed(ctx context.Context, s *testbed.School, path string) error {
	st, err := store.Open(ctx, path)
	if err != nil {
		return err
	}
	defer st.Close()
	now := time.Now()
	// Devices go round the three inside segments, numbered from the top
	// of each subnet's host part so they never collide with the clients.
	inside := []string{"staff", "pupil", "byod"}
	var devs []store.Device
	for i := range l.devices {
		seg, _ := s.Segment(inside[i%len(inside)])
		devs = append(devs, store.Device{
			MAC:       mac(0x02, i),
			FirstSeen: now.Add(-time.Duration(i) * time.Minute),
			LastSeen:  now,
			Segment:   seg.Name,
			IP:        hostAddr(seg.Subnet, 100+i/len(inside)%900),
			Hostname:  fmt.Sprintf("device-%05d", i),
		})
	}
	for len(devs) > 0 {
		k := min(500, len(devs))
		if err := st.SaveDHCP(ctx, nil, devs[:k]); err != nil {
			return err
		}
		devs = devs[k:]
	}
	// The clients the flows come from are known and approved, and their
	// static addresses reserved for their MACs, as a school must for a
	// device with a static address under MAC-address binding.
	for _, seg := range s.Segments() {
		if !seg.Portal {
			r := store.DHCPReservation{Segment: seg.Name, MAC: seg.ClientMAC, IP: seg.ClientAddr}
			if err := st.ReserveAddress(ctx, "memorybench", r); err != nil {
				return err
			}
		}
		if err := st.DecideDevice(ctx, "memorybench", seg.ClientMAC, store.DeviceDecision{Approved: true, Name: seg.Name + " client"}, now); err != nil {
			return err
		}
	}

	vseg, _ := s.Segment("visitor")
	var vs []store.Voucher
	var hashes []string
	for range l.visitors {
		h := make([]byte, 32)
		if _, err := rand.Read(h); err != nil {
			return err
		}
		hashes = append(hashes, hex.EncodeToString(h))
		vs = append(vs, store.Voucher{CodeHash: hashes[len(hashes)-1], Duration: 8 * time.Hour, MaxDevices: 1})
	}
	for i := 0; i < len(vs); i += store.MaxVoucherBatch {
		if _, err := st.IssueVouchers(ctx, "memorybench", fmt.Sprintf("visitors %d", i), vs[i:min(i+store.MaxVoucherBatch, len(vs))]); err != nil {
			return err
		}
	}
	for i, h := range hashes {
		r := store.Redemption{CodeHash: h, At: now, AUPVersion: "1", Name: fmt.Sprintf("Visitor %d", i)}
		if i == 0 {
			// The visitor segment's client, whose flows must be let out.
			r.MAC, r.IP = vseg.ClientMAC, vseg.ClientAddr
		} else {
			r.MAC, r.IP = mac(0x06, i), hostAddr(vseg.Subnet, 1024+i)
		}
		if _, err := st.RedeemVoucher(ctx, r, func(store.Voucher, bool) error { return nil }); err != nil {
			return err
		}
	}
	return nil
}

// mac is a locally administered unicast MAC numbered n.
func mac(first byte, n int) net.HardwareAddr {
	return net.HardwareAddr{first, 0x47, 0x48, byte(n >> 16), byte(n >> 8), byte(n)}
}

func hostAddr(p netip.Prefix, n int) netip.Addr {
	a := p.Masked().Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += uint32(n)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// daemon is one `gatehouse run` in the router.
type daemon struct {
	cmd      *testbed.Cmd
	done     chan struct{}
	logPath  string
	profiles string // where heap profiles go, or ""
	smaps    string // where smaps copies go, or ""
	once     sync.Once
}

func (l load) startDaemon(ctx context.Context, s *testbed.School, bin, cfg, logPath string) (*daemon, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	d := &daemon{cmd: s.Command(context.Background(), "router", bin, "run", "--config", cfg), done: make(chan struct{}), logPath: logPath, profiles: l.profiles, smaps: l.smaps}
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if d.profiles != "" {
		d.cmd.Env = append(os.Environ(), "GATEHOUSE_HEAP_PROFILE="+filepath.Join(filepath.Dir(logPath), "heap.pb.gz"))
	}
	if err := d.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() { d.cmd.Wait(); logf.Close(); close(d.done) }()
	admin := adminClient(s)
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if d.exited() {
			// The log goes with the bench's directory: its end is the reason.
			b, _ := os.ReadFile(logPath)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			return nil, fmt.Errorf("the daemon exited during start:\n%s", strings.Join(lines[max(0, len(lines)-15):], "\n"))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			d.stop()
			return nil, fmt.Errorf("the daemon did not become ready in 90 s: see %s", logPath)
		}
		res, err := admin.Get(adminURL("/healthz"))
		if err != nil {
			continue
		}
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			return d, nil
		}
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

// stop ends the daemon with SIGTERM (SIGKILL after 10 s) and waits.
func (d *daemon) stop() {
	d.once.Do(func() {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(10 * time.Second):
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	})
}

func (d *daemon) sample(s *testbed.School, phase string) (sample, error) {
	var out sample
	var err error
	if d.profiles != "" {
		if err := d.heapProfile(phase); err != nil {
			return out, err
		}
	}
	if out.rss, out.hwm, out.anon, out.file, err = procMemory(d.cmd.Process.Pid); err != nil {
		return out, err
	}
	if d.smaps != "" {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", d.cmd.Process.Pid))
		if err != nil {
			return out, err
		}
		if err := os.MkdirAll(d.smaps, 0o755); err != nil {
			return out, err
		}
		if err := os.WriteFile(filepath.Join(d.smaps, fmt.Sprintf("%s-%d.smaps", phase, d.cmd.Process.Pid)), b, 0o644); err != nil {
			return out, err
		}
	}
	heap, err := scrape(s, "go_memstats_heap_inuse_bytes")
	if err != nil {
		return out, err
	}
	out.heap = heap / mib
	return out, nil
}

// heapProfile has the daemon write its heap profile and copies it to
// d.profiles/PHASE-PID.pb.gz.
func (d *daemon) heapProfile(phase string) error {
	src := filepath.Join(filepath.Dir(d.logPath), "heap.pb.gz")
	os.Remove(src)
	if err := d.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return err
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if b, err := os.ReadFile(src); err == nil && len(b) > 0 {
			time.Sleep(200 * time.Millisecond) // written whole
			if b, err = os.ReadFile(src); err != nil {
				return err
			}
			if err := os.MkdirAll(d.profiles, 0o755); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(d.profiles, fmt.Sprintf("%s-%d.pb.gz", phase, d.cmd.Process.Pid)), b, 0o644)
		}
	}
	return fmt.Errorf("no heap profile from the daemon in 10 s (built with -tags gatehouse_pprof?): see %s", d.logPath)
}

func adminURL(path string) string {
	return "https://" + testbed.MgmtRouterIP + ":" + strconv.Itoa(testbed.AdminPort) + path
}

func adminClient(s *testbed.School) *http.Client {
	c := s.HTTPClient("mgmt")
	c.Timeout = 5 * time.Second
	c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	return c
}

// scrape reads one unlabelled series from the daemon's /metrics.
func scrape(s *testbed.School, name string) (float64, error) {
	res, err := adminClient(s).Get(adminURL("/metrics"))
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: %s", res.Status)
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("/metrics has no %s", name)
}

// procMemory reads VmRSS, VmHWM, RssAnon and RssFile (MiB) of pid.
func procMemory(pid int) (rss, hwm, anon, file float64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, 0, 0, err
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
		case "RssAnon":
			anon = kb / 1024
		case "RssFile":
			file = kb / 1024
		}
	}
	return rss, hwm, anon, file, sc.Err()
}

// echoServer is the fake internet's end of the flows: TLS, echoing what
// it reads.
type echoServer struct {
	l  net.Listener
	wg sync.WaitGroup
	mu sync.Mutex
	cs map[net.Conn]struct{}
}

func startEchoServer(s *testbed.School) (*echoServer, error) {
	cert, err := selfSigned("www.example.com")
	if err != nil {
		return nil, err
	}
	l, err := s.Listen("internet", "tcp4", serverAddr)
	if err != nil {
		return nil, err
	}
	e := &echoServer{l: tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}}), cs: map[net.Conn]struct{}{}}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := e.l.Accept()
			if err != nil {
				return
			}
			e.mu.Lock()
			e.cs[c] = struct{}{}
			e.mu.Unlock()
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				io.Copy(c, c)
				c.Close()
				e.mu.Lock()
				delete(e.cs, c)
				e.mu.Unlock()
			}()
		}
	}()
	return e, nil
}

// Close stops accepting, closes every connection and waits.
func (e *echoServer) Close() {
	e.l.Close()
	e.mu.Lock()
	for c := range e.cs {
		c.Close()
	}
	e.mu.Unlock()
	e.wg.Wait()
}

func selfSigned(name string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// open opens l.flows TLS flows from a segment's client, 32 at a time.
func (l load) open(ctx context.Context, s *testbed.School, segment string) ([]*tls.Conn, error) {
	ns := s.ClientNS(segment)
	conns := make([]*tls.Conn, 0, l.flows)
	// The first failure stops the rest: a blocked path would otherwise
	// wait out every connection's timeout.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, 32)
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	for range l.flows {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			c, err := openFlow(ctx, s, ns)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
					cancel()
				}
				return
			}
			conns = append(conns, c)
		}()
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return conns, firstErr
}

// hold writes 64 bytes on every connection and reads their echo, about
// every 2 s, until end: established flows that keep seeing packets.
func hold(ctx context.Context, segment string, conns []*tls.Conn, end time.Time) error {
	msg := make([]byte, 64)
	for time.Now().Before(end) && ctx.Err() == nil {
		round := time.Now()
		for j, c := range conns {
			if ctx.Err() != nil {
				break
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write(msg); err != nil {
				return fmt.Errorf("flow %d: %w", j, err)
			}
			if _, err := io.ReadFull(c, msg); err != nil {
				return fmt.Errorf("flow %d: %w", j, err)
			}
		}
		sleep(ctx, 2*time.Second-time.Since(round))
	}
	return ctx.Err()
}

// openFlow connects from ns, shakes hands and exchanges one request.
func openFlow(ctx context.Context, s *testbed.School, ns string) (*tls.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	raw, err := s.DialContext(dctx, ns, "tcp4", serverAddr)
	if err != nil {
		return nil, err
	}
	c := tls.Client(raw, &tls.Config{ServerName: "www.example.com", InsecureSkipVerify: true})
	if err := c.HandshakeContext(dctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	req := []byte("GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n")
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(req); err == nil {
		_, err = io.ReadFull(c, req)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("first request: %w", err)
	}
	return c, nil
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func numCPU() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\nprocessor") + 1
}

// report prints the table and says whether every budget line passed.
func report(w io.Writer, old *figures, cur figures) bool {
	ok := true
	var verdicts []string // the verdict lines every bench script prints (bench/lib/verdict.sh)
	fmt.Fprintf(w, "\n%-56s %12s %12s %10s\n", "daemon memory (MiB)", "before", "now", "budget")
	line := func(what string, before, now float64, budget float64) {
		b := "-"
		if old != nil {
			b = fmt.Sprintf("%.1f", before)
		}
		verdict := ""
		lim := "-"
		if budget > 0 {
			lim = fmt.Sprintf("<= %.0f", budget)
			verdict = "PASS"
			if now > budget {
				verdict = "FAIL"
				ok = false
			}
			verdicts = append(verdicts, fmt.Sprintf("%s memory MiB, %s: gatehouse %.1f, target <= %.0f", verdict, what, now, budget))
		}
		fmt.Fprintf(w, "%-56s %12s %12.1f %10s %s\n", what, b, now, lim, verdict)
	}
	var o figures
	if old != nil {
		o = *old
	}
	line("idle, empty database: resident", o.idle.rss, cur.idle.rss, budgetIdle)
	line("idle, empty database: Go heap in use", o.idle.heap, cur.idle.heap, 0)
	line("devices and visitors restored, idle: resident", o.seeded.rss, cur.seeded.rss, 0)
	line("devices and visitors restored, idle: Go heap in use", o.seeded.heap, cur.seeded.heap, 0)
	line("idle, empty database: of which anonymous (RssAnon)", o.idle.anon, cur.idle.anon, 0)
	line("idle, empty database: of which file pages (RssFile)", o.idle.file, cur.idle.file, 0)
	line("flows held: resident at the end", o.flows.rss, cur.flows.rss, budgetLoaded)
	line("flows held: of which anonymous (RssAnon)", o.flows.anon, cur.flows.anon, 0)
	line("flows held: of which file pages (RssFile)", o.flows.file, cur.flows.file, 0)
	line("flows held: Go heap in use at the end", o.flows.heap, cur.flows.heap, 0)
	line("peak resident over the whole run (VmHWM)", o.flows.hwm, cur.flows.hwm, budgetLoaded)
	if old != nil {
		fmt.Fprintf(w, "before: %s (%d flows held)\n", old.binary, old.held)
	}
	fmt.Fprintf(w, "now:    %s (%d flows held)\n", cur.binary, cur.held)
	for _, v := range verdicts {
		fmt.Fprintln(w, v)
	}
	if ok {
		fmt.Fprintln(w, "memory budget: PASS")
	} else {
		fmt.Fprintln(w, "memory budget: FAIL")
	}
	return ok
}
