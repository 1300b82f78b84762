package radiusweb

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/gatehouse-net/gatehouse/password"
	"github.com/gatehouse-net/gatehouse/people"
	"github.com/gatehouse-net/gatehouse/radius"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
	"github.com/gatehouse-net/gatehouse/testbed/browser"
	"github.com/gatehouse-net/gatehouse/web"
)

// TestKeyCardInChromium: a network manager, in Debian's Chromium with
// JavaScript off, makes a personal key from the sessions page's form and
// is redirected to its card; the sessions page, the card and the card
// loaded a second time (no key, an offer to make another) have no axe-core
// violation at 1280 and 390 px and fit the phone, and printing shows the
// card without the site's header and navigation.
func TestKeyCardInChromium(t *testing.T) {
	chromium, s, profile := browser.Prepare(t, testbed.Options{})
	axe := browser.AxeSource(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
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
	mac, _ := net.ParseMAC("3c:22:fb:01:02:03")
	if err := st.ApproveDevice(ctx, "test", mac, "pupil", "Tablet 4", time.Now()); err != nil {
		t.Fatal(err)
	}
	keys, err := radius.NewKeyring(make([]byte, 32), st, []string{"Staff", "Pupils"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ppl, err := people.New(people.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := web.New(web.Options{Store: st, Site: "St Example Academy", Auto: true,
		CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")})
	if err != nil {
		t.Fatal(err)
	}
	if err := Register(srv, Options{RADIUS: &fakeRADIUS{st: st, outcome: radius.CoAAck}, Sessions: st, Keys: keys,
		Devices: st, Approver: ppl, Segments: []string{"pupil"}, SSIDs: []string{"StExample-Pupils", "StExample-Staff"}}); err != nil {
		t.Fatal(err)
	}
	base := browser.Serve(t, s, "mgmt", srv.Handler())
	tab := browser.Start(t, ctx, s, "mgmt", chromium, profile,
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--window-size=1280,900")
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(tab, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	check := func(page string) {
		t.Helper()
		for _, width := range []int64{1280, 390} {
			do("viewport", chromedp.EmulateViewport(width, 844))
			vs, err := browser.Axe(tab, axe)
			if err != nil {
				t.Fatalf("%s: axe: %v", page, err)
			}
			for _, v := range vs {
				t.Errorf("%s at %d px: axe: %s", page, width, v)
			}
			if doc, vp, err := browser.Widths(tab); err != nil || doc > vp {
				t.Errorf("%s at %d px: the document is %d px wide in a %d px viewport (%v)", page, width, doc, vp, err)
			}
		}
		do("viewport", chromedp.EmulateViewport(1280, 900))
	}

	do("sign in", chromedp.Navigate(base+"/login"), chromedp.SendKeys(chromedp.ID("name"), user), chromedp.SendKeys(chromedp.ID("password"), pass))
	if _, err := chromedp.RunResponse(tab, chromedp.Click(chromedp.CSS(`form button[type=submit]`))); err != nil {
		t.Fatal(err)
	}
	// No JavaScript from here: the form and the card need none.
	do("turn JavaScript off", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return err
	}))
	do("open the sessions page", chromedp.Navigate(base+PagePath))
	do("fill the key form", chromedp.SendKeys(chromedp.ID("keymac"), "3C-22-FB-01-02-03"), chromedp.SetValue(chromedp.ID("keyssid"), "StExample-Staff"))
	res, err := chromedp.RunResponse(tab, chromedp.Click(chromedp.CSS(`form[action="`+KeyPath+`"] button[type=submit]`)))
	if err != nil || res.Status != http.StatusOK {
		t.Fatalf("make a key: %v %v", res, err)
	}
	do("turn JavaScript back on for axe", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: false})
		return err
	}))
	shown, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS(".keycard .key")))
	if err != nil {
		t.Fatal(err)
	}
	stored, err := keys.Keys(ctx, mac)
	if err != nil || len(stored) != 1 || strings.TrimSpace(shown) != stored[0] {
		t.Fatalf("the card shows %q; stored %v %v", shown, stored, err)
	}
	if w, err := chromedp.Run(tab, chromedp.Evaluate[float64](`document.querySelector('.keycard img').naturalWidth`)); err != nil || w == 0 {
		t.Fatalf("the QR code image did not load (%v, %v)", w, err)
	}
	check("the key card")

	do("print media", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"})
		return err
	}))
	vis, err := chromedp.Run(tab, chromedp.Evaluate[[]string](`['header', 'h1', '.noprint', '.keycard'].map(s => getComputedStyle(document.querySelector(s)).display)`))
	if err != nil || len(vis) != 4 || vis[0] != "none" || vis[1] != "none" || vis[2] != "none" || vis[3] == "none" {
		t.Fatalf("printed, header/h1/notice/card display: %v (%v); want only the card", vis, err)
	}
	do("screen media", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{})
		return err
	}))
	// The card was a one-time GET after the POST: loading it again shows
	// no key, and offers a new one with a form that needs no JavaScript.
	cardURL, err := chromedp.Run(tab, chromedp.Evaluate[string](`location.href`))
	if err != nil || !strings.Contains(cardURL, KeyCardPath+"?card=") {
		t.Fatalf("the key form did not lead to the card's own address: %q %v", cardURL, err)
	}
	do("load the card again", chromedp.Navigate(cardURL))
	body, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("main")))
	if err != nil || strings.Contains(body, stored[0]) || !strings.Contains(body, "already been shown") {
		t.Fatalf("the card loaded again shows:\n%s (%v)", body, err)
	}
	if n, err := chromedp.Run(tab, chromedp.Evaluate[float64](`document.querySelectorAll('.keycard, img').length`)); err != nil || n != 0 {
		t.Fatalf("the card loaded again still has %v card or image elements (%v)", n, err)
	}
	check("the key card loaded again")
	do("back to the sessions page", chromedp.Navigate(base+PagePath))
	check("the sessions page with the key form")
}
