package alertweb

import (
	"context"
	"encoding/csv"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
	"github.com/gatehouse-net/gatehouse/web/webtest"
)

type site struct {
	t  *testing.T
	st *store.Store
	w  *webtest.Site
}

var t0 = time.Date(2026, 3, 2, 10, 41, 7, 0, time.UTC)

func newSite(t *testing.T) *site {
	t.Helper()
	st := webtest.OpenStore(t)
	w := webtest.New(t, webtest.Options{Store: st, Setup: func(srv *web.Server) error {
		return Register(srv, Options{Store: st, Location: time.UTC, Now: func() time.Time { return t0.Add(time.Hour) }})
	}})
	return &site{t: t, st: st, w: w}
}

// login creates a user with role and signs in as them through the login
// form.
func (s *site) login(name, role string) *webtest.Browser {
	s.t.Helper()
	return s.w.SignIn(s.t, name, role)
}

// get fetches path as the browser (nil: anonymous).
func (s *site) get(path string, b *webtest.Browser) (int, string) {
	s.t.Helper()
	if b == nil {
		b = s.w.NewBrowser(s.t)
	}
	r := b.Get(path)
	return r.StatusCode, r.Body
}

// post submits form as the browser, with its session's CSRF token.
func (s *site) post(path string, b *webtest.Browser, form url.Values) (webtest.Response, string) {
	s.t.Helper()
	r := b.PostForm(path, form)
	return r, r.Body
}

var pupilMAC = net.HardwareAddr{2, 0, 0, 0, 0x20, 0x0a}

// seed raises one alert: a pupil's VPN, with a formula in the hostname a
// device chose, as a hostile device would.
func (s *site) seed() int64 {
	s.t.Helper()
	ctx := context.Background()
	fs := []store.Finding{{At: t0, Source: "inspect", Class: "vpn", Segment: "pupil", SrcIP: netip.MustParseAddr("10.20.0.10"), SrcMAC: pupilMAC,
		DstIP: netip.MustParseAddr("192.0.2.11"), DstPort: 1194, Proto: "udp", Detail: "openvpn", Evidence: "OpenVPN hard reset"}}
	if err := s.st.InsertFindings(ctx, fs); err != nil {
		s.t.Fatal(err)
	}
	if err := s.st.InsertDNSQueries(ctx, []store.DNSQuery{{At: t0.Add(-time.Minute), Client: netip.MustParseAddr("10.20.0.10"), Name: "vpn.example.net",
		Type: "A", Answer: "192.0.2.11", Action: "forwarded"}}); err != nil {
		s.t.Fatal(err)
	}
	id, _, err := s.st.FoldFinding(ctx, "test", fs[0].ID, store.Alert{Key: "vpn|mac", Class: "vpn", Severity: "high", FirstSeen: t0,
		Segment: "pupil", SrcIP: fs[0].SrcIP, SrcMAC: pupilMAC, DeviceName: "=HYPERLINK(\"http://evil\")", PersonName: "Sam Pupil",
		PersonGroup: "Year 9, 9B", AttributedBy: "lease", Detail: "openvpn", Destination: "192.0.2.11:1194/udp", Evidence: "OpenVPN hard reset"},
		nil, t0)
	if err != nil {
		s.t.Fatal(err)
	}
	return id
}

