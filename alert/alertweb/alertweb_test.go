package alertweb

import (
	"context"
	"encoding/csv"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
	"github.com/gatehouse-net/gatehouse/web/webtest"
)

// The pages run over the daemon's store as it is.
var _ Store = (*store.Store)(nil)

var t0 = time.Date(2026, 3, 2, 10, 41, 7, 0, time.UTC)

// site is the admin shell with the alert pages, on a real TLS listener.
type site struct {
	*webtest.Site
	t  *testing.T
	st *store.Store
}

func newSite(t *testing.T) *site {
	t.Helper()
	return newSiteWith(t, "")
}

// newSiteWith is newSite with the people pages' named-person path.
func newSiteWith(t *testing.T, namedPersonPath string) *site {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ws := webtest.New(t, webtest.Options{Store: st, Setup: func(srv *web.Server) error {
		return Register(srv, Options{Store: st, Location: time.UTC, Now: func() time.Time { return t0.Add(time.Hour) }, NamedPersonPath: namedPersonPath})
	}})
	return &site{Site: ws, t: t, st: st}
}

var pupilMAC = net.HardwareAddr{2, 0, 0, 0, 0x20, 0x0a}

// seed raises one alert: a pupil's VPN, with a formula in the hostname a
// device chose, as a hostile device would.
func (s *site) seed() int64 { return s.seedPerson(0) }

// seedPerson is seed with the finding attributed to person number person
// (0: to nobody).
func (s *site) seedPerson(person int64) int64 {
	s.t.Helper()
	ctx := context.Background()
	fs := []store.Finding{{At: t0, Source: "inspect", Class: "vpn", Segment: "pupil", SrcIP: netip.MustParseAddr("10.20.0.10"), SrcMAC: pupilMAC,
		DstIP: netip.MustParseAddr("192.0.2.11"), DstPort: 1194, Proto: "udp", Detail: "openvpn", Evidence: "OpenVPN hard reset", PersonID: person}}
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
	dsl, network, reception, anon := s.Browser(t, web.RoleDSL), s.Browser(t, web.RoleNetwork), s.Browser(t, web.RoleReception), s.NewBrowser(t)
	for _, path := range []string{Path, Link(id), IncidentsPath, CSVPath, PrintPath, CSSPath} {
		if r := dsl.Get(path); r.StatusCode != http.StatusOK {
			t.Errorf("dsl GET %s: %d", path, r.StatusCode)
		}
		for name, b := range map[string]*webtest.Browser{"network": network, "reception": reception} {
			if r := b.Get(path); r.StatusCode != http.StatusForbidden {
				t.Errorf("%s GET %s: %d, want 403", name, path, r.StatusCode)
			}
		}
		if r := anon.Get(path); r.StatusCode != http.StatusSeeOther {
			t.Errorf("anonymous GET %s: %d, want a redirect to the login", path, r.StatusCode)
		}
	}
	for _, path := range []string{ChangePath, SuppressPath} {
		for name, b := range map[string]*webtest.Browser{"network": network, "reception": reception} {
			if r := b.PostForm(path, url.Values{"id": {"1"}, "state": {"closed"}, "note": {"x"}, "reason": {"x"}, "days": {"3"}}); r.StatusCode != http.StatusForbidden {
				t.Errorf("%s POST %s: %d, want 403", name, path, r.StatusCode)
			}
		}
	}
	if a, _ := s.st.AlertByID(context.Background(), id); a.State != store.AlertNew {
		t.Errorf("a forbidden post changed the alert: %+v", a)
	}
	for name, want := range map[string]int{web.RoleDSL: http.StatusOK, web.RoleNetwork: http.StatusForbidden, web.RoleReception: http.StatusForbidden} {
		if r := anon.API(http.MethodGet, APIPath, s.Token(t, name), ""); r.StatusCode != want {
			t.Errorf("%s token GET %s: %d, want %d", name, APIPath, r.StatusCode, want)
		} else if want == http.StatusOK && !strings.Contains(r.Body, `"person":"Sam Pupil"`) {
			t.Errorf("API body %s", r.Body)
		}
	}
}

