package devicesweb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/dhcp"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
	"github.com/gatehouse-net/gatehouse/web/webtest"
)

// The pages run over the daemon's store as it is.
var _ Store = (*store.Store)(nil)

// calls records what the hooks were told.
type calls struct {
	mu   sync.Mutex
	got  []string
	fail error // returned by every hook when set
}

func (c *calls) hook(name string) func(context.Context, store.Device) error {
	return func(_ context.Context, d store.Device) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.got = append(c.got, name+" "+d.MAC.String()+" "+d.IP.String())
		return c.fail
	}
}

// fakeDecider stores decisions as package people does and records which
// kernel change each would make, named after the device page's actions.
type fakeDecider struct {
	st    *store.Store
	calls *calls
	now   func() time.Time
}

func (f fakeDecider) Decide(ctx context.Context, actor string, mac net.HardwareAddr, dec store.DeviceDecision) (bool, error) {
	before, err := f.st.DeviceByMAC(ctx, mac)
	had := err == nil
	if err := f.st.DecideDevice(ctx, actor, mac, dec, f.now()); err != nil {
		return false, err
	}
	after, err := f.st.DeviceByMAC(ctx, mac)
	if err != nil {
		return true, err
	}
	var errs []error
	switch {
	case after.Blocked && (!had || !before.Blocked):
		errs = append(errs, f.calls.hook("block")(ctx, after))
	case !after.Blocked && had && before.Blocked:
		errs = append(errs, f.calls.hook("unblock")(ctx, after))
	case after.Approved && (!had || !before.Approved):
		errs = append(errs, f.calls.hook("approve")(ctx, after))
	case !after.Approved && had && before.Approved:
		errs = append(errs, f.calls.hook("unapprove")(ctx, after))
	}
	return true, errors.Join(errs...)
}

func (c *calls) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.got
	c.got = nil
	return out
}

type bench struct {
	t     *testing.T
	st    *store.Store
	site  *webtest.Site
	calls *calls
	now   time.Time
}

var testSegments = []dhcp.Segment{
	{Name: "staff", Interface: "gh-staff", Subnet: netip.MustParsePrefix("10.10.0.0/22"), Gateway: netip.MustParseAddr("10.10.0.1"),
		RangeStart: netip.MustParseAddr("10.10.0.50"), RangeEnd: netip.MustParseAddr("10.10.3.250"), Lease: time.Hour},
	{Name: "pupil", Interface: "gh-pupil", Subnet: netip.MustParsePrefix("10.20.0.0/21"), Gateway: netip.MustParseAddr("10.20.0.1"),
		RangeStart: netip.MustParseAddr("10.20.0.50"), RangeEnd: netip.MustParseAddr("10.20.7.250"), Lease: time.Hour},
}

func newBench(t *testing.T) *bench {
	t.Helper()
	b := &bench{t: t, st: webtest.OpenStore(t), calls: &calls{}, now: time.Now().UTC().Truncate(time.Second)}
	opts := Options{
		Segments: testSegments,
		Now:      func() time.Time { return b.now },
		Devices:  fakeDecider{st: b.st, calls: b.calls, now: func() time.Time { return b.now }},
		OnReservationsChanged: func(context.Context) error {
			b.calls.mu.Lock()
			defer b.calls.mu.Unlock()
			b.calls.got = append(b.calls.got, "reservations")
			return b.calls.fail
		},
	}
	b.site = webtest.New(t, webtest.Options{Store: b.st, Setup: func(srv *web.Server) error { return Register(srv, b.st, opts) }})
	return b
}

// login creates a user of role and signs in as them through the login
// form.
func (b *bench) login(name, role string) *webtest.Browser {
	b.t.Helper()
	return b.site.SignIn(b.t, name, role)
}

// do sends a request as s; a form goes as it is, without the CSRF token.
func (b *bench) do(s *webtest.Browser, method, path string, form url.Values) webtest.Response {
	b.t.Helper()
	if method == http.MethodGet {
		return s.Get(path)
	}
	if form == nil {
		form = url.Values{}
	}
	return s.Post(path, form)
}

// post sends a form with the session's CSRF token.
func (b *bench) post(s *webtest.Browser, path string, form url.Values) webtest.Response {
	b.t.Helper()
	return s.PostForm(path, form)
}

