package peopleweb

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse-net/gatehouse/password"
	"github.com/gatehouse-net/gatehouse/people"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
	"github.com/gatehouse-net/gatehouse/testbed/browser"
	"github.com/gatehouse-net/gatehouse/web"
)

// TestChromiumCalendarOnAPhone: the network manager signs in with Debian's
// chromium (headless, a 390 px phone), opens the calendar with the sample
// year's terms, edits a term and adds a holiday with the plain forms. The
// pages carry no script at all (JavaScript stays on only because axe-core
// runs as one); each page state fits the phone and axe-core finds no
// violation on it. Then the DSL signs in and opens the limited view of a
// person a finding names, which fits and passes axe too.
func TestChromiumCalendarOnAPhone(t *testing.T) {
	chromium, s, profile := browser.Prepare(t, testbed.Options{})
	axe := browser.AxeSource(t)
	ctx, cancel := context.WithTimeout(context.Background(), 240*time.Second)
	defer cancel()

	dir := t.TempDir()
	st, err := store.Open(ctx, filepath.Join(dir, "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	loc, _ := time.LoadLocation("Europe/London")
	svc, err := people.New(people.Options{Store: st, Location: loc})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ImportTerms(ctx, "test", misFile(t, "term-dates-2026-27.csv")); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SaveHoliday(ctx, "test", store.Holiday{Name: "May Day bank holiday", StartsOn: "2027-05-03"}); err != nil {
		t.Fatal(err)
	}
	const pw = "correct horse battery"
	hash, err := password.Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateUser(ctx, "test", store.User{Name: "nm", Role: store.RoleNetwork, PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	srv, err := web.New(web.Options{Store: st, Site: "Testbed School", Auto: true,
		CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")})
	if err != nil {
		t.Fatal(err)
	}
	if err := Register(srv, svc, nil); err != nil {
		t.Fatal(err)
	}
	base := browser.Serve(t, s, "mgmt", srv.Handler())
	tab := browser.Start(t, ctx, s, "mgmt", chromium, profile,
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		"--window-size=390,900")
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(tab, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	submit := func(what, sel string) {
		t.Helper()
		res, err := chromedp.RunResponse(tab, chromedp.Click(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if res.Status != http.StatusOK {
			t.Fatalf("%s: status %d", what, res.Status)
		}
	}
	check := func(name string) {
		t.Helper()
		// No JavaScript needed: the page has none (checked before axe
		// injects its own).
		if n, err := chromedp.Run(tab, chromedp.Evaluate[int](`document.querySelectorAll('script, [onclick], [onsubmit], [onchange]').length`)); err != nil || n != 0 {
			t.Errorf("%s: %d scripts or handlers in the page (%v)", name, n, err)
		}
		doc, vp, err := browser.Widths(tab)
		if err != nil || doc > vp || vp > 390 {
			t.Errorf("%s: the page is %d px wide in a %d px window (%v)", name, doc, vp, err)
		}
		vs, err := browser.Axe(tab, axe)
		if err != nil {
			t.Fatalf("%s: axe: %v", name, err)
		}
		for _, v := range vs {
			t.Errorf("%s: %s", name, v)
		}
		t.Logf("%s: %d px in %d px, %d axe violations", name, doc, vp, len(vs))
	}
	body := func() string {
		t.Helper()
		b, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("main")))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	do("emulate a phone", chromedp.EmulateViewport(390, 844))
	do("open the sign-in page", chromedp.Navigate(base+"/login"))
	do("sign in", chromedp.SendKeys(chromedp.ID("name"), "nm"), chromedp.SendKeys(chromedp.ID("password"), pw))
	submit("sign in", `form.login button[type=submit]`)
	do("open the calendar", chromedp.Navigate(base+CalendarPath))
	if b := body(); !strings.Contains(b, "2027-07-16") || !strings.Contains(b, "May Day bank holiday") {
		t.Fatalf("the calendar page lacks the terms or the holiday:\n%s", b)
	}
	check("calendar")

	// Edit the summer term: it now ends on the 15th.
	do("open the summer term's form", chromedp.Click(chromedp.CSS(`a[href$="term=2027-04-12#term-form"]`)))
	do("wait for the form", chromedp.WaitReady(chromedp.CSS(`input[name=was][value="2027-04-12"]`)))
	check("calendar-edit-term")
	do("change the last day", chromedp.SetValue(chromedp.ID("term-ends"), "2027-07-15"))
	submit("save the term", `form.calendar button[type=submit]`)
	if b := body(); !strings.Contains(b, "Term saved.") || !strings.Contains(b, "2027-07-15") {
		t.Fatalf("after saving the term:\n%s", b)
	}
	if svc.InTerm(time.Date(2027, 7, 16, 11, 0, 0, 0, loc)) || !svc.InTerm(time.Date(2027, 7, 15, 11, 0, 0, 0, loc)) {
		t.Fatal("the edited term is not what the rules read")
	}

	// Add an INSET day with the holiday form.
	do("name the holiday", chromedp.SendKeys(chromedp.ID("holiday-name"), "INSET day"))
	do("its day", chromedp.SetValue(chromedp.ID("holiday-starts"), "2027-01-05"))
	submit("save the holiday", `#holiday-form + form button[type=submit]`)
	if b := body(); !strings.Contains(b, "Holiday saved.") || !strings.Contains(b, "INSET day") {
		t.Fatalf("after saving the holiday:\n%s", b)
	}
	if svc.InTerm(time.Date(2027, 1, 5, 11, 0, 0, 0, loc)) {
		t.Fatal("the INSET day is still term time")
	}
	check("calendar-after-changes")

	// A mistake is shown on the page, which still fits and passes axe.
	do("open the summer term's form again", chromedp.Navigate(base+CalendarPath+"?term=2027-04-12"))
	do("a half-term outside the term", chromedp.SetValue(chromedp.ID("half-starts"), "2027-08-01"), chromedp.SetValue(chromedp.ID("half-ends"), "2027-08-02"))
	if _, err := chromedp.RunResponse(tab, chromedp.Click(chromedp.CSS(`#term-form + form button[type=submit]`))); err != nil {
		t.Fatal(err)
	}
	if b := body(); !strings.Contains(b, "half-term is not inside the term") {
		t.Fatalf("the refusal is not explained:\n%s", b)
	}
	check("calendar-refused")

	// The DSL's limited view of a person a finding names, on the same
	// phone: it fits and passes axe too.
	if _, err := st.CreateUser(ctx, "test", store.User{Name: "dsl", Role: store.RoleDSL, PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	pp, err := st.CreatePerson(ctx, "test", store.Person{Kind: "pupil", UPN: "N100000000001", LegalForename: "Priya", LegalSurname: "Named",
		YearGroup: "Year 9", RegGroup: "9C", State: store.PersonActive}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	mac, _ := net.ParseMAC("02:00:00:00:09:01")
	if _, err := svc.Decide(ctx, "test", mac, store.DeviceDecision{Approved: true, Owner: "N100000000001", Name: "Priya's laptop"}); err != nil {
		t.Fatal(err)
	}
	if err := st.InsertFindings(ctx, []store.Finding{{At: time.Now(), Source: "inspect", Class: "vpn", SrcIP: netip.MustParseAddr("10.20.0.5"), SrcMAC: mac, PersonID: pp.ID}}); err != nil {
		t.Fatal(err)
	}
	submit("sign out", `form.logout button[type=submit]`)
	do("open the sign-in page", chromedp.Navigate(base+"/login"))
	do("sign in as the DSL", chromedp.SendKeys(chromedp.ID("name"), "dsl"), chromedp.SendKeys(chromedp.ID("password"), pw))
	submit("sign in as the DSL", `form.login button[type=submit]`)
	do("open the named people", chromedp.Navigate(base+NamedPath))
	if b := body(); !strings.Contains(b, "Priya Named") {
		t.Fatalf("the DSL's list:\n%s", b)
	}
	check("named")
	do("open the named person", chromedp.Navigate(fmt.Sprintf("%s%s?id=%d", base, NamedPersonPath, pp.ID)))
	if b := body(); !strings.Contains(b, "Priya's laptop") || !strings.Contains(b, "9C") {
		t.Fatalf("the DSL's view of the person:\n%s", b)
	}
	check("named-person")
}
