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