// seen records a DHCP sighting, as the server's store adapter would.
func (b *bench) seen(mac, segment, ip string, randomised bool, last time.Time) {
	b.t.Helper()
	err := b.st.SaveDHCP(context.Background(), nil, []store.Device{{MAC: mustMAC(mac), FirstSeen: last, LastSeen: last, Segment: segment,
		IP: netip.MustParseAddr(ip), Hostname: "host-" + mac[len(mac)-2:], OS: "Linux", Randomised: randomised}})
	if err != nil {
		b.t.Fatal(err)
	}
}

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// lastAudit returns the newest audit entry.
func (b *bench) lastAudit() store.AuditEntry { return b.site.LastAudit(b.t) }

func (b *bench) auditCount() int { return len(b.site.Audit(b.t)) }

func (b *bench) device(mac string) store.Device {
	b.t.Helper()
	d, err := b.st.DeviceByMAC(context.Background(), mustMAC(mac))
	if err != nil {
		b.t.Fatal(err)
	}
	return d
}

func TestListFilters(t *testing.T) {
	b := newBench(t)
	nm := b.login("nina", store.RoleNetwork)
	b.seen("00:16:3e:00:00:01", "staff", "10.10.0.51", false, b.now.Add(-10*time.Minute))
	b.seen("02:16:3e:00:00:02", "pupil", "10.20.0.52", true, b.now.Add(-3*time.Hour))
	b.seen("00:16:3e:00:00:03", "pupil", "10.20.0.53", false, b.now.Add(-10*24*time.Hour))
	if err := b.st.DecideDevice(context.Background(), "test", mustMAC("00:16:3e:00:00:03"), store.DeviceDecision{Approved: true}, b.now); err != nil {
		t.Fatal(err)
	}
	all := []string{"00:16:3e:00:00:01", "02:16:3e:00:00:02", "00:16:3e:00:00:03"}
	for _, tc := range []struct {
		name, query string
		want        []string
	}{
		{"no filter lists every device", "", all},
		{"segment", "?segment=pupil", all[1:]},
		{"approved", "?approved=yes", all[2:]},
		{"not approved", "?approved=no", all[:2]},
		{"randomised", "?randomised=yes", all[1:2]},
		{"not randomised on pupil", "?randomised=no&segment=pupil", all[2:]},
		{"seen in the last hour", "?seen=1h", all[:1]},
		{"seen in the last day", "?seen=24h", all[:2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := b.do(nm, http.MethodGet, ListPath+tc.query, nil)
			if rec.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", rec.StatusCode, rec.Body)
			}
			for _, m := range all {
				listed := strings.Contains(rec.Body, ">"+m+"</a>")
				want := strings.Contains(strings.Join(tc.want, " "), m)
				if listed != want {
					t.Errorf("%s listed=%v, want %v", m, listed, want)
				}
			}
		})
	}
	t.Run("a bad filter is refused and the full list shown", func(t *testing.T) {
		rec := b.do(nm, http.MethodGet, ListPath+"?segment=nosuch", nil)
		if rec.StatusCode != http.StatusBadRequest || !strings.Contains(rec.Body, "Choose a segment") {
			t.Fatalf("status %d: %s", rec.StatusCode, rec.Body)
		}
	})
	t.Run("device page shows the record", func(t *testing.T) {
		rec := b.do(nm, http.MethodGet, DevicePath+"?mac=02:16:3e:00:00:02", nil)
		if rec.StatusCode != http.StatusOK || !strings.Contains(rec.Body, "10.20.0.52") || !strings.Contains(rec.Body, "(randomised)") {
			t.Fatalf("status %d: %s", rec.StatusCode, rec.Body)
		}
		if rec := b.do(nm, http.MethodGet, DevicePath+"?mac=00:16:3e:99:99:99", nil); rec.StatusCode != http.StatusNotFound {
			t.Errorf("unknown device: status %d", rec.StatusCode)
		}
		if rec := b.do(nm, http.MethodGet, DevicePath+"?mac=nonsense", nil); rec.StatusCode != http.StatusBadRequest {
			t.Errorf("bad MAC: status %d", rec.StatusCode)
		}
	})
}

