package captive

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web/webtest"
)

// apiHarness is the admin shell with the captive routes and one API token
// per caller, each made the way a person makes one: sign in through the
// login form, then create it on the tokens page.
type apiHarness struct {
	*adminHarness
	client *webtest.Browser  // no session: API calls carry only their token
	tokens map[string]string // user name -> bearer token
}

func newAPIHarness(t *testing.T) *apiHarness {
	t.Helper()
	ah := newAdminHarness(t)
	a := &apiHarness{adminHarness: ah, client: ah.site.NewBrowser(t), tokens: map[string]string{}}
	for _, u := range []struct{ name, role string }{
		{"kiosk", store.RoleReception}, {"kiosk2", store.RoleReception}, {"script", store.RoleNetwork}, {"dslscript", store.RoleDSL},
	} {
		a.tokens[u.name] = a.site.SignIn(t, u.name, u.role).NewToken("api-test")
	}
	return a
}

var codePattern = regexp.MustCompile(`^[2-9A-Z]{5}-[2-9A-Z]{5}$`)

// call sends an API request as user ("" for no token) with a JSON body
// (none if body is "").
func (a *apiHarness) call(user, method, path, body string) (int, string) {
	a.t.Helper()
	tok := ""
	if user != "" {
		var ok bool
		if tok, ok = a.tokens[user]; !ok {
			a.t.Fatalf("no token for %q", user)
		}
	}
	r := a.client.API(method, path, tok, body)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		a.t.Errorf("%s %s: Content-Type %q, want JSON", method, path, ct)
	}
	return r.StatusCode, r.Body
}

type issuedJSON struct {
	ID              int64     `json:"id"`
	Code            string    `json:"code"`
	CreatedBy       string    `json:"created_by"`
	Duration        string    `json:"duration"`
	ValidUntil      time.Time `json:"valid_until"`
	StartOnFirstUse bool      `json:"start_on_first_use"`
	Batch           string    `json:"batch"`
	MaxDevices      int       `json:"max_devices"`
	RateUpBps       int64     `json:"rate_up_bps"`
	QuotaBytes      int64     `json:"quota_bytes"`
	RevokedAt       time.Time `json:"revoked_at"`
}

// issue issues codes through the API as user and fails the test unless it
// worked.
func (a *apiHarness) issue(user, body string) []issuedJSON {
	a.t.Helper()
	status, resp := a.call(user, http.MethodPost, "/api/v1/vouchers", body)
	var out struct{ Codes []issuedJSON }
	if status != http.StatusCreated || json.Unmarshal([]byte(resp), &out) != nil || len(out.Codes) == 0 {
		a.t.Fatalf("issue as %s: %d %s", user, status, resp)
	}
	return out.Codes
}

// listIDs returns the ids GET /api/v1/vouchers shows user.
func (a *apiHarness) listIDs(user string) []int64 {
	a.t.Helper()
	status, body := a.call(user, http.MethodGet, "/api/v1/vouchers", "")
	var out struct{ Vouchers []issuedJSON }
	if status != http.StatusOK || json.Unmarshal([]byte(body), &out) != nil {
		a.t.Fatalf("list as %s: %d %s", user, status, body)
	}
	var ids []int64
	for _, v := range out.Vouchers {
		if v.Code != "" {
			a.t.Errorf("list shows code %d in clear", v.ID)
		}
		ids = append(ids, v.ID)
	}
	return ids
}

