package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-net/gatehouse/web"
	"github.com/gatehouse-net/gatehouse/web/webtest"
)

func TestBearerTokenAPI(t *testing.T) {
	h := webtest.New(t, webtest.Options{})
	roleUsers(t, h)
	net, rec := h.NewBrowser(t), h.NewBrowser(t)
	net.Login("u-network", testPassword)
	rec.Login("u-reception", testPassword)
	netTok := net.NewToken("script")
	recTok := rec.NewToken("kiosk")
	client := h.NewBrowser(t)

	r := client.API(http.MethodGet, "/api/v1/whoami", recTok, "")
	var who struct {
		Name, Role string
		Token      struct{ Name string }
	}
	if r.StatusCode != http.StatusOK || json.Unmarshal([]byte(r.Body), &who) != nil {
		t.Fatalf("whoami: %d %s", r.StatusCode, r.Body)
	}
	if who.Name != "u-reception" || who.Role != web.RoleReception || who.Token.Name != "kiosk" {
		t.Errorf("whoami = %+v", who)
	}

	if r := client.API(http.MethodGet, "/api/v1/audit", recTok, ""); r.StatusCode != http.StatusForbidden {
		t.Errorf("audit as reception: %d, want 403", r.StatusCode)
	}
	r = client.API(http.MethodGet, "/api/v1/audit?limit=5", netTok, "")
	var audit struct {
		Entries []struct{ Action, Actor string }
	}
	if r.StatusCode != http.StatusOK || json.Unmarshal([]byte(r.Body), &audit) != nil {
		t.Fatalf("audit as network: %d %s", r.StatusCode, r.Body)
	}
	if len(audit.Entries) == 0 || len(audit.Entries) > 5 {
		t.Errorf("audit returned %d entries, want 1..5", len(audit.Entries))
	}
	if r := client.API(http.MethodGet, "/api/v1/audit?limit=0", netTok, ""); r.StatusCode != http.StatusBadRequest {
		t.Errorf("limit=0: %d, want 400", r.StatusCode)
	}
	if r := client.API(http.MethodGet, "/api/v1/whoami", "gh_"+strings.Repeat("x", 43), ""); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("unknown token: %d, want 401", r.StatusCode)
	}
	// A browser session is not an API credential.
	if r := net.Get("/api/v1/whoami"); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("session cookie on the API: %d, want 401", r.StatusCode)
	}

	// Revoking from the tokens page ends the token for the API.
	r = net.Post("/tokens/delete", url.Values{"csrf": {net.CSRFFrom("/tokens")}, "id": {tokenID(t, net, "script")}})
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke own token: %d, want 303", r.StatusCode)
	}
	if r := client.API(http.MethodGet, "/api/v1/whoami", netTok, ""); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("revoked token: %d, want 401", r.StatusCode)
	}
}

// Cells carry their column's name (data-label) for the phone layout.
var tokenRow = regexp.MustCompile(`<tr><td[^>]*>([^<]+)</td><td[^>]*>([^<]*)</td><td[^>]*>[^<]*</td><td[^>]*>([^<]*)</td><td[^>]*><form method="post" action="/tokens/delete"><input type="hidden" name="csrf" value="[^"]+"><input type="hidden" name="id" value="(\d+)">`)

// tokenRows returns the rows of the token list on b's tokens page, by name:
// {created, last used, id}.
func tokenRows(t *testing.T, b *webtest.Browser) map[string][3]string {
	t.Helper()
	r := b.Get("/tokens")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET /tokens: %d", r.StatusCode)
	}
	rows := map[string][3]string{}
	for _, m := range tokenRow.FindAllStringSubmatch(r.Body, -1) {
		rows[m[1]] = [3]string{m[2], m[3], m[4]}
	}
	return rows
}

// tokenID returns the id the tokens page posts to revoke b's token name.
func tokenID(t *testing.T, b *webtest.Browser, name string) string {
	t.Helper()
	row, ok := tokenRows(t, b)[name]
	if !ok {
		t.Fatalf("token %s not listed on the tokens page", name)
	}
	return row[2]
}

