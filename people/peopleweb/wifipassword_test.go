package peopleweb

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/password"
	"github.com/gatehouse-net/gatehouse/people"
	"github.com/gatehouse-net/gatehouse/radius/mschapv2"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
	"github.com/gatehouse-net/gatehouse/web/webtest"
)

// ntSite is a site whose people service keeps NT hashes (MSCHAPv2 on),
// with one pupil who has a username.
func ntSite(t *testing.T) (*webtest.Site, *people.Service, store.Person) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "gh.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sealer, err := people.NewNTSealer(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	svc, err := people.New(people.Options{Store: st, NTHashes: sealer, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.CreatePerson(context.Background(), "cli:root", store.Person{Kind: "pupil", UPN: "A100", LegalForename: "Ann",
		LegalSurname: "Ash", PreferredForename: "Ann", YearGroup: "Year 9", Username: "aash", State: store.PersonActive}, now)
	if err != nil {
		t.Fatal(err)
	}
	site := webtest.New(t, webtest.Options{Store: st, Setup: func(srv *web.Server) error { return Register(srv, svc, nil) }})
	return site, svc, p
}

var shownPassword = regexp.MustCompile(`New Wi-Fi password: <code class="secret">([^<]+)</code>`)

func TestNetworkRoleSetsWiFiPasswordShownOnce(t *testing.T) {
	site, svc, p := ntSite(t)
	ctx := context.Background()
	nm := site.Browser(t, store.RoleNetwork)
	page := fmt.Sprintf("%s?id=%d", PersonPath, p.ID)
	if r := nm.Get(page); r.StatusCode != http.StatusOK || !strings.Contains(r.Body, "Set the Wi-Fi password") || !strings.Contains(r.Body, "Login: aash") {
		t.Fatalf("person page %d:\n%s", r.StatusCode, r.Body)
	}
	// Left empty, a password is generated and shown in the answer.
	r := nm.PostForm(PersonPath, url.Values{"id": {fmt.Sprint(p.ID)}, "action": {"wifi_password"}})
	m := shownPassword.FindStringSubmatch(r.Body)
	if r.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("set %d:\n%s", r.StatusCode, r.Body)
	}
	pw := m[1]
	if len(pw) != 19 {
		t.Fatalf("generated %q", pw)
	}
	nt, found, err := svc.NTHash(ctx, "aash")
	if err != nil || !found || nt != mschapv2.NTPasswordHash(pw) {
		t.Fatalf("NT hash %v %v", found, err)
	}
	id, _ := svc.Identity(ctx, "aash")
	if ok, _ := password.Verify(id.PasswordHash, pw); !ok {
		t.Fatal("the argon2id hash does not verify the shown password")
	}
	// Shown once: the page afterwards does not have it, nor the log.
	if r := nm.Get(page); strings.Contains(r.Body, pw) || !strings.Contains(r.Body, "also for PEAP (MSCHAPv2)") {
		t.Fatalf("page after:\n%s", r.Body)
	}
	if strings.Contains(site.Logs.String(), pw) {
		t.Fatal("the password is in the log")
	}
	if a := site.LastAudit(t); a.Action != "person.wifi_password" || a.Actor != "web:"+nm.User.Name || strings.Contains(a.After, pw) {
		t.Fatalf("audit %+v", a)
	}
	// A typed password, too short, is refused; a good one is taken.
	if r := nm.PostForm(PersonPath, url.Values{"id": {fmt.Sprint(p.ID)}, "action": {"wifi_password"}, "password": {"short"}}); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("short: %d", r.StatusCode)
	}
	if r := nm.PostForm(PersonPath, url.Values{"id": {fmt.Sprint(p.ID)}, "action": {"wifi_password"}, "password": {"typed by the manager"}}); r.StatusCode != http.StatusOK {
		t.Fatalf("typed: %d", r.StatusCode)
	}
	if nt, _, _ := svc.NTHash(ctx, "aash"); nt != mschapv2.NTPasswordHash("typed by the manager") {
		t.Fatal("the typed password was not stored")
	}
	// Removing it removes both forms.
	if r := nm.PostForm(PersonPath, url.Values{"id": {fmt.Sprint(p.ID)}, "action": {"wifi_password_remove"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("remove: %d", r.StatusCode)
	}
	if _, found, _ := svc.NTHash(ctx, "aash"); found {
		t.Fatal("NT hash after removal")
	}
	// Reception may not.
	rc := site.Browser(t, store.RoleReception)
	if r := rc.PostForm(PersonPath, url.Values{"id": {fmt.Sprint(p.ID)}, "action": {"wifi_password"}}); r.StatusCode != http.StatusForbidden {
		t.Fatalf("reception: %d", r.StatusCode)
	}
}

func TestSelfServiceWiFiPassword(t *testing.T) {
	site, svc, p := ntSite(t)
	ctx := context.Background()
	if err := svc.SetWiFiPassword(ctx, "web:nm", p.ID, "first password here"); err != nil {
		t.Fatal(err)
	}
	b := site.NewBrowser(t) // nobody signed in
	r := b.Get(SelfServicePath)
	if r.StatusCode != http.StatusOK || !strings.Contains(r.Body, `name="current"`) || !strings.Contains(r.Body, `name="viewport"`) {
		t.Fatalf("page %d:\n%s", r.StatusCode, r.Body)
	}
	csrf := b.CSRFFrom(SelfServicePath)
	form := func(user, cur, nw, again string) url.Values {
		return url.Values{"csrf": {csrf}, "username": {user}, "current": {cur}, "new": {nw}, "again": {again}}
	}
	// Without the form's token: refused before anything is checked.
	bad := form("aash", "first password here", "second password!", "second password!")
	bad.Set("csrf", "x")
	if r := b.Post(SelfServicePath, bad); r.StatusCode != http.StatusForbidden {
		t.Fatalf("no csrf: %d", r.StatusCode)
	}
	// Another browser's token does not fit this browser's cookie.
	other := site.NewBrowser(t)
	if r := other.Post(SelfServicePath, form("aash", "first password here", "second password!", "second password!")); r.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign csrf: %d", r.StatusCode)
	}
	if r := b.Post(SelfServicePath, form("aash", "first password here", "second password!", "different")); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("mismatch: %d", r.StatusCode)
	}
	if r := b.Post(SelfServicePath, form("aash", "first password here", "short", "short")); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("weak: %d", r.StatusCode)
	}
	if r := b.Post(SelfServicePath, form("aash", "wrong password!!", "second password!", "second password!")); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong current: %d", r.StatusCode)
	}
	r = b.Post(SelfServicePath, form("AASH", "first password here", "second password!", "second password!"))
	if r.StatusCode != http.StatusOK || !strings.Contains(r.Body, "is changed") {
		t.Fatalf("change %d:\n%s", r.StatusCode, r.Body)
	}
	if nt, found, _ := svc.NTHash(ctx, "aash"); !found || nt != mschapv2.NTPasswordHash("second password!") {
		t.Fatal("the NT hash is not the new password's")
	}
	if a := site.LastAudit(t); a.Action != "person.wifi_password" || a.Actor != "self:aash" {
		t.Fatalf("audit %+v", a)
	}
	for _, secret := range []string{"first password here", "second password!", "wrong password!!"} {
		if strings.Contains(site.Logs.String(), secret) {
			t.Fatalf("%q is in the log", secret)
		}
	}
	// Wrong guesses are limited per person, whatever the address: the
	// wrong one above and four more...
	for range 3 {
		if r := b.Post(SelfServicePath, form("aash", "guess guess guess", "third password!!", "third password!!")); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("guess: %d", r.StatusCode)
		}
	}
	if r := b.Post(SelfServicePath, form("aash", "guess guess guess", "third password!!", "third password!!")); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("fifth guess: %d", r.StatusCode)
	}
	if r := b.Post(SelfServicePath, form("aash", "second password!", "third password!!", "third password!!")); r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("after five wrong: %d", r.StatusCode)
	}
	// ...and per address, over any names.
	for i := range 20 {
		b.Post(SelfServicePath, form(fmt.Sprintf("nobody%d", i), "guess guess guess", "third password!!", "third password!!"))
	}
	if err := svc.SetWiFiPassword(ctx, "web:nm", p.ID, "fresh person pw"); err != nil {
		t.Fatal(err)
	}
	if err := svc.ChangeOwnWiFiPassword(ctx, "nobody-else", "x", "third password!!", mustAddr("127.0.0.1")); err != people.ErrTooManyAttempts {
		t.Fatalf("address not limited: %v", err)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
