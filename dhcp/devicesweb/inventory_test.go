package devicesweb

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
)

// A device that only inspection saw (a static address: no lease) is listed
// with the finding's time as first seen, and its page links to its
// findings, sessions and leases.
func TestInspectedDeviceIsListedWithItsHistory(t *testing.T) {
	b := newBench(t)
	nm := b.login("nina", store.RoleNetwork)
	ctx := context.Background()
	const static = "02:42:00:00:00:07"
	first := b.now.Add(-3 * time.Hour)
	if err := b.st.InsertFindings(ctx, []store.Finding{
		{At: first, Segment: "pupil", SrcIP: netip.MustParseAddr("10.20.0.99"), SrcMAC: mustMAC(static), Class: "vpn"},
		{At: b.now.Add(-time.Hour), Segment: "pupil", SrcIP: netip.MustParseAddr("10.20.0.99"), SrcMAC: mustMAC(static), Class: "tor"},
	}); err != nil {
		t.Fatal(err)
	}
	list := b.do(nm, http.MethodGet, ListPath, nil)
	if !strings.Contains(list.Body, ">"+static+"</a>") || !strings.Contains(list.Body, "1 device matches.") {
		t.Fatalf("the inspected device is not listed: %s", list.Body)
	}
	if want := first.Local().Format("2006-01-02 15:04"); !strings.Contains(list.Body, want) {
		t.Errorf("list lacks the first-seen time %s", want)
	}
	page := b.do(nm, http.MethodGet, DevicePath+"?mac="+static, nil)
	for _, want := range []string{
		`href="/findings?device=02%3A42%3A00%3A00%3A00%3A07">2 findings</a>`,
		`href="#sessions">0 Wi-Fi sessions</a>`,
		`href="#leases">0 address leases</a>`,
		"the router never gave this device an address (inspection saw it)",
	} {
		if !strings.Contains(page.Body, want) {
			t.Errorf("device page lacks %q", want)
		}
	}
	// A lease shows up on the page too.
	if err := b.st.SaveDHCP(ctx, []store.DHCPLease{{Segment: "pupil", IP: netip.MustParseAddr("10.20.0.60"), MAC: mustMAC(static), State: "bound",
		Start: b.now, Expires: b.now.Add(time.Hour), Hostname: "lab-7"}}, nil); err != nil {
		t.Fatal(err)
	}
	page = b.do(nm, http.MethodGet, DevicePath+"?mac="+static, nil)
	if !strings.Contains(page.Body, "1 address lease</a>") || !strings.Contains(page.Body, ">10.20.0.60</td><td data-label=\"State\">bound</td>") {
		t.Errorf("device page lacks its lease: %s", page.Body)
	}
}

// The list pages through a big inventory, and the search and filters stay
// in the page links.
func TestDeviceListPagesKeepingTheFilter(t *testing.T) {
	b := newBench(t)
	nm := b.login("nina", store.RoleNetwork)
	var devs []store.Device
	for i := range PageSize + 5 {
		at := b.now.Add(-time.Duration(i) * time.Minute)
		devs = append(devs, store.Device{MAC: mustMAC(fmt.Sprintf("00:16:3e:00:%02x:%02x", i/256, i%256)), FirstSeen: at, LastSeen: at, Segment: "pupil", Hostname: "lab"})
	}
	devs = append(devs, store.Device{MAC: mustMAC("00:16:3e:ff:00:01"), FirstSeen: b.now, LastSeen: b.now, Segment: "staff", Hostname: "office"})
	if err := b.st.SaveDHCP(context.Background(), nil, devs); err != nil {
		t.Fatal(err)
	}
	p1 := b.do(nm, http.MethodGet, ListPath+"?q=lab&segment=pupil", nil)
	if n := strings.Count(p1.Body, `<a href="/devices/device?mac=`); n != PageSize {
		t.Errorf("page 1 lists %d devices, want %d", n, PageSize)
	}
	next := `href="/devices?page=2&amp;q=lab&amp;segment=pupil"`
	if !strings.Contains(p1.Body, next) || !strings.Contains(p1.Body, "Page 1 of 2") || strings.Contains(p1.Body, "00:16:3e:ff:00:01") {
		t.Fatalf("page 1 lacks %s or lists the office device", next)
	}
	p2 := b.do(nm, http.MethodGet, ListPath+"?page=2&q=lab&segment=pupil", nil)
	if n := strings.Count(p2.Body, `<a href="/devices/device?mac=`); n != 5 || !strings.Contains(p2.Body, `value="lab"`) {
		t.Errorf("page 2 lists %d devices (want 5) or lost the search", n)
	}
	if r := b.do(nm, http.MethodGet, ListPath+"?page=-1", nil); r.StatusCode != http.StatusBadRequest {
		t.Errorf("a bad page number: status %d", r.StatusCode)
	}
}