func TestTokensPageListsAndRevokesOwnTokens(t *testing.T) {
	h := webtest.New(t, webtest.Options{})
	roleUsers(t, h)
	net, rec := h.NewBrowser(t), h.NewBrowser(t)
	net.Login("u-network", testPassword)
	rec.Login("u-reception", testPassword)
	netTok := net.NewToken("script")
	net.NewToken("backup")
	recTok := rec.NewToken("kiosk")
	client := h.NewBrowser(t)

	netRows, recRows := tokenRows(t, net), tokenRows(t, rec)
	if len(netRows) != 2 || len(recRows) != 1 {
		t.Fatalf("listed %v for network and %v for reception, want 2 own tokens and 1", netRows, recRows)
	}
	if _, ok := recRows["kiosk"]; !ok {
		t.Fatalf("reception's own token is not listed: %v", recRows)
	}
	for name, row := range netRows {
		if name != "script" && name != "backup" {
			t.Errorf("network's page lists %q, which is not theirs", name)
		}
		if row[0] == "" || row[0] == "never" || row[1] != "never" {
			t.Errorf("%s: created %q, last used %q; want a time and never", name, row[0], row[1])
		}
	}
	if r := client.API(http.MethodGet, "/api/v1/whoami", netTok, ""); r.StatusCode != http.StatusOK {
		t.Fatalf("whoami: %d", r.StatusCode)
	}
	if used := tokenRows(t, net)["script"][1]; used == "never" || used == "" {
		t.Errorf("after use, last used = %q, want a time", used)
	}

	recID, scriptID := recRows["kiosk"][2], netRows["script"][2]
	tests := []struct {
		name     string
		b        *webtest.Browser
		form     url.Values
		want     int
		liveTok  string // still works afterwards
		deadTok  string // no longer works afterwards
		wantText string
	}{
		{"reception: someone else's id", rec, url.Values{"id": {scriptID}}, http.StatusNotFound, netTok, "", "not a token you can revoke"},
		{"an id that does not exist", net, url.Values{"id": {"99999"}}, http.StatusNotFound, netTok, "", "not a token you can revoke"},
		{"not an id", net, url.Values{"id": {"script"}}, http.StatusBadRequest, netTok, "", "Choose a token"},
		{"no CSRF token", net, url.Values{"id": {scriptID}, "csrf": {""}}, http.StatusForbidden, netTok, "", ""},
		{"own id", net, url.Values{"id": {scriptID}}, http.StatusSeeOther, recTok, netTok, ""},
		{"own id again", net, url.Values{"id": {scriptID}}, http.StatusNotFound, recTok, netTok, ""},
		// A network manager can stop anyone's token (a leaver's, a lost laptop's).
		{"network: reception's id", net, url.Values{"id": {recID}}, http.StatusSeeOther, "", recTok, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, set := tc.form["csrf"]; !set {
				tc.form.Set("csrf", tc.b.For(t).CSRFFrom("/tokens"))
			}
			r := tc.b.For(t).Post("/tokens/delete", tc.form)
			if r.StatusCode != tc.want || !strings.Contains(r.Body, tc.wantText) {
				t.Fatalf("status %d, want %d with %q; body %.300s", r.StatusCode, tc.want, tc.wantText, r.Body)
			}
			if tc.liveTok != "" {
				if r := client.API(http.MethodGet, "/api/v1/whoami", tc.liveTok, ""); r.StatusCode != http.StatusOK {
					t.Errorf("token that should live: %d", r.StatusCode)
				}
			}
			if tc.deadTok != "" {
				if r := client.API(http.MethodGet, "/api/v1/whoami", tc.deadTok, ""); r.StatusCode != http.StatusUnauthorized {
					t.Errorf("revoked token: %d, want 401", r.StatusCode)
				}
			}
		})
	}
	if rows := tokenRows(t, net); len(rows) != 1 || rows["backup"][2] == "" {
		t.Errorf("after revoking script, network's list = %v, want only backup", rows)
	}
	if rows := tokenRows(t, rec); len(rows) != 0 {
		t.Errorf("reception's list = %v, want kiosk gone", rows)
	}
	entries, err := h.Store.AuditList(context.Background(), 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	var deleted []string
	for _, e := range entries {
		if e.Action == "api_token.delete" {
			deleted = append(deleted, e.Object)
			if e.Actor != "web:u-network" {
				t.Errorf("delete audit row %+v", e)
			}
		}
	}
	slices.Sort(deleted)
	want := []string{"api_token:" + recID, "api_token:" + scriptID}
	slices.Sort(want)
	if !slices.Equal(deleted, want) {
		t.Errorf("api_token.delete audit rows for %v, want %v", deleted, want)
	}
}

func TestMetricsAccess(t *testing.T) {
	h := webtest.New(t, webtest.Options{})
	roleUsers(t, h)
	netB, dslB := h.NewBrowser(t), h.NewBrowser(t)
	netB.Login("u-network", testPassword)
	dslB.Login("u-dsl", testPassword)
	netTok, dslTok := netB.NewToken("prom"), dslB.NewToken("prom")
	netCookie := netB.Cookie(web.SessionCookie)

	// Handler() with a forged peer address: the TLS listener in the other
	// tests only ever sees 127.0.0.1.
	handler := h.Server.Handler()
	tests := []struct {
		name, remote, auth, cookie string
		want                       int
	}{
		// The harness configures 127.0.0.1/32 as a scrape address; other
		// loopback callers are not trusted for being local.
		{"configured scrape address", "127.0.0.1:5000", "", "", http.StatusOK},
		{"loopback not configured", "[::1]:5000", "", "", http.StatusUnauthorized},
		{"remote anonymous", "192.0.2.10:5000", "", "", http.StatusUnauthorized},
		{"remote dsl token", "192.0.2.10:5000", dslTok, "", http.StatusForbidden},
		{"remote network token", "192.0.2.10:5000", netTok, "", http.StatusOK},
		{"remote network session", "192.0.2.10:5000", "", netCookie, http.StatusOK},
		{"remote bad token", "192.0.2.10:5000", "gh_nope", "", http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "https://127.0.0.1/metrics", nil)
			req.RemoteAddr = tc.remote
			if tc.auth != "" {
				req.Header.Set("Authorization", "Bearer "+tc.auth)
			}
			if tc.cookie != "" {
				req.AddCookie(&http.Cookie{Name: web.SessionCookie, Value: tc.cookie})
			}
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d", rec.Code, tc.want)
			}
			if tc.want == http.StatusOK && !strings.Contains(rec.Body.String(), "gatehouse_web_logins_total") {
				t.Error("metrics body lacks gatehouse_web_logins_total")
			}
		})
	}
}
