package captive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/alert/finding"
	"github.com/gatehouse-net/gatehouse/alert/finding/findingtest"
	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/internal/testkit"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/store"
)

// fakeAdmitter records the portal's kernel calls and keeps the resulting
// admissions, like the enforcer's sets.
type fakeAdmitter struct {
	mu       sync.Mutex
	calls    []string
	admitted map[string]time.Time // "mac/ip" -> until
	limits   map[string]policy.Limits
	fail     error
}

func (f *fakeAdmitter) AdmitWith(_ context.Context, d policy.Device, until time.Time, l policy.Limits) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.calls = append(f.calls, fmt.Sprintf("admit %v until %s", d, until.UTC().Format("15:04")))
	f.admitted[d.String()] = until
	if f.limits == nil {
		f.limits = map[string]policy.Limits{}
	}
	f.limits[d.String()] = l
	return nil
}

func (f *fakeAdmitter) Evict(_ context.Context, d policy.Device) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("evict %v", d))
	for k := range f.admitted {
		if k == d.String() || (!d.IP.IsValid() && strings.HasPrefix(k, d.MAC.String()+"/")) {
			delete(f.admitted, k)
		}
	}
	return nil
}

func (f *fakeAdmitter) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeAdmitter) isAdmitted(mac, ip string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.admitted[mac+"/"+ip]
	return ok
}

type fakeNeighbours map[netip.Addr]net.HardwareAddr

func (f fakeNeighbours) MACFor(ip netip.Addr) (net.HardwareAddr, error) {
	if m, ok := f[ip]; ok {
		return m, nil
	}
	return nil, errors.New("not in the table")
}

type harness struct {
	t     *testing.T
	st    *store.Store
	p     *Portal
	adm   *fakeAdmitter
	nb    fakeNeighbours
	clock *testkit.Clock
	hub   *events.Hub
	sub   *events.Subscription[events.SessionStarted]
	found *findingtest.Collector
}

const portalHost = "10.40.0.1:8080"

var ht0 = time.Date(2025, 10, 6, 9, 0, 0, 0, time.UTC)