func TestVoucherAPIRoles(t *testing.T) {
	a := newAPIHarness(t)
	// Each case that changes a code gets a fresh one of the caller's own
	// (reception's, for callers that may not issue).
	ownCode := func(user string) int64 {
		if user == "" || user == "dslscript" {
			user = "kiosk"
		}
		return a.issue(user, `{"duration":"1h"}`)[0].ID
	}
	endpoints := []struct {
		name, method, path, body string
		wantOK                   int
	}{
		{"list", http.MethodGet, "/api/v1/vouchers", "", http.StatusOK},
		{"issue", http.MethodPost, "/api/v1/vouchers", `{"duration":"2h"}`, http.StatusCreated},
		{"revoke", http.MethodPost, "/api/v1/vouchers/%d/revoke", "", http.StatusOK},
		{"extend", http.MethodPost, "/api/v1/vouchers/%d/extend", `{"by":"1h"}`, http.StatusOK},
	}
	callers := []struct {
		user    string
		allowed bool
		refusal int
	}{
		{"kiosk", true, 0},
		{"script", true, 0},
		{"dslscript", false, http.StatusForbidden},
		{"", false, http.StatusUnauthorized},
	}
	for _, ep := range endpoints {
		for _, cl := range callers {
			t.Run(ep.name+"/"+cl.user, func(t *testing.T) {
				path := ep.path
				if strings.Contains(path, "%d") {
					path = fmt.Sprintf(path, ownCode(cl.user))
				}
				want := cl.refusal
				if cl.allowed {
					want = ep.wantOK
				}
				status, body := a.call(cl.user, ep.method, path, ep.body)
				if status != want {
					t.Fatalf("%s %s: %d, want %d\n%s", ep.method, path, status, want, body)
				}
				var e struct{ Error string }
				if !cl.allowed && (json.Unmarshal([]byte(body), &e) != nil || e.Error == "") {
					t.Errorf("refusal without an error message: %s", body)
				}
			})
		}
	}
}

