package radiusweb

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/radius"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
	"github.com/gatehouse-net/gatehouse/web/webtest"
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
	site *webtest.Site
	st   *store.Store
	rad  *fakeRADIUS
	id   int64
}

func newBench(t *testing.T) *bench {
	t.Helper()
	ctx := context.Background()
	st := webtest.OpenStore(t)
	b := &bench{st: st, rad: &fakeRADIUS{st: st, outcome: radius.CoAAck}}
	b.site = webtest.New(t, webtest.Options{Store: st, Setup: func(srv *web.Server) error {
		return Register(srv, Options{RADIUS: b.rad, Sessions: st})
	}})
	mac, _ := net.ParseMAC("02:00:00:00:00:01")
	s, err := st.RecordAccounting(ctx, store.AccountingUpdate{Status: store.AcctStart, NAS: "aps", NASAddr: netip.MustParseAddr("10.99.0.10"),
		AcctSessionID: "S1", Person: "P0042", MAC: mac, IP: netip.MustParseAddr("10.20.0.5"), SSID: "Pupils", At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	b.id = s.ID
	return b
}

func TestPageListsNASAndLiveSessionsForTheNetworkRoleOnly(t *testing.T) {
	b := newBench(t)
	nm := b.site.Browser(t, web.RoleNetwork)
	r := nm.Get(PagePath)
	if r.StatusCode != http.StatusOK || !strings.Contains(r.Body, "P0042") || !strings.Contains(r.Body, "10.20.0.5") || !strings.Contains(r.Body, "aps") {
		t.Fatalf("%d\n%s", r.StatusCode, r.Body)
	}
	if r := b.site.Browser(t, web.RoleReception).Get(PagePath); r.StatusCode != http.StatusForbidden {
		t.Fatalf("reception got %d", r.StatusCode)
	}

	// Disconnect needs the CSRF token, and is done as the user.
	if r := nm.Post(DisconnectPath, url.Values{"id": {itoa(b.id)}}); r.StatusCode == http.StatusSeeOther {
		t.Fatal("disconnect without CSRF went through")
	}
	if r := nm.PostForm(DisconnectPath, url.Values{"id": {itoa(b.id)}}); r.StatusCode != http.StatusSeeOther || !strings.Contains(r.Header.Get("Location"), "done=ack") {
		t.Fatalf("disconnect: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	if len(b.rad.actors) != 1 || !strings.Contains(b.rad.actors[0], nm.User.Name) {
		t.Fatalf("actors %v", b.rad.actors)
	}

	// Rooms: set one, refuse a bad MAC.
	if r := nm.PostForm(RoomPath, url.Values{"ap": {"0A-00-00-00-00-01"}, "room": {"Science 3"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("set room: %d %s", r.StatusCode, r.Body)
	}
	if rooms, _ := b.st.APRooms(context.Background()); rooms["0a:00:00:00:00:01"] != "Science 3" {
		t.Fatalf("rooms %v", rooms)
	}
	if r := nm.PostForm(RoomPath, url.Values{"ap": {"not a mac"}, "room": {"x"}}); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad MAC: %d", r.StatusCode)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestAPIListsSessionsAndDisconnects(t *testing.T) {
	b := newBench(t)
	token := b.site.Token(t, web.RoleNetwork)
	client := b.site.NewBrowser(t)
	r := client.API(http.MethodGet, APISessions, token, "")
	var doc struct {
		Sessions []apiSession `json:"sessions"`
	}
	if err := json.Unmarshal([]byte(r.Body), &doc); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("%d %v %s", r.StatusCode, err, r.Body)
	}
	if len(doc.Sessions) != 1 || doc.Sessions[0].MAC != "02:00:00:00:00:01" || doc.Sessions[0].Person != "P0042" {
		t.Fatalf("%+v", doc.Sessions)
	}
	r = client.API(http.MethodPost, "/api/v1/sessions/"+itoa(b.id)+"/disconnect", token, "")
	if r.StatusCode != http.StatusOK || !strings.Contains(r.Body, `"outcome":"ack"`) {
		t.Fatalf("%d %s", r.StatusCode, r.Body)
	}
	if r := client.API(http.MethodPost, "/api/v1/sessions/999/disconnect", token, ""); r.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown session: %d", r.StatusCode)
	}
	if r := client.API(http.MethodPost, "/api/v1/sessions/x/disconnect", token, ""); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad id: %d", r.StatusCode)
	}
	if r := client.API(http.MethodGet, APISessions, b.site.Token(t, web.RoleDSL), ""); r.StatusCode != http.StatusForbidden {
		t.Fatalf("dsl role got %d", r.StatusCode)
	}
}