// Approving several devices asks first, saying what will happen, then
// approves each (audited) and redirects back to the list.
func TestBulkApproveConfirmsThenApproves(t *testing.T) {
	b := newBench(t)
	nm := b.login("nina", store.RoleNetwork)
	macs := []string{"00:16:3e:00:00:21", "00:16:3e:00:00:22", "00:16:3e:00:00:23"}
	for i, m := range macs {
		b.seen(m, "pupil", fmt.Sprintf("10.20.0.%d", 70+i), false, b.now)
	}
	if err := b.st.DecideDevice(context.Background(), "test", mustMAC(macs[2]), store.DeviceDecision{Approved: true}, b.now); err != nil {
		t.Fatal(err)
	}
	list := b.do(nm, http.MethodGet, ListPath+"?segment=pupil", nil)
	if strings.Count(list.Body, `type="checkbox" name="mac"`) != 2 {
		t.Errorf("want a checkbox for each of the 2 unapproved devices")
	}
	before := b.auditCount()
	ask := b.post(nm, BulkPath, url.Values{"action": {"approve"}, "mac": macs, "back": {"segment=pupil"}})
	if ask.StatusCode != http.StatusOK || !strings.Contains(ask.Body, "these 2 devices onto their segments now") ||
		!strings.Contains(ask.Body, "1 selected device is already approved") || !strings.Contains(ask.Body, "Approve 2 devices now") {
		t.Fatalf("confirmation: status %d: %s", ask.StatusCode, ask.Body)
	}
	if b.device(macs[0]).Approved || b.auditCount() != before {
		t.Fatal("the confirmation step changed something")
	}
	done := b.post(nm, BulkPath, url.Values{"action": {"approve"}, "confirm": {"yes"}, "mac": macs, "back": {"segment=pupil"}})
	if done.StatusCode != http.StatusSeeOther || done.Header.Get("Location") != "/devices?segment=pupil&approved_n=2" {
		t.Fatalf("approve: status %d, location %q", done.StatusCode, done.Header.Get("Location"))
	}
	for _, m := range macs {
		if !b.device(m).Approved {
			t.Errorf("%s not approved", m)
		}
	}
	if got := b.auditCount() - before; got != 2 {
		t.Errorf("%d audit entries, want one per approved device (2)", got)
	}
	if calls := b.calls.take(); len(calls) != 2 {
		t.Errorf("router told %v, want 2 approvals", calls)
	}
	after := b.do(nm, http.MethodGet, done.Header.Get("Location"), nil)
	if !strings.Contains(after.Body, "2 devices approved.") {
		t.Errorf("no notice after the redirect")
	}
	one := b.do(nm, http.MethodGet, ListPath+"?approved_n=1", nil)
	if !strings.Contains(one.Body, "1 device approved.") {
		t.Errorf("singular notice wrong")
	}
	if r := b.do(nm, http.MethodPost, BulkPath, url.Values{"action": {"approve"}, "mac": {macs[0]}}); r.StatusCode != http.StatusForbidden {
		t.Errorf("bulk approve without the CSRF token: status %d", r.StatusCode)
	}
}

// One device selected: the confirmation speaks of it in the singular.
func TestBulkApproveOfOneDeviceReadsAsOne(t *testing.T) {
	b := newBench(t)
	nm := b.login("nina", store.RoleNetwork)
	b.seen("00:16:3e:00:00:31", "pupil", "10.20.0.81", false, b.now)
	ask := b.post(nm, BulkPath, url.Values{"action": {"approve"}, "mac": {"00:16:3e:00:00:31"}})
	if !strings.Contains(ask.Body, "Approving lets this device onto its segment now, as if it had been approved on its own page; the approval is recorded") ||
		!strings.Contains(ask.Body, "Approve 1 device now") {
		t.Errorf("confirmation for one device:\n%s", ask.Body)
	}
}