func TestVoucherAPIIssuedCodeWorks(t *testing.T) {
	a := newAPIHarness(t)
	ctx := context.Background()
	codes := a.issue("kiosk", `{"duration":"2h","count":3,"devices":2,"batch":"Open evening","note":"parents",
		"not_before":"2025-10-06T08:00:00Z","not_after":"2025-10-06T21:00:00Z","rate_up_kbps":1500,"quota_mb":500}`)
	if len(codes) != 3 {
		t.Fatalf("%d codes, want 3", len(codes))
	}
	for _, c := range codes {
		if !codePattern.MatchString(c.Code) || c.CreatedBy != "web:kiosk" || c.Batch != "Open evening" || c.MaxDevices != 2 ||
			c.RateUpBps != 1_500_000 || c.QuotaBytes != 500_000_000 || c.Duration != "2h0m0s" ||
			!c.ValidUntil.Equal(ht0.Add(2*time.Hour)) {
			t.Errorf("issued %+v", c)
		}
	}

	// Typed the way a visitor might, the code normalises to the one whose
	// hash the store holds.
	typed := strings.ToLower(strings.ReplaceAll(codes[0].Code, "-", " "))
	norm, err := NormaliseCode(typed)
	if err != nil {
		t.Fatalf("normalise %q: %v", typed, err)
	}
	key, err := a.st.VoucherKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v, err := a.st.VoucherByHash(ctx, HashCode(key, norm))
	if err != nil || v.ID != codes[0].ID {
		t.Fatalf("code %s by hash: id %d %v, want %d", codes[0].Code, v.ID, err, codes[0].ID)
	}
	ip := a.device(21)
	if res := a.login(ip, typed); res.StatusCode != http.StatusSeeOther || !a.adm.isAdmitted(macOf(21), ip) {
		t.Fatalf("API-issued code at the portal: %d", res.StatusCode)
	}

	// The code is in clear in that one response only: not in the list, not
	// in the audit log, which names the caller as the page would.
	_, list := a.call("script", http.MethodGet, "/api/v1/vouchers", "")
	entries, err := a.st.AuditList(ctx, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	var audit strings.Builder
	issuedBy := 0
	for _, e := range entries {
		fmt.Fprintln(&audit, e.Actor, e.Action, e.Object, e.Before, e.After)
		if e.Action == "voucher.issue" && e.Actor == "web:kiosk" {
			issuedBy++
		}
	}
	if issuedBy != 3 {
		t.Errorf("%d voucher.issue entries by web:kiosk, want 3", issuedBy)
	}
	for _, c := range codes {
		for name, text := range map[string]string{"list": list, "audit": audit.String()} {
			if strings.Contains(text, c.Code) || strings.Contains(text, strings.ReplaceAll(c.Code, "-", "")) {
				t.Errorf("%s shows code %d in clear", name, c.ID)
			}
		}
	}
}

func TestVoucherAPIReceptionOnlyTouchesOwnCodes(t *testing.T) {
	a := newAPIHarness(t)
	ctx := context.Background()
	network := a.issue("script", `{"duration":"1h"}`)[0]
	own := a.issue("kiosk", `{"duration":"1h","start_on_first_use":true}`)[0]
	colleague := a.issue("kiosk2", `{"duration":"1h"}`)[0]

	if got := a.listIDs("kiosk"); fmt.Sprint(got) != fmt.Sprint([]int64{own.ID}) {
		t.Errorf("reception lists %v, want only its own %d", got, own.ID)
	}
	if got := a.listIDs("script"); len(got) != 3 {
		t.Errorf("network lists %v, want all three", got)
	}
	for _, tc := range []struct {
		name, path, body string
	}{
		{"revoke network's", fmt.Sprintf("/api/v1/vouchers/%d/revoke", network.ID), ""},
		{"extend network's", fmt.Sprintf("/api/v1/vouchers/%d/extend", network.ID), `{"by":"1h"}`},
		{"revoke colleague's", fmt.Sprintf("/api/v1/vouchers/%d/revoke", colleague.ID), ""},
		{"revoke missing", "/api/v1/vouchers/99999/revoke", ""},
	} {
		if status, body := a.call("kiosk", http.MethodPost, tc.path, tc.body); status != http.StatusNotFound {
			t.Errorf("reception: %s: %d, want 404\n%s", tc.name, status, body)
		}
	}
	if v, err := a.st.VoucherByID(ctx, network.ID); err != nil || !v.RevokedAt.IsZero() || v.Duration != time.Hour {
		t.Fatalf("network's code changed by reception: %+v %v", v, err)
	}

	// Reception extends its own code; a signed-in device moves with it.
	ip := a.device(22)
	if res := a.login(ip, own.Code); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("own code at the portal: %d", res.StatusCode)
	}
	status, body := a.call("kiosk", http.MethodPost, fmt.Sprintf("/api/v1/vouchers/%d/extend", own.ID), `{"by":"30m"}`)
	var ext issuedJSON
	if status != http.StatusOK || json.Unmarshal([]byte(body), &ext) != nil || ext.Duration != "1h30m0s" ||
		!ext.ValidUntil.Equal(ht0.Add(90*time.Minute)) {
		t.Fatalf("extend own: %d %s", status, body)
	}
	a.adm.mu.Lock()
	until := a.adm.admitted[macOf(22)+"/"+ip]
	a.adm.mu.Unlock()
	if !until.Equal(ht0.Add(90 * time.Minute)) {
		t.Errorf("after extend admitted until %v", until)
	}
	status, body = a.call("kiosk", http.MethodPost, fmt.Sprintf("/api/v1/vouchers/%d/revoke", own.ID), "")
	var rev issuedJSON
	if status != http.StatusOK || json.Unmarshal([]byte(body), &rev) != nil || rev.RevokedAt.IsZero() || a.adm.isAdmitted(macOf(22), ip) {
		t.Fatalf("revoke own: %d %s, still admitted %v", status, body, a.adm.isAdmitted(macOf(22), ip))
	}
	// Network changes anyone's code.
	if status, body := a.call("script", http.MethodPost, fmt.Sprintf("/api/v1/vouchers/%d/revoke", colleague.ID), ""); status != http.StatusOK {
		t.Errorf("network revoking reception's code: %d %s", status, body)
	}

	// Audited as the page actions are, with the caller as web:<name>.
	entries, err := a.st.AuditList(ctx, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		fmt.Sprintf("web:kiosk voucher.extend voucher:%d", own.ID):        false,
		fmt.Sprintf("web:kiosk voucher.revoke voucher:%d", own.ID):        false,
		fmt.Sprintf("web:script voucher.revoke voucher:%d", colleague.ID): false,
	}
	for _, e := range entries {
		key := e.Actor + " " + e.Action + " " + e.Object
		if _, ok := want[key]; ok {
			want[key] = true
		}
		if e.Object == fmt.Sprintf("voucher:%d", network.ID) && e.Action != "voucher.issue" {
			t.Errorf("audit shows %s on network's code", key)
		}
	}
	for key, seen := range want {
		if !seen {
			t.Errorf("no audit entry %q", key)
		}
	}
}