func TestNetworkManagerActionsAreAudited(t *testing.T) {
	b := newBench(t)
	nm := b.login("nina", store.RoleNetwork)
	const mac = "00:16:3e:00:00:0a"
	b.seen(mac, "staff", "10.10.0.60", false, b.now)
	for _, tc := range []struct {
		name       string
		form       url.Values
		action     string // audit action
		object     string
		after      string // in the audit's After JSON
		hook       string // hook call recorded, "" for none
		check      func(store.Device) bool
		reservedIP string // the device's reservation afterwards ("" none)
	}{
		{"approve", url.Values{"action": {"approve"}}, "device.update", "device:" + mac, `"approved":true`, "approve " + mac + " 10.10.0.60",
			func(d store.Device) bool { return d.Approved }, ""},
		{"name and owner", url.Values{"action": {"details"}, "name": {"Library printer"}, "owner": {"J. Smith"}}, "device.update", "device:" + mac,
			`"name":"Library printer","owner":"J. Smith"`, "", func(d store.Device) bool { return d.Name == "Library printer" && d.Owner == "J. Smith" && d.Approved }, ""},
		{"reserve", url.Values{"action": {"reserve"}, "segment": {"staff"}, "ip": {"10.10.1.5"}}, "dhcp.reserve", "reservation:staff/" + mac,
			`"ip":"10.10.1.5"`, "reservations", nil, "10.10.1.5"},
		{"move the reservation", url.Values{"action": {"reserve"}, "segment": {"staff"}, "ip": {"10.10.1.6"}}, "dhcp.reserve", "reservation:staff/" + mac,
			`"ip":"10.10.1.6"`, "reservations", nil, "10.10.1.6"},
		{"unreserve", url.Values{"action": {"unreserve"}, "segment": {"staff"}}, "dhcp.unreserve", "reservation:staff/" + mac,
			"", "reservations", nil, ""},
		{"block", url.Values{"action": {"block"}}, "device.update", "device:" + mac, `"blocked":true`, "block " + mac + " 10.10.0.60",
			func(d store.Device) bool { return d.Blocked && d.Name == "Library printer" }, ""},
		{"unblock", url.Values{"action": {"unblock"}}, "device.update", "device:" + mac, `"blocked":false`, "unblock " + mac + " 10.10.0.60",
			func(d store.Device) bool { return !d.Blocked }, ""},
		{"withdraw approval", url.Values{"action": {"unapprove"}}, "device.update", "device:" + mac, `"approved":false`, "unapprove " + mac + " 10.10.0.60",
			func(d store.Device) bool { return !d.Approved && d.Owner == "J. Smith" }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := b.auditCount()
			tc.form.Set("mac", mac)
			rec := b.post(nm, DevicePath, tc.form)
			if rec.StatusCode != http.StatusSeeOther || !strings.HasPrefix(rec.Header.Get("Location"), DevicePath+"?mac=") {
				t.Fatalf("status %d location %q: %s", rec.StatusCode, rec.Header.Get("Location"), rec.Body)
			}
			if n := b.auditCount(); n != before+1 {
				t.Fatalf("%d audit entries added, want 1", n-before)
			}
			e := b.lastAudit()
			if e.Actor != "web:nina" || e.Action != tc.action || e.Object != tc.object || !strings.Contains(e.After, tc.after) {
				t.Errorf("audit %+v, want %s on %s by web:nina with %s", e, tc.action, tc.object, tc.after)
			}
			got := b.calls.take()
			if tc.hook == "" && len(got) != 0 || tc.hook != "" && (len(got) != 1 || got[0] != tc.hook) {
				t.Errorf("hooks %q, want %q", got, tc.hook)
			}
			if tc.check != nil && !tc.check(b.device(mac)) {
				t.Errorf("device after %s: %+v", tc.name, b.device(mac))
			}
			rs, err := b.st.DHCPReservations(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var ip string
			for _, r := range rs {
				if r.MAC.String() == mac {
					ip = r.IP.String()
				}
			}
			if ip != tc.reservedIP {
				t.Errorf("reservation %q, want %q", ip, tc.reservedIP)
			}
			// The page after the redirect says what happened.
			if rec := b.do(nm, http.MethodGet, rec.Header.Get("Location"), nil); rec.StatusCode != http.StatusOK || !strings.Contains(rec.Body, `class="notice"`) {
				t.Errorf("page after redirect: %d %s", rec.StatusCode, rec.Body)
			}
		})
	}
	t.Run("approving an approved device changes nothing and audits nothing", func(t *testing.T) {
		b.post(nm, DevicePath, url.Values{"mac": {mac}, "action": {"approve"}})
		b.calls.take()
		before := b.auditCount()
		rec := b.post(nm, DevicePath, url.Values{"mac": {mac}, "action": {"approve"}})
		if rec.StatusCode != http.StatusSeeOther || b.auditCount() != before || len(b.calls.take()) != 0 {
			t.Fatalf("status %d, audit %d->%d", rec.StatusCode, before, b.auditCount())
		}
	})
	t.Run("record a device ahead of its arrival", func(t *testing.T) {
		before := b.auditCount()
		rec := b.post(nm, ListPath, url.Values{"mac": {"00-16-3E-00-00-0B"}, "name": {"Hall printer"}, "approved": {"yes"}})
		if rec.StatusCode != http.StatusSeeOther {
			t.Fatalf("status %d: %s", rec.StatusCode, rec.Body)
		}
		d := b.device("00:16:3e:00:00:0b")
		if !d.Approved || d.Name != "Hall printer" || b.auditCount() != before+1 || b.lastAudit().Action != "device.update" {
			t.Errorf("device %+v, audit %+v", d, b.lastAudit())
		}
		if got := b.calls.take(); len(got) != 1 || !strings.HasPrefix(got[0], "approve 00:16:3e:00:00:0b") {
			t.Errorf("hooks %q", got)
		}
		if rec := b.post(nm, ListPath, url.Values{"mac": {"00:16:3e:00:00:0b"}}); rec.StatusCode != http.StatusConflict {
			t.Errorf("recording it twice: status %d", rec.StatusCode)
		}
	})
}

