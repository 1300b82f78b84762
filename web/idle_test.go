package web_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/web/httpx"

	"github.com/gatehouse-net/gatehouse/web"
	"github.com/gatehouse-net/gatehouse/web/webtest"
)

// Issue 15: a quiet front desk was signed out after 30 minutes. The idle
// timeout is per role: reception's kiosk stays signed in through the
// opening hours while the network manager's session still ends after 30
// idle minutes.
func TestIdleTimeoutPerRole(t *testing.T) {
	h := webtest.New(t, webtest.Options{IdleTimeout: map[string]time.Duration{web.RoleReception: 10 * time.Hour}})
	h.AddUser(t, "kiosk", web.RoleReception, testPassword)
	h.AddUser(t, "nm", web.RoleNetwork, testPassword)
	kiosk, nm := h.NewBrowser(t), h.NewBrowser(t)
	kiosk.Login("kiosk", testPassword)
	nm.Login("nm", testPassword)

	h.Clock.Advance(2 * time.Hour) // a quiet morning at the front desk
	if r := kiosk.Get("/"); r.StatusCode != http.StatusOK {
		t.Errorf("reception after 2 idle hours: %d, want still signed in", r.StatusCode)
	}
	if r := nm.Get("/"); r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/login") {
		t.Errorf("network manager after 2 idle hours: %d %q, want sent to sign in", r.StatusCode, r.Header.Get("Location"))
	}
	// The whole day: nine hours after sign-in, idle in between, the kiosk
	// is still signed in (its lifetime follows its idle timeout).
	h.Clock.Advance(7 * time.Hour)
	if r := kiosk.Get("/"); r.StatusCode != http.StatusOK {
		t.Errorf("reception 9 hours after signing in: %d, want still signed in", r.StatusCode)
	}
	h.Clock.Advance(10*time.Hour + time.Minute)
	if r := kiosk.Get("/"); r.StatusCode != http.StatusSeeOther {
		t.Errorf("reception idle past its own timeout: %d, want sent to sign in", r.StatusCode)
	}
}

func TestIdleTimeoutRefusesUnknownRoles(t *testing.T) {
	if _, err := web.New(web.Options{Store: webtest.OpenStore(t), IdleTimeout: map[string]time.Duration{"pupil": time.Hour}}); err == nil {
		t.Error("web.New took an idle timeout for an unknown role")
	}
}

// A page's own feed (Page.Passive, the overview's live refresh) needs the
// session but is not activity: an overview left open does not keep the
// network manager signed in.
func TestPassivePagesDoNotKeepASessionAwake(t *testing.T) {
	h := webtest.New(t, webtest.Options{Setup: func(srv *web.Server) error {
		srv.AddPage(web.Page{Path: "/feed", Roles: []string{web.RoleNetwork}, Passive: true, GET: func(c *httpx.Context) { c.String(http.StatusOK, "feed") }})
		return nil
	}})
	h.AddUser(t, "nm", web.RoleNetwork, testPassword)
	nm := h.NewBrowser(t)
	nm.Login("nm", testPassword)
	for range 3 {
		h.Clock.Advance(10 * time.Minute)
		if r := nm.Get("/feed"); r.StatusCode != http.StatusOK {
			t.Fatalf("feed while signed in: %d", r.StatusCode)
		}
	}
	// 35 minutes of feed and no person: past the 30-minute idle timeout.
	h.Clock.Advance(5 * time.Minute)
	if r := nm.Get("/"); r.StatusCode != http.StatusSeeOther {
		t.Errorf("after 35 minutes of nothing but the feed: %d, want sent to sign in", r.StatusCode)
	}
}
