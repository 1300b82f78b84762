package findingsweb

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/web"
)

// token signs in as a new user with role and creates an API token on the
// tokens page, as a person would.
func (s *site) token(name, role string) string {
	s.t.Helper()
	return s.login(name, role).NewToken("script")
}

// api GETs path with a bearer token ("" for none).
func (s *site) api(path, token string) (int, string) {
	s.t.Helper()
	r := s.w.NewBrowser(s.t).API(http.MethodGet, path, token, "")
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		s.t.Errorf("GET %s: Content-Type %q, want JSON", path, ct)
	}
	return r.StatusCode, r.Body
}

type apiList struct {
	Findings []struct {
		At                      time.Time
		Segment, Class          string
		SrcIP                   string `json:"src_ip"`
		SrcMAC                  string `json:"src_mac"`
		DstIP                   string `json:"dst_ip"`
		DstPort                 int    `json:"dst_port"`
		Proto, Detail, Evidence string
	}
	Total, Limit, Offset int
}

func TestFindingsAPIByRole(t *testing.T) {
	s := newSite(t)
	s.seed(time.Date(2026, 3, 2, 9, 0, 0, 0, time.Local))
	cases := []struct {
		name, role string // role "" sends no token
		want       int
	}{
		{"dsl", web.RoleDSL, http.StatusOK},
		{"network", web.RoleNetwork, http.StatusOK},
		{"reception", web.RoleReception, http.StatusForbidden},
		{"no token", "", http.StatusUnauthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok := ""
			if c.role != "" {
				tok = s.token("api-"+c.role, c.role)
			}
			status, body := s.api(APIPath, tok)
			if status != c.want {
				t.Fatalf("GET %s: %d, want %d\n%s", APIPath, status, c.want, body)
			}
			if status != http.StatusOK {
				if len(markers(body)) != 0 {
					t.Errorf("refused answer holds findings: %s", body)
				}
				return
			}
			var l apiList
			if err := json.Unmarshal([]byte(body), &l); err != nil {
				t.Fatalf("decode: %v\n%s", err, body)
			}
			if l.Total != 4 || len(l.Findings) != 4 || l.Limit != PageSize || l.Offset != 0 {
				t.Fatalf("list: total %d, %d findings, limit %d offset %d", l.Total, len(l.Findings), l.Limit, l.Offset)
			}
			// Newest first, as on the page.
			last := l.Findings[3]
			if l.Findings[0].Class != "proxy" || last.Class != "vpn" || last.SrcMAC != "02:00:00:00:20:0a" ||
				last.SrcIP != "10.20.0.10" || last.DstIP != "192.0.2.11" || last.DstPort != 1194 || last.Proto != "udp" ||
				last.Segment != "pupil" || last.Detail != "openvpn" || last.Evidence != "marker-one" {
				t.Errorf("findings %+v", l.Findings)
			}
		})
	}
	// A signed-in browser's cookie is not an API credential.
	sess := s.login("browser", web.RoleDSL)
	if status, _ := s.get(APIPath, sess); status != http.StatusUnauthorized {
		t.Errorf("session cookie on the API: %d, want 401", status)
	}
}

func TestFindingsAPIFilters(t *testing.T) {
	s := newSite(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.Local)
	s.seed(t0)
	tok := s.token("dsl", web.RoleDSL)
	cases := []struct {
		name, query string
		want        []string
		total       int
	}{
		{"class", "class=vpn", []string{"marker-one"}, 1},
		{"segment", "segment=staff", []string{"marker-three", "marker-four"}, 2},
		{"mac", "mac=02:00:00:00:20:0A", []string{"marker-one", "marker-two"}, 2},
		{"mac and class", "mac=02-00-00-00-20-0a&class=doh", []string{"marker-two"}, 1},
		{"since minute", "since=2026-03-02T10:00", []string{"marker-two", "marker-three", "marker-four"}, 3},
		{"until minute is inclusive", "until=2026-03-02T10:00", []string{"marker-one", "marker-two"}, 2},
		{"until date is the whole day", "until=2026-03-02", []string{"marker-one", "marker-two", "marker-three"}, 3},
		{"RFC 3339 range", "since=" + url.QueryEscape(t0.Add(30*time.Minute).Format(time.RFC3339)) +
			"&until=" + url.QueryEscape(t0.Add(2*time.Hour).UTC().Format(time.RFC3339)), []string{"marker-two", "marker-three"}, 2},
		{"limit", "limit=2", []string{"marker-three", "marker-four"}, 4},
		{"offset", "limit=2&offset=3", []string{"marker-one"}, 4},
		{"nothing", "class=tor", nil, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := s.api(APIPath+"?"+c.query, tok)
			var l apiList
			if status != http.StatusOK || json.Unmarshal([]byte(body), &l) != nil {
				t.Fatalf("status %d\n%s", status, body)
			}
			var got []string
			for _, f := range l.Findings {
				got = append(got, markers(f.Evidence)...)
			}
			if fmt.Sprint(markers(strings.Join(got, " "))) != fmt.Sprint(c.want) || len(got) != len(c.want) || l.Total != c.total {
				t.Errorf("lists %v (total %d), want %v (total %d)", got, l.Total, c.want, c.total)
			}
		})
	}
	for _, c := range []struct{ query, msg string }{
		{"class=bogus", "class"},
		{"mac=not-a-mac", "MAC address"},
		{"since=yesterday", "since: "},
		{"until=2026-13-01", "until: "},
		{"since=2026-03-03&until=2026-03-02", "since must be before until"},
		{"limit=0", "limit must be"},
		{"limit=1001", "limit must be"},
		{"limit=x", "limit must be"},
		{"offset=-1", "offset must be"},
	} {
		t.Run("bad "+c.query, func(t *testing.T) {
			status, body := s.api(APIPath+"?"+c.query, tok)
			var e struct{ Error string }
			if status != http.StatusBadRequest || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, c.msg) {
				t.Errorf("%d %s, want 400 with an error containing %q", status, body, c.msg)
			}
			if len(markers(body)) != 0 {
				t.Errorf("a refused filter still listed findings")
			}
		})
	}
}
