package radiusweb

import (
	"context"
	"encoding/csv"
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

	"github.com/gatehouse-net/gatehouse/people"
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
		CoA: map[string]uint64{"ack": 1, "nak": 1}, RequireMA: true,
		// A device moved to another segment: the access point refused
		// the CoA (hostapd's answer) and acknowledged the Disconnect.
		LastCoA: []radius.CoAResult{
			{Kind: radius.KindDisconnect, NAS: "aps", MAC: "02:00:00:00:00:01", Outcome: radius.CoAAck, At: time.Now()},
			{Kind: radius.KindCoA, NAS: "aps", MAC: "02:00:00:00:00:01", Outcome: radius.CoANak, ErrorCause: 401,
				Err: "Unsupported-Attribute", At: time.Now()},
		}}}
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
	keys *radius.Keyring
	id   int64
}

func newBench(t *testing.T) *bench {
	t.Helper()
	ctx := context.Background()
	st := webtest.OpenStore(t)
	b := &bench{st: st, rad: &fakeRADIUS{st: st, outcome: radius.CoAAck}}
	var err error
	if b.keys, err = radius.NewKeyring(make([]byte, 32), st, []string{"Staff", "Pupils"}, nil); err != nil {
		t.Fatal(err)
	}
	b.site = webtest.New(t, webtest.Options{Store: st, Setup: func(srv *web.Server) error {
		ppl, err := people.New(people.Options{Store: st})
		if err != nil {
			return err
		}
		return Register(srv, Options{RADIUS: b.rad, Sessions: st, Keys: b.keys, Devices: st, Approver: ppl,
			ApproverErrors: ApproverErrors{UnknownOwner: people.ErrUnknownPerson, OwnerRevoked: people.ErrOwnerRevoked},
			Segments:       []string{"staff", "pupil"}, SSIDs: []string{"Staff", `Pupils;"Wi:Fi"`}})
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
	// Every recent Disconnect/CoA answer is shown per NAS, a NAK with its
	// Error-Cause.
	for _, want := range []string{"CoA 02:00:00:00:00:01: nak, Error-Cause 401 (Unsupported-Attribute)", "Disconnect 02:00:00:00:00:01: ack"} {
		if !strings.Contains(r.Body, want) {
			t.Fatalf("the NAS page does not show %q:\n%s", want, r.Body)
		}
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

func TestAPIRotatesAPersonalKey(t *testing.T) {
	b := newBench(t)
	token := b.site.Token(t, web.RoleNetwork)
	client := b.site.NewBrowser(t)
	mac, _ := net.ParseMAC("02:00:00:00:00:09")
	if r := client.API(http.MethodPost, "/api/v1/devices/02-00-00-00-00-09/key", token, ""); r.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown device: %d %s", r.StatusCode, r.Body)
	}
	if err := b.st.ApproveDevice(context.Background(), "test", mac, "", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	r := client.API(http.MethodPost, "/api/v1/devices/02-00-00-00-00-09/key?ssid=Pupils", token, "")
	var doc struct {
		MAC    string `json:"mac"`
		Key    string `json:"key"`
		WifiQR string `json:"wifi_qr"`
	}
	if err := json.Unmarshal([]byte(r.Body), &doc); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("%d %v %s", r.StatusCode, err, r.Body)
	}
	if doc.WifiQR != radius.WiFiQR("Pupils", doc.Key) {
		t.Fatalf("%+v", doc)
	}
	keys, err := b.keys.Keys(context.Background(), mac)
	if err != nil || len(keys) != 1 || keys[0] != doc.Key {
		t.Fatalf("stored key %v %v, printed %q", keys, err, doc.Key)
	}
	// A rotation keeping the old key a week: both are valid now.
	r = client.API(http.MethodPost, "/api/v1/devices/02-00-00-00-00-09/key?keep_old=7d", token, "")
	var doc2 struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal([]byte(r.Body), &doc2); err != nil || r.StatusCode != http.StatusOK || doc2.Key == doc.Key {
		t.Fatalf("keep_old: %d %v %s", r.StatusCode, err, r.Body)
	}
	if keys, err := b.keys.Keys(context.Background(), mac); err != nil || strings.Join(keys, ",") != doc2.Key+","+doc.Key {
		t.Fatalf("after keep_old=7d the keys are %v %v; want the new then the old", keys, err)
	}
	if r := client.API(http.MethodPost, "/api/v1/devices/02-00-00-00-00-09/key?keep_old=forever", token, ""); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad keep_old: %d", r.StatusCode)
	}
	if r := client.API(http.MethodPost, "/api/v1/devices/zz/key", token, ""); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad MAC: %d", r.StatusCode)
	}
	if r := client.API(http.MethodPost, "/api/v1/devices/02-00-00-00-00-09/key", b.site.Token(t, web.RoleReception), ""); r.StatusCode != http.StatusForbidden {
		t.Fatalf("reception: %d", r.StatusCode)
	}
}

func TestSessionsExportAsFormulaSafeCSVForTheNetworkRoleOnly(t *testing.T) {
	b := newBench(t)
	ctx := context.Background()
	mac, _ := net.ParseMAC("02:00:00:00:00:02")
	// A user name that a spreadsheet would run as a formula, and an ended
	// session: both are exported.
	if _, err := b.st.RecordAccounting(ctx, store.AccountingUpdate{Status: store.AcctStart, NAS: "aps", NASAddr: netip.MustParseAddr("10.99.0.10"),
		AcctSessionID: "S2", Username: "=HYPERLINK(\"http://evil.example\")", MAC: mac, IP: netip.MustParseAddr("10.20.0.6"), SSID: "Staff", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.st.RecordAccounting(ctx, store.AccountingUpdate{Status: store.AcctStop, NAS: "aps", NASAddr: netip.MustParseAddr("10.99.0.10"),
		AcctSessionID: "S2", MAC: mac, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.site.Browser(t, web.RoleNetwork).Get(PagePath).Body, `href="`+CSVPath+`"`) {
		t.Error("the sessions page has no link to the CSV export")
	}
	r := b.site.Browser(t, web.RoleNetwork).Get(CSVPath)
	if r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(r.Header.Get("Content-Disposition"), `filename="wifi-sessions-`) {
		t.Fatalf("export: %d %q %q", r.StatusCode, r.Header.Get("Content-Type"), r.Header.Get("Content-Disposition"))
	}
	recs, err := csv.NewReader(strings.NewReader(r.Body)).ReadAll()
	if err != nil {
		t.Fatalf("the export is not CSV: %v\n%s", err, r.Body)
	}
	if len(recs) != 3 || recs[0][0] != "id" || recs[0][5] != "username" {
		t.Fatalf("want a header and 2 sessions, got %q", recs)
	}
	var ended, live []string
	for _, rec := range recs[1:] {
		switch rec[8] {
		case "10.20.0.6":
			ended = rec
		case "10.20.0.5":
			live = rec
		}
	}
	if ended == nil || live == nil {
		t.Fatalf("sessions missing from the export: %q", recs)
	}
	if ended[5] != "'=HYPERLINK(\"http://evil.example\")" {
		t.Errorf("user name exported as %q, want it made formula-safe", ended[5])
	}
	if ended[3] == "" || live[3] != "" || live[6] != "P0042" || ended[7] != "02:00:00:00:00:02" {
		t.Errorf("rows %q / %q: want the ended one with a stop time, the live one without, with its person", ended, live)
	}
	if _, err := time.Parse(time.RFC3339, live[1]); err != nil {
		t.Errorf("start %q is not a local time with offset: %v", live[1], err)
	}
	for _, role := range []string{web.RoleReception, web.RoleDSL} {
		if r := b.site.Browser(t, role).Get(CSVPath); r.StatusCode != http.StatusForbidden {
			t.Errorf("%s: export = %d, want 403", role, r.StatusCode)
		}
	}
}
