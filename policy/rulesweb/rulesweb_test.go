package rulesweb

import (
	"context"
	"encoding/json"
	"errors"
	"html"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
	"github.com/gatehouse-net/gatehouse/web/webtest"
)

func testNetwork() policy.Network {
	seg := func(name, iface, subnet string) policy.SegmentSpec {
		p := netip.MustParsePrefix(subnet)
		return policy.Defaults(name, iface, p, p.Addr().Next(), false)
	}
	return policy.Network{
		Uplink:     "wan0",
		Segments:   []policy.SegmentSpec{seg("staff", "lan10", "10.10.0.0/22"), seg("pupil", "lan20", "10.20.0.0/21")},
		Servers:    map[string]netip.Prefix{"mis": netip.MustParsePrefix("10.5.0.0/24")},
		PortalPort: 8080,
		DNSPort:    5353,
	}
}

type site struct {
	t       *testing.T
	st      *store.Store
	w       *webtest.Site
	changes atomic.Int32
	failing atomic.Bool
}

// newSite is the admin server with the rules pages and one user per role,
// named <role>-user.
func newSite(t *testing.T) *site {
	t.Helper()
	s := &site{t: t, st: webtest.OpenStore(t)}
	s.w = webtest.New(t, webtest.Options{Store: s.st, Setup: func(srv *web.Server) error {
		return Register(srv, Options{Store: s.st, Network: testNetwork(), OnChange: func(context.Context) error {
			s.changes.Add(1)
			if s.failing.Load() {
				return errors.New("enforcer refused")
			}
			return nil
		}})
	}})
	for _, role := range web.Roles() {
		s.w.AddUser(t, role+"-user", role, webtest.Password)
	}
	return s
}

// browser is one signed-in user. Its answers are the page text with
// HTML entities decoded, or for a redirect the Location.
type browser struct {
	s *site
	b *webtest.Browser
}

func (s *site) login(role string) *browser {
	s.t.Helper()
	b := s.w.NewBrowser(s.t)
	b.Login(role+"-user", webtest.Password)
	return &browser{s: s, b: b}
}

func (b *browser) get(path string) (int, string) {
	b.s.t.Helper()
	r := b.b.Get(path)
	return r.StatusCode, html.UnescapeString(r.Body)
}

func (b *browser) post(path string, form url.Values) (int, string) {
	b.s.t.Helper()
	r := b.b.Post(path, form)
	if r.StatusCode == http.StatusSeeOther {
		return r.StatusCode, r.Header.Get("Location")
	}
	return r.StatusCode, html.UnescapeString(r.Body)
}

// submit posts with the session's CSRF token.
func (b *browser) submit(path string, fields map[string]string) (int, string) {
	b.s.t.Helper()
	form := url.Values{"csrf": {b.b.CSRF}}
	for k, v := range fields {
		form.Set(k, v)
	}
	return b.post(path, form)
}