func newHarness(t *testing.T, lim Limits) *harness {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "g.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &harness{t: t, st: st, adm: &fakeAdmitter{admitted: map[string]time.Time{}}, nb: fakeNeighbours{}, clock: testkit.NewClock(ht0)}
	h.hub = events.New()
	h.sub = events.Subscribe[events.SessionStarted](h.hub, "test", 100)
	h.found = &findingtest.Collector{}
	h.p, err = New(Options{Store: st, Admitter: h.adm, Neighbours: h.nb, Hub: h.hub, Findings: h.found, Now: h.clock.Now, Location: time.UTC,
		School: "Example Primary School", SSID: "School-Guest", PortalURL: "http://" + portalHost, VenueURL: "https://school.example/visitors",
		Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// device adds a visitor device (IP -> MAC) and returns its IP.
func (h *harness) device(n int) string {
	ip := netip.AddrFrom4([4]byte{10, 40, 0, byte(n)})
	h.nb[ip] = net.HardwareAddr{0x02, 0, 0, 0, 0, byte(n)}
	return ip.String()
}

func macOf(n int) string { return net.HardwareAddr{0x02, 0, 0, 0, 0, byte(n)}.String() }

func (h *harness) do(method, host, target, ip string, form url.Values, header ...string) *http.Response {
	h.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, "http://"+host+target, body)
	r.RemoteAddr = ip + ":51234"
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.p.Handler().ServeHTTP(w, r)
	return w.Result()
}

func readBody(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (h *harness) issue(q IssueRequest) string {
	h.t.Helper()
	if q.Now.IsZero() {
		q.Now = h.clock.Now()
	}
	out, err := Issue(context.Background(), h.st, "web:frontdesk", q, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return out[0].Code
}

func (h *harness) login(ip, code string, extra ...string) *http.Response {
	h.t.Helper()
	f := url.Values{"code": {code}, "accept": {"yes"}}
	for i := 0; i+1 < len(extra); i += 2 {
		f.Set(extra[i], extra[i+1])
	}
	return h.do("POST", portalHost, "/login", ip, f)
}

var probes = []struct {
	os, host, path, ua string
	status             int
	body               string
}{
	{"apple", "captive.apple.com", "/hotspot-detect.html", "CaptiveNetworkSupport-443.4 wispr", 200, "<TITLE>Success</TITLE>"},
	{"android", "connectivitycheck.gstatic.com", "/generate_204", "Dalvik/2.1.0 (Linux; U; Android 14)", 204, ""},
	{"android google", "www.google.com", "/gen_204", "Dalvik/2.1.0 (Linux; U; Android 14)", 204, ""},
	{"windows", "www.msftconnecttest.com", "/connecttest.txt", "Microsoft NCSI", 200, "Microsoft Connect Test"},
	{"firefox", "detectportal.firefox.com", "/canonical.html", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", 200, "captive-portal"},
	{"chrome", "www.gstatic.com", "/generate_204", "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0)", 204, ""},
}

func TestProbesRedirectBeforeAdmissionAndSucceedAfter(t *testing.T) {
	h := newHarness(t, Limits{})
	ip := h.device(50)
	code := h.issue(IssueRequest{Duration: time.Hour, MaxDevices: 1})
	for _, pr := range probes {
		t.Run("before/"+pr.os, func(t *testing.T) {
			res := h.do("GET", pr.host, pr.path, ip, nil, "User-Agent", pr.ua)
			if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "http://"+portalHost+"/" {
				t.Fatalf("status %d location %q, want 302 to the portal", res.StatusCode, res.Header.Get("Location"))
			}
		})
	}
	if res := h.login(ip, code); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d %s", res.StatusCode, readBody(t, res))
	}
	for _, pr := range probes {
		t.Run("after/"+pr.os, func(t *testing.T) {
			res := h.do("GET", pr.host, pr.path, ip, nil, "User-Agent", pr.ua)
			body := readBody(t, res)
			if res.StatusCode != pr.status || !strings.Contains(body, pr.body) {
				t.Fatalf("status %d body %q, want %d with %q", res.StatusCode, body, pr.status, pr.body)
			}
		})
	}
	// Other intercepted pages of an admitted device go to its status page.
	if res := h.do("GET", "example.com", "/news", ip, nil); res.StatusCode != http.StatusFound || !strings.HasSuffix(res.Header.Get("Location"), "/status") {
		t.Fatalf("admitted device's other page: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	// A probe from a device the portal cannot identify still gets the sheet.
	if res := h.do("GET", "captive.apple.com", "/hotspot-detect.html", "10.40.0.99", nil); res.StatusCode != http.StatusFound {
		t.Fatalf("unknown device probe: %d", res.StatusCode)
	}
}

func TestLoginAdmitsUntilCodeEndAndRecordsAcceptance(t *testing.T) {
	h := newHarness(t, Limits{})
	ip := h.device(50)
	code := h.issue(IssueRequest{Duration: 2 * time.Hour, NotAfter: ht0.Add(90 * time.Minute), MaxDevices: 1})
	h.clock.Advance(10 * time.Minute)
	res := h.login(ip, strings.ToLower(strings.ReplaceAll(code, "-", " ")), "name", "Ann Visitor", "company", "Acme")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/status?lang=en" {
		t.Fatalf("login: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	want := fmt.Sprintf("admit %s/%s until 10:30", macOf(50), ip)
	if calls := h.adm.Calls(); len(calls) != 1 || calls[0] != want {
		t.Fatalf("admitter calls %q, want [%q]", calls, want)
	}
	acc, err := h.st.GuestAcceptances(context.Background(), ht0, ht0.Add(time.Hour))
	if err != nil || len(acc) != 1 {
		t.Fatalf("acceptances %+v %v", acc, err)
	}
	a := acc[0]
	if a.Name != "Ann Visitor" || a.Company != "Acme" || !a.Randomised || a.AUPVersion != AUPVersion(DefaultAUP, DefaultAUPWelsh) {
		t.Fatalf("acceptance %+v", a)
	}
	if got := h.sub.Drain(); len(got) != 1 || got[0].MAC.String() != macOf(50) || got[0].Source != events.SourcePortal || got[0].Reason != "redeemed" {
		t.Fatalf("session-started events %+v, want one for %s", got, macOf(50))
	}

	// The status page shows the time left and the end in local time.
	res = h.do("GET", portalHost, "/status", ip, nil)
	body := readBody(t, res)
	if !strings.Contains(body, "1 h 20 min") || !strings.Contains(body, "10:30, Monday 6 October 2025") || !strings.Contains(body, `action="/logout"`) {
		t.Fatalf("status page lacks time left or log out:\n%s", body)
	}
	// The API agrees.
	res = h.do("GET", portalHost, "/api/captive", ip, nil)
	var st map[string]any
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if res.Header.Get("Content-Type") != "application/captive+json" || st["captive"] != false || st["seconds-remaining"] != float64(80*60) {
		t.Fatalf("API after login: %s %v", res.Header.Get("Content-Type"), st)
	}
}

func TestAPIBeforeAdmission(t *testing.T) {
	h := newHarness(t, Limits{})
	ip := h.device(50)
	res := h.do("GET", portalHost, "/api/captive", ip, nil)
	var st map[string]any
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st["captive"] != true || st["user-portal-url"] != "http://"+portalHost+"/" || st["venue-info-url"] != "https://school.example/visitors" {
		t.Fatalf("API = %v", st)
	}
	if _, ok := st["seconds-remaining"]; ok {
		t.Fatalf("seconds-remaining before admission: %v", st)
	}
	if h.p.APIURL() != "http://"+portalHost+"/api/captive" {
		t.Fatalf("APIURL = %q", h.p.APIURL())
	}
}

func TestCodeOptionsAtThePortal(t *testing.T) {
	type step struct {
		advance time.Duration
		device  int
		want    string // "ok" or a phrase of the refusal
	}
	for _, tc := range []struct {
		name  string
		q     IssueRequest
		steps []step
	}{
		{"clock starts on issue", IssueRequest{Duration: time.Hour},
			[]step{{59 * time.Minute, 1, "ok"}, {2 * time.Minute, 2, "expired"}}},
		{"clock starts on first use", IssueRequest{Duration: time.Hour, StartOnFirstUse: true, MaxDevices: 0},
			[]step{{5 * time.Hour, 1, "ok"}, {59 * time.Minute, 2, "ok"}, {2 * time.Minute, 3, "expired"}}},
		{"not before", IssueRequest{Duration: time.Hour, StartOnFirstUse: true, NotBefore: ht0.Add(2 * time.Hour)},
			[]step{{0, 1, "cannot be used yet. It works from 11:00, Monday 6 October 2025"}, {2 * time.Hour, 1, "ok"}}},
		{"not after caps a first-use code", IssueRequest{Duration: 8 * time.Hour, StartOnFirstUse: true, NotAfter: ht0.Add(time.Hour)},
			[]step{{30 * time.Minute, 1, "ok"}, {31 * time.Minute, 1, "expired"}}},
		{"one device", IssueRequest{Duration: time.Hour, MaxDevices: 1},
			[]step{{0, 1, "ok"}, {0, 2, "as many devices as it allows (1)"}, {0, 1, "ok"}}},
		{"three devices", IssueRequest{Duration: time.Hour, MaxDevices: 3},
			[]step{{0, 1, "ok"}, {0, 2, "ok"}, {0, 3, "ok"}, {0, 4, "allows (3)"}}},
		{"unlimited devices", IssueRequest{Duration: time.Hour, MaxDevices: 0},
			[]step{{0, 1, "ok"}, {0, 2, "ok"}, {0, 3, "ok"}, {0, 4, "ok"}, {0, 5, "ok"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Limits{})
			code := h.issue(tc.q)
			for i, s := range tc.steps {
				h.clock.Advance(s.advance)
				ip := h.device(s.device)
				res := h.login(ip, code)
				body := readBody(t, res)
				if s.want == "ok" {
					if res.StatusCode != http.StatusSeeOther || !h.adm.isAdmitted(macOf(s.device), ip) {
						t.Fatalf("step %d: %d, want admission\n%s", i, res.StatusCode, body)
					}
					continue
				}
				if res.StatusCode != http.StatusForbidden || !strings.Contains(body, s.want) {
					t.Fatalf("step %d: %d, want refusal %q\n%s", i, res.StatusCode, s.want, body)
				}
			}
		})
	}
}

func TestRateAndQuotaAreStoredWithTheCode(t *testing.T) {
	h := newHarness(t, Limits{})
	out, err := Issue(context.Background(), h.st, "web:x", IssueRequest{Duration: time.Hour, RateUpBps: 1e6, RateDownBps: 4e6, QuotaBytes: 1 << 30, Note: "Governor"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := out[0].Voucher
	got, err := h.st.VoucherByID(context.Background(), v.ID)
	if err != nil || got.RateUpBps != 1e6 || got.RateDownBps != 4e6 || got.QuotaBytes != 1<<30 || got.Note != "Governor" {
		t.Fatalf("stored %+v %v", got, err)
	}
}

func TestCodeLimitsGoToTheKernelAtLoginAndRestore(t *testing.T) {
	h := newHarness(t, Limits{})
	code := h.issue(IssueRequest{Duration: time.Hour, RateUpBps: 1_000_000, RateDownBps: 4_000_000, QuotaBytes: 1 << 30})
	plain := h.issue(IssueRequest{Duration: time.Hour})
	h.login(h.device(1), code)
	h.login(h.device(2), plain)
	// The quota is the code's (voucher 1's), shared by all its devices.
	want := policy.Limits{UpBps: 125_000, DownBps: 500_000, QuotaBytes: 1 << 30, QuotaKey: "v1"}
	key := macOf(1) + "/10.40.0.1"
	if got := h.adm.limits[key]; got != want {
		t.Errorf("login admitted %s with %+v, want %+v", key, got, want)
	}
	if got := h.adm.limits[macOf(2)+"/10.40.0.2"]; got != (policy.Limits{}) {
		t.Errorf("a code without limits admitted with %+v", got)
	}
	adm := &fakeAdmitter{admitted: map[string]time.Time{}}
	p2, err := New(Options{Store: h.st, Admitter: adm, Neighbours: h.nb, Now: h.clock.Now, PortalURL: "http://" + portalHost})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p2.Restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := adm.limits[key]; got != want {
		t.Errorf("restore admitted %s with %+v, want %+v", key, got, want)
	}
}

func TestIssueChecksRequests(t *testing.T) {
	h := newHarness(t, Limits{})
	for _, tc := range []struct {
		q    IssueRequest
		want string
	}{
		{IssueRequest{}, "at least a minute"},
		{IssueRequest{Duration: 400 * 24 * time.Hour}, "at most 366 days"},
		{IssueRequest{Duration: time.Hour, Count: 501}, "1 to 500"},
		{IssueRequest{Duration: time.Hour, Count: 3}, "needs a name"},
		{IssueRequest{Duration: time.Hour, MaxDevices: -1}, "devices"},
		{IssueRequest{Duration: time.Hour, NotBefore: ht0, NotAfter: ht0}, "after"},
		{IssueRequest{Duration: time.Hour, RateDownBps: 100_000}, "at least 256 kbit/s"},
	} {
		if _, err := Issue(context.Background(), h.st, "web:x", tc.q, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Issue(%+v) = %v, want %q", tc.q, err, tc.want)
		}
	}
	out, err := Issue(context.Background(), h.st, "web:x", IssueRequest{Duration: time.Hour, Count: 500, Batch: "Sports day"}, nil)
	if err != nil || len(out) != 500 {
		t.Fatalf("batch of 500: %d %v", len(out), err)
	}
	seen := map[string]bool{}
	for _, c := range out {
		if len(c.Code) != 11 || c.Code[5] != '-' || seen[c.Code] || c.Voucher.BatchName != "Sports day" {
			t.Fatalf("issued %+v", c)
		}
		seen[c.Code] = true
	}
}

func TestReturningDeviceIsReadmittedWithoutTheSheet(t *testing.T) {
	h := newHarness(t, Limits{})
	ip := h.device(50)
	code := h.issue(IssueRequest{Duration: time.Hour})
	h.login(ip, code)
	ctx := context.Background()
	mac := h.nb[netip.MustParseAddr(ip)]

	// The lease hook, with a new address.
	ok, err := h.p.ReadmitOnLease(ctx, mac, netip.MustParseAddr("10.40.0.77"))
	if err != nil || !ok || !h.adm.isAdmitted(macOf(50), "10.40.0.77") || h.adm.isAdmitted(macOf(50), ip) {
		t.Fatalf("ReadmitOnLease = %v %v; calls %q", ok, err, h.adm.Calls())
	}
	// A device the portal never saw is not admitted.
	if ok, err := h.p.ReadmitOnLease(ctx, net.HardwareAddr{0, 1, 2, 3, 4, 5}, netip.MustParseAddr("10.40.0.78")); ok || err != nil {
		t.Fatalf("stranger readmitted: %v %v", ok, err)
	}
	// Without the hook: the device's probe from yet another address
	// re-admits it and gets the success answer, not the sheet.
	delete(h.nb, netip.MustParseAddr(ip))
	h.nb[netip.MustParseAddr("10.40.0.88")] = mac
	res := h.do("GET", "captive.apple.com", "/hotspot-detect.html", "10.40.0.88", nil)
	if res.StatusCode != 200 || !h.adm.isAdmitted(macOf(50), "10.40.0.88") {
		t.Fatalf("returning probe: %d; calls %q", res.StatusCode, h.adm.Calls())
	}
	// After expiry, the sheet again.
	h.clock.Advance(time.Hour)
	if ok, _ := h.p.ReadmitOnLease(ctx, mac, netip.MustParseAddr("10.40.0.88")); ok {
		t.Fatal("readmitted after expiry")
	}
	if res := h.do("GET", "captive.apple.com", "/hotspot-detect.html", "10.40.0.88", nil); res.StatusCode != http.StatusFound {
		t.Fatalf("probe after expiry: %d", res.StatusCode)
	}
}

func TestRevokeEvictsAndExtendReadmits(t *testing.T) {
	h := newHarness(t, Limits{})
	ctx := context.Background()
	out, err := Issue(ctx, h.st, "web:frontdesk", IssueRequest{Duration: time.Hour, MaxDevices: 2, Now: ht0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	id, code := out[0].Voucher.ID, out[0].Code
	ip1, ip2 := h.device(1), h.device(2)
	h.login(ip1, code)
	h.login(ip2, code)

	v, err := h.p.Extend(ctx, "web:frontdesk", id, 30*time.Minute)
	if err != nil || !v.Until().Equal(ht0.Add(90*time.Minute)) {
		t.Fatalf("Extend = %+v %v", v, err)
	}
	h.adm.mu.Lock()
	until := h.adm.admitted[macOf(1)+"/"+ip1]
	h.adm.mu.Unlock()
	if !until.Equal(ht0.Add(90 * time.Minute)) {
		t.Fatalf("after extend device admitted until %v; calls %q", until, h.adm.Calls())
	}

	if _, _, err := h.p.Revoke(ctx, "web:frontdesk", id); err != nil {
		t.Fatal(err)
	}
	if h.adm.isAdmitted(macOf(1), ip1) || h.adm.isAdmitted(macOf(2), ip2) {
		t.Fatalf("still admitted after revoke: %q", h.adm.Calls())
	}
	if res := h.do("GET", "connectivitycheck.gstatic.com", "/generate_204", ip1, nil); res.StatusCode != http.StatusFound {
		t.Fatalf("probe after revoke: %d", res.StatusCode)
	}
	res := h.login(ip1, code)
	if body := readBody(t, res); res.StatusCode != http.StatusForbidden || !strings.Contains(body, "cancelled") {
		t.Fatalf("login with revoked code: %d\n%s", res.StatusCode, body)
	}
}

func TestLogoutEvictsAndStopsReadmission(t *testing.T) {
	h := newHarness(t, Limits{})
	ip := h.device(50)
	code := h.issue(IssueRequest{Duration: time.Hour})
	h.login(ip, code)
	res := h.do("POST", portalHost, "/logout", ip, url.Values{"lang": {"cy"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/?out=1&lang=cy" {
		t.Fatalf("logout: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if h.adm.isAdmitted(macOf(50), ip) {
		t.Fatal("still admitted after logout")
	}
	if ok, _ := h.p.ReadmitOnLease(context.Background(), h.nb[netip.MustParseAddr(ip)], netip.MustParseAddr(ip)); ok {
		t.Fatal("readmitted after logout")
	}
	body := readBody(t, h.do("GET", portalHost, "/?out=1&lang=cy", ip, nil))
	if !strings.Contains(body, "Rydych chi wedi allgofnodi") {
		t.Fatalf("logged-out notice missing:\n%s", body)
	}
	// The same code signs the device in again.
	if res := h.login(ip, code); res.StatusCode != http.StatusSeeOther || !h.adm.isAdmitted(macOf(50), ip) {
		t.Fatalf("login again: %d", res.StatusCode)
	}
}

func TestRestoreRebuildsAdmissions(t *testing.T) {
	h := newHarness(t, Limits{})
	code := h.issue(IssueRequest{Duration: time.Hour, MaxDevices: 0})
	short := h.issue(IssueRequest{Duration: 10 * time.Minute})
	for i := 1; i <= 20; i++ {
		h.login(h.device(i), code)
	}
	h.login(h.device(21), short)
	h.clock.Advance(15 * time.Minute)
	// A new daemon: new portal, empty kernel.
	adm := &fakeAdmitter{admitted: map[string]time.Time{}}
	p2, err := New(Options{Store: h.st, Admitter: adm, Neighbours: h.nb, Now: h.clock.Now, PortalURL: "http://" + portalHost})
	if err != nil {
		t.Fatal(err)
	}
	n, err := p2.Restore(context.Background())
	if err != nil || n != 20 || len(adm.admitted) != 20 {
		t.Fatalf("Restore = %d %v, %d admitted", n, err, len(adm.admitted))
	}
	if _, ok := adm.admitted[macOf(21)+"/10.40.0.21"]; ok {
		t.Fatal("expired code's device restored")
	}
}

func TestRefusalsThatAreNotGuesses(t *testing.T) {
	h := newHarness(t, Limits{})
	ip := h.device(50)
	code := h.issue(IssueRequest{Duration: time.Hour})
	// No AUP acceptance: refused, code kept in the form, nothing logged.
	res := h.do("POST", portalHost, "/login", ip, url.Values{"code": {code}})
	body := readBody(t, res)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Tick the box") || !strings.Contains(body, `value="`+code+`"`) {
		t.Fatalf("without acceptance: %d\n%s", res.StatusCode, body)
	}
	// Unknown device.
	res = h.login("10.40.0.200", code)
	if body := readBody(t, res); res.StatusCode != http.StatusForbidden || !strings.Contains(body, "could not identify your device") {
		t.Fatalf("unknown device: %d\n%s", res.StatusCode, body)
	}
	// Admitter failure: an error page, not a fake success.
	h.adm.fail = errors.New("netlink down")
	res = h.login(ip, code)
	if body := readBody(t, res); res.StatusCode != http.StatusInternalServerError || !strings.Contains(body, "went wrong") {
		t.Fatalf("admit failure: %d\n%s", res.StatusCode, body)
	}
	as, err := h.st.VoucherAttempts(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	var outcomes []string
	for _, a := range as {
		outcomes = append(outcomes, a.Outcome)
	}
	// The code was right: its "ok" is written with the acceptance, in the
	// same transaction; the kernel's refusal that followed is its own line.
	if strings.Join(outcomes, ",") != "admit-failed,ok,unknown-device" {
		t.Fatalf("attempt log %v", outcomes)
	}
}

func TestBruteForceLimitsAndAlert(t *testing.T) {
	h := newHarness(t, Limits{SiteFailures: 12})
	ip := h.device(50)
	good := h.issue(IssueRequest{Duration: time.Hour, MaxDevices: 0})
	wrong := "ABCDE-23456"
	for i := range 5 {
		if res := h.login(ip, wrong); res.StatusCode != http.StatusForbidden {
			t.Fatalf("wrong code %d: %d", i, res.StatusCode)
		}
	}
	// The sixth try within the minute is refused even with the right code.
	res := h.login(ip, good)
	body := readBody(t, res)
	if res.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "Too many wrong codes. Wait 1 min") {
		t.Fatalf("sixth attempt: %d\n%s", res.StatusCode, body)
	}
	h.clock.Advance(time.Minute)
	if res := h.login(ip, good); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("after the lockout: %d", res.StatusCode)
	}
	// The attempt log counts every try, without the code, a row per
	// device, outcome and minute.
	as, err := h.st.VoucherAttempts(context.Background(), 100)
	if err != nil || len(as) != 3 {
		t.Fatalf("attempts %d %v", len(as), err)
	}
	if as[0].Outcome != "ok" || as[1].Outcome != "throttled" || as[2].Outcome != "invalid" || as[2].Count != 5 || as[2].MAC.String() != macOf(50) || as[2].IP.String() != ip {
		t.Fatalf("attempt log %+v", as[:3])
	}

	// Many devices failing trip the site breaker: one alert.
	for i := 100; i < 110; i++ {
		h.login(h.device(i), wrong)
	}
	var alerts int
	for _, f := range h.found.All() {
		if f.Class == finding.ClassCodeGuessing {
			alerts++
			if f.Source != finding.SourcePortal || f.SrcMAC == nil {
				t.Fatalf("code-guessing finding %+v", f)
			}
		}
	}
	if alerts != 1 {
		t.Fatalf("%d code-guessing findings, want 1", alerts)
	}
	// While tripped, a device that just tried waits even with one failure.
	ipX := h.device(120)
	h.login(ipX, wrong)
	if res := h.login(ipX, good); res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second try during the breaker: %d", res.StatusCode)
	}
}

// TestAttemptFloodFromAnUnknownDevice is the proved attack: 300 tries from
// an address with no known MAC skipped the limiter and wrote 300 rows.
func TestAttemptFloodFromAnUnknownDevice(t *testing.T) {
	h := newHarness(t, Limits{})
	code := h.issue(IssueRequest{Duration: time.Hour})
	throttled := 0
	for range 300 {
		if res := h.login("10.40.0.201", code); res.StatusCode == http.StatusTooManyRequests {
			throttled++
		}
	}
	if throttled < 290 {
		t.Errorf("%d of 300 tries from an unknown device throttled, want all after the fifth", throttled)
	}
	as, err := h.st.VoucherAttempts(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, a := range as {
		total += a.Count
	}
	if len(as) > 2 || total != 300 {
		t.Errorf("%d attempt rows counting %d tries, want at most 2 rows counting 300: %+v", len(as), total, as)
	}
}

func TestPagesAreSmallAccessibleAndBilingual(t *testing.T) {
	h := newHarness(t, Limits{})
	ip := h.device(50)
	check := func(name string, res *http.Response, lang string, wants ...string) {
		t.Helper()
		body := readBody(t, res)
		if len(body) >= 50<<10 {
			t.Errorf("%s: %d bytes, want < 50 KB", name, len(body))
		}
		if !strings.Contains(body, `<html lang="`+lang+`">`) {
			t.Errorf("%s: no lang=%q", name, lang)
		}
		if strings.Contains(body, "<script") || strings.Contains(body, "<link") || strings.Contains(body, "src=\"http") {
			t.Errorf("%s: loads something external or runs script", name)
		}
		if len(res.Cookies()) > 0 {
			t.Errorf("%s: sets cookies", name)
		}
		for _, w := range wants {
			if !strings.Contains(body, w) {
				t.Errorf("%s: missing %q", name, w)
			}
		}
	}
	check("login en", h.do("GET", portalHost, "/?code=ABCDE-23456", ip, nil), "en",
		"Example Primary School", "Acceptable Use Policy", `<label for="code">Your code</label>`, `value="ABCDE-23456"`,
		`<label for="accept">`, `<label for="name">`, `<label for="company">`, "focus-visible", `href="/?code=ABCDE-23456&amp;lang=cy"`)
	check("login cy by query", h.do("GET", portalHost, "/?lang=cy", ip, nil), "cy", "Polisi Defnydd Derbyniol", "Eich cod", "Cysylltu", "ysgol yn darparu")
	check("login cy by header", h.do("GET", portalHost, "/", ip, nil, "Accept-Language", "cy-GB,cy;q=0.9,en;q=0.5"), "cy", "Cysylltu")
	check("login en by header weight", h.do("GET", portalHost, "/", ip, nil, "Accept-Language", "cy;q=0.3,en-GB"), "en", "Connect")
	check("not found", h.do("GET", portalHost, "/nope", ip, nil), "en", "no such page")

	// A school's own AUP, long, in both languages, still under 50 KB.
	en := strings.Repeat("Use the network kindly and lawfully. ", 300)
	if _, err := h.st.SetPortalAUP(context.Background(), "web:net", AUPVersion(en+"\n\nSecond paragraph.", "Defnyddiwch y rhwydwaith yn garedig."), en+"\n\nSecond paragraph.", "Defnyddiwch y rhwydwaith yn garedig.", ht0); err != nil {
		t.Fatal(err)
	}
	check("school AUP", h.do("GET", portalHost, "/", ip, nil), "en", "Second paragraph.")
	check("school AUP cy", h.do("GET", portalHost, "/?lang=cy", ip, nil), "cy", "Defnyddiwch y rhwydwaith")

	code := h.issue(IssueRequest{Duration: time.Hour})
	h.login(ip, code, "lang", "cy")
	check("status cy", h.do("GET", portalHost, "/status?lang=cy", ip, nil), "cy", "Rydych chi wedi cysylltu", "Amser ar ôl", "1 awr 0 munud", "Allgofnodi",
		// Welsh month and day names (issue 15: the Welsh page said "6 Oct").
		"10:00, Dydd Llun 6 Hydref 2025")
	if body := readBody(t, h.do("GET", portalHost, "/status?lang=cy", ip, nil)); strings.Contains(body, "Oct") || strings.Contains(body, "Monday") {
		t.Errorf("the Welsh status page has an English month or day name")
	}
	acc, _ := h.st.GuestAcceptances(context.Background(), ht0, ht0.Add(time.Hour))
	if len(acc) != 1 || acc[0].AUPVersion != AUPVersion(en+"\n\nSecond paragraph.", "Defnyddiwch y rhwydwaith yn garedig.") {
		t.Fatalf("acceptance AUP version %+v", acc)
	}
}

func TestEveryMessageHasBothLanguages(t *testing.T) {
	for k, m := range messages {
		if m[0] == "" || m[1] == "" {
			t.Errorf("message %q lacks a language", k)
		}
		if strings.Count(m[0], "%") != strings.Count(m[1], "%") {
			t.Errorf("message %q: placeholders differ between languages", k)
		}
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	h := newHarness(t, Limits{})
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"no store", Options{Admitter: h.adm, Neighbours: h.nb, PortalURL: "http://x"}},
		{"no admitter", Options{Store: h.st, Neighbours: h.nb, PortalURL: "http://x"}},
		{"no neighbours", Options{Store: h.st, Admitter: h.adm, PortalURL: "http://x"}},
		{"bad url", Options{Store: h.st, Admitter: h.adm, Neighbours: h.nb, PortalURL: "10.40.0.1"}},
		{"url with path", Options{Store: h.st, Admitter: h.adm, Neighbours: h.nb, PortalURL: "http://10.40.0.1/portal"}},
		{"tls without cert", Options{Store: h.st, Admitter: h.adm, Neighbours: h.nb, PortalURL: "http://x", TLSListen: ":443"}},
	} {
		if _, err := New(tc.o); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

func TestPurgeRemovesOldRecordsOnly(t *testing.T) {
	h := newHarness(t, Limits{})
	ip := h.device(50)
	code := h.issue(IssueRequest{Duration: 90 * 24 * time.Hour, MaxDevices: 0})
	h.login(ip, code)
	h.clock.Advance(40 * 24 * time.Hour)
	h.login(ip, code)
	h.login(ip, "ABCDE-23456")
	if _, _, err := h.p.Purge(context.Background(), "scheduler", time.Hour); err == nil {
		t.Fatal("retention under a day accepted")
	}
	acc, att, err := h.p.Purge(context.Background(), "scheduler", 30*24*time.Hour)
	if err != nil || acc != 1 || att != 1 {
		t.Fatalf("Purge = %d %d %v", acc, att, err)
	}
	left, _ := h.st.GuestAcceptances(context.Background(), time.Time{}, h.clock.Now().Add(time.Hour))
	if len(left) != 1 || !left[0].At.Equal(h.clock.Now()) {
		t.Fatalf("left %+v", left)
	}
}

// TestFormsRefuseOtherSites: a hostile page could sign a visitor in with the
// attacker's code, or out, by posting the portal's forms.
func TestFormsRefuseOtherSites(t *testing.T) {
	h := newHarness(t, Limits{})
	ip := h.device(60)
	code := h.issue(IssueRequest{Duration: time.Hour})
	form := url.Values{"code": {code}, "accept": {"yes"}}
	for _, hdr := range [][]string{
		{"Origin", "http://evil.example"},
		{"Origin", "null"},
		{"Sec-Fetch-Site", "cross-site"},
		{"Sec-Fetch-Site", "same-site"},
	} {
		res := h.do("POST", portalHost, "/login", ip, form, hdr...)
		if body := readBody(t, res); res.StatusCode != http.StatusForbidden || !strings.Contains(body, "another site") {
			t.Errorf("login with %s: %s: %d, want 403", hdr[0], hdr[1], res.StatusCode)
		}
	}
	if h.adm.isAdmitted(macOf(60), ip) {
		t.Fatal("a cross-site post admitted the device")
	}
	res := h.do("POST", portalHost, "/login", ip, form, "Origin", "http://"+portalHost, "Sec-Fetch-Site", "same-origin")
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("same-origin login: %d, want 303", res.StatusCode)
	}
	if res := h.do("POST", portalHost, "/logout", ip, url.Values{}, "Sec-Fetch-Site", "cross-site"); res.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site logout: %d, want 403", res.StatusCode)
	}
	if !h.adm.isAdmitted(macOf(60), ip) {
		t.Error("a cross-site logout ended the admission")
	}
}

// TestCodesAreHashedWithTheSiteKeyNotTheDatabase: the code-hashing key was
// stored in the same database as the hashes, so a stolen database could be
// searched offline. With the site key, the database holds no key; codes
// printed under the old database key still work.
func TestCodesAreHashedWithTheSiteKeyNotTheDatabase(t *testing.T) {
	h := newHarness(t, Limits{})
	ctx := context.Background()
	siteKey := bytes.Repeat([]byte{7}, 32)
	codeKey := CodeKeyFrom(siteKey)

	// Before: a code under the database's key (an older version's).
	legacy := h.issue(IssueRequest{Duration: time.Hour})

	p, err := New(Options{Store: h.st, Admitter: h.adm, Neighbours: h.nb, Now: h.clock.Now, Location: time.UTC,
		School: "Example Primary School", PortalURL: "http://" + portalHost, CodeKey: codeKey})
	if err != nil {
		t.Fatal(err)
	}
	h.p = p
	out, err := Issue(ctx, h.st, "web:frontdesk", IssueRequest{Key: p.issueKey(), Duration: time.Hour, Now: h.clock.Now()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	fresh := out[0].Code
	norm, _ := NormaliseCode(fresh)
	oldKey, ok, err := h.st.LegacyVoucherKey(ctx)
	if err != nil || !ok {
		t.Fatalf("legacy key: %v %v", ok, err)
	}
	if _, err := h.st.VoucherByHash(ctx, HashCode(oldKey, norm)); err == nil {
		t.Fatal("the new code can be found with the key in the database")
	}
	if _, err := h.st.VoucherByHash(ctx, HashCode(codeKey, norm)); err != nil {
		t.Fatalf("the new code is not hashed with the site key: %v", err)
	}
	for i, code := range []string{fresh, legacy} {
		ip := h.device(70 + i)
		if res := h.login(ip, code); res.StatusCode != http.StatusSeeOther {
			t.Errorf("code %d: login %d, want 303", i, res.StatusCode)
		}
	}
}

// panicNeighbours panics for one address: a bug one request can reach.
type panicNeighbours struct {
	fakeNeighbours
	bad netip.Addr
}

func (p panicNeighbours) MACFor(ip netip.Addr) (net.HardwareAddr, error) {
	if ip == p.bad {
		panic("injected: neighbour lookup of " + ip.String())
	}
	return p.fakeNeighbours.MACFor(ip)
}

func TestAPanickingRequestIsAnswered500AndThePortalGoesOn(t *testing.T) {
	h := newHarness(t, Limits{})
	good := h.device(80)
	bad := netip.MustParseAddr("10.40.0.81")
	p, err := New(Options{Store: h.st, Admitter: h.adm, Neighbours: panicNeighbours{h.nb, bad}, Now: h.clock.Now, Location: time.UTC,
		School: "Example Primary School", PortalURL: "http://" + portalHost})
	if err != nil {
		t.Fatal(err)
	}
	h.p = p
	code := h.issue(IssueRequest{Duration: time.Hour})
	if res := h.login(bad.String(), code); res.StatusCode != http.StatusInternalServerError {
		t.Errorf("the panicking request: %d, want 500", res.StatusCode)
	}
	if p.Panics() != 1 {
		t.Errorf("panics = %d, want 1", p.Panics())
	}
	if res := h.login(good, code); res.StatusCode != http.StatusSeeOther {
		t.Errorf("the next visitor: %d, want 303", res.StatusCode)
	}
}