func TestTriageToTheIncidentLog(t *testing.T) {
	s := newSite(t)
	id := s.seed()
	dsl := s.Browser(t, web.RoleDSL)
	r := dsl.Get(Link(id))
	for _, want := range []string{"Sam Pupil (Year 9, 9B)", "A VPN hides", "OpenVPN hard reset", "vpn.example.net", "Nobody has looked at this yet"} {
		if r.StatusCode != 200 || !strings.Contains(r.Body, want) {
			t.Errorf("alert page lacks %q (%d)", want, r.StatusCode)
		}
	}
	if r := dsl.PostForm(ChangePath, url.Values{"id": {"1"}, "state": {"triaged"}, "csrf": {""}}); r.StatusCode != http.StatusForbidden {
		t.Errorf("post without CSRF: %d", r.StatusCode)
	}
	if r := dsl.PostForm(ChangePath, url.Values{"id": {"1"}, "state": {"triaged"}, "outcome": {"true-positive"}, "note": {"Spoke to Sam; VPN app removed."}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("triage: %d %s", r.StatusCode, r.Body)
	}
	if r := dsl.PostForm(ChangePath, url.Values{"id": {"1"}, "state": {"closed"}}); r.StatusCode != http.StatusBadRequest {
		t.Errorf("closing without a note: %d, want 400", r.StatusCode)
	}
	a, _ := s.st.AlertByID(context.Background(), id)
	if a.State != store.AlertTriaged || a.Outcome != store.OutcomeTruePositive {
		t.Errorf("alert %+v", a)
	}
	if e := s.LastAudit(t); e.Action != "alert.change" || !strings.Contains(e.Actor, "dsl") {
		t.Errorf("audit %+v", e)
	}
	log := dsl.Get(IncidentsPath).Body
	if !strings.Contains(log, "Spoke to Sam; VPN app removed.") || !strings.Contains(log, "Sam Pupil") {
		t.Errorf("incident log lacks the triage:\n%s", log)
	}
	raw := dsl.Get(CSVPath).Body
	recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(raw, "\xef\xbb\xbf"))).ReadAll()
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
	if !strings.Contains(recs[1][4], "VPN app removed") || !strings.HasPrefix(recs[1][2], "'=HYPERLINK") {
		t.Errorf("row %q", recs[1])
	}
	if p := dsl.Get(PrintPath).Body; !strings.Contains(p, "Online safety incident log") || !strings.Contains(p, "VPN app removed") {
		t.Errorf("print page:\n%s", p)
	}
	if r := dsl.PostForm(SuppressPath, url.Values{"id": {"1"}, "days": {"30"}, "reason": {"exam board VPN"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("suppress: %d %s", r.StatusCode, r.Body)
	}
	if ok, _ := s.st.Suppressed(context.Background(), pupilMAC, "vpn", t0.Add(2*time.Hour)); !ok {
		t.Error("not suppressed")
	}
	if r := dsl.PostForm(SuppressPath, url.Values{"id": {"1"}, "days": {"30"}}); r.StatusCode != http.StatusBadRequest {
		t.Errorf("suppression without a reason: %d", r.StatusCode)
	}
}

func TestSafeCell(t *testing.T) {
	for in, want := range map[string]string{"=1+1": "'=1+1", "+44": "'+44", "-x": "'-x", "@SUM": "'@SUM", "\tx": "'\tx", "Sam": "Sam", "": ""} {
		if got := SafeCell(in); got != want {
			t.Errorf("SafeCell(%q) = %q, want %q", in, got, want)
		}
	}
}

// The alert's timeline shows the device's flows an hour either side: the
// far end, the name it was looked up by, the bytes and the class; a flow
// outside the window, or another device's, is not shown.
func TestTimelineShowsTheDevicesFlows(t *testing.T) {
	s := newSite(t)
	id := s.seed()
	c := netip.MustParseAddr("10.20.0.10")
	flows := []store.Flow{
		{Start: t0.Add(-30 * time.Second), Last: t0.Add(5 * time.Minute), Ended: true, Segment: "pupil", MAC: pupilMAC, Client: c, ClientPort: 40000,
			Server: netip.MustParseAddr("192.0.2.11"), ServerPort: 1194, Proto: "udp", Name: "vpn.example.net", Class: "vpn", BytesOut: 48 << 10, BytesIn: 900 << 10},
		{Start: t0.Add(-20 * time.Minute), Last: t0.Add(-19 * time.Minute), Ended: true, MAC: pupilMAC, Client: c, ClientPort: 40001,
			Server: netip.MustParseAddr("198.51.100.7"), ServerPort: 443, Proto: "tcp", Name: "homework.example", BytesOut: 2000, BytesIn: 30000},
		{Start: t0.Add(-3 * time.Hour), Last: t0.Add(-3 * time.Hour), MAC: pupilMAC, Client: c, ClientPort: 40002,
			Server: netip.MustParseAddr("198.51.100.8"), ServerPort: 443, Proto: "tcp", Name: "long-ago.example"},
		{Start: t0, Last: t0, MAC: net.HardwareAddr{2, 0, 0, 0, 0x20, 0x0b}, Client: netip.MustParseAddr("10.20.0.11"),
			Server: netip.MustParseAddr("198.51.100.9"), ServerPort: 443, Proto: "tcp", Name: "someone-else.example"},
	}
	if err := s.st.SaveFlows(context.Background(), flows); err != nil {
		t.Fatal(err)
	}
	r := s.Browser(t, web.RoleDSL).Get(Link(id))
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", Link(id), r.StatusCode)
	}
	for _, want := range []string{"vpn.example.net (192.0.2.11:1194/udp), 48 kB sent, 900 kB received, 5m30s — VPN use",
		"homework.example (198.51.100.7:443/tcp), 2000 bytes sent, 29 kB received, 1m0s", ">flow</td>", "vpn.example.net → "} {
		if !strings.Contains(r.Body, want) {
			t.Errorf("the timeline lacks %q", want)
		}
	}
	for _, not := range []string{"long-ago.example", "someone-else.example"} {
		if strings.Contains(r.Body, not) {
			t.Errorf("the timeline shows %q (outside the window or another device)", not)
		}
	}
}

