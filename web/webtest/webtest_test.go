package webtest_test

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/web"
	"github.com/gatehouse-net/gatehouse/web/webtest"
)

// The kit's credentials are the server's own: a signed-in browser passes
// the role guard and the CSRF check, a token passes the bearer guard, and
// an anonymous browser passes neither.
func TestKitCredentialsAreTheServersOwn(t *testing.T) {
	s := webtest.New(t, webtest.Options{})
	b := s.Browser(t, web.RoleNetwork)
	if r := b.Get("/users"); r.StatusCode != http.StatusOK {
		t.Fatalf("GET /users as network: %d", r.StatusCode)
	}
	if b.CSRF == "" || b.Cookie(web.SessionCookie) == "" {
		t.Fatalf("signed-in browser without CSRF token or session cookie")
	}
	form := url.Values{"name": {"made-by-form"}, "role": {web.RoleDSL}, "password": {"a long enough password"}, "confirm": {"a long enough password"}}
	if r := b.PostForm("/users", form); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /users with the kept CSRF token: %d", r.StatusCode)
	}
	if e := s.LastAudit(t); e.Action != "user.create" || e.Actor != "web:"+b.User.Name || e.Object != "user:made-by-form" {
		t.Errorf("newest audit entry %+v, want user.create of made-by-form by web:%s", e, b.User.Name)
	}
	if n := len(s.AuditWith(t, "user.create")); n != 2 {
		t.Errorf("%d user.create entries, want 2 (the kit's user and the form's)", n)
	}

	anon := s.NewBrowser(t)
	if r := anon.Get("/users"); r.StatusCode != http.StatusSeeOther {
		t.Errorf("GET /users anonymous: %d, want 303 to the login page", r.StatusCode)
	}

	tok := s.Token(t, web.RoleDSL)
	r := anon.API(http.MethodGet, "/api/v1/whoami", tok, "")
	var who struct{ Role string }
	if r.StatusCode != http.StatusOK || json.Unmarshal([]byte(r.Body), &who) != nil || who.Role != web.RoleDSL {
		t.Fatalf("whoami with the kit's token: %d %s", r.StatusCode, r.Body)
	}
	if r := anon.API(http.MethodGet, "/api/v1/whoami", "", ""); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("whoami without a token: %d, want 401", r.StatusCode)
	}
}

// RemoteVia signs in through a client the test was handed (a namespace's,
// in the daemon tests) with cookies of its own, and sees redirects rather
// than following them.
func TestRemoteViaSignsInThroughTheGivenClient(t *testing.T) {
	s := webtest.New(t, webtest.Options{})
	s.AddUser(t, "amy", web.RoleNetwork, "a long staff passphrase")
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: time.Minute}
	b := webtest.RemoteVia(t, s.URL, c)
	if r := b.Get("/users"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("GET /users before signing in: %d, want 303 to the login page", r.StatusCode)
	}
	b.Login("amy", "a long staff passphrase")
	if r := b.Get("/users"); r.StatusCode != http.StatusOK {
		t.Errorf("GET /users signed in: %d", r.StatusCode)
	}
	if c.Jar != nil {
		t.Error("the given client was handed the browser's cookies")
	}
}
