package captive

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
	"github.com/gatehouse-net/gatehouse/web/webtest"
)

// adminHarness is the admin shell with the captive pages, over the same
// store, clock and portal as a portal harness, with one signed-in browser
// per user.
type adminHarness struct {
	*harness
	site     *webtest.Site
	browsers map[string]*webtest.Browser // by user name
}

func newAdminHarness(t *testing.T) *adminHarness {
	t.Helper()
	h := newHarness(t, Limits{})
	site := webtest.New(t, webtest.Options{Store: h.st, Now: h.clock.Now, Site: "Example Primary School",
		Setup: func(srv *web.Server) error { return RegisterAdminPages(srv, h.p) }})
	a := &adminHarness{harness: h, site: site, browsers: map[string]*webtest.Browser{}}
	for _, u := range []struct{ name, role string }{
		{"frontdesk", store.RoleReception}, {"office", store.RoleReception}, {"netman", store.RoleNetwork}, {"dsl", store.RoleDSL},
	} {
		a.browsers[u.name] = site.SignIn(t, u.name, u.role)
	}
	return a
}

// as sends a request as user; a form gets the user's CSRF token.
func (a *adminHarness) as(user, method, target string, form url.Values) (webtest.Response, string) {
	a.t.Helper()
	b, ok := a.browsers[user]
	if !ok {
		a.t.Fatalf("no browser for %q", user)
	}
	var r webtest.Response
	switch method {
	case http.MethodGet:
		r = b.Get(target)
	case http.MethodPost:
		r = b.PostForm(target, form)
	default:
		a.t.Fatalf("as %s: method %s", user, method)
	}
	return r, r.Body
}

var printedCode = regexp.MustCompile(`<p class="code">([2-9A-Z]{5}-[2-9A-Z]{5})</p>`)

// issue posts the issue form as user and follows the redirect to the
// print page (POST, redirect, GET), returning the print page's URL and body.
func (a *adminHarness) issueAndPrint(user string, form url.Values) (string, webtest.Response) {
	a.t.Helper()
	res, body := a.as(user, "POST", "/vouchers", form)
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/vouchers/print?batch=") {
		a.t.Fatalf("issue %v: %d to %q, want 303 to the print page\n%s", form, res.StatusCode, loc, body)
	}
	pr, _ := a.as(user, "GET", loc, nil)
	if pr.StatusCode != http.StatusOK {
		a.t.Fatalf("print page %s: %d", loc, pr.StatusCode)
	}
	return loc, pr
}

