package captive

import (
	"context"
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

func TestReceptionIssuesOneCodeInThreeClicks(t *testing.T) {
	a := newAdminHarness(t)
	// Click 1: the landing page links to the codes page.
	res, body := a.as("frontdesk", "GET", "/", nil)
	if res.StatusCode != 200 || !strings.Contains(body, `href="/vouchers"`) {
		t.Fatalf("landing page: %d, no link to /vouchers", res.StatusCode)
	}
	res, body = a.as("frontdesk", "GET", "/vouchers", nil)
	if res.StatusCode != 200 || !strings.Contains(body, "Issue one code") || !strings.Contains(body, `<option value="2h" selected>`) {
		t.Fatalf("codes page: %d\n%s", res.StatusCode, body)
	}
	// Click 2: the quick form as the browser submits it, defaults only.
	res, body = a.as("frontdesk", "POST", "/vouchers", url.Values{"duration": {"2h"}})
	if res.StatusCode != 200 {
		t.Fatalf("issue: %d\n%s", res.StatusCode, body)
	}
	// Click 3 is the Print button of the print page.
	for _, want := range []string{`id="print"`, "Example Primary School", "School-Guest", "data:image/png;base64,",
		"Valid for 2 hours from first use", "Acceptable Use Policy", `class="layout-slip"`, `href="/vouchers/print.css"`} {
		if !strings.Contains(body, want) {
			t.Errorf("print page lacks %q", want)
		}
	}
	if res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("print page Cache-Control %q", res.Header.Get("Cache-Control"))
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
	res, body := a.as("netman", "POST", "/vouchers", form)
	if res.StatusCode != 200 {
		t.Fatalf("batch: %d\n%s", res.StatusCode, body)
	}
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

	res, body = a.as("frontdesk", "POST", "/vouchers", url.Values{"duration": {"1h"}, "count": {"1"}, "layout": {"receipt"}, "first_use": {"yes"},
		"rate_down": {"5"}, "rate_up": {"1.5"}, "quota": {"500"}})
	if res.StatusCode != 200 || !strings.Contains(body, `class="layout-receipt"`) {
		t.Fatalf("receipt: %d\n%s", res.StatusCode, body)
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