func (s *site) names() string {
	s.t.Helper()
	rs, err := s.st.Rules(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return strings.Join(out, ",")
}

func gamesRule() map[string]string {
	return map[string]string{"name": "games", "who_kind": "group", "who_id": "Year 9", "what_kind": "service",
		"proto": "udp", "ports": "3074, 27000-27050", "where": "pupil", "when_kind": "weekly",
		"slots": "Mon-Fri 09:00-15:30", "action": "block-and-alert"}
}

func TestNetworkRoleAddsEditsMovesAndDeletesRulesAudited(t *testing.T) {
	s := newSite(t)
	b := s.login(web.RoleNetwork)
	if code, body := b.get("/rules"); code != http.StatusOK || !strings.Contains(body, "No rules yet") || !strings.Contains(body, `action="/rules"`) {
		t.Fatalf("empty list: %d\n%s", code, body)
	}
	steps := []struct {
		name   string
		path   string
		fields map[string]string
		want   string // rule names in order afterwards
	}{
		{"add games", "/rules", gamesRule(), "games"},
		{"add proxies", "/rules", map[string]string{"name": "proxies", "who_kind": "anyone", "what_kind": "domains",
			"domains": "proxy.example\nVPN.example.", "when_kind": "always", "action": "block"}, "games,proxies"},
		{"add mis", "/rules", map[string]string{"name": "mis", "who_kind": "device", "who_id": "02:00:00:00:10:0a",
			"what_kind": "server", "server": "mis", "where": "staff", "when_kind": "always", "action": "allow"}, "games,proxies,mis"},
		{"move mis up", "/rules/move", map[string]string{"id": "3", "dir": "up"}, "games,mis,proxies"},
		{"move games down", "/rules/move", map[string]string{"id": "1", "dir": "down"}, "mis,games,proxies"},
		{"edit proxies", "/rules/edit", func() map[string]string {
			f := map[string]string{"id": "2", "name": "proxies and vpns", "who_kind": "anyone", "what_kind": "domains",
				"domains": "proxy.example, vpn.example, tor.example", "when_kind": "term", "slots": "Mon-Fri 08:00-16:00",
				"action": "block-and-alert", "disabled": "1"}
			return f
		}(), "mis,games,proxies and vpns"},
		{"delete games", "/rules/delete", map[string]string{"id": "1"}, "mis,proxies and vpns"},
	}
	for i, st := range steps {
		code, loc := b.submit(st.path, st.fields)
		if code != http.StatusSeeOther || !strings.HasPrefix(loc, "/rules?done=") || strings.Contains(loc, "apply=failed") {
			t.Fatalf("%s: %d %s", st.name, code, loc)
		}
		if got := s.names(); got != st.want {
			t.Fatalf("%s: rules %q, want %q", st.name, got, st.want)
		}
		if n := s.changes.Load(); n != int32(i+1) {
			t.Fatalf("%s: OnChange called %d times, want %d", st.name, n, i+1)
		}
	}
	rs, err := s.st.Rules(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	edited := rs[1]
	if edited.WhenKind != "term" || !edited.Disabled || strings.Join(edited.Domains, " ") != "proxy.example vpn.example tor.example" ||
		len(edited.Slots) != 1 || edited.Action != "block-and-alert" {
		t.Errorf("edited rule stored as %+v", edited)
	}
	code, body := b.get("/rules?done=deleted")
	for _, want := range []string{"Rule deleted.", "device 02:00:00:00:10:0a", "server mis", "term time, Mon-Fri 08:00-16:00", "disabled"} {
		if !strings.Contains(body, want) {
			t.Errorf("list page (%d) lacks %q", code, want)
		}
	}
	if code, body := b.get("/rules/edit?id=2"); code != http.StatusOK || !strings.Contains(body, `value="proxies and vpns"`) ||
		!strings.Contains(body, "proxy.example\nvpn.example\ntor.example") {
		t.Errorf("edit page: %d\n%s", code, body)
	}

	entries, err := s.st.AuditList(context.Background(), 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Action, "rule.") {
			continue
		}
		actions = append([]string{e.Action}, actions...)
		if e.Actor != "web:network-user" {
			t.Errorf("%s by %q", e.Action, e.Actor)
		}
		hasBefore, hasAfter := e.Before != "", e.After != ""
		wantBefore, wantAfter := e.Action != "rule.create", e.Action != "rule.delete"
		if hasBefore != wantBefore || hasAfter != wantAfter {
			t.Errorf("%s %s: before %q after %q", e.Action, e.Object, e.Before, e.After)
		}
		if e.Action == "rule.update" {
			var before, after map[string]any
			_ = json.Unmarshal([]byte(e.Before), &before)
			_ = json.Unmarshal([]byte(e.After), &after)
			if before["name"] != "proxies" || after["name"] != "proxies and vpns" || after["disabled"] != true {
				t.Errorf("update audited as %s -> %s", e.Before, e.After)
			}
		}
	}
	want := "rule.create rule.create rule.create rule.move rule.move rule.update rule.delete"
	if got := strings.Join(actions, " "); got != want {
		t.Errorf("audited %s, want %s", got, want)
	}
}

func TestOtherRolesCannotSeeOrChangeRules(t *testing.T) {
	s := newSite(t)
	if _, err := s.st.CreateRule(context.Background(), "test", store.Rule{Name: "keep", WhoKind: "anyone", WhatKind: "any", WhenKind: "always", Action: "block"}); err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{web.RoleReception, web.RoleDSL} {
		b := s.login(role)
		if code, _ := b.get("/rules"); code != http.StatusForbidden {
			t.Errorf("%s: GET /rules = %d, want 403", role, code)
		}
		if code, _ := b.get("/rules/edit?id=1"); code != http.StatusForbidden {
			t.Errorf("%s: GET /rules/edit = %d, want 403", role, code)
		}
		for _, c := range []struct {
			path   string
			fields map[string]string
		}{
			{"/rules", gamesRule()},
			{"/rules/edit", map[string]string{"id": "1", "name": "changed", "who_kind": "anyone", "what_kind": "any", "when_kind": "always", "action": "allow"}},
			{"/rules/move", map[string]string{"id": "1", "dir": "down"}},
			{"/rules/delete", map[string]string{"id": "1"}},
		} {
			if code, _ := b.submit(c.path, c.fields); code != http.StatusForbidden {
				t.Errorf("%s: POST %s = %d, want 403", role, c.path, code)
			}
		}
		if _, body := b.get("/"); strings.Contains(body, `href="/rules"`) {
			t.Errorf("%s: navigation offers the rules page", role)
		}
	}
	if got := s.names(); got != "keep" {
		t.Fatalf("rules after refused changes: %q", got)
	}
	if s.changes.Load() != 0 {
		t.Fatal("OnChange called for refused changes")
	}
}

func TestBadFormsAreRefusedWithAReasonAndNothingStored(t *testing.T) {
	s := newSite(t)
	b := s.login(web.RoleNetwork)
	with := func(k, v string) map[string]string {
		f := gamesRule()
		f[k] = v
		return f
	}
	cases := []struct {
		name   string
		fields map[string]string
		reason string
	}{
		{"bad port", with("ports", "80, http"), `"http" is not a port`},
		{"reversed range", with("ports", "9000-8000"), `"9000-8000" is not a port`},
		{"no ports", with("ports", ""), "needs at least one port"},
		{"weekly without slots", with("slots", ""), "needs time slots"},
		{"bad day", with("slots", "Funday 09:00-10:00"), `"Funday" is not a day`},
		{"end before start", with("slots", "Mon 10:00-09:00"), "the end after the start"},
		{"unknown segment", with("where", "kitchen"), `unknown segment "kitchen"`},
		{"unknown action", with("action", "shrug"), `unknown action "shrug"`},
		{"bad MAC", map[string]string{"who_kind": "device", "who_id": "not-a-mac", "what_kind": "any", "when_kind": "always", "action": "block"}, "is not a MAC address"},
		{"unknown server", map[string]string{"who_kind": "anyone", "what_kind": "server", "server": "nas", "when_kind": "always", "action": "allow"}, `unknown server "nas"`},
		{"host bits", map[string]string{"who_kind": "anyone", "what_kind": "subnet", "subnet": "10.5.0.9/24", "when_kind": "always", "action": "allow"}, "did you mean 10.5.0.0/24"},
		{"bad domain", map[string]string{"who_kind": "anyone", "what_kind": "domains", "domains": "https://x.example/", "when_kind": "always", "action": "block"}, "is not a domain name"},
	}
	for _, c := range cases {
		code, body := b.submit("/rules", c.fields)
		if code != http.StatusBadRequest || !strings.Contains(body, c.reason) {
			t.Errorf("%s: %d, want 400 with %q", c.name, code, c.reason)
		}
		if c.fields["name"] == "games" && !strings.Contains(body, `value="games"`) {
			t.Errorf("%s: the form lost what was typed", c.name)
		}
	}
	// The edit form refuses the same way, and keeps the rule as it was.
	if code, loc := b.submit("/rules", gamesRule()); code != http.StatusSeeOther {
		t.Fatalf("add: %d %s", code, loc)
	}
	f := with("ports", "0")
	f["id"] = "1"
	if code, body := b.submit("/rules/edit", f); code != http.StatusBadRequest || !strings.Contains(body, `"0" is not a port`) {
		t.Errorf("bad edit: %d", code)
	}
	for _, c := range []struct {
		path   string
		fields map[string]string
		code   int
	}{
		{"/rules/move", map[string]string{"id": "1", "dir": "sideways"}, http.StatusBadRequest},
		{"/rules/move", map[string]string{"id": "99", "dir": "up"}, http.StatusNotFound},
		{"/rules/delete", map[string]string{"id": "x"}, http.StatusBadRequest},
		{"/rules/delete", map[string]string{"id": "99"}, http.StatusNotFound},
	} {
		if code, _ := b.submit(c.path, c.fields); code != c.code {
			t.Errorf("POST %s %v: %d, want %d", c.path, c.fields, code, c.code)
		}
	}
	if code, _ := b.post("/rules", url.Values{"name": {"no csrf"}, "who_kind": {"anyone"}, "what_kind": {"any"}, "when_kind": {"always"}, "action": {"block"}}); code != http.StatusForbidden {
		t.Errorf("form without CSRF token: %d, want 403", code)
	}
	if code, _ := b.get("/rules/edit?id=42"); code != http.StatusNotFound {
		t.Errorf("edit of a missing rule: %d", code)
	}
	rs, err := s.st.Rules(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Ports[0].Lo != 3074 {
		t.Fatalf("rules after refusals: %+v", rs)
	}
	if n := s.changes.Load(); n != 1 {
		t.Fatalf("OnChange called %d times, want once (the one good add)", n)
	}
}

func TestAChangeTheEnforcerRefusesIsSavedAndSaidSo(t *testing.T) {
	s := newSite(t)
	s.failing.Store(true)
	b := s.login(web.RoleNetwork)
	code, loc := b.submit("/rules", gamesRule())
	if code != http.StatusSeeOther || !strings.Contains(loc, "apply=failed") {
		t.Fatalf("add with a failing OnChange: %d %s", code, loc)
	}
	if _, body := b.get(loc); !strings.Contains(body, "saved but could not be put in force") {
		t.Fatalf("the list does not say the change is not in force:\n%s", body)
	}
}