// Issue 15: reception needed 4 clicks and landed on Home. It now lands on
// the codes page with "Issue one code" as its first control, and that one
// click leads to the print page, whose Print button is the second.
func TestReceptionIssuesOneCodeInTwoClicks(t *testing.T) {
	a := newAdminHarness(t)
	// Signing in lands on the codes page.
	b := a.site.NewBrowser(t)
	if got := b.Login("frontdesk", webtest.Password); got != "/vouchers" {
		t.Fatalf("reception landed on %q, want /vouchers", got)
	}
	res, body := a.as("frontdesk", "GET", "/vouchers", nil)
	if res.StatusCode != 200 || !strings.Contains(body, `<option value="2h" selected>`) {
		t.Fatalf("codes page: %d\n%s", res.StatusCode, body)
	}
	main := body[strings.Index(body, "<main>"):]
	if i := strings.Index(main, "<button"); i < 0 || !strings.HasPrefix(main[i:], `<button type="submit" class="primary">Issue one code</button>`) {
		t.Fatalf("the first button on the codes page is not \"Issue one code\":\n%s", main)
	}
	// Click 1: the quick form as the browser submits it, defaults only.
	printURL, pr := a.issueAndPrint("frontdesk", url.Values{"duration": {"2h"}})
	body = pr.Body
	res = pr
	// Click 2 is the Print button of the print page.
	for _, want := range []string{`id="print"`, "Example Primary School", "Wi-Fi network: <strong>School-Guest</strong>", "data:image/png;base64,",
		"Valid for 2 hours from first use", "Acceptable Use Policy", `class="layout-slip"`, `href="/vouchers/print.css"`,
		"<main>", "<h1>", "joins the Wi-Fi network School-Guest"} {
		if !strings.Contains(body, want) {
			t.Errorf("print page lacks %q", want)
		}
	}
	if res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("print page Cache-Control %q", res.Header.Get("Cache-Control"))
	}
	// A refresh shows the same code and issues nothing more.
	again, _ := a.as("frontdesk", "GET", printURL, nil)
	if again.Body != body {
		t.Errorf("refreshing the print page changed it")
	}
	if vs, _ := a.st.ListVouchers(context.Background(), store.VoucherFilter{}); len(vs) != 1 {
		t.Errorf("%d codes after issuing one and refreshing its print page, want 1", len(vs))
	}
	// Nobody else can open it, and it ends.
	if r, _ := a.as("office", "GET", printURL, nil); r.StatusCode != http.StatusGone || strings.Contains(r.Body, "School-Guest") {
		t.Errorf("another receptionist opened the print page: %d", r.StatusCode)
	}
	if _, list := a.as("frontdesk", "GET", "/vouchers", nil); !strings.Contains(list, `href="`+strings.ReplaceAll(printURL, "&", "&amp;")+`"`) {
		t.Errorf("the codes page offers no way to print the last batch again")
	}
	a.clock.Advance(printKeep + time.Second)
	if r, _ := a.as("frontdesk", "GET", printURL, nil); r.StatusCode != http.StatusGone {
		t.Errorf("print page after %v: %d, want 410", printKeep, r.StatusCode)
	}
	m := printedCode.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no code on the print page:\n%s", body)
	}
	code := m[1]

	// The code is never shown again, nor in the audit log.
	_, list := a.as("frontdesk", "GET", "/vouchers", nil)
	_, netList := a.as("netman", "GET", "/vouchers", nil)
	_, audit := a.as("netman", "GET", "/audit", nil)
	for name, page := range map[string]string{"reception list": list, "network list": netList, "audit": audit} {
		if strings.Contains(page, code) || strings.Contains(page, strings.ReplaceAll(code, "-", "")) {
			t.Errorf("%s shows the code in clear", name)
		}
	}
	if !strings.Contains(list, "not used yet") {
		t.Errorf("list does not show the new code:\n%s", list)
	}

	// The printed code works at the portal.
	ip := a.device(50)
	if res := a.login(ip, code); res.StatusCode != http.StatusSeeOther || !a.adm.isAdmitted(macOf(50), ip) {
		t.Fatalf("printed code at the portal: %d", res.StatusCode)
	}
}

