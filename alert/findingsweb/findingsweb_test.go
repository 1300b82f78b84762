package findingsweb

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
	"github.com/gatehouse-net/gatehouse/web/webtest"
)

// The page runs over the daemon's store as it is.
var _ Store = (*store.Store)(nil)

// site is a web server with the findings page and API.
type site struct {
	t  *testing.T
	st *store.Store
	w  *webtest.Site
}

func newSite(t *testing.T) *site {
	t.Helper()
	st := webtest.OpenStore(t)
	w := webtest.New(t, webtest.Options{Store: st, Setup: func(srv *web.Server) error {
		Register(srv, st, nil)
		return nil
	}})
	return &site{t: t, st: w.Store, w: w}
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

var (
	pupilMAC = net.HardwareAddr{2, 0, 0, 0, 0x20, 0x0a}
	staffMAC = net.HardwareAddr{2, 0, 0, 0, 0x10, 0x0a}
)

// seed stores four findings with distinct evidence markers.
func (s *site) seed(t0 time.Time) {
	s.t.Helper()
	fs := []store.Finding{
		{At: t0, Segment: "pupil", SrcIP: netip.MustParseAddr("10.20.0.10"), SrcMAC: pupilMAC, DstIP: netip.MustParseAddr("192.0.2.11"), DstPort: 1194, Proto: "udp", Class: "vpn", Detail: "openvpn", Evidence: "marker-one"},
		{At: t0.Add(time.Hour), Segment: "pupil", SrcIP: netip.MustParseAddr("10.20.0.10"), SrcMAC: pupilMAC, DstIP: netip.MustParseAddr("192.0.2.17"), DstPort: 443, Proto: "tcp", Class: "doh", Detail: "doh:cloudflare", Evidence: "marker-two"},
		{At: t0.Add(2 * time.Hour), Segment: "staff", SrcIP: netip.MustParseAddr("10.10.0.10"), SrcMAC: staffMAC, DstIP: netip.MustParseAddr("192.0.2.14"), DstPort: 22, Proto: "tcp", Class: "ssh", Detail: "ssh", Evidence: "marker-three"},
		{At: t0.Add(24 * time.Hour), Segment: "staff", SrcIP: netip.MustParseAddr("10.10.0.10"), SrcMAC: staffMAC, DstIP: netip.MustParseAddr("192.0.2.15"), DstPort: 3128, Proto: "tcp", Class: "proxy", Detail: "http-connect", Evidence: `marker-four <script>alert(1)</script>`},
	}
	if err := s.st.InsertFindings(context.Background(), fs); err != nil {
		s.t.Fatal(err)
	}
}

func markers(body string) []string {
	var out []string
	for _, m := range []string{"marker-one", "marker-two", "marker-three", "marker-four"} {
		if strings.Contains(body, m) {
			out = append(out, m)
		}
	}
	return out
}

func TestFindingsPageByRole(t *testing.T) {
	s := newSite(t)
	s.seed(time.Date(2026, 3, 2, 9, 0, 0, 0, time.Local))
	cases := []struct {
		role       string
		wantStatus int
	}{
		{web.RoleDSL, http.StatusOK},
		{web.RoleNetwork, http.StatusOK},
		{web.RoleReception, http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.role, func(t *testing.T) {
			sess := s.login("user-"+c.role, c.role)
			status, body := s.get(Path, sess)
			if status != c.wantStatus {
				t.Fatalf("GET %s as %s: %d, want %d\n%s", Path, c.role, status, c.wantStatus, body)
			}
			_, home := s.get("/", sess)
			inNav := strings.Contains(home, `href="/findings"`)
			if inNav != (c.wantStatus == http.StatusOK) {
				t.Errorf("findings in %s's navigation: %v", c.role, inNav)
			}
			if c.wantStatus != http.StatusOK {
				if len(markers(body)) != 0 {
					t.Errorf("refused page shows findings: %s", body)
				}
				return
			}
			if got := markers(body); len(got) != 4 {
				t.Errorf("page shows %v, want all four findings", got)
			}
			if strings.Contains(body, "<script>") || !strings.Contains(body, "&lt;script&gt;") {
				t.Error("evidence is not HTML-escaped")
			}
			for _, want := range []string{"192.0.2.11:1194 udp", "02:00:00:00:20:0a", "doh:cloudflare", "4 findings."} {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %q", want)
				}
			}
		})
	}
}

