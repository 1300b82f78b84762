package pkiweb

import (
	"bytes"
	"context"
	"crypto/x509"
	"html"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/gatehouse-net/gatehouse/internal/testkit"
	"github.com/gatehouse-net/gatehouse/pki"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
	"github.com/gatehouse-net/gatehouse/web/webtest"
)

type bench struct {
	site  *webtest.Site
	st    *store.Store
	a     *pki.Authority
	p     store.Person
	clock *testkit.Clock // the pages' clock (the one-time downloads' expiry)
}

func newBench(t *testing.T) *bench {
	t.Helper()
	st := webtest.OpenStore(t)
	dir := t.TempDir()
	a, err := pki.Open(pki.Options{Dir: pki.DirFor(filepath.Join(dir, "gatehouse.db")), ServerName: "radius.school.example",
		Organization: "Test School", Store: st, People: st})
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.CreatePerson(context.Background(), "test", store.Person{Kind: "staff", StaffCode: "ADA", LegalForename: "Ada",
		LegalSurname: "Lovelace", Username: "alovelace"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b := &bench{st: st, a: a, p: p, clock: testkit.NewClock(time.Now())}
	b.site = webtest.New(t, webtest.Options{Store: st, Setup: func(srv *web.Server) error {
		return Register(srv, Options{Authority: a, People: st, Site: "Test School", SSIDs: []string{"Staff", "Pupils", "Staff & 5G"}, Now: b.clock.Now})
	}})
	return b
}

func TestOnboardingIsPublicAndCarriesNoSecrets(t *testing.T) {
	b := newBench(t)
	anon := b.site.NewBrowser(t)
	r := anon.Get(OnboardPath)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", r.StatusCode, r.Body)
	}
	for _, want := range []string{"Staff", "Pupils", "radius.school.example", pki.Fingerprint(b.a.CA()), "anonymous@school.example",
		"/wifi/school.mobileconfig", "/wifi/windows.xml?ssid=Staff", `name="viewport"`} {
		if !strings.Contains(r.Body, want) {
			t.Errorf("onboarding page lacks %q", want)
		}
	}
	if strings.Contains(r.Body, "<script") || strings.Contains(r.Body, "PRIVATE") {
		t.Fatal("onboarding page has script or a key")
	}

	ca := anon.Get(CADERPath)
	if c, err := x509.ParseCertificate([]byte(ca.Body)); err != nil || !c.Equal(b.a.CA()) {
		t.Fatalf("CA download: %v", err)
	}
	if r := anon.Get(CAPEMPath); !strings.HasPrefix(r.Body, "-----BEGIN CERTIFICATE-----") || strings.Contains(r.Body, "PRIVATE") {
		t.Fatalf("PEM download: %s", r.Body)
	}
	mc := anon.Get(MobileConfigPath)
	if mc.StatusCode != http.StatusOK || mc.Header.Get("Content-Type") != "application/x-apple-aspen-config" || !strings.Contains(mc.Body, "<string>Pupils</string>") {
		t.Fatalf("mobileconfig: %d %s", mc.StatusCode, mc.Header)
	}
	w := anon.Get(WindowsPath + "?ssid=Staff")
	if w.StatusCode != http.StatusOK || !strings.Contains(w.Body, "<name>Staff</name>") || !strings.Contains(w.Header.Get("Content-Disposition"), "wifi-Staff.xml") {
		t.Fatalf("windows: %d %s", w.StatusCode, w.Body)
	}
	// An SSID with a space and an ampersand: the page's link, followed as
	// a browser would, reaches its profile.
	link := regexp.MustCompile(`href="(/wifi/windows\.xml\?ssid=Staff[^"]*5G)"`).FindStringSubmatch(r.Body)
	if link == nil {
		t.Fatalf("no link for Staff & 5G:\n%s", r.Body)
	}
	if w := anon.Get(html.UnescapeString(link[1])); w.StatusCode != http.StatusOK || !strings.Contains(w.Body, "<name>Staff &amp; 5G</name>") {
		t.Fatalf("link %s: %d %s", link[1], w.StatusCode, w.Body)
	}
	if r := anon.Get(WindowsPath + "?ssid=Guests"); r.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown SSID: %d", r.StatusCode)
	}

	// The certificate pages are not public, and not for other roles.
	if r := anon.Get(CertsPath); r.StatusCode != http.StatusSeeOther && r.StatusCode != http.StatusFound {
		t.Fatalf("anonymous certificates page: %d", r.StatusCode)
	}
	for _, role := range []string{web.RoleReception} {
		if r := b.site.Browser(t, role).Get(CertsPath); r.StatusCode != http.StatusForbidden {
			t.Fatalf("%s: %d", role, r.StatusCode)
		}
	}
}