func TestPrintLayoutsAndBatches(t *testing.T) {
	a := newAdminHarness(t)
	form := url.Values{"duration": {"8h"}, "count": {"10"}, "batch": {"Open evening"}, "devices": {"2"},
		"not_before": {"2025-10-06T17:00"}, "not_after": {"2025-10-06T21:00"}, "layout": {"sheet"}, "note": {"Parents"}}
	_, pr := a.issueAndPrint("netman", form)
	body := pr.Body
	if n := len(printedCode.FindAllString(body, -1)); n != 10 {
		t.Fatalf("%d codes printed, want 10", n)
	}
	if n := strings.Count(body, `<div class="page">`); n != 2 {
		t.Fatalf("%d sheet pages for 10 codes, want 2", n)
	}
	if !strings.Contains(body, `class="layout-sheet"`) || !strings.Contains(body, "Valid until 6 Oct 2025 21:00") ||
		!strings.Contains(body, "not before 6 Oct 2025 17:00") {
		t.Fatalf("sheet page content:\n%s", body)
	}
	vs, err := a.st.ListVouchers(context.Background(), store.VoucherFilter{})
	if err != nil || len(vs) != 10 || vs[0].BatchName != "Open evening" || vs[0].MaxDevices != 2 || vs[0].Note != "Parents" ||
		!vs[0].NotBefore.Equal(time.Date(2025, 10, 6, 17, 0, 0, 0, time.UTC)) || vs[0].StartOnFirstUse {
		t.Fatalf("stored batch %+v %v", vs[0], err)
	}

	_, pr = a.issueAndPrint("frontdesk", url.Values{"duration": {"1h"}, "count": {"1"}, "layout": {"receipt"}, "first_use": {"yes"},
		"rate_down": {"5"}, "rate_up": {"1.5"}, "quota": {"500"}})
	if !strings.Contains(pr.Body, `class="layout-receipt"`) {
		t.Fatalf("receipt:\n%s", pr.Body)
	}
	mine, _ := a.st.ListVouchers(context.Background(), store.VoucherFilter{CreatedBy: "web:frontdesk"})
	if len(mine) != 1 || mine[0].RateDownBps != 5e6 || mine[0].RateUpBps != 1.5e6 || mine[0].QuotaBytes != 500e6 {
		t.Fatalf("receipt code %+v", mine)
	}

	css, cssBody := a.as("frontdesk", "GET", "/vouchers/print.css", nil)
	if css.StatusCode != 200 || !strings.Contains(cssBody, "@page sheet { size: A4") || !strings.Contains(cssBody, "@page receipt { size: 80mm") {
		t.Fatalf("print.css: %d", css.StatusCode)
	}

	for _, bad := range []url.Values{
		{"duration": {"soon"}},
		{"duration": {"1h"}, "count": {"5"}},
		{"duration": {"1h"}, "count": {"501"}, "batch": {"x"}},
		{"duration": {"1h"}, "count": {"1"}, "not_before": {"tomorrow"}},
		{"duration": {"1h"}, "count": {"1"}, "layout": {"poster"}},
	} {
		if res, body := a.as("frontdesk", "POST", "/vouchers", bad); res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "not issued") {
			t.Errorf("bad form %v: %d", bad, res.StatusCode)
		}
	}
}