func TestFindingsPageNeedsSignIn(t *testing.T) {
	s := newSite(t)
	resp := s.w.NewBrowser(t).Get(Path)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Fatalf("anonymous GET: %d to %q, want a redirect to /login", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestFindingsPageFilters(t *testing.T) {
	s := newSite(t)
	s.seed(time.Date(2026, 3, 2, 9, 0, 0, 0, time.Local))
	sess := s.login("dsl", web.RoleDSL)
	cases := []struct {
		name, query string
		want        []string
	}{
		{"class", "class=vpn", []string{"marker-one"}},
		{"segment", "segment=staff", []string{"marker-three", "marker-four"}},
		{"device", "device=02:00:00:00:20:0A", []string{"marker-one", "marker-two"}},
		{"device and class", "device=02-00-00-00-20-0a&class=doh", []string{"marker-two"}},
		{"from minute", "from=2026-03-02T10:00", []string{"marker-two", "marker-three", "marker-four"}},
		{"to minute is inclusive", "to=2026-03-02T10:00", []string{"marker-one", "marker-two"}},
		{"to date is the whole day", "to=2026-03-02", []string{"marker-one", "marker-two", "marker-three"}},
		{"time range", "from=2026-03-02T09:30&to=2026-03-02T11:00", []string{"marker-two", "marker-three"}},
		{"nothing", "class=tor", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := s.get(Path+"?"+c.query, sess)
			if status != http.StatusOK {
				t.Fatalf("status %d\n%s", status, body)
			}
			got := markers(body)
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("shows %v, want %v", got, c.want)
			}
		})
	}
	for _, q := range []string{"class=bogus", "device=not-a-mac", "from=yesterday", "to=2026-13-01", "from=2026-03-03&to=2026-03-02", "page=0", "page=x"} {
		t.Run("bad "+q, func(t *testing.T) {
			status, body := s.get(Path+"?"+q, sess)
			if status != http.StatusBadRequest || !strings.Contains(body, `class="error"`) {
				t.Errorf("status %d, want 400 with an error message", status)
			}
			if len(markers(body)) != 0 {
				t.Errorf("a refused filter still listed findings")
			}
		})
	}
}

func TestFindingsPagePagesKeepTheFilter(t *testing.T) {
	s := newSite(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.Local)
	var fs []store.Finding
	for i := range PageSize + 3 {
		fs = append(fs, store.Finding{At: t0.Add(time.Duration(i) * time.Second), Segment: "pupil", Class: "vpn", Evidence: fmt.Sprintf("row-%03d;", i)})
	}
	fs = append(fs, store.Finding{At: t0, Segment: "pupil", Class: "doh", Evidence: "other-class;"})
	if err := s.st.InsertFindings(context.Background(), fs); err != nil {
		t.Fatal(err)
	}
	sess := s.login("net", web.RoleNetwork)
	_, first := s.get(Path+"?class=vpn", sess)
	next := regexp.MustCompile(`rel="next" href="([^"]+)"`).FindStringSubmatch(first)
	if next == nil {
		t.Fatalf("first page has no next link")
	}
	if strings.Count(first, "row-") != PageSize || !strings.Contains(first, "row-052;") || strings.Contains(first, "row-002;") {
		t.Fatalf("first page does not hold the %d newest", PageSize)
	}
	link := strings.ReplaceAll(next[1], "&amp;", "&")
	status, second := s.get(link, sess)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d", link, status)
	}
	if strings.Count(second, "row-") != 3 || strings.Contains(second, "other-class;") || strings.Contains(second, `rel="next"`) || !strings.Contains(second, `rel="prev"`) {
		t.Errorf("second page of %s is wrong:\n%s", link, second)
	}
}
