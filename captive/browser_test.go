package captive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse-net/gatehouse/password"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
	"github.com/gatehouse-net/gatehouse/testbed/browser"
	"github.com/gatehouse-net/gatehouse/web"
)

// TestChromiumVisitorSignsInWithACodeFromReception drives Debian's
// chromium, headless, inside the testbed's visitor namespace. Reception
// signs in to the admin shell and issues a code (the slip, an A4 sheet and
// a receipt are printed to PDF); the visitor opens a plain http:// site,
// lands on the portal, accepts the AUP, types the code and then reaches the
// fake internet. Every step leaves a screenshot, and every layout a PDF, as
// test artefacts (see artefactDir).
//
// The admin shell listens on the visitor namespace's loopback, so one
// browser plays both people; nothing outside that namespace can reach it.
// Chromium resolves every host name to the fake internet's web server and
// uses no proxy, so nothing it does leaves the testbed.
func TestChromiumVisitorSignsInWithACodeFromReception(t *testing.T) {
	chromium := requireTool(t, "chromium", "chromium")
	testbed.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	art := artefactDir(t)
	// Removed after the testbed has killed chromium's last helper process
	// (cleanups run last-registered first).
	profile, err := os.MkdirTemp("", "gh-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(profile) })
	r := newKernelRig(t, ctx)

	// Reception's admin shell, with a user who signs in with a password.
	const user, pass = "frontdesk", "correct horse battery staple"
	certDir := t.TempDir()
	srv, err := web.New(web.Options{Store: r.st, Site: "Testbed School", Auto: true,
		CertFile: filepath.Join(certDir, "cert.pem"), KeyFile: filepath.Join(certDir, "key.pem")})
	if err != nil {
		t.Fatal(err)
	}
	if err := RegisterAdminPages(srv, r.p); err != nil {
		t.Fatal(err)
	}
	hash, err := password.Hash(pass)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.st.CreateUser(ctx, "cli:root", store.User{Name: user, Role: store.RoleReception, PasswordHash: hash, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	adminLn, err := r.s.Listen("visitor", "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminURL := "http://" + adminLn.Addr().String()
	adminSrv := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 5 * time.Second}
	adminDone := make(chan error, 1)
	go func() { adminDone <- adminSrv.Serve(adminLn) }()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := adminSrv.Shutdown(sctx); err != nil {
			t.Errorf("admin shell shutdown: %v", err)
		}
		if err := <-adminDone; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("admin shell: %v", err)
		}
	})

	tab := browser.Start(t, ctx, r.s, "visitor", chromium, profile,
		// Every host is the fake web server, so no lookup reaches a
		// resolver, except the portal and the admin shell (the rules map
		// addresses too).
		"--host-resolver-rules=MAP * "+testbed.WebIP+", EXCLUDE 10.40.0.1, EXCLUDE 127.0.0.1, EXCLUDE localhost",
		// A plain http:// site stays plain: a visitor's first page is
		// what the portal must catch.
		"--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable,HttpsFirstModeV2ForTypicallySecureUsers",
		"--window-size=800,900")
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
			t.Fatalf("screenshot %s is not a PNG", name)
		}
		keep(t, art, name+".png", png)
	}
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(tab, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// submit clicks a button that loads a page and returns its status.
	submit := func(what string, button chromedp.CSS) int64 {
		t.Helper()
		res, err := chromedp.RunResponse(tab, chromedp.Click(button))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return res.Status
	}
	location := func() string {
		t.Helper()
		loc, err := chromedp.Run(tab, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		return loc
	}
	text := func(sel chromedp.CSS) string {
		t.Helper()
		s, err := chromedp.Run(tab, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}

	// Reception: sign in, issue one code with the quick form.
	do("open the codes page", chromedp.Navigate(adminURL+"/vouchers"))
	if loc := location(); !strings.HasPrefix(loc, adminURL+"/login") {
		t.Fatalf("codes page without a session went to %s, want the sign-in page", loc)
	}
	do("type reception's name and password",
		chromedp.SendKeys(chromedp.ID("name"), user), chromedp.SendKeys(chromedp.ID("password"), pass))
	shot("01-reception-sign-in")
	if st := submit("sign in", chromedp.CSS(`form button[type=submit]`)); st != http.StatusOK || location() != adminURL+"/vouchers" {
		t.Fatalf("sign-in: %d at %s, want the codes page", st, location())
	}
	shot("02-reception-codes-page")
	if st := submit("issue one code", chromedp.CSS(`form[action="/vouchers"] > p > button[type=submit]`)); st != http.StatusOK {
		t.Fatalf("issuing a code: status %d", st)
	}
	shot("03-reception-slip")
	code := text(chromedp.CSS(".slip .code"))
	if !regexp.MustCompile(`^[2-9A-Z]{5}-[2-9A-Z]{5}$`).MatchString(code) {
		t.Fatalf("the slip shows %q, want a code like ABCDE-FGHJK", code)
	}
	pdfs := map[string][]byte{}
	pdfs["slip"] = printPDF(t, tab)

	// The other two layouts, through the form's "more options".
	for _, l := range []struct {
		layout, count string
	}{{"sheet", "10"}, {"receipt", "1"}} {
		do("open the codes page", chromedp.Navigate(adminURL+"/vouchers"))
		do("fill the form for a "+l.layout,
			chromedp.Click(chromedp.CSS("details > summary")),
			chromedp.SetValue(chromedp.ID("count"), l.count),
			chromedp.SendKeys(chromedp.ID("batch"), "Open evening"),
			chromedp.Click(chromedp.ID("layout_"+l.layout)))
		if l.layout == "sheet" {
			shot("04-reception-more-options")
		}
		if st := submit("issue a "+l.layout, chromedp.CSS(`details button[type=submit]`)); st != http.StatusOK {
			t.Fatalf("issuing for a %s: status %d", l.layout, st)
		}
		if got := len(regexp.MustCompile(`[2-9A-Z]{5}-[2-9A-Z]{5}`).FindAllString(text(chromedp.CSS("body")), -1)); strconv.Itoa(got) != l.count {
			t.Fatalf("%s print page shows %d codes, want %s", l.layout, got, l.count)
		}
		pdfs[l.layout] = printPDF(t, tab)
	}
	const a4W, a4H = 595.28, 841.89                  // points
	const rcW, rcH = 80 / 25.4 * 72, 110 / 25.4 * 72 // 80 mm × 110 mm, from print.css
	for _, c := range []struct {
		layout string
		w, h   float64
		pages  int
	}{{"slip", a4W, a4H, 1}, {"sheet", a4W, a4H, 2}, {"receipt", rcW, rcH, 1}} {
		b := pdfs[c.layout]
		keep(t, art, "print-"+c.layout+".pdf", b)
		boxes, err := pdfPages(b)
		if err != nil {
			t.Errorf("%s PDF: %v", c.layout, err)
			continue
		}
		if len(boxes) != c.pages {
			t.Errorf("%s PDF has %d pages, want %d", c.layout, len(boxes), c.pages)
		}
		for i, bx := range boxes {
			if !near(bx[0], c.w) || !near(bx[1], c.h) {
				t.Errorf("%s PDF page %d is %.2f × %.2f pt, want %.2f × %.2f", c.layout, i+1, bx[0], bx[1], c.w, c.h)
			}
		}
	}

	// The visitor: any plain http:// site lands on the portal.
	res, err := chromedp.Run(tab, chromedp.NavigateResponse("http://www.example.com/"))
	if err != nil {
		t.Fatalf("open http://www.example.com/: %v", err)
	}
	if loc := location(); loc != portalURL+"/" || res.Status != http.StatusOK {
		t.Fatalf("http://www.example.com/ before signing in ended at %s (%d), want the portal", loc, res.Status)
	}
	if h := text(chromedp.CSS("h1")); h != "Wi-Fi for visitors" {
		t.Fatalf("portal heading %q", h)
	}
	shot("05-portal-sign-in")
	// Typed as a visitor might: lower case, a space for the dash.
	do("type the code and accept the AUP",
		chromedp.SendKeys(chromedp.ID("code"), strings.ToLower(strings.Replace(code, "-", " ", 1))),
		chromedp.Click(chromedp.ID("accept")))
	shot("06-portal-code-typed-aup-accepted")
	if st := submit("connect", chromedp.CSS(`form[action="/login"] button[type=submit]`)); st != http.StatusOK {
		t.Fatalf("signing in: status %d", st)
	}
	if loc, h := location(), text(chromedp.CSS("h1")); !strings.HasPrefix(loc, portalURL+"/status") || h != "You are connected" {
		t.Fatalf("after signing in: %s with heading %q, want the status page", loc, h)
	}
	shot("07-portal-connected")
	if set := r.admittedSet(); !strings.Contains(set, r.visitorMAC()+" . 10.40.0.10") {
		t.Fatalf("the kernel did not admit the visitor:\n%s", set)
	}

	// And the internet.
	res, err = chromedp.Run(tab, chromedp.NavigateResponse("http://www.example.com/"))
	if err != nil {
		t.Fatalf("open http://www.example.com/ after signing in: %v", err)
	}
	body := text(chromedp.CSS("body"))
	if res.Status != http.StatusOK || location() != "http://www.example.com/" ||
		!strings.Contains(body, testbed.WebBanner) || !strings.Contains(body, "host: www.example.com") {
		t.Fatalf("after signing in http://www.example.com/ gave %d at %s:\n%s", res.Status, location(), body)
	}
	shot("08-internet")
}

// printPDF prints the current page as the browser's print dialog would,
// with the page size the print stylesheet asks for.
func printPDF(t *testing.T, tab context.Context) []byte {
	t.Helper()
	b, err := chromedp.Run(tab, chromedp.PrintToPDF(chromedp.PDFPreferCSSPageSize(), chromedp.PDFPrintBackground()))
	if err != nil {
		t.Fatalf("print to PDF: %v", err)
	}
	return b
}

var (
	pdfPage    = regexp.MustCompile(`/Type\s*/Page\b[^s]`)
	pdfMedia   = regexp.MustCompile(`/MediaBox\s*\[\s*(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s*\]`)
	pdfVersion = regexp.MustCompile(`^%PDF-1\.[0-7]`)
)

// pdfPages checks that b is a complete PDF file and returns the width and
// height in points of each page's MediaBox. Chromium writes page
// dictionaries uncompressed, one MediaBox each.
func pdfPages(b []byte) ([][2]float64, error) {
	if !pdfVersion.Match(b) {
		return nil, errors.New("no %PDF-1.x header")
	}
	if !bytes.HasSuffix(bytes.TrimRight(b, "\r\n "), []byte("%%EOF")) {
		return nil, errors.New("no %%EOF trailer: the file is cut short")
	}
	if !bytes.Contains(b, []byte("startxref")) {
		return nil, errors.New("no cross-reference offset")
	}
	pages := len(pdfPage.FindAll(b, -1))
	boxes := pdfMedia.FindAllSubmatch(b, -1)
	if pages == 0 || len(boxes) != pages {
		return nil, fmt.Errorf("%d page objects and %d media boxes", pages, len(boxes))
	}
	var out [][2]float64
	for _, m := range boxes {
		var v [4]float64
		for i := range v {
			f, err := strconv.ParseFloat(string(m[i+1]), 64)
			if err != nil {
				return nil, fmt.Errorf("media box %q: %w", m[0], err)
			}
			v[i] = f
		}
		out = append(out, [2]float64{v[2] - v[0], v[3] - v[1]})
	}
	return out, nil
}

// near compares page dimensions in points, allowing for rounding to whole
// CSS pixels.
func near(a, b float64) bool { return a-b < 1.5 && b-a < 1.5 }

// artefactDir is where a test keeps files for people to look at: the
// directory in GATEHOUSE_ARTEFACTS when set (CI uploads it), otherwise
// bin/artefacts/<test name> in the repository (bin/ is not committed),
// emptied first.
func artefactDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("GATEHOUSE_ARTEFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("artefacts: no go.mod above the test's directory")
		}
		dir = parent
	}
	d := filepath.Join(dir, "bin", "artefacts", strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.RemoveAll(d); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func keep(t *testing.T, dir, name string, b []byte) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("artefact: %s (%d bytes)", p, len(b))
}