// Where an alert's finding names a person, the DSL's alert page links the
// name to the DSL's limited view of that person; without a person on the
// finding, or without the path, the name is shown unlinked.
func TestAlertLinksTheNamedPersonForTheDSL(t *testing.T) {
	const named = "/people/named/person"
	s := newSiteWith(t, named)
	id := s.seedPerson(42)
	r := s.Browser(t, web.RoleDSL).Get(Link(id))
	if want := `<a href="/people/named/person?id=42">Sam Pupil (Year 9, 9B)</a>`; r.StatusCode != http.StatusOK || !strings.Contains(r.Body, want) {
		t.Fatalf("alert page (%d) lacks %s", r.StatusCode, want)
	}

	unnamed := newSiteWith(t, named)
	id = unnamed.seedPerson(0)
	r = unnamed.Browser(t, web.RoleDSL).Get(Link(id))
	if r.StatusCode != http.StatusOK || !strings.Contains(r.Body, "Sam Pupil") || strings.Contains(r.Body, named) {
		t.Fatalf("a finding naming nobody: (%d) link shown or name missing", r.StatusCode)
	}

	noPath := newSite(t)
	id = noPath.seedPerson(42)
	r = noPath.Browser(t, web.RoleDSL).Get(Link(id))
	if r.StatusCode != http.StatusOK || !strings.Contains(r.Body, "Sam Pupil") || strings.Contains(r.Body, "?id=42") {
		t.Fatalf("no named-person path: (%d) link shown or name missing", r.StatusCode)
	}
}
