package peopleweb

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse-net/gatehouse/people"
	"github.com/gatehouse-net/gatehouse/radius/mschapv2"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
	"github.com/gatehouse-net/gatehouse/testbed/browser"
	"github.com/gatehouse-net/gatehouse/web"
)

// TestChromiumSelfServiceOnAPhone: a pupil opens the self-service page in
// Debian's chromium (headless, in the testbed's management namespace) at a
// phone's width, with JavaScript off, changes their Wi-Fi password with
// the plain form, and the new password is what MSCHAPv2 now checks.
func TestChromiumSelfServiceOnAPhone(t *testing.T) {
	chromium, s, profile := browser.Prepare(t, testbed.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	dir := t.TempDir()
	st, err := store.Open(ctx, filepath.Join(dir, "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sealer, err := people.NewNTSealer(bytes.Repeat([]byte{5}, 32))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := people.New(people.Options{Store: st, NTHashes: sealer})
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.CreatePerson(ctx, "test", store.Person{Kind: "pupil", UPN: "A100", LegalForename: "Ann", LegalSurname: "Ash",
		PreferredForename: "Ann", YearGroup: "Year 9", Username: "aash", State: store.PersonActive}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.SetWiFiPassword(ctx, "test", p.ID, "given by the office"); err != nil {
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
		"--blink-settings=scriptEnabled=false", // the form must work without JavaScript
		"--window-size=390,900")
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(tab, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	do("emulate a phone", chromedp.EmulateViewport(390, 844))
	do("open the page", chromedp.Navigate(base+SelfServicePath))
	// Nothing in the page may reach past a phone's width.
	if w, err := chromedp.Run(tab, chromedp.Evaluate[float64](`Math.max(...Array.from(document.querySelectorAll('body *')).map(e => e.getBoundingClientRect().right))`)); err != nil || w > 390 {
		t.Errorf("the page reaches %v px (%v) in a 390 px window", w, err)
	} else {
		t.Logf("widest element ends at %v px", w)
	}
	const next = "my own new password"
	do("fill the form", chromedp.SendKeys(chromedp.ID("username"), "aash"), chromedp.SendKeys(chromedp.ID("current"), "given by the office"),
		chromedp.SendKeys(chromedp.ID("new"), next), chromedp.SendKeys(chromedp.ID("again"), next))
	res, err := chromedp.RunResponse(tab, chromedp.Click(chromedp.CSS(`form button[type=submit]`)))
	if err != nil {
		t.Fatal(err)
	}
	body, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != http.StatusOK || !strings.Contains(body, "is changed") {
		t.Fatalf("submit: %d\n%s", res.Status, body)
	}
	nt, found, err := svc.NTHash(ctx, "aash")
	if err != nil || !found || nt != mschapv2.NTPasswordHash(next) {
		t.Fatalf("the NT hash is not the new password's (%v %v)", found, err)
	}
}