var (
	passwordRE = regexp.MustCompile(`<code class="secret">([a-z0-9-]{23})</code>`)
	tokenRE    = regexp.MustCompile(`name="token" value="([0-9a-f]{32})"`)
)

func TestIssueShowsThePasswordOnceAndDownloadsOnce(t *testing.T) {
	b := newBench(t)
	nm := b.site.Browser(t, web.RoleNetwork)
	if r := nm.Get(CertsPath); r.StatusCode != http.StatusOK || !strings.Contains(r.Body, pki.Fingerprint(b.a.CA())) {
		t.Fatalf("%d %s", r.StatusCode, r.Body)
	}
	// Without the CSRF token nothing is issued.
	if r := nm.Post(IssuePath, url.Values{"person": {"alovelace"}}); r.StatusCode == http.StatusOK {
		t.Fatal("issue without CSRF went through")
	}
	if list, _ := b.st.ClientCerts(context.Background(), store.ClientCertFilter{}); len(list) != 0 {
		t.Fatalf("issued without CSRF: %v", list)
	}

	r := nm.PostForm(IssuePath, url.Values{"person": {"ADA"}})
	pw, tok := passwordRE.FindStringSubmatch(r.Body), tokenRE.FindStringSubmatch(r.Body)
	if r.StatusCode != http.StatusOK || pw == nil || tok == nil || !strings.Contains(r.Body, "alovelace@school.example") {
		t.Fatalf("%d %s", r.StatusCode, r.Body)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Fatal("the password page may be cached")
	}
	// The password is not on the page afterwards.
	if r := nm.Get(CertsPath); strings.Contains(r.Body, pw[1]) || !strings.Contains(r.Body, "alovelace@school.example") {
		t.Fatal("password shown again, or the certificate not listed")
	}
	// Another network manager cannot take the download.
	other := b.site.Browser(t, web.RoleNetwork)
	if r := other.PostForm(DownloadPath, url.Values{"token": {tok[1]}}); r.StatusCode != http.StatusGone {
		t.Fatalf("someone else's download: %d", r.StatusCode)
	}
	d := nm.PostForm(DownloadPath, url.Values{"token": {tok[1]}})
	if d.StatusCode != http.StatusOK || d.Header.Get("Content-Type") != "application/x-pkcs12" || !strings.Contains(d.Header.Get("Content-Disposition"), "alovelace.p12") {
		t.Fatalf("download: %d %v", d.StatusCode, d.Header)
	}
	_, cert, chain, err := pkcs12.DecodeChain([]byte(d.Body), pw[1])
	if err != nil || len(chain) != 1 || !chain[0].Equal(b.a.CA()) {
		t.Fatalf("PKCS#12: %v", err)
	}
	if id, err := b.a.VerifyClient(context.Background(), cert); err != nil || id != "alovelace@school.example" {
		t.Fatalf("%q %v", id, err)
	}
	if r := nm.PostForm(DownloadPath, url.Values{"token": {tok[1]}}); r.StatusCode != http.StatusGone || bytes.Contains([]byte(r.Body), []byte(d.Body[:16])) {
		t.Fatalf("second download: %d", r.StatusCode)
	}
	if e := b.site.AuditWith(t, "pki.client.issue"); len(e) != 1 || !strings.Contains(e[0].Actor, nm.User.Name) {
		t.Fatalf("audit %+v", e)
	}

	// Device certificates; bad input is refused.
	if r := nm.PostForm(IssuePath, url.Values{"device": {"library-printer"}}); r.StatusCode != http.StatusOK || tokenRE.FindString(r.Body) == "" {
		t.Fatalf("device: %d", r.StatusCode)
	}
	for _, f := range []url.Values{{"device": {"no spaces please"}}, {"person": {"x"}, "device": {"y"}}, {}, {"person": {"nobody"}}} {
		if r := nm.PostForm(IssuePath, f); r.StatusCode < 400 {
			t.Errorf("%v: %d", f, r.StatusCode)
		}
	}
}