func TestReceptionSeesAndChangesOnlyOwnCodes(t *testing.T) {
	a := newAdminHarness(t)
	ctx := context.Background()
	own, err := Issue(ctx, a.st, "web:frontdesk", IssueRequest{Duration: time.Hour, Note: "own code", Now: ht0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := Issue(ctx, a.st, "web:office", IssueRequest{Duration: time.Hour, Note: "office code", Now: ht0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, body := a.as("frontdesk", "GET", "/vouchers", nil)
	if !strings.Contains(body, "own code") || strings.Contains(body, "office code") {
		t.Fatalf("reception list:\n%s", body)
	}
	_, body = a.as("netman", "GET", "/vouchers", nil)
	if !strings.Contains(body, "own code") || !strings.Contains(body, "office code") || !strings.Contains(body, "All codes") {
		t.Fatalf("network list:\n%s", body)
	}
	ip := a.device(7)
	a.login(ip, own[0].Code)

	id := func(ic []IssuedCode) string { return fmt.Sprint(ic[0].Voucher.ID) }
	if res, _ := a.as("frontdesk", "POST", "/vouchers/revoke", url.Values{"id": {id(other)}}); res.StatusCode != http.StatusNotFound {
		t.Fatalf("reception revoked another's code: %d", res.StatusCode)
	}
	if res, _ := a.as("frontdesk", "POST", "/vouchers/extend", url.Values{"id": {id(other)}, "by": {"1h"}}); res.StatusCode != http.StatusNotFound {
		t.Fatalf("reception extended another's code: %d", res.StatusCode)
	}
	res, _ := a.as("frontdesk", "POST", "/vouchers/extend", url.Values{"id": {id(own)}, "by": {"1h"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("extend own: %d", res.StatusCode)
	}
	a.adm.mu.Lock()
	until := a.adm.admitted[macOf(7)+"/"+ip]
	a.adm.mu.Unlock()
	if !until.Equal(ht0.Add(2 * time.Hour)) {
		t.Fatalf("after extend admitted until %v", until)
	}
	res, _ = a.as("frontdesk", "POST", "/vouchers/revoke", url.Values{"id": {id(own)}})
	if res.StatusCode != http.StatusSeeOther || a.adm.isAdmitted(macOf(7), ip) {
		t.Fatalf("revoke own: %d, still admitted %v", res.StatusCode, a.adm.isAdmitted(macOf(7), ip))
	}
	if res, _ := a.as("netman", "POST", "/vouchers/revoke", url.Values{"id": {id(other)}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("network revoking any code: %d", res.StatusCode)
	}
	// Without the CSRF token nothing changes.
	if r := a.browsers["frontdesk"].Post("/vouchers/revoke", url.Values{"id": {id(own)}}); r.StatusCode != http.StatusForbidden {
		t.Fatalf("revoke without CSRF: %d", r.StatusCode)
	}
}

func TestRolesOnCaptivePages(t *testing.T) {
	a := newAdminHarness(t)
	for _, tc := range []struct {
		user, path string
		want       int
	}{
		{"frontdesk", "/vouchers", 200},
		{"frontdesk", "/portal", 403},
		{"frontdesk", "/portal/acceptances.csv", 403},
		{"frontdesk", "/users", 403},
		{"frontdesk", "/audit", 403},
		{"dsl", "/vouchers", 403},
		{"dsl", "/portal", 403},
		{"netman", "/vouchers", 200},
		{"netman", "/portal", 200},
	} {
		if res, _ := a.as(tc.user, "GET", tc.path, nil); res.StatusCode != tc.want {
			t.Errorf("%s GET %s = %d, want %d", tc.user, tc.path, res.StatusCode, tc.want)
		}
	}
	// The reception's navigation offers nothing but its own pages.
	_, body := a.as("frontdesk", "GET", "/vouchers", nil)
	if strings.Contains(body, `href="/portal"`) || strings.Contains(body, `href="/users"`) {
		t.Fatalf("reception navigation shows network pages")
	}
}

func TestNetworkSetsAUPAndExportsAcceptances(t *testing.T) {
	a := newAdminHarness(t)
	res, _ := a.as("netman", "POST", "/portal", url.Values{"aup_en": {"Be kind online.\n\nNo games."}, "aup_cy": {"Byddwch yn garedig ar-lein."}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("set AUP: %d", res.StatusCode)
	}
	if res, body := a.as("netman", "POST", "/portal", url.Values{"aup_en": {""}}); res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "English text is required") {
		t.Fatalf("empty AUP: %d", res.StatusCode)
	}
	ip := a.device(9)
	portalBody := readBody(t, a.do("GET", portalHost, "/", ip, nil))
	if !strings.Contains(portalBody, "<p>No games.</p>") {
		t.Fatalf("portal does not show the new AUP:\n%s", portalBody)
	}
	code := a.issue(IssueRequest{Duration: time.Hour})
	a.login(ip, code, "name", "=HYPERLINK(\"x\")", "company", "Acme")
	a.login(ip, "ABCDE-23456")
	res, csvBody := a.as("netman", "GET", "/portal/acceptances.csv?days=7", nil)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("export: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	lines := strings.Split(strings.TrimSpace(csvBody), "\n")
	version := AUPVersion("Be kind online.\n\nNo games.", "Byddwch yn garedig ar-lein.")
	if len(lines) != 2 || !strings.Contains(lines[1], macOf(9)) || !strings.Contains(lines[1], ",true,") ||
		!strings.Contains(lines[1], version) || !strings.Contains(lines[1], `'=HYPERLINK`) {
		t.Fatalf("CSV:\n%s", csvBody)
	}
	_, page := a.as("netman", "GET", "/portal", nil)
	if !strings.Contains(page, "invalid") || !strings.Contains(page, version[:12]) {
		t.Fatalf("settings page lacks attempts or version:\n%s", page)
	}
}

// Issue 15: the batch form forgot its input on an error.
func TestRefusedBatchFormKeepsWhatWasTyped(t *testing.T) {
	a := newAdminHarness(t)
	res, body := a.as("frontdesk", "POST", "/vouchers", url.Values{"duration": {"4h"}, "count": {"25"}, "batch": {""}, "devices": {"3"},
		"not_before": {"2025-10-07T17:00"}, "note": {"Governors' meeting"}, "layout": {"sheet"}, "quota": {"200"}})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "needs a name") {
		t.Fatalf("a batch without a name: %d\n%s", res.StatusCode, body)
	}
	for _, want := range []string{`<option value="4h" selected>`, `id="count" name="count" type="number" min="1" max="500" value="25"`,
		`value="3"`, `value="2025-10-07T17:00"`, `value="Governors&#39; meeting"`, `value="sheet" checked`, `value="200"`, "<details open>"} {
		if !strings.Contains(body, want) {
			t.Errorf("the refused form lost %q", want)
		}
	}
	if strings.Contains(body, `id="first_use" name="first_use" type="checkbox" value="yes" checked`) {
		t.Errorf("the refused form ticked a box that was not ticked")
	}
}

// Issue 15: every slip printed "Wi-Fi network:" with nothing after it when
// no guest SSID was configured; the line (and the join QR code) is left out.
func TestSlipWithoutGuestSSIDLeavesTheNetworkOut(t *testing.T) {
	a := newAdminHarness(t)
	a.p.ssid = ""
	_, pr := a.issueAndPrint("frontdesk", url.Values{"duration": {"1h"}})
	if strings.Contains(pr.Body, "Wi-Fi network:") || strings.Contains(pr.Body, "joins the Wi-Fi network") {
		t.Errorf("a slip without a guest SSID still names a network:\n%s", pr.Body)
	}
	if !printedCode.MatchString(pr.Body) {
		t.Errorf("no code on the slip")
	}
}

func TestWiFiQRPayload(t *testing.T) {
	for in, want := range map[string]string{
		"School-Guest":     "WIFI:T:nopass;S:School-Guest;;",
		`Guest; "Wi-Fi":1`: `WIFI:T:nopass;S:Guest\; \"Wi-Fi\"\:1;;`,
		`a\b,c`:            `WIFI:T:nopass;S:a\\b\,c;;`,
	} {
		if got := wifiQR(in); got != want {
			t.Errorf("wifiQR(%q) = %q, want %q", in, got, want)
		}
	}
}

// Issue 15: Revoke acted on one click and said "its devices were
// disconnected" when none were. It now asks first, saying what will
// happen, and then says what did.
func TestRevokeConfirmsAndCountsRealDisconnects(t *testing.T) {
	a := newAdminHarness(t)
	ctx := context.Background()
	used, err := Issue(ctx, a.st, "web:frontdesk", IssueRequest{Duration: time.Hour, MaxDevices: 3, Now: ht0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	unused, err := Issue(ctx, a.st, "web:frontdesk", IssueRequest{Duration: time.Hour, Now: ht0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ip1, ip2 := a.device(11), a.device(12)
	a.login(ip1, used[0].Code)
	a.login(ip2, used[0].Code)
	id := fmt.Sprint(used[0].Voucher.ID)

	_, list := a.as("frontdesk", "GET", "/vouchers", nil)
	if strings.Contains(list, `action="/vouchers/revoke"`) || !strings.Contains(list, `href="/vouchers/revoke?id=`+id+`"`) {
		t.Fatalf("the list revokes on one click instead of asking first")
	}
	res, confirm := a.as("frontdesk", "GET", "/vouchers/revoke?id="+id, nil)
	if res.StatusCode != 200 || !strings.Contains(confirm, "disconnects the 2 devices signed in with it") || !strings.Contains(confirm, "Revoke code "+id+" and disconnect 2 devices") {
		t.Fatalf("confirmation: %d\n%s", res.StatusCode, confirm)
	}
	if !a.adm.isAdmitted(macOf(11), ip1) {
		t.Fatalf("opening the confirmation changed something")
	}
	res, _ = a.as("frontdesk", "POST", "/vouchers/revoke", url.Values{"id": {id}})
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || loc != "/vouchers?done=revoked&disconnected=2" {
		t.Fatalf("revoke: %d to %q", res.StatusCode, loc)
	}
	if _, page := a.as("frontdesk", "GET", "/vouchers?done=revoked&disconnected=2", nil); !strings.Contains(page, "2 devices that were signed in with it were disconnected") {
		t.Errorf("no truthful notice after revoking")
	}

	uid := fmt.Sprint(unused[0].Voucher.ID)
	if _, confirm := a.as("frontdesk", "GET", "/vouchers/revoke?id="+uid, nil); !strings.Contains(confirm, "no device is signed in with it") {
		t.Errorf("confirmation for an unused code:\n%s", confirm)
	}
	res, _ = a.as("frontdesk", "POST", "/vouchers/revoke", url.Values{"id": {uid}})
	loc := res.Header.Get("Location")
	if loc != "/vouchers?done=revoked&disconnected=0" {
		t.Fatalf("revoking an unused code went to %q", loc)
	}
	if _, page := a.as("frontdesk", "GET", loc, nil); !strings.Contains(page, "No device was signed in with it") || strings.Contains(page, "were disconnected") {
		t.Errorf("revoking an unused code claimed disconnects")
	}
	// Someone else's code: the same answer as a missing one.
	other, err := Issue(ctx, a.st, "web:office", IssueRequest{Duration: time.Hour, Now: ht0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res, _ := a.as("frontdesk", "GET", "/vouchers/revoke?id="+fmt.Sprint(other[0].Voucher.ID), nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("confirmation for another's code: %d, want 404", res.StatusCode)
	}
}

// Issue 15: codes had no CSV export. Reception exports its own codes, the
// network role everyone's; people-typed notes are formula-safe and the
// code itself is never in the file.
func TestCodesExportAsCSVPerRole(t *testing.T) {
	a := newAdminHarness(t)
	ctx := context.Background()
	own, err := Issue(ctx, a.st, "web:frontdesk", IssueRequest{Duration: 2 * time.Hour, Note: "=cmd|' /C calc'!A0", Now: ht0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Issue(ctx, a.st, "web:office", IssueRequest{Duration: time.Hour, Note: "office code", Now: ht0}, nil); err != nil {
		t.Fatal(err)
	}
	read := func(user string) [][]string {
		t.Helper()
		r, body := a.as(user, "GET", "/vouchers.csv", nil)
		if r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") ||
			!strings.Contains(r.Header.Get("Content-Disposition"), `filename="visitor-codes-`) {
			t.Fatalf("%s: export %d %q %q", user, r.StatusCode, r.Header.Get("Content-Type"), r.Header.Get("Content-Disposition"))
		}
		if strings.Contains(body, own[0].Code) {
			t.Fatalf("the export holds the code itself")
		}
		recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
		if err != nil {
			t.Fatalf("%s: not CSV: %v\n%s", user, err, body)
		}
		if recs[0][0] != "id" || recs[0][11] != "note" {
			t.Fatalf("header %q", recs[0])
		}
		return recs[1:]
	}
	fd := read("frontdesk")
	if len(fd) != 1 || fd[0][2] != "frontdesk" || fd[0][11] != "'=cmd|' /C calc'!A0" || fd[0][4] != "7200" || fd[0][10] != "not used yet" {
		t.Errorf("reception's export %q, want only its own code, its note formula-safe", fd)
	}
	if _, err := time.Parse(time.RFC3339, fd[0][1]); err != nil {
		t.Errorf("issued %q is not a local time with offset: %v", fd[0][1], err)
	}
	if nm := read("netman"); len(nm) != 2 {
		t.Errorf("the network role's export has %d codes, want both", len(nm))
	}
	if _, body := a.as("frontdesk", "GET", "/vouchers", nil); !strings.Contains(body, `href="/vouchers.csv"`) {
		t.Error("the codes page has no link to the export")
	}
	if r, _ := a.as("dsl", "GET", "/vouchers.csv", nil); r.StatusCode != http.StatusForbidden {
		t.Errorf("dsl: export %d, want 403", r.StatusCode)
	}
}
