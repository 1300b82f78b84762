package radiusweb

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/radius"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
)

// fakeRADIUS records disconnects and answers with outcome.
type fakeRADIUS struct {
	st      *store.Store
	mu      sync.Mutex
	actors  []string
	outcome string
}

func (f *fakeRADIUS) NAS() []radius.NASStatus {
	return []radius.NASStatus{{Name: "aps", Address: "10.99.0.0/24", LastSeen: time.Now(), Requests: 12, Dropped: 3,
		CoA: map[string]uint64{"ack": 1}, RequireMA: true}}
}

func (f *fakeRADIUS) DisconnectSession(ctx context.Context, actor string, id int64) (radius.CoAResult, error) {
	if _, err := f.st.RADIUSSession(ctx, id); err != nil {
		return radius.CoAResult{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.actors = append(f.actors, actor)
	return radius.CoAResult{NAS: "aps", SessionID: id, Outcome: f.outcome}, nil
}

type bench struct {
	t   *testing.T
	st  *store.Store
	h   http.Handler
	rad *fakeRADIUS
	id  int64
}

func newBench(t *testing.T) *bench {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(dir, "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv, err := web.New(web.Options{Store: st, CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem"), Auto: true})
	if err != nil {
		t.Fatal(err)
	}
	b := &bench{t: t, st: st, rad: &fakeRADIUS{st: st, outcome: radius.CoAAck}}
	if err := Register(srv, Options{RADIUS: b.rad, Sessions: st}); err != nil {
		t.Fatal(err)
	}
	b.h = srv.Handler()
	mac, _ := net.ParseMAC("02:00:00:00:00:01")
	s, err := st.RecordAccounting(ctx, store.AccountingUpdate{Status: store.AcctStart, NAS: "aps", NASAddr: netip.MustParseAddr("10.99.0.10"),
		AcctSessionID: "S1", Person: "P0042", MAC: mac, IP: netip.MustParseAddr("10.20.0.5"), SSID: "Pupils", At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	b.id = s.ID
	return b
}

// login makes a user of role with a browser session and an API token.
func (b *bench) login(name, role string) (cookie, csrf, token string) {
	b.t.Helper()
	ctx := context.Background()
	u, err := b.st.CreateUser(ctx, "test", store.User{Name: name, Role: role, PasswordHash: "not-a-real-hash"})
	if err != nil {
		b.t.Fatal(err)
	}
	rnd := func() string {
		raw := make([]byte, 32)
		rand.Read(raw)
		return base64.RawURLEncoding.EncodeToString(raw)
	}
	hash := func(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) }
	cookie, csrf, token = rnd(), rnd()[:22], rnd()
	now := time.Now()
	if err := b.st.CreateSession(ctx, store.Session{TokenHash: hash(cookie), UserID: u.ID, CSRFToken: csrf, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		b.t.Fatal(err)
	}
	if _, err := b.st.CreateAPIToken(ctx, "test", store.APIToken{Name: "t", UserID: u.ID, TokenHash: hash(token)}); err != nil {
		b.t.Fatal(err)
	}
	return cookie, csrf, token
}

func (b *bench) do(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	return rec
}

func TestPageListsNASAndLiveSessionsForTheNetworkRoleOnly(t *testing.T) {
	b := newBench(t)
	cookie, csrf, _ := b.login("nm", web.RoleNetwork)
	req := httptest.NewRequest(http.MethodGet, PagePath, nil)
	req.AddCookie(&http.Cookie{Name: "gh_session", Value: cookie})
	rec := b.do(req)
	body := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.Contains(body, "P0042") || !strings.Contains(body, "10.20.0.5") || !strings.Contains(body, "aps") {
		t.Fatalf("%d\n%s", rec.Code, body)
	}
	rcookie, _, _ := b.login("desk", web.RoleReception)
	req = httptest.NewRequest(http.MethodGet, PagePath, nil)
	req.AddCookie(&http.Cookie{Name: "gh_session", Value: rcookie})
	if rec := b.do(req); rec.Code != http.StatusForbidden {
		t.Fatalf("reception got %d", rec.Code)
	}

	// Disconnect needs the CSRF token, and is done as the user.
	form := url.Values{"id": {itoa(b.id)}}
	req = httptest.NewRequest(http.MethodPost, DisconnectPath, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "gh_session", Value: cookie})
	if rec := b.do(req); rec.Code == http.StatusSeeOther {
		t.Fatal("disconnect without CSRF went through")
	}
	form.Set("csrf", csrf)
	req = httptest.NewRequest(http.MethodPost, DisconnectPath, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "gh_session", Value: cookie})
	if rec := b.do(req); rec.Code != http.StatusSeeOther || !strings.Contains(rec.Header().Get("Location"), "done=ack") {
		t.Fatalf("disconnect: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	if len(b.rad.actors) != 1 || !strings.Contains(b.rad.actors[0], "nm") {
		t.Fatalf("actors %v", b.rad.actors)
	}

	// Rooms: set one, refuse a bad MAC.
	post := func(form url.Values) *httptest.ResponseRecorder {
		form.Set("csrf", csrf)
		req := httptest.NewRequest(http.MethodPost, RoomPath, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: "gh_session", Value: cookie})
		return b.do(req)
	}
	if rec := post(url.Values{"ap": {"0A-00-00-00-00-01"}, "room": {"Science 3"}}); rec.Code != http.StatusSeeOther {
		t.Fatalf("set room: %d %s", rec.Code, rec.Body)
	}
	if rooms, _ := b.st.APRooms(context.Background()); rooms["0a:00:00:00:00:01"] != "Science 3" {
		t.Fatalf("rooms %v", rooms)
	}
	if rec := post(url.Values{"ap": {"not a mac"}, "room": {"x"}}); rec.Code != http.StatusBadRequest {
		t.Fatalf("bad MAC: %d", rec.Code)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestAPIListsSessionsAndDisconnects(t *testing.T) {
	b := newBench(t)
	_, _, token := b.login("nm", web.RoleNetwork)
	api := func(method, path string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		return b.do(req)
	}
	rec := api(http.MethodGet, APISessions)
	var doc struct {
		Sessions []apiSession `json:"sessions"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("%d %v %s", rec.Code, err, rec.Body)
	}
	if len(doc.Sessions) != 1 || doc.Sessions[0].MAC != "02:00:00:00:00:01" || doc.Sessions[0].Person != "P0042" {
		t.Fatalf("%+v", doc.Sessions)
	}
	rec = api(http.MethodPost, "/api/v1/sessions/"+itoa(b.id)+"/disconnect")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"outcome":"ack"`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if rec := api(http.MethodPost, "/api/v1/sessions/999/disconnect"); rec.Code != http.StatusNotFound {
		t.Fatalf("unknown session: %d", rec.Code)
	}
	if rec := api(http.MethodPost, "/api/v1/sessions/x/disconnect"); rec.Code != http.StatusBadRequest {
		t.Fatalf("bad id: %d", rec.Code)
	}
	_, _, dslToken := b.login("dsl", web.RoleDSL)
	req := httptest.NewRequest(http.MethodGet, APISessions, nil)
	req.Header.Set("Authorization", "Bearer "+dslToken)
	if rec := b.do(req); rec.Code != http.StatusForbidden {
		t.Fatalf("dsl role got %d", rec.Code)
	}
}