func TestBadInputIsRefusedWithoutChange(t *testing.T) {
	b := newBench(t)
	nm := b.login("nina", store.RoleNetwork)
	const mac, other = "00:16:3e:00:00:0a", "00:16:3e:00:00:0c"
	b.seen(mac, "staff", "10.10.0.60", false, b.now)
	b.seen(other, "staff", "10.10.0.61", false, b.now)
	if err := b.st.ReserveAddress(context.Background(), "test", store.DHCPReservation{Segment: "staff", MAC: mustMAC(other), IP: netip.MustParseAddr("10.10.1.9")}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		path   string
		form   url.Values
		status int
	}{
		{"reserve outside the subnet", DevicePath, url.Values{"mac": {mac}, "action": {"reserve"}, "segment": {"staff"}, "ip": {"10.20.0.9"}}, http.StatusBadRequest},
		{"reserve the gateway", DevicePath, url.Values{"mac": {mac}, "action": {"reserve"}, "segment": {"staff"}, "ip": {"10.10.0.1"}}, http.StatusBadRequest},
		{"reserve the broadcast", DevicePath, url.Values{"mac": {mac}, "action": {"reserve"}, "segment": {"staff"}, "ip": {"10.10.3.255"}}, http.StatusBadRequest},
		{"reserve on an unknown segment", DevicePath, url.Values{"mac": {mac}, "action": {"reserve"}, "segment": {"lab"}, "ip": {"10.10.1.9"}}, http.StatusBadRequest},
		{"reserve nonsense", DevicePath, url.Values{"mac": {mac}, "action": {"reserve"}, "segment": {"staff"}, "ip": {"ten"}}, http.StatusBadRequest},
		{"reserve another device's address", DevicePath, url.Values{"mac": {mac}, "action": {"reserve"}, "segment": {"staff"}, "ip": {"10.10.1.9"}}, http.StatusConflict},
		{"unreserve without a reservation", DevicePath, url.Values{"mac": {mac}, "action": {"unreserve"}, "segment": {"staff"}}, http.StatusNotFound},
		{"unknown action", DevicePath, url.Values{"mac": {mac}, "action": {"delete"}}, http.StatusBadRequest},
		{"control characters in a name", DevicePath, url.Values{"mac": {mac}, "action": {"details"}, "name": {"a\x00b"}}, http.StatusBadRequest},
		{"an overlong owner", DevicePath, url.Values{"mac": {mac}, "action": {"details"}, "owner": {strings.Repeat("x", 101)}}, http.StatusBadRequest},
		{"unknown device", DevicePath, url.Values{"mac": {"00:16:3e:99:99:99"}, "action": {"approve"}}, http.StatusNotFound},
		{"bad MAC when recording", ListPath, url.Values{"mac": {"00:16:3e:00:00"}}, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := b.auditCount()
			rec := b.post(nm, tc.path, tc.form)
			if rec.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.StatusCode, tc.status, rec.Body)
			}
			if b.auditCount() != before || len(b.calls.take()) != 0 {
				t.Errorf("a refused change was audited or applied")
			}
		})
	}
}