func TestRevokeNeedsCSRFAndAReasonAndStopsTheCertificate(t *testing.T) {
	b := newBench(t)
	ctx := context.Background()
	iss, err := b.a.IssueDevice(ctx, "test", "laptop-3")
	if err != nil {
		t.Fatal(err)
	}
	_, cert, _, _ := pkcs12.DecodeChain(iss.PKCS12, iss.Password)
	nm := b.site.Browser(t, web.RoleNetwork)
	serial := iss.Cert.Serial
	if r := nm.Post(RevokePath, url.Values{"serial": {serial}, "reason": {"lost"}}); r.StatusCode == http.StatusSeeOther {
		t.Fatal("revoke without CSRF")
	}
	if r := nm.PostForm(RevokePath, url.Values{"serial": {serial}}); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("no reason: %d", r.StatusCode)
	}
	if r := nm.PostForm(RevokePath, url.Values{"serial": {"zz"}, "reason": {"x"}}); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad serial: %d", r.StatusCode)
	}
	if r := nm.PostForm(RevokePath, url.Values{"serial": {"abcdef"}, "reason": {"x"}}); r.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown serial: %d", r.StatusCode)
	}
	if _, err := b.a.VerifyClient(ctx, cert); err != nil {
		t.Fatal(err)
	}
	if r := nm.PostForm(RevokePath, url.Values{"serial": {serial}, "reason": {"lost on a trip"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d %s", r.StatusCode, r.Body)
	}
	if _, err := b.a.VerifyClient(ctx, cert); err == nil {
		t.Fatal("revoked certificate still verifies")
	}
	if r := nm.PostForm(RevokePath, url.Values{"serial": {serial}, "reason": {"again"}}); r.StatusCode != http.StatusConflict {
		t.Fatalf("second revoke: %d", r.StatusCode)
	}
	if r := nm.Get(CertsPath + "?done=revoked"); !strings.Contains(r.Body, "lost on a trip") || !strings.Contains(r.Body, "no longer logs in") {
		t.Fatal("the list does not show the revocation")
	}
	if e := b.site.AuditWith(t, "pki.client.revoke"); len(e) != 1 || !strings.Contains(e[0].Actor, nm.User.Name) {
		t.Fatalf("audit %+v", e)
	}
}

func TestAnUncollectedDownloadExpires(t *testing.T) {
	b := newBench(t)
	nm := b.site.Browser(t, web.RoleNetwork)
	r := nm.PostForm(IssuePath, url.Values{"device": {"laptop-1"}})
	tok := tokenRE.FindStringSubmatch(r.Body)
	if tok == nil {
		t.Fatalf("%d %s", r.StatusCode, r.Body)
	}
	b.clock.Advance(pendingTTL + time.Second)
	if r := nm.PostForm(DownloadPath, url.Values{"token": {tok[1]}}); r.StatusCode != http.StatusGone {
		t.Fatalf("expired download: %d", r.StatusCode)
	}
}

// TestWaitingDownloadsAreBounded: the in-memory hand-over holds at most
// maxPending files; beyond that issuing says so instead of growing.
func TestWaitingDownloadsAreBounded(t *testing.T) {
	b := newBench(t)
	nm := b.site.Browser(t, web.RoleNetwork)
	for i := range maxPending {
		if r := nm.PostForm(IssuePath, url.Values{"device": {"laptop-" + strconv.Itoa(i)}}); r.StatusCode != http.StatusOK {
			t.Fatalf("issue %d: %d", i, r.StatusCode)
		}
	}
	r := nm.PostForm(IssuePath, url.Values{"device": {"one-too-many"}})
	if r.StatusCode != http.StatusServiceUnavailable || !strings.Contains(r.Body, "already waiting") {
		t.Fatalf("%d %s", r.StatusCode, r.Body)
	}
	// Once they expire there is room again.
	b.clock.Advance(pendingTTL + time.Second)
	if r := nm.PostForm(IssuePath, url.Values{"device": {"after-expiry"}}); r.StatusCode != http.StatusOK {
		t.Fatalf("after expiry: %d", r.StatusCode)
	}
}

func TestIssueAsAnAppleProfile(t *testing.T) {
	b := newBench(t)
	nm := b.site.Browser(t, web.RoleNetwork)
	r := nm.PostForm(IssuePath, url.Values{"person": {"alovelace"}})
	tok, pw := tokenRE.FindStringSubmatch(r.Body), passwordRE.FindStringSubmatch(r.Body)
	if tok == nil || pw == nil {
		t.Fatalf("%d %s", r.StatusCode, r.Body)
	}
	d := nm.PostForm(DownloadPath, url.Values{"token": {tok[1]}, "format": {"apple"}})
	if d.StatusCode != http.StatusOK || d.Header.Get("Content-Type") != "application/x-apple-aspen-config" ||
		!strings.Contains(d.Header.Get("Content-Disposition"), "alovelace.mobileconfig") ||
		!strings.Contains(d.Body, "com.apple.security.pkcs12") || strings.Contains(d.Body, pw[1]) {
		t.Fatalf("%d %v", d.StatusCode, d.Header)
	}
	// Either download uses up the hand-over.
	if r := nm.PostForm(DownloadPath, url.Values{"token": {tok[1]}, "format": {"p12"}}); r.StatusCode != http.StatusGone {
		t.Fatalf("second download: %d", r.StatusCode)
	}
}
