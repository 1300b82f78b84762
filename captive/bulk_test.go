package captive

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Revoking several codes at once asks first, saying how many codes and
// devices it affects, then revokes each (audited), disconnects their
// devices and redirects back with a truthful notice.
func TestBulkRevokeConfirmsThenRevokes(t *testing.T) {
	a := newAdminHarness(t)
	ctx := context.Background()
	var ids []string
	for range 3 {
		vs, err := Issue(ctx, a.st, "web:frontdesk", IssueRequest{Duration: time.Hour, MaxDevices: 2, Note: "open evening", Now: ht0}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, fmt.Sprint(vs[0].Voucher.ID))
		if len(ids) == 1 {
			ip := a.device(21)
			a.login(ip, vs[0].Code)
		}
	}
	other, err := Issue(ctx, a.st, "web:office", IssueRequest{Duration: time.Hour, Now: ht0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, list := a.as("frontdesk", "GET", "/vouchers", nil)
	if strings.Count(list, `form="revoke-selected"`) != 3 || !strings.Contains(list, `id="revoke-selected"`) {
		t.Fatalf("the list has no selection for bulk revoke")
	}
	before := len(a.site.Audit(t))
	res, ask := a.as("frontdesk", "POST", BulkRevokePath, url.Values{"id": ids[:2]})
	if res.StatusCode != http.StatusOK || !strings.Contains(ask, "Revoking stops these 2 codes working now and disconnects 1 device signed in with them") ||
		!strings.Contains(ask, "Revoke 2 codes and disconnect 1 device") {
		t.Fatalf("confirmation: %d\n%s", res.StatusCode, ask)
	}
	if len(a.site.Audit(t)) != before || !a.adm.isAdmitted(macOf(21), a.device(21)) {
		t.Fatal("the confirmation step changed something")
	}
	res, _ = a.as("frontdesk", "POST", BulkRevokePath, url.Values{"id": ids[:2], "confirm": {"yes"}})
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || loc != "/vouchers?done=revoked_n&n=2&disconnected=1" {
		t.Fatalf("revoke: %d to %q", res.StatusCode, loc)
	}
	if got := len(a.site.Audit(t)) - before; got < 2 {
		t.Errorf("%d audit entries, want at least one per code", got)
	}
	if a.adm.isAdmitted(macOf(21), a.device(21)) {
		t.Error("the device signed in with a revoked code is still admitted")
	}
	if _, page := a.as("frontdesk", "GET", loc, nil); !strings.Contains(page, "2 codes revoked; 1 device that was signed in was disconnected.") {
		t.Errorf("notice after the redirect is wrong")
	}
	// The ended codes are left alone the next time.
	_, again := a.as("frontdesk", "POST", BulkRevokePath, url.Values{"id": ids})
	if !strings.Contains(again, "Revoking stops this code working now; no device is signed in with it, so nobody is disconnected.") {
		t.Errorf("second confirmation: %s", again)
	}
	if !strings.Contains(again, "2 selected codes have already ended") {
		t.Errorf("second confirmation does not say the ended codes are skipped")
	}
	// Reception cannot revoke another's code in bulk.
	if res, _ := a.as("frontdesk", "POST", BulkRevokePath, url.Values{"id": {ids[2], fmt.Sprint(other[0].Voucher.ID)}, "confirm": {"yes"}}); res.StatusCode != http.StatusNotFound {
		t.Errorf("bulk revoke of another's code: %d, want 404", res.StatusCode)
	}
	if r := a.browsers["frontdesk"].Post(BulkRevokePath, url.Values{"id": {ids[2]}, "confirm": {"yes"}}); r.StatusCode != http.StatusForbidden {
		t.Errorf("bulk revoke without the CSRF token: %d", r.StatusCode)
	}
}

// The codes list pages, and its search stays in the page links.
func TestCodesListPagesAndSearches(t *testing.T) {
	a := newAdminHarness(t)
	ctx := context.Background()
	for i := range codesPageSize + 3 {
		note := "plumber"
		if i%2 == 0 {
			note = "governor 100%"
		}
		if _, err := Issue(ctx, a.st, "web:netman", IssueRequest{Duration: time.Hour, Note: note, Now: ht0}, nil); err != nil {
			t.Fatal(err)
		}
	}
	_, p1 := a.as("netman", "GET", "/vouchers", nil)
	if n := strings.Count(p1, `form="revoke-selected"`); n != codesPageSize || !strings.Contains(p1, `href="/vouchers?page=2"`) {
		t.Errorf("page 1 lists %d codes, or has no link to page 2", n)
	}
	_, p2 := a.as("netman", "GET", "/vouchers?page=2", nil)
	if n := strings.Count(p2, `form="revoke-selected"`); n != 3 {
		t.Errorf("page 2 lists %d codes, want 3", n)
	}
	_, s := a.as("netman", "GET", "/vouchers?q=GOVERNOR+100%25", nil)
	if n := strings.Count(s, `form="revoke-selected"`); n != 27 || strings.Contains(s, "plumber") || !strings.Contains(s, `value="GOVERNOR 100%"`) {
		t.Errorf("search lists %d codes (want 27), or lists others, or lost the search", n)
	}
}