func TestOtherRolesAndMissingCSRFAreRefused(t *testing.T) {
	b := newBench(t)
	const mac = "00:16:3e:00:00:0a"
	b.seen(mac, "staff", "10.10.0.60", false, b.now)
	nm := b.login("nina", store.RoleNetwork)
	for _, role := range []string{store.RoleReception, store.RoleDSL} {
		s := b.login("u-"+role, role)
		t.Run(role, func(t *testing.T) {
			for _, tc := range []struct {
				method, path string
				form         url.Values
			}{
				{http.MethodGet, ListPath, nil},
				{http.MethodGet, DevicePath + "?mac=" + mac, nil},
				{http.MethodPost, ListPath, url.Values{"mac": {"00:16:3e:00:00:0d"}, "approved": {"yes"}}},
				{http.MethodPost, DevicePath, url.Values{"mac": {mac}, "action": {"approve"}}},
				{http.MethodPost, DevicePath, url.Values{"mac": {mac}, "action": {"reserve"}, "segment": {"staff"}, "ip": {"10.10.1.5"}}},
			} {
				before := b.auditCount()
				var rec webtest.Response
				if tc.form == nil {
					rec = b.do(s, tc.method, tc.path, nil)
				} else {
					rec = b.post(s, tc.path, tc.form)
				}
				if rec.StatusCode != http.StatusForbidden {
					t.Errorf("%s %s: status %d, want 403", tc.method, tc.path, rec.StatusCode)
				}
				if b.auditCount() != before {
					t.Errorf("%s %s: audited", tc.method, tc.path)
				}
			}
			if strings.Contains(b.do(s, http.MethodGet, "/", nil).Body, `href="/devices"`) {
				t.Errorf("the navigation offers Devices to %s", role)
			}
		})
	}
	t.Run("network role without the CSRF token", func(t *testing.T) {
		before := b.auditCount()
		for _, f := range []url.Values{
			{"mac": {mac}, "action": {"approve"}},
			{"mac": {mac}, "action": {"approve"}, "csrf": {"wrong"}},
		} {
			if rec := b.do(nm, http.MethodPost, DevicePath, f); rec.StatusCode != http.StatusForbidden {
				t.Errorf("form %v: status %d, want 403", f, rec.StatusCode)
			}
		}
		if rec := b.do(nm, http.MethodPost, ListPath, url.Values{"mac": {"00:16:3e:00:00:0d"}}); rec.StatusCode != http.StatusForbidden {
			t.Errorf("record without token: status %d, want 403", rec.StatusCode)
		}
		if b.auditCount() != before || b.device(mac).Approved || len(b.calls.take()) != 0 {
			t.Errorf("a forged form changed something")
		}
	})
	t.Run("the network role sees Devices in the navigation", func(t *testing.T) {
		if !strings.Contains(b.do(nm, http.MethodGet, "/", nil).Body, `href="/devices"`) {
			t.Errorf("no Devices link")
		}
	})
}

func TestHookFailureKeepsTheChangeAndSaysSo(t *testing.T) {
	b := newBench(t)
	nm := b.login("nina", store.RoleNetwork)
	const mac = "00:16:3e:00:00:0a"
	b.seen(mac, "staff", "10.10.0.60", false, b.now)
	b.calls.fail = errors.New("netlink: operation not permitted")
	rec := b.post(nm, DevicePath, url.Values{"mac": {mac}, "action": {"approve"}})
	if rec.StatusCode != http.StatusInternalServerError || !strings.Contains(rec.Body, "operation not permitted") {
		t.Fatalf("status %d: %s", rec.StatusCode, rec.Body)
	}
	if !b.device(mac).Approved || b.lastAudit().Action != "device.update" {
		t.Errorf("the approval was not kept")
	}
	rec = b.post(nm, DevicePath, url.Values{"mac": {mac}, "action": {"reserve"}, "segment": {"staff"}, "ip": {"10.10.1.5"}})
	if rec.StatusCode != http.StatusInternalServerError || b.lastAudit().Action != "dhcp.reserve" {
		t.Fatalf("status %d, audit %+v", rec.StatusCode, b.lastAudit())
	}
}

func TestReservable(t *testing.T) {
	seg := testSegments[0]
	for ip, ok := range map[string]bool{
		"10.10.0.0": false, "10.10.0.1": false, "10.10.3.255": false, "10.9.255.255": false, "10.10.4.0": false,
		"10.10.0.2": true, "10.10.3.254": true, "10.10.1.0": true,
	} {
		if got := reservable(seg, netip.MustParseAddr(ip)) == ""; got != ok {
			t.Errorf("reservable(%s) = %v, want %v", ip, got, ok)
		}
	}
}

