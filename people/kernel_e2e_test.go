package people_test

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/people"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
)

// kernelRig is a testbed school whose router runs the real enforcer, with
// the people service deciding devices and resolving group rules.
type kernelRig struct {
	t     *testing.T
	s     *testbed.School
	enf   *policy.Enforcer
	st    *store.Store
	svc   *people.Service
	rules []policy.Rule
	pupil testbed.SegmentInfo
	// applied is set once the enforcer's table is in the kernel.
	applied bool
	network policy.Network
}

func newKernelRig(t *testing.T, rules []policy.Rule) *kernelRig {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("the test needs curl: %v", err)
	}
	s := testbed.New(t, testbed.Options{})
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	n := policy.Network{
		Uplink:     testbed.UplinkInterface,
		Servers:    map[string]netip.Prefix{"mis": netip.MustParsePrefix("192.0.2.16/28")},
		AdminAddr:  netip.AddrPortFrom(netip.MustParseAddr(testbed.MgmtRouterIP), testbed.AdminPort),
		PortalPort: 8080,
		DNSPort:    5353,
	}
	r := &kernelRig{t: t, s: s, rules: rules}
	for _, seg := range s.Segments() {
		n.Segments = append(n.Segments, policy.Defaults(seg.Name, seg.Interface, seg.Subnet, seg.Gateway, seg.Portal))
		if seg.Name == "pupil" {
			r.pupil = seg
		}
	}
	h, err := s.OpenNS("router")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	r.network = n
	r.enf, err = policy.New(policy.Options{NetNSFd: int(h)}, n, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.enf.Close() })
	r.st, err = store.Open(context.Background(), filepath.Join(t.TempDir(), "gh.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.st.Close() })
	loc, _ := time.LoadLocation("Europe/London")
	r.svc, err = people.New(people.Options{Store: r.st, Kernel: r.enf, Location: loc, Logger: logger,
		Now: func() time.Time { return time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC) },
		OnChange: func(ctx context.Context) error {
			if !r.applied {
				return nil // the first Apply below reads everything
			}
			r.enf.SetRules(r.rules, r.svc)
			_, err := r.enf.Sync(ctx)
			return err
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	data, err := os.ReadFile("../../shared/mis/pupils-sims.csv")
	if err != nil {
		t.Fatal(err)
	}
	b, err := people.ParseCSV("pupils-sims.csv", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	pv, err := r.svc.Preview(ctx, "test", b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Apply(ctx, "test", pv.ID); err != nil {
		t.Fatal(err)
	}
	// As the daemon starts: decisions restored, then the first Apply.
	r.enf.SetRules(rules, r.svc)
	if _, _, _, err := r.svc.Restore(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := r.enf.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	r.applied = true
	return r
}

// curl fetches url from the pupil client and reports whether it worked.
func (r *kernelRig) curl(url string) (bool, string) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := r.s.Command(ctx, "pupil", "curl", "-sS", "-k", "--max-time", "3", url).CombinedOutput()
	return err == nil, string(out)
}

func (r *kernelRig) pupilOf(year string) store.Person {
	r.t.Helper()
	ps, err := r.svc.Members(context.Background(), year)
	if err != nil || len(ps) == 0 {
		r.t.Fatalf("members of %s: %v %d", year, err, len(ps))
	}
	return ps[0]
}

// TestYear9RuleFollowsTheOwnersYearGroup: a rule about group "Year 9" is in
// force for a Year 9 pupil's device and not for a Year 10 pupil's, shown by
// traffic from the same device as its owner changes.
func TestYear9RuleFollowsTheOwnersYearGroup(t *testing.T) {
	rule := policy.Rule{ID: 1, Name: "Year 9 no plain web", Who: policy.Who{Kind: policy.Group, ID: "Year 9"},
		What:  policy.What{Kind: policy.Service, Proto: "tcp", Ports: []policy.PortRange{{Lo: 80, Hi: 80}}},
		Where: "pupil", When: policy.When{Kind: policy.Always}, Action: policy.Block}
	r := newKernelRig(t, []policy.Rule{rule})
	ctx := context.Background()
	y9, y10 := r.pupilOf("Year 9"), r.pupilOf("Year 10")
	web := "http://" + testbed.WebIP + "/"
	tls := "https://" + testbed.WebIP + "/"

	// Before the device has an owner the rule names nobody.
	if ok, out := r.curl(web); !ok {
		t.Fatalf("plain web from an unowned device: %s", out)
	}
	mac := r.pupil.ClientMAC
	if _, err := r.svc.Decide(ctx, "web:nm", mac, store.DeviceDecision{Approved: true, Name: "laptop", Owner: y9.UPN}); err != nil {
		t.Fatal(err)
	}
	devs, err := r.svc.Devices(ctx, policy.Who{Kind: policy.Group, ID: "Year 9"})
	if err != nil || len(devs) != 1 || devs[0].MAC.String() != mac.String() {
		t.Fatalf("Year 9's devices: %v %v", devs, err)
	}
	if ok, out := r.curl(tls); !ok {
		t.Fatalf("approved Year 9 device: HTTPS failed: %s", out)
	}
	if ok, _ := r.curl(web); ok {
		t.Fatal("the Year 9 rule is not in force: plain web got through for a Year 9 pupil's device")
	}

	// The same device given to a Year 10 pupil: the rule no longer
	// applies to it.
	if _, err := r.svc.Decide(ctx, "web:nm", mac, store.DeviceDecision{Approved: true, Name: "laptop", Owner: y10.UPN}); err != nil {
		t.Fatal(err)
	}
	if ok, out := r.curl(web); !ok {
		t.Fatalf("a Year 10 pupil's device is held by the Year 9 rule: %s", out)
	}

	// Revoking the owner cuts the device at once, whatever the rules say.
	if _, err := r.svc.RevokeNow(ctx, "web:nm", y10.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := r.curl(tls); ok {
		t.Fatal("a revoked pupil's device still reaches the internet")
	}
	known, approved, blocked, _ := r.st.DeviceStatus(ctx, mac)
	if !known || approved || !blocked {
		t.Fatalf("device after revocation: approved %v blocked %v", approved, blocked)
	}
	// And approving it again is refused while its owner has no access.
	if _, err := r.svc.Decide(ctx, "web:nm", mac, store.DeviceDecision{Approved: true, Owner: y10.UPN}); err == nil || !strings.Contains(err.Error(), "no longer has access") {
		t.Fatalf("approving a revoked person's device: %v", err)
	}
}

// TestLeaverLosesTheInternetAtT0AndARestartFinishesTheRevocation drives the
// scheduler with an injected clock against the real enforcer: the leaver's
// device works until the end of their leaving day and stops at T0; a
// revocation whose database half was written before a crash is finished by
// the next start (a new enforcer restoring from the database).
func TestLeaverLosesTheInternetAtT0AndARestartFinishesTheRevocation(t *testing.T) {
	r := newKernelRig(t, nil)
	ctx := context.Background()
	tls := "https://" + testbed.WebIP + "/"
	// A Year 11 pupil leaving after exams (2027-06-25).
	var leaver store.Person
	ps, _ := r.svc.Members(ctx, "Year 11")
	for _, p := range ps {
		if p.LeavesOn == "2027-06-25" {
			leaver = p
			break
		}
	}
	if leaver.ID == 0 {
		t.Fatal("no Year 11 leaver in the sample")
	}
	mac := r.pupil.ClientMAC
	if _, err := r.svc.Decide(ctx, "web:nm", mac, store.DeviceDecision{Approved: true, Owner: leaver.UPN}); err != nil {
		t.Fatal(err)
	}
	// The device's address, as DHCP would have recorded it.
	if err := r.st.SaveDHCP(ctx, nil, []store.Device{{MAC: mac, IP: r.pupil.ClientAddr, Segment: "pupil", FirstSeen: time.Now(), LastSeen: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	loc, _ := time.LoadLocation("Europe/London")
	clock := time.Date(2027, 6, 25, 22, 59, 0, 0, time.UTC) // 23:59 BST on the leaving day
	svc, err := people.New(people.Options{Store: r.st, Kernel: r.enf, Location: loc, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	// (Earlier leavers, the autumn's, are caught up on now.)
	if _, err := svc.Tick(ctx); err != nil {
		t.Fatalf("a minute before T0: %v", err)
	}
	if p, _ := r.st.PersonByID(ctx, leaver.ID); p.State != store.PersonLeaving {
		t.Fatalf("a minute before T0 the leaver is %s", p.State)
	}
	if ok, out := r.curl(tls); !ok {
		t.Fatalf("the leaver lost access before T0: %s", out)
	}
	clock = time.Date(2027, 6, 25, 23, 0, 0, 0, time.UTC) // midnight BST: T0
	start := time.Now()
	if res, err := svc.Tick(ctx); err != nil || res.Revoked < 1 {
		t.Fatalf("at T0: %+v %v", res, err)
	}
	if ok, _ := r.curl(tls); ok {
		t.Fatal("the leaver's device still reaches the internet after T0")
	}
	t.Logf("T0 tick to refused HTTPS: %v", time.Since(start))

	// Crash in the middle of the next revocation: the database half is
	// written, the kernel never told.
	other := r.pupilOf("Year 10")
	mac2 := r.s.Segments()[0].ClientMAC // the staff client, reused as a second device
	if _, err := r.svc.Decide(ctx, "web:nm", mac2, store.DeviceDecision{Approved: true, Owner: other.UPN}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.st.RevokePerson(ctx, "scheduler", other.ID, "crash test", clock); err != nil {
		t.Fatal(err)
	}
	staffTLS := func() bool {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return r.s.Command(c, "staff", "curl", "-sS", "-k", "--max-time", "3", tls).Run() == nil
	}
	if !staffTLS() {
		t.Fatal("the kernel refused the device before the revocation reached it")
	}
	// Restart: a new enforcer (a new process) restores from the database
	// and the scheduler finishes the pending revocation.
	r.enf.Close()
	h, err := r.s.OpenNS("router")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	enf2, err := policy.New(policy.Options{NetNSFd: int(h)}, r.network, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enf2.Close()
	svc2, err := people.New(people.Options{Store: r.st, Kernel: enf2, Location: loc, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := svc2.Restore(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := enf2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := svc2.Tick(ctx)
	if err != nil || res.Finished != 1 {
		t.Fatalf("restart: %+v %v", res, err)
	}
	if staffTLS() {
		t.Fatal("after the restart the revoked person's device still reaches the internet")
	}
	if ok, _ := r.curl(tls); ok {
		t.Fatal("the first leaver regained access across the restart")
	}
}
