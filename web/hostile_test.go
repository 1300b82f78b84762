package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The attacks of issue 13 on the admin shell, each against the real TLS
// server.

func TestSafeNextAcceptsOnlyPlainPaths(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/vouchers", "/vouchers"},
		{"/devices?segment=pupil&seen=week", "/devices?segment=pupil&seen=week"},
		{"/a%09b", "/a%09b"},
		// Browsers strip TAB, CR and LF and read "\" as "/": each of these
		// would be followed as //evil.example.
		{"/\t/evil.example/x", "/"},
		{"/\n/evil.example", "/"},
		{"/\r/evil.example", "/"},
		{"/\\evil.example", "/"},
		{"/ /evil.example", "/"},
		{"/\u00a0/evil.example", "/"},
		{"/\u2028/evil.example", "/"},
		{"/\x00/evil.example", "/"},
		{"/\x7f/evil.example", "/"},
		{"//evil.example", "/"},
		{"https://evil.example/", "/"},
		{"javascript:alert(1)", "/"},
		{"evil.example", "/"},
		{"", "/"},
		{"/login?next=//evil.example", "/"},
		{"/" + strings.Repeat("a", 3000), "/"},
	} {
		if got := safeNext(tc.in); got != tc.want {
			t.Errorf("safeNext(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestTabInNextIsNotAnOpenRedirect is the proved attack: a link to
// /login?next=/%09/evil.example sent a signed-in member of staff to
// another site.
func TestTabInNextIsNotAnOpenRedirect(t *testing.T) {
	h := newHarness(t, nil)
	h.addUser("amy", RoleNetwork, testPassword)
	b := h.browser()
	b.login("amy", testPassword)
	for _, next := range []string{"/%09/evil.example/phish", "/%5Cevil.example", "/%0d%0a/evil.example", "/%20/evil.example"} {
		r := b.get("/login?next=" + next)
		if loc := r.header.Get("Location"); r.status != http.StatusSeeOther || loc != "/" {
			t.Errorf("signed in, /login?next=%s: %d to %q, want 303 to /", next, r.status, loc)
		}
		// And through the login form.
		fresh := h.browser()
		tok := fresh.csrf("/login")
		raw, _ := url.QueryUnescape(next)
		r = fresh.post("/login", url.Values{"csrf": {tok}, "name": {"amy"}, "password": {testPassword}, "next": {raw}})
		if loc := r.header.Get("Location"); r.status != http.StatusSeeOther || loc != "/" {
			t.Errorf("login with next=%q: %d to %q, want 303 to /", raw, r.status, loc)
		}
	}
}

func TestHostHeaderAllowList(t *testing.T) {
	h := newHarness(t, nil)
	b := h.browser()
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
		req, err := http.NewRequest(http.MethodGet, h.base+"/login", nil)
		if err != nil {
			t.Fatal(err)
		}
		if tc.host != "" {
			req.Host = tc.host
		}
		if r := b.do(req); r.status != tc.want {
			t.Errorf("Host %q: %d, want %d", tc.host, r.status, tc.want)
		}
	}

	for _, tc := range []struct {
		listen string
		names  []string
		host   string
		want   bool
	}{
		{"0.0.0.0:8443", nil, "10.99.0.1:8443", true},
		{":8443", nil, "10.99.0.1", true},
		{":8443", nil, "gatehouse.school.example", false},
		{":8443", []string{"Gatehouse.School.Example."}, "gatehouse.school.example:8443", true},
		{"10.99.0.1:8443", nil, "10.99.0.1:8443", true},
		{"10.99.0.1:8443", nil, "10.10.0.1:8443", false},
		{"admin.school.example:8443", nil, "admin.school.example", true},
		{":8443", nil, "", false},
	} {
		if got := newHostCheck(tc.listen, tc.names).allowed(tc.host); got != tc.want {
			t.Errorf("listen %s names %v: Host %q allowed = %v, want %v", tc.listen, tc.names, tc.host, got, tc.want)
		}
	}
}

// TestBannersNeverEchoTheURL: a link with ?created=<text> or ?revoked=<text>
// used to put that text on the shell's page under its own name.
func TestBannersNeverEchoTheURL(t *testing.T) {
	h := newHarness(t, nil)
	h.addUser("amy", RoleNetwork, testPassword)
	b := h.browser()
	b.login("amy", testPassword)
	const lie = "Your session expired, call 0800 EVIL"
	for _, path := range []string{"/users?created=", "/tokens?revoked=", "/account?changed=", "/users?done=", "/tokens?done="} {
		r := b.get(path + url.QueryEscape(lie))
		if r.status != http.StatusOK || strings.Contains(r.body, "0800 EVIL") {
			t.Errorf("GET %s<text>: %d, page repeats the URL text", path, r.status)
		}
	}
	if r := b.get("/tokens?done=token-revoked"); !strings.Contains(r.body, "Token revoked.") {
		t.Error("the fixed banner for token-revoked is not shown")
	}
}

func TestAPITokensExpireAndEndWithThePassword(t *testing.T) {
	h := newHarness(t, nil)
	h.addUser("amy", RoleNetwork, testPassword)
	b := h.browser()
	b.login("amy", testPassword)
	client := h.browser()

	tok := createToken(t, b, "script")
	h.clock.Advance(APITokenLifetime - time.Minute)
	if r := client.api("/api/v1/whoami", tok); r.status != http.StatusOK {
		t.Fatalf("token a minute before it expires: %d, want 200", r.status)
	}
	h.clock.Advance(time.Minute)
	if r := client.api("/api/v1/whoami", tok); r.status != http.StatusUnauthorized {
		t.Errorf("token at its expiry: %d, want 401", r.status)
	}

	// A fresh session (the old one is past its lifetime too), a fresh token,
	// then a password change ends the token.
	b = h.browser()
	b.login("amy", testPassword)
	tok = createToken(t, b, "script2")
	if r := client.api("/api/v1/whoami", tok); r.status != http.StatusOK {
		t.Fatalf("new token: %d, want 200", r.status)
	}
	const next = "another long passphrase"
	if r := b.post("/account", url.Values{"csrf": {b.csrf("/account")}, "current": {testPassword}, "password": {next}, "confirm": {next}}); r.status != http.StatusSeeOther {
		t.Fatalf("change password: %d", r.status)
	}
	if r := client.api("/api/v1/whoami", tok); r.status != http.StatusUnauthorized {
		t.Errorf("token after its user's password changed: %d, want 401", r.status)
	}
	entries, err := h.st.AuditList(context.Background(), 10, 0)
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
