package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/web"
	"github.com/gatehouse-net/gatehouse/web/webtest"
)

// The attacks of issue 13 on the admin shell, each against the real TLS
// server.

// TestTabInNextIsNotAnOpenRedirect is the proved attack: a link to
// /login?next=/%09/evil.example sent a signed-in member of staff to
// another site.
func TestTabInNextIsNotAnOpenRedirect(t *testing.T) {
	h := webtest.New(t, webtest.Options{})
	h.AddUser(t, "amy", web.RoleNetwork, testPassword)
	b := h.NewBrowser(t)
	b.Login("amy", testPassword)
	for _, next := range []string{"/%09/evil.example/phish", "/%5Cevil.example", "/%0d%0a/evil.example", "/%20/evil.example"} {
		r := b.Get("/login?next=" + next)
		if loc := r.Header.Get("Location"); r.StatusCode != http.StatusSeeOther || loc != "/" {
			t.Errorf("signed in, /login?next=%s: %d to %q, want 303 to /", next, r.StatusCode, loc)
		}
		// And through the login form.
		fresh := h.NewBrowser(t)
		tok := fresh.CSRFFrom("/login")
		raw, _ := url.QueryUnescape(next)
		r = fresh.Post("/login", url.Values{"csrf": {tok}, "name": {"amy"}, "password": {testPassword}, "next": {raw}})
		if loc := r.Header.Get("Location"); r.StatusCode != http.StatusSeeOther || loc != "/" {
			t.Errorf("login with next=%q: %d to %q, want 303 to /", raw, r.StatusCode, loc)
		}
	}
}

func TestHostHeaderAllowList(t *testing.T) {
	h := webtest.New(t, webtest.Options{})
	b := h.NewBrowser(t)
	for _, tc := range []struct {
		host string
		want int
	}{
		{"", http.StatusOK}, // the dialled 127.0.0.1:port
		{"localhost", http.StatusOK},
		{"LOCALHOST:8443", http.StatusOK},
		{"[::1]:8443", http.StatusOK},
		{"rebind.evil.example", http.StatusMisdirectedRequest},
		{"rebind.evil.example:8443", http.StatusMisdirectedRequest},
		{"10.99.0.1", http.StatusMisdirectedRequest}, // not the listen address
	} {
		req, err := http.NewRequest(http.MethodGet, h.URL+"/login", nil)
		if err != nil {
			t.Fatal(err)
		}
		if tc.host != "" {
			req.Host = tc.host
		}
		if r := b.Do(req); r.StatusCode != tc.want {
			t.Errorf("Host %q: %d, want %d", tc.host, r.StatusCode, tc.want)
		}
	}
}

// TestBannersNeverEchoTheURL: a link with ?created=<text> or ?revoked=<text>
// used to put that text on the shell's page under its own name.
func TestBannersNeverEchoTheURL(t *testing.T) {
	h := webtest.New(t, webtest.Options{})
	h.AddUser(t, "amy", web.RoleNetwork, testPassword)
	b := h.NewBrowser(t)
	b.Login("amy", testPassword)
	const lie = "Your session expired, call 0800 EVIL"
	for _, path := range []string{"/users?created=", "/tokens?revoked=", "/account?changed=", "/users?done=", "/tokens?done="} {
		r := b.Get(path + url.QueryEscape(lie))
		if r.StatusCode != http.StatusOK || strings.Contains(r.Body, "0800 EVIL") {
			t.Errorf("GET %s<text>: %d, page repeats the URL text", path, r.StatusCode)
		}
	}
	if r := b.Get("/tokens?done=token-revoked"); !strings.Contains(r.Body, "Token revoked.") {
		t.Error("the fixed banner for token-revoked is not shown")
	}
}

func TestAPITokensExpireAndEndWithThePassword(t *testing.T) {
	h := webtest.New(t, webtest.Options{})
	h.AddUser(t, "amy", web.RoleNetwork, testPassword)
	b := h.NewBrowser(t)
	b.Login("amy", testPassword)
	client := h.NewBrowser(t)

	tok := b.NewToken("script")
	h.Clock.Advance(web.APITokenLifetime - time.Minute)
	if r := client.API(http.MethodGet, "/api/v1/whoami", tok, ""); r.StatusCode != http.StatusOK {
		t.Fatalf("token a minute before it expires: %d, want 200", r.StatusCode)
	}
	h.Clock.Advance(time.Minute)
	if r := client.API(http.MethodGet, "/api/v1/whoami", tok, ""); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("token at its expiry: %d, want 401", r.StatusCode)
	}

	// A fresh session (the old one is past its lifetime too), a fresh token,
	// then a password change ends the token.
	b = h.NewBrowser(t)
	b.Login("amy", testPassword)
	tok = b.NewToken("script2")
	if r := client.API(http.MethodGet, "/api/v1/whoami", tok, ""); r.StatusCode != http.StatusOK {
		t.Fatalf("new token: %d, want 200", r.StatusCode)
	}
	const next = "another long passphrase"
	if r := b.Post("/account", url.Values{"csrf": {b.CSRFFrom("/account")}, "current": {testPassword}, "password": {next}, "confirm": {next}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("change password: %d", r.StatusCode)
	}
	if r := client.API(http.MethodGet, "/api/v1/whoami", tok, ""); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("token after its user's password changed: %d, want 401", r.StatusCode)
	}
	entries, err := h.Store.AuditList(context.Background(), 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range entries {
		if e.Action == "user.password" && strings.Contains(e.After, `"api_tokens_ended":2`) {
			found = true
		}
	}
	if !found {
		t.Errorf("no user.password audit entry recording the 2 tokens ended: %+v", entries)
	}
}
