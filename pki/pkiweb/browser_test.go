package pkiweb

import (
	"context"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse-net/gatehouse/password"
	"github.com/gatehouse-net/gatehouse/pki"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
	"github.com/gatehouse-net/gatehouse/testbed/browser"
	"github.com/gatehouse-net/gatehouse/web"
)

// shownPassword is a PKCS#12 password as the page shows it.
var shownPassword = regexp.MustCompile(`(?m)^[a-z0-9]{5}(-[a-z0-9]{5}){3}$`)

// TestChromiumOnAPhone: Debian's chromium, at a phone's 390 px, opens the
// public onboarding page without signing in, then a network manager signs
// in, issues a certificate through the form and sees its password; no
// page's content is wider than the phone.
func TestChromiumOnAPhone(t *testing.T) {
	chromium, s, profile := browser.Prepare(t, testbed.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	dir := t.TempDir()
	st, err := store.Open(ctx, filepath.Join(dir, "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const user, pass = "nm", "correct horse battery staple"
	hash, err := password.Hash(pass)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateUser(ctx, "test", store.User{Name: user, Role: web.RoleNetwork, PasswordHash: hash, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreatePerson(ctx, "test", store.Person{Kind: "staff", StaffCode: "ADA", LegalForename: "Ada", LegalSurname: "Lovelace",
		Username: "alovelace-with-a-rather-long-username"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	a, err := pki.Open(pki.Options{Dir: pki.DirFor(filepath.Join(dir, "gatehouse.db")), ServerName: "radius.st-example-academy.school.example",
		Organization: "St Example Academy", Store: st, People: st})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := web.New(web.Options{Store: st, Site: "St Example Academy", Auto: true,
		CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")})
	if err != nil {
		t.Fatal(err)
	}
	if err := Register(srv, Options{Authority: a, People: st, Site: "St Example Academy", SSIDs: []string{"StExample-Staff", "StExample-Pupils"}}); err != nil {
		t.Fatal(err)
	}
	adminURL := browser.Serve(t, s, "mgmt", srv.Handler())

	tab := browser.Start(t, ctx, s, "mgmt", chromium, profile,
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--window-size=390,900")
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(tab, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func() string {
		t.Helper()
		s, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("body")))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	fits := func(page string) {
		t.Helper()
		w, err := chromedp.Run(tab, chromedp.Evaluate[float64](`Math.max(...Array.from(document.querySelectorAll('main *')).map(e => e.getBoundingClientRect().right))`))
		if err != nil || w > 390 {
			wide, _ := chromedp.Run(tab, chromedp.Evaluate[string](`Array.from(document.querySelectorAll('main *')).filter(e => e.getBoundingClientRect().right > 390).map(e => e.tagName + '.' + e.className).join(' ')`))
			t.Errorf("%s reaches %v px (%v) in a 390 px window: %s", page, w, err, wide)
		}
	}
	do("emulate a phone", chromedp.EmulateViewport(390, 844))

	do("open onboarding", chromedp.Navigate(adminURL+OnboardPath))
	if body := text(); !strings.Contains(body, "StExample-Pupils") || !strings.Contains(body, pki.Fingerprint(a.CA())) {
		t.Fatalf("onboarding page:\n%s", body)
	}
	fits("the onboarding page")

	do("sign in", chromedp.Navigate(adminURL+"/login"), chromedp.SendKeys(chromedp.ID("name"), user), chromedp.SendKeys(chromedp.ID("password"), pass))
	if _, err := chromedp.RunResponse(tab, chromedp.Click(chromedp.CSS(`form button[type=submit]`))); err != nil {
		t.Fatal(err)
	}
	do("open certificates", chromedp.Navigate(adminURL+CertsPath))
	do("fill the form", chromedp.SendKeys(chromedp.ID("person"), "ADA"))
	res, err := chromedp.RunResponse(tab, chromedp.Click(chromedp.CSS(`form[action="/wifi/certificates/issue"] button[type=submit]`)))
	if err != nil || res.Status != http.StatusOK {
		t.Fatalf("issue: %v %v", res, err)
	}
	body := text()
	if !strings.Contains(body, "shown only now") || !shownPassword.MatchString(body) || !strings.Contains(body, "Download alovelace-with-a-rather-long-username.p12") {
		t.Fatalf("issued page:\n%s", body)
	}
	fits("the certificate page with a new certificate")
}
