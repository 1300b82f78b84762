package captive

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
)

// portalURL is where the rig's portal is reached from the visitor segment.
const portalURL = "http://10.40.0.1:8080"

// kernelRig is the portal as the daemon runs it, inside a testbed school:
// the real policy enforcer programming the router's nftables, the kernel
// neighbour table for MACs and a SQLite store on disk. Tests that restart
// it build a second portal and enforcer over the same database with
// restart.
type kernelRig struct {
	t      *testing.T
	s      *testbed.School
	nsFd   int
	dbPath string
	st     *store.Store
	enf    *policy.Enforcer
	adm    *countingAdmitter
	p      *Portal
	stop   func() // stops serving the portal and waits for it
}

// newKernelRig builds the school, applies the rules in its router and
// serves the portal there on :8080.
func newKernelRig(t *testing.T, ctx context.Context) *kernelRig {
	t.Helper()
	s := testbed.New(t, testbed.Options{})
	rh, err := s.OpenNS(s.RouterNS())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rh.Close() })
	r := &kernelRig{t: t, s: s, nsFd: int(rh), dbPath: filepath.Join(t.TempDir(), "gatehouse.db")}
	r.start(ctx, true)
	return r
}

func rigNetwork() policy.Network {
	seg := func(name, subnet string) policy.SegmentSpec {
		p := netip.MustParsePrefix(subnet)
		return policy.Defaults(name, "gh-"+name, p, p.Addr().Next(), false)
	}
	return policy.Network{
		Uplink: testbed.UplinkInterface,
		Segments: []policy.SegmentSpec{seg("staff", "10.10.0.0/22"), seg("pupil", "10.20.0.0/21"),
			seg("byod", "10.30.0.0/22"), seg("visitor", "10.40.0.0/23")},
		Servers:    map[string]netip.Prefix{"mis": netip.MustParsePrefix("10.5.0.0/24")},
		AdminAddr:  netip.MustParseAddrPort("10.99.0.1:8443"),
		PortalPort: 8080,
		DNSPort:    5353,
	}
}

// start opens the store, builds an enforcer and a portal, restores the
// admissions the database holds and brings the kernel's table in line, in
// the daemon's order (see cmd/gatehouse/run.go), then serves the portal.
func (r *kernelRig) start(ctx context.Context, first bool) {
	t := r.t
	t.Helper()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := store.Open(ctx, r.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	enf, err := policy.New(policy.Options{NetNSFd: r.nsFd}, rigNetwork(), logger)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	r.st, r.enf = st, enf
	r.adm = &countingAdmitter{next: enf}
	r.p, err = New(Options{Store: st, Admitter: r.adm, Neighbours: NeighbourTable{NetNS: r.nsFd}, Logger: logger,
		School: "Testbed School", SSID: "School-Guest", PortalURL: portalURL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.p.Restore(ctx); err != nil {
		t.Fatalf("restore admissions: %v", err)
	}
	if _, _, err := enf.Start(ctx); err != nil {
		t.Fatalf("bring the kernel's table in line: %v", err)
	}
	ln, err := r.s.Listen("router", "tcp4", "0.0.0.0:8080")
	if err != nil {
		t.Fatal(err)
	}
	srvCtx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- r.p.Serve(srvCtx, ln) }()
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-served; err != nil {
				t.Errorf("portal Serve: %v", err)
			}
			if err := enf.Close(); err != nil {
				t.Errorf("enforcer Close: %v", err)
			}
			if err := st.Close(); err != nil {
				t.Errorf("store Close: %v", err)
			}
		})
	}
	if first {
		t.Cleanup(func() { r.stop() })
	}
}

// restart stops the portal and its enforcer (the kernel's table stays, as
// when the daemon dies) and starts new ones over the same database.
func (r *kernelRig) restart(ctx context.Context) {
	r.t.Helper()
	r.stop()
	r.start(ctx, false)
	r.t.Cleanup(func() { r.stop() })
}

// nft runs nft in the router and returns its output.
func (r *kernelRig) nft(args ...string) string {
	r.t.Helper()
	out, err := r.s.Command(context.Background(), "router", "nft", args...).CombinedOutput()
	if err != nil {
		r.t.Fatalf("nft %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// admittedSet is the kernel's admitted set as nft prints it.
func (r *kernelRig) admittedSet() string {
	return r.nft("list", "set", "inet", policy.TableName, policy.SetAdmitted)
}

// visitorMAC is the MAC of the visitor client's interface.
func (r *kernelRig) visitorMAC() string {
	info, ok := r.s.Segment("visitor")
	if !ok {
		r.t.Fatal("the testbed has no visitor segment")
	}
	return info.ClientMAC.String()
}

// countingAdmitter passes admissions to the enforcer and counts evictions,
// so a test can tell the kernel's timeout from a Go timer.
type countingAdmitter struct {
	next   Admitter
	mu     sync.Mutex
	admits int
	evicts int
}

func (c *countingAdmitter) AdmitWith(ctx context.Context, d policy.Device, until time.Time, l policy.Limits) error {
	c.mu.Lock()
	c.admits++
	c.mu.Unlock()
	return c.next.AdmitWith(ctx, d, until, l)
}

func (c *countingAdmitter) Evict(ctx context.Context, d policy.Device) error {
	c.mu.Lock()
	c.evicts++
	c.mu.Unlock()
	return c.next.Evict(ctx, d)
}

func (c *countingAdmitter) counts() (admits, evicts int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.admits, c.evicts
}

// requireTool fails the test when a program the test drives is missing,
// or skips it under -short.
func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := name + " is not installed (Debian package " + pkg + "): " + err.Error()
	if testing.Short() {
		t.Skip(msg)
	}
	t.Fatal(msg)
	return ""
}