func TestRolesOnEveryPage(t *testing.T) {
	s := newSite(t)
	id := s.seed()
	dsl, network, reception := s.login("dsl", web.RoleDSL), s.login("net", web.RoleNetwork), s.login("recep", web.RoleReception)
	for _, path := range []string{Path, Link(id), IncidentsPath, CSVPath, PrintPath} {
		if code, _ := s.get(path, dsl); code != http.StatusOK {
			t.Errorf("dsl GET %s: %d", path, code)
		}
		for name, sess := range map[string]*webtest.Browser{"network": network, "reception": reception} {
			if code, _ := s.get(path, sess); code != http.StatusForbidden {
				t.Errorf("%s GET %s: %d, want 403", name, path, code)
			}
		}
		if code, _ := s.get(path, nil); code != http.StatusSeeOther {
			t.Errorf("anonymous GET %s: %d, want a redirect to the login", path, code)
		}
	}
	for _, path := range []string{ChangePath, SuppressPath} {
		for name, sess := range map[string]*webtest.Browser{"network": network, "reception": reception} {
			if resp, _ := s.post(path, sess, url.Values{"id": {"1"}, "state": {"closed"}, "note": {"x"}}); resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s POST %s: %d, want 403", name, path, resp.StatusCode)
			}
		}
	}
	if a, _ := s.st.AlertByID(context.Background(), id); a.State != store.AlertNew {
		t.Errorf("a forbidden post changed the alert: %+v", a)
	}
}

func TestTriageToTheIncidentLog(t *testing.T) {
	s := newSite(t)
	id := s.seed()
	dsl := s.login("dsl", web.RoleDSL)
	code, page := s.get(Link(id), dsl)
	for _, want := range []string{"Sam Pupil (Year 9, 9B)", "A VPN hides", "OpenVPN hard reset", "vpn.example.net", "Nobody has looked at this yet"} {
		if code != 200 || !strings.Contains(page, want) {
			t.Errorf("alert page lacks %q (%d)", want, code)
		}
	}
	// Without CSRF: refused.
	if resp := dsl.Post(ChangePath, url.Values{"id": {"1"}, "state": {"triaged"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("post without CSRF: %d", resp.StatusCode)
	}
	resp, body := s.post(ChangePath, dsl, url.Values{"id": {"1"}, "state": {"triaged"}, "outcome": {"true-positive"}, "note": {"Spoke to Sam; VPN app removed."}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("triage: %d %s", resp.StatusCode, body)
	}
	if resp, _ := s.post(ChangePath, dsl, url.Values{"id": {"1"}, "state": {"closed"}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("closing without a note: %d, want 400", resp.StatusCode)
	}
	a, _ := s.st.AlertByID(context.Background(), id)
	if a.State != store.AlertTriaged || a.Outcome != store.OutcomeTruePositive {
		t.Errorf("alert %+v", a)
	}
	_, log := s.get(IncidentsPath, dsl)
	if !strings.Contains(log, "Spoke to Sam; VPN app removed.") || !strings.Contains(log, "Sam Pupil") {
		t.Errorf("incident log lacks the triage:\n%s", log)
	}
	_, raw := s.get(CSVPath, dsl)
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(raw, "\xef\xbb\xbf")))
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || strings.Join(recs[0], "|") != strings.Join(CSVHeader, "|") {
		t.Fatalf("csv %q", recs)
	}
	for _, cell := range recs[1] {
		if cell != "" && strings.ContainsRune("=+-@", rune(cell[0])) {
			t.Errorf("cell %q would be read as a formula", cell)
		}
	}
	if !strings.Contains(recs[1][4], "VPN app removed") {
		t.Errorf("actions %q", recs[1][4])
	}
	// Suppression.
	if resp, body := s.post(SuppressPath, dsl, url.Values{"id": {"1"}, "days": {"30"}, "reason": {"exam board VPN"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("suppress: %d %s", resp.StatusCode, body)
	}
	if ok, _ := s.st.Suppressed(context.Background(), pupilMAC, "vpn", t0.Add(2*time.Hour)); !ok {
		t.Error("not suppressed")
	}
	if resp, _ := s.post(SuppressPath, dsl, url.Values{"id": {"1"}, "days": {"30"}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("suppression without a reason: %d", resp.StatusCode)
	}
}

func TestSafeCell(t *testing.T) {
	for in, want := range map[string]string{"=1+1": "'=1+1", "+44": "'+44", "-x": "'-x", "@SUM": "'@SUM", "\tx": "'\tx", "Sam": "Sam", "": ""} {
		if got := SafeCell(in); got != want {
			t.Errorf("SafeCell(%q) = %q, want %q", in, got, want)
		}
	}
}
