package overview

import (
	"context"
	"html"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
	"github.com/gatehouse-net/gatehouse/web/webtest"
)

// now is the page's clock in the tests: mid-afternoon, so "today" and the
// last 24 hours differ.
var now = time.Date(2026, 12, 6, 15, 30, 0, 0, time.UTC)

func newSite(t *testing.T, health func() Health) *webtest.Site {
	t.Helper()
	return newSiteWith(t, Options{Health: health})
}

// newSiteWith registers the page with o, its Source, clock and zone set.
func newSiteWith(t *testing.T, o Options) *webtest.Site {
	t.Helper()
	st := webtest.OpenStore(t)
	o.Source, o.Now, o.Location = st, func() time.Time { return now }, time.UTC
	return webtest.New(t, webtest.Options{Store: st, Setup: func(srv *web.Server) error {
		Register(srv, o)
		return nil
	}})
}

func mac(b byte) net.HardwareAddr { return net.HardwareAddr{2, 0, 0, 0, 0, b} }

// seed stores leases, vouchers and findings around now.
func seed(t *testing.T, st *store.Store) {
	t.Helper()
	ctx := context.Background()
	leases := []store.DHCPLease{
		{Segment: "pupil", IP: netip.MustParseAddr("10.20.0.10"), MAC: mac(1), State: "bound", Start: now.Add(-time.Hour), Expires: now.Add(time.Hour)},
		{Segment: "pupil", IP: netip.MustParseAddr("10.20.0.11"), MAC: mac(2), State: "bound", Start: now.Add(-time.Hour), Expires: now.Add(time.Hour)},
		{Segment: "staff", IP: netip.MustParseAddr("10.10.0.10"), MAC: mac(3), State: "bound", Start: now.Add(-time.Hour), Expires: now.Add(time.Hour)},
		// Expired: not online.
		{Segment: "pupil", IP: netip.MustParseAddr("10.20.0.12"), MAC: mac(4), State: "bound", Start: now.Add(-3 * time.Hour), Expires: now.Add(-time.Hour)},
		{Segment: "staff", IP: netip.MustParseAddr("10.10.0.11"), MAC: mac(5), State: "released", Start: now.Add(-time.Hour), Expires: now.Add(time.Hour)},
	}
	if err := st.SaveDHCP(ctx, leases, nil); err != nil {
		t.Fatal(err)
	}
	var fs []store.Finding
	for i := 0; i < 3; i++ {
		fs = append(fs, store.Finding{At: now.Add(-time.Duration(i+1) * time.Hour), Segment: "pupil", SrcMAC: mac(1), Class: "vpn"})
	}
	fs = append(fs,
		store.Finding{At: now.Add(-10 * time.Minute), Segment: "pupil", SrcMAC: mac(2), Class: "doh"},
		// Yesterday evening: in the last 24 hours and 30 days, not today.
		store.Finding{At: now.Add(-20 * time.Hour), Segment: "staff", SrcMAC: mac(3), Class: "ssh"},
		// Ten days ago: only in the 30-day chart.
		store.Finding{At: now.AddDate(0, 0, -10), Segment: "staff", SrcMAC: mac(3), Class: "proxy"},
		// Forty days ago: in no chart.
		store.Finding{At: now.AddDate(0, 0, -40), Segment: "staff", SrcMAC: mac(3), Class: "proxy"},
	)
	if err := st.InsertFindings(ctx, fs); err != nil {
		t.Fatal(err)
	}
	for i, at := range []time.Time{now.Add(-time.Hour), now.Add(-2 * time.Hour), now.AddDate(0, 0, -5)} {
		v := store.Voucher{CodeHash: "hash-" + string(rune('a'+i)), CreatedAt: at, Duration: time.Hour, StartOnFirstUse: true, MaxDevices: 1}
		if _, err := st.IssueVouchers(ctx, "web:reception", "", []store.Voucher{v}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOverviewIsTheNetworkManagersLandingAndOnlyTheirs(t *testing.T) {
	s := newSite(t, nil)
	s.AddUser(t, "netman", web.RoleNetwork, webtest.Password)
	b := s.NewBrowser(t)
	if got := b.Login("netman", webtest.Password); got != Path {
		t.Errorf("the network manager landed on %s, want %s", got, Path)
	}
	if r := b.Get(Path); r.StatusCode != http.StatusOK {
		t.Fatalf("network: GET %s = %d", Path, r.StatusCode)
	}
	for _, role := range []string{web.RoleReception, web.RoleDSL} {
		b := s.Browser(t, role)
		if r := b.Get(Path); r.StatusCode != http.StatusForbidden {
			t.Errorf("%s: GET %s = %d, want 403", role, Path, r.StatusCode)
		}
		if strings.Contains(b.Get("/").Body, `href="`+Path+`"`) {
			t.Errorf("%s sees the overview in the menu", role)
		}
	}
	if r := s.NewBrowser(t).Get(Path); r.StatusCode == http.StatusOK {
		t.Errorf("anonymous GET %s = 200", Path)
	}
}

// text is the page with its tags removed and spaces collapsed, to match
// sentences that span elements.
func text(body string) string {
	body = regexp.MustCompile(`<[^>]*>`).ReplaceAllString(body, " ")
	return strings.Join(strings.Fields(html.UnescapeString(body)), " ")
}

func TestOverviewShowsTheSeededNumbers(t *testing.T) {
	s := newSite(t, func() Health {
		return Health{CheckedAt: now, DiskTotal: 10 << 30, DiskFree: 512 << 20, DiskLow: true, Alarms: []string{"The database's disk is nearly full."}}
	})
	seed(t, s.Store)
	body := s.Browser(t, web.RoleNetwork).Get(Path).Body
	txt := text(body)
	for _, want := range []string{
		"3 devices with a DHCP lease, 0 Wi-Fi sign-ins (RADIUS sessions), 0 visitor devices admitted.",
		"pupil 2", "staff 1",
		"2 visitor codes issued today",
		"4 findings today",
		"vpn 3", "doh 1",
		"512.0 MiB free of 10.0 GiB (5% free) — nearly full",
		"The database's disk is nearly full.",
		"Memory: ",
	} {
		if !strings.Contains(txt, want) {
			t.Errorf("the overview does not say %q:\n%s", want, txt)
		}
	}
	// Yesterday's ssh finding is not "today".
	if strings.Contains(txt, "ssh 1") {
		t.Errorf("yesterday's finding is counted as today's:\n%s", txt)
	}
}

func TestOverviewChartsAreAccessibleSVGThatScale(t *testing.T) {
	s := newSite(t, nil)
	seed(t, s.Store)
	body := s.Browser(t, web.RoleNetwork).Get(Path).Body
	if n := strings.Count(body, "<svg "); n != 3 {
		t.Fatalf("%d SVG charts, want 3", n)
	}
	for _, c := range []struct{ id, title, desc string }{
		// 3 vpn + 1 doh today, 1 ssh yesterday evening; the busiest hour is
		// any of the five with one finding: the first, 19:00 yesterday.
		{"findings-hourly", "Findings per hour, last 24 hours", "5 in all; the busiest hour was 19:00 with 1."},
		// 5 in the last day, 1 ten days ago; the one forty days ago is out.
		{"findings-daily", "Findings per day, last 30 days", "6 in all; the busiest day was 6 Dec with 4."},
		{"codes-daily", "Visitor codes issued per day, last 30 days", "3 in all; the busiest day was 6 Dec with 2."},
	} {
		if !strings.Contains(body, `aria-labelledby="`+c.id+`-t `+c.id+`-d"`) {
			t.Errorf("chart %s is not labelled by its title and description", c.id)
		}
		if !strings.Contains(body, `<title id="`+c.id+`-t">`+c.title+`</title>`) {
			t.Errorf("chart %s has no title %q", c.id, c.title)
		}
		if !strings.Contains(body, `<desc id="`+c.id+`-d">`+c.desc+`</desc>`) {
			t.Errorf("chart %s has no description %q:\n%s", c.id, c.desc, body)
		}
	}
	if n := strings.Count(body, "<rect "); n != 24+30+30 {
		t.Errorf("%d bars, want 84 (24 hours and twice 30 days)", n)
	}
	// Fits a 390 px phone: the charts scale to their container and nothing
	// on the page has a fixed width in pixels.
	if strings.Count(body, `width="100%"`) != 3 {
		t.Error("the charts do not scale to the page's width")
	}
	if m := regexp.MustCompile(`width="?\d+px|width:\s*\d{3,}px`).FindString(body); m != "" {
		t.Errorf("fixed width %q on the page", m)
	}
}

func TestDayChartBucketsByLocalDay(t *testing.T) {
	loc := time.FixedZone("UTC+10", 10*3600)
	start := time.Date(2026, 11, 7, 0, 0, 0, 0, loc)
	// 13:00 UTC on 5 Dec is 23:00 on 5 Dec there (the 29th day from 7 Nov);
	// 23:00 UTC on 6 Dec is 09:00 on 7 Dec there: outside the 30 days
	// (the last is 6 Dec), though 6 Dec in UTC.
	hours := []store.HourCount{{Hour: time.Date(2026, 12, 5, 13, 0, 0, 0, time.UTC), N: 2}, {Hour: time.Date(2026, 12, 6, 23, 0, 0, 0, time.UTC), N: 7}}
	c := dayChart("x", "x", hours, start, loc)
	if got := c.Bars[28].N; got != 2 {
		t.Errorf("5 Dec has %d, want 2", got)
	}
	if got := c.Bars[29].N; got != 0 {
		t.Errorf("6 Dec has %d, want 0: 09:00 on 7 Dec local is not in it", got)
	}
	if c.First != "7 Nov" || c.Last != "6 Dec" {
		t.Errorf("axis %s to %s, want 7 Nov to 6 Dec", c.First, c.Last)
	}
}

func TestOverviewShowsPoolUseAndTheKernelCheck(t *testing.T) {
	kc := KernelCheck{}
	s := newSiteWith(t, Options{
		Pools:       func() []Pool { return []Pool{{"pupil", 200}, {"staff", 4}, {"visitor", 50}} },
		KernelCheck: func() KernelCheck { return kc },
	})
	seed(t, s.Store)
	b := s.Browser(t, web.RoleNetwork)
	txt := text(b.Get(Path).Body)
	for _, want := range []string{
		"DHCP pool use Segment Leased Pool Used pupil 2 200 1% 1% staff 1 4 25% 25% visitor 0 50 0% 0%",
		"Kernel firewall table: not checked yet since the daemon started.",
	} {
		if !strings.Contains(txt, want) {
			t.Errorf("the overview does not say %q:\n%s", want, txt)
		}
	}
	kc = KernelCheck{At: now.Add(-time.Minute), Total: 3}
	if txt := text(b.Get(Path).Body); !strings.Contains(txt, "Kernel firewall table: in sync, last checked at 15:29 (3 repairs since the daemon started).") {
		t.Errorf("a clean check is not shown:\n%s", txt)
	}
	kc = KernelCheck{At: now.Add(-time.Minute), Repairs: 2, Total: 5}
	if txt := text(b.Get(Path).Body); !strings.Contains(txt, "last checked at 15:29: 2 differences repaired (5 repairs since the daemon started) — look at the daemon's log") {
		t.Errorf("repairs are not shown:\n%s", txt)
	}
	kc = KernelCheck{At: now.Add(-time.Minute), Err: "netlink: busy"}
	if txt := text(b.Get(Path).Body); !strings.Contains(txt, "the check at 15:29 failed: netlink: busy") {
		t.Errorf("a failed check is not shown:\n%s", txt)
	}
}

func TestOverviewLeavesOutWhatItIsNotGiven(t *testing.T) {
	s := newSite(t, nil)
	txt := text(s.Browser(t, web.RoleNetwork).Get(Path).Body)
	for _, absent := range []string{"DHCP pool use", "Kernel firewall table"} {
		if strings.Contains(txt, absent) {
			t.Errorf("the overview shows %q without its source", absent)
		}
	}
	if !strings.Contains(txt, "Disk (database): not watched.") || !strings.Contains(txt, "None in any hour.") {
		t.Errorf("an empty overview does not say so:\n%s", txt)
	}
}