// Block is behind a confirmation that says what it will do, and the page
// after it says truthfully what happened (issue 15: Block acted on one
// click with no word of what it does).
func TestBlockAsksFirstAndSaysWhatHappened(t *testing.T) {
	b := newBench(t)
	nm := b.login("nina", store.RoleNetwork)
	const mac = "00:16:3e:00:00:0b"
	b.seen(mac, "staff", "10.10.0.61", false, b.now)
	page := b.do(nm, http.MethodGet, DevicePath+"?mac="+mac, nil).Body
	confirm := regexp.MustCompile(`(?s)<details class="confirm"><summary>Block…</summary>(.*?)</details>`).FindStringSubmatch(page)
	if confirm == nil {
		t.Fatalf("no Block… confirmation on the device page:\n%s", page)
	}
	if !strings.Contains(confirm[1], "it gets no address from the router") || !strings.Contains(confirm[1], `value="block"`) {
		t.Errorf("the confirmation does not say what blocking does, or holds no block button:\n%s", confirm[1])
	}
	// The only block button is the one inside the confirmation.
	if n := strings.Count(page, `value="block"`); n != 1 {
		t.Errorf("%d block buttons on the page, want the one inside the confirmation", n)
	}
	if b.device(mac).Blocked {
		t.Fatal("the device is blocked before anyone confirmed")
	}

	rec := b.post(nm, DevicePath, url.Values{"mac": {mac}, "action": {"block"}})
	if rec.StatusCode != http.StatusSeeOther {
		t.Fatalf("block: %d %s", rec.StatusCode, rec.Body)
	}
	if !b.device(mac).Blocked {
		t.Fatal("the device is not blocked after the confirmed block")
	}
	after := b.do(nm, http.MethodGet, rec.Header.Get("Location"), nil)
	notice := regexp.MustCompile(`class="notice"[^>]*>([^<]*)<`).FindStringSubmatch(after.Body)
	if after.StatusCode != http.StatusOK || notice == nil || notice[1] != "Device blocked: it gets no address on any segment." {
		t.Errorf("after blocking: %d, notice %q", after.StatusCode, notice)
	}
	if strings.Contains(after.Body, `value="block"`) || !strings.Contains(after.Body, `value="unblock"`) ||
		!strings.Contains(after.Body, "<th>Status</th><td>blocked</td>") {
		t.Errorf("the page after blocking does not show a blocked device with Lift block:\n%s", after.Body)
	}
	// A refresh of the page after is a GET: it blocks nothing again.
	before := b.auditCount()
	b.do(nm, http.MethodGet, rec.Header.Get("Location"), nil)
	if n := b.auditCount(); n != before {
		t.Errorf("refreshing the page after Block wrote %d audit entries", n-before)
	}
}

// unconfirmedDisconnect is package people's SessionNotEndedError as the
// page knows it: by its method.
type unconfirmedDisconnect struct{}

func (unconfirmedDisconnect) Error() string {
	return "the access point did not confirm ending the device's session: disconnect: timeout"
}
func (unconfirmedDisconnect) SessionNotEnded() {}

// TestUnconfirmedDisconnectSaysTheDeviceIsCutOff: a block the router
// applied but whose Disconnect the access point did not acknowledge is
// reported as that, not as a change that waits for a restart (which would
// not resend the Disconnect).
func TestUnconfirmedDisconnectSaysTheDeviceIsCutOff(t *testing.T) {
	b := newBench(t)
	nm := b.login("nina", store.RoleNetwork)
	const mac = "00:16:3e:00:00:0b"
	b.seen(mac, "staff", "10.10.0.61", false, b.now)
	b.calls.fail = fmt.Errorf("disconnect %s: %w", mac, unconfirmedDisconnect{})
	rec := b.post(nm, DevicePath, url.Values{"mac": {mac}, "action": {"block"}})
	if rec.StatusCode != http.StatusBadGateway || !strings.Contains(rec.Body, "the router has cut the device off") ||
		!strings.Contains(rec.Body, "did not confirm") || !strings.Contains(rec.Body, NASPage) || strings.Contains(rec.Body, "applies when the daemon restarts") {
		t.Fatalf("status %d: %s", rec.StatusCode, rec.Body)
	}
	if !b.device(mac).Blocked {
		t.Errorf("the block was not kept")
	}
}