func TestVoucherAPIRefusesBadInput(t *testing.T) {
	a := newAPIHarness(t)
	// The network manager lets reception issue the longest codes, so that
	// the extension past 366 days below is the cap being tested.
	if err := a.st.SetReceptionLimits(context.Background(), "web:netman", store.ReceptionLimits{MaxDevices: 5, MaxDuration: MaxDuration}, a.clock.Now()); err != nil {
		t.Fatal(err)
	}
	own := a.issue("kiosk", `{"duration":"1h"}`)[0]
	revoked := a.issue("kiosk", `{"duration":"1h"}`)[0]
	longest := a.issue("kiosk", `{"duration":"8784h"}`)[0] // 366 days
	if status, body := a.call("kiosk", http.MethodPost, fmt.Sprintf("/api/v1/vouchers/%d/revoke", revoked.ID), ""); status != http.StatusOK {
		t.Fatalf("revoke: %d %s", status, body)
	}
	extend := func(id int64) string { return fmt.Sprintf("/api/v1/vouchers/%d/extend", id) }
	tests := []struct {
		name, method, path, body string
		status                   int
		msg                      string
	}{
		{"no body", http.MethodPost, "/api/v1/vouchers", "", 400, "must be a JSON object"},
		{"not JSON", http.MethodPost, "/api/v1/vouchers", `duration=2h`, 400, "not valid"},
		{"two objects", http.MethodPost, "/api/v1/vouchers", `{"duration":"2h"}{}`, 400, "one JSON object"},
		{"unknown field", http.MethodPost, "/api/v1/vouchers", `{"duration":"2h","minutes":5}`, 400, `unknown field "minutes"`},
		{"bad duration", http.MethodPost, "/api/v1/vouchers", `{"duration":"soon"}`, 400, "duration must be a duration"},
		{"too short", http.MethodPost, "/api/v1/vouchers", `{"duration":"30s"}`, 400, "the duration must be at least a minute"},
		{"too long", http.MethodPost, "/api/v1/vouchers", `{"duration":"9000h"}`, 400, "at most 366 days"},
		{"batch without a name", http.MethodPost, "/api/v1/vouchers", `{"duration":"1h","count":5}`, 400, "a batch of codes needs a name"},
		{"too many", http.MethodPost, "/api/v1/vouchers", `{"duration":"1h","count":501,"batch":"x"}`, 400, "the number of codes must be 1 to 500"},
		{"negative devices", http.MethodPost, "/api/v1/vouchers", `{"duration":"1h","devices":-1}`, 400, "devices per code must be 1 to 1000"},
		{"negative rate", http.MethodPost, "/api/v1/vouchers", `{"duration":"1h","rate_down_kbps":-5}`, 400, "must not be negative"},
		{"huge rate", http.MethodPost, "/api/v1/vouchers", `{"duration":"1h","rate_up_kbps":9223372036854775807}`, 400, "rate_up_kbps must be from 0"},
		{"unsettable rate", http.MethodPost, "/api/v1/vouchers", `{"duration":"1h","rate_up_kbps":1}`, 400, "a rate limit must be at least"},
		{"bad date", http.MethodPost, "/api/v1/vouchers", `{"duration":"1h","not_before":"tomorrow"}`, 400, "not_before must be an RFC 3339 time"},
		{"window backwards", http.MethodPost, "/api/v1/vouchers", `{"duration":"1h","not_before":"2025-10-07T00:00:00Z","not_after":"2025-10-06T00:00:00Z"}`, 400, "'valid until' date must be after"},
		{"bad list limit", http.MethodGet, "/api/v1/vouchers?limit=0", "", 400, "limit must be"},
		{"bad id", http.MethodPost, "/api/v1/vouchers/x/revoke", "", 400, "id must be a positive"},
		{"bad extension", http.MethodPost, extend(own.ID), `{"by":"soon"}`, 400, "extend the code by"},
		{"extension too long", http.MethodPost, extend(own.ID), `{"by":"1000h"}`, 400, "extend the code by"},
		{"extend revoked", http.MethodPost, extend(revoked.ID), `{"by":"1h"}`, 409, "revoked code cannot be extended"},
		{"extend past 366 days in all", http.MethodPost, extend(longest.ID), `{"by":"1h"}`, 400, "at most 366 days in all"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := a.call("kiosk", tc.method, tc.path, tc.body)
			var e struct{ Error string }
			if status != tc.status || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, tc.msg) {
				t.Errorf("%d %s, want %d with an error containing %q", status, body, tc.status, tc.msg)
			}
		})
	}
	// Nothing was issued by the refused requests.
	if got := a.listIDs("kiosk"); len(got) != 3 {
		t.Errorf("reception has %d codes after refusals, want 3", len(got))
	}
	if v, err := a.st.VoucherByID(context.Background(), own.ID); err != nil || v.Duration != time.Hour {
		t.Errorf("own code after refused extensions: %+v %v", v, err)
	}
}
