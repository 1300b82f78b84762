package radiusweb

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
)

// TestAPIListsAndApprovesDevices: POST /api/v1/devices means what
// "gatehouse device approve" means (segment, name, owner by MIS id,
// audited as the token's user); GET lists it; bad input and other roles
// are refused.
func TestAPIListsAndApprovesDevices(t *testing.T) {
	b := newBench(t)
	ctx := context.Background()
	token := b.site.Token(t, web.RoleNetwork)
	client := b.site.NewBrowser(t)
	p, err := b.st.CreatePerson(ctx, "test", store.Person{Kind: "pupil", UPN: "A123456789012", AdmissionNo: "004217",
		LegalForename: "Ada", LegalSurname: "Lovelace", State: store.PersonActive}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	mac, _ := net.ParseMAC("3c:22:fb:0a:0b:0c")
	// A blocked device: approval lifts the block, as the CLI's does.
	if err := b.st.DecideDevice(ctx, "test", mac, store.DeviceDecision{Blocked: true}, time.Now()); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		body string
		want int
	}{
		{`{"mac":"3C-22-FB-0A-0B-0C","segment":"pupil","owner":"999999"}`, http.StatusUnprocessableEntity},
		{`{"mac":"3C-22-FB-0A-0B-0C","segment":"nowhere"}`, http.StatusBadRequest},
		{`{"mac":"3C-22-FB-0A-0B-0C"}`, http.StatusBadRequest}, // segment is required
		{`{"mac":"not a mac","segment":"pupil"}`, http.StatusBadRequest},
		{`{"mac":"3C-22-FB-0A-0B-0C","segment":"pupil","colour":"red"}`, http.StatusBadRequest},
		{`{"mac":"3C-22-FB-0A-0B-0C","segment":"pupil","name":"` + strings.Repeat("x", 65) + `"}`, http.StatusBadRequest},
	} {
		if r := client.API(http.MethodPost, APIDevices, token, tc.body); r.StatusCode != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.body, r.StatusCode, r.Body, tc.want)
		}
	}
	if _, approved, blocked, _ := b.st.DeviceStatus(ctx, mac); approved || !blocked {
		t.Fatal("a refused request changed the device")
	}

	r := client.API(http.MethodPost, APIDevices, token, `{"mac":"3C-22-FB-0A-0B-0C","segment":"pupil","owner":"004217","name":"Ada's laptop"}`)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("approve: %d %s", r.StatusCode, r.Body)
	}
	if pid, err := b.st.DeviceOwner(ctx, mac); err != nil || pid != p.ID {
		t.Fatalf("owner %d %v, want %d", pid, err, p.ID)
	}
	if e := b.site.AuditWith(t, "device.approve"); len(e) != 1 || e[0].Actor == "" || e[0].Object != "device:"+mac.String() {
		t.Fatalf("audit %+v", e)
	}

	r = client.API(http.MethodGet, APIDevices, token, "")
	var doc struct {
		Devices []apiDevice `json:"devices"`
	}
	if err := json.Unmarshal([]byte(r.Body), &doc); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("list: %d %v %s", r.StatusCode, err, r.Body)
	}
	var got *apiDevice
	for i := range doc.Devices {
		if doc.Devices[i].MAC == mac.String() {
			got = &doc.Devices[i]
		}
	}
	if got == nil || !got.Approved || got.Blocked || got.Segment != "pupil" || got.Name != "Ada's laptop" || got.Owner != "004217" || got.HasKey {
		t.Fatalf("listed %+v", doc.Devices)
	}

	for _, role := range []string{web.RoleReception, web.RoleDSL} {
		if r := client.API(http.MethodGet, APIDevices, b.site.Token(t, role), ""); r.StatusCode != http.StatusForbidden {
			t.Errorf("%s list: %d", role, r.StatusCode)
		}
		if r := client.API(http.MethodPost, APIDevices, b.site.Token(t, role), `{"mac":"02:00:00:00:00:07","segment":""}`); r.StatusCode != http.StatusForbidden {
			t.Errorf("%s approve: %d", role, r.StatusCode)
		}
	}
}
