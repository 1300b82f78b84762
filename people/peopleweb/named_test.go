package peopleweb

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
)

// TestDSLSeesOnlyWhatFindingsName: the DSL's view of people shows the
// people findings name — their name, groups and the devices those findings
// name — and nothing else: not a person no finding names (answered exactly
// as for nobody), not the person's other devices, identifiers, email,
// credentials, leaving date or history, and none of the network manager's
// people pages.
func TestDSLSeesOnlyWhatFindingsName(t *testing.T) {
	site, svc := newSite(t)
	ctx := context.Background()
	st := svc.Store()
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	mk := func(p store.Person) store.Person {
		t.Helper()
		p.State = store.PersonActive
		if p.LeavesOn != "" {
			p.State = store.PersonLeaving
		}
		out, err := st.CreatePerson(ctx, "test", p, now)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	named := mk(store.Person{Kind: "pupil", UPN: "N100000000001", AdmissionNo: "ADM-7731", LegalForename: "Priya", LegalSurname: "Named",
		YearGroup: "Year 9", RegGroup: "9C", Username: "pnamed", Email: "p.named@pupils.example", LeavesOn: "2027-07-16"})
	other := mk(store.Person{Kind: "pupil", UPN: "O100000000002", LegalForename: "Oscar", LegalSurname: "Otherwise", YearGroup: "Year 9", RegGroup: "9C"})
	gid, err := svc.CreateGroup(ctx, "test", "Chess club", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetMember(ctx, "test", gid, "N100000000001", true); err != nil {
		t.Fatal(err)
	}
	seenMAC, _ := net.ParseMAC("02:00:00:00:09:01")
	quietMAC, _ := net.ParseMAC("02:00:00:00:09:02")
	otherMAC, _ := net.ParseMAC("02:00:00:00:09:03")
	for _, d := range []struct {
		mac         net.HardwareAddr
		owner, name string
	}{{seenMAC, "N100000000001", "Priya's laptop"}, {quietMAC, "N100000000001", "Priya's games console"}, {otherMAC, "O100000000002", "Oscar's phone"}} {
		if _, err := svc.Decide(ctx, "test", d.mac, store.DeviceDecision{Approved: true, Owner: d.owner, Name: d.name}); err != nil {
			t.Fatal(err)
		}
	}
	if err := svc.SetWiFiPassword(ctx, "test", named.ID, "a secret wifi password"); err != nil {
		t.Fatal(err)
	}
	// Two findings name Priya and her laptop; Oscar's device was seen but
	// no finding names him.
	if err := st.InsertFindings(ctx, []store.Finding{
		{At: now, Source: "inspect", Class: "vpn", SrcIP: netip.MustParseAddr("10.20.0.5"), SrcMAC: seenMAC, PersonID: named.ID},
		{At: now.Add(time.Minute), Source: "inspect", Class: "vpn", SrcIP: netip.MustParseAddr("10.20.0.5"), SrcMAC: seenMAC, PersonID: named.ID},
		{At: now, Source: "inspect", Class: "doh", SrcIP: netip.MustParseAddr("10.20.0.6"), SrcMAC: otherMAC},
	}); err != nil {
		t.Fatal(err)
	}

	dsl := site.Browser(t, store.RoleDSL)
	list := dsl.Get(NamedPath)
	if list.StatusCode != http.StatusOK || !strings.Contains(list.Body, "Priya Named") || strings.Contains(list.Body, "Oscar") {
		t.Fatalf("the DSL's list (%d):\n%s", list.StatusCode, list.Body)
	}
	page := dsl.Get(fmt.Sprintf("%s?id=%d", NamedPersonPath, named.ID))
	if page.StatusCode != http.StatusOK {
		t.Fatalf("the named person's page: %d %s", page.StatusCode, page.Body)
	}
	for _, want := range []string{"Priya Named", "Year 9", "9C", "Chess club", "Priya&#39;s laptop", "02:00:00:00:09:01"} {
		if !strings.Contains(page.Body, want) {
			t.Errorf("the DSL does not see %q", want)
		}
	}
	for _, never := range []string{"games console", "02:00:00:00:09:02", "Oscar", "N100000000001", "ADM-7731", "pnamed", "p.named@",
		"2027-07-16", "Wi-Fi password", "password", "revoke", "postpone", "History", "person.create"} {
		if strings.Contains(page.Body, never) {
			t.Errorf("the DSL sees %q", never)
		}
	}
	// A person no finding names, and nobody at all, get the same answer.
	notNamed := dsl.Get(fmt.Sprintf("%s?id=%d", NamedPersonPath, other.ID))
	nobody := dsl.Get(NamedPersonPath + "?id=99999")
	if notNamed.StatusCode != http.StatusNotFound || nobody.StatusCode != http.StatusNotFound || strings.Contains(notNamed.Body, "Oscar") {
		t.Errorf("a person no finding names: %d, nobody: %d", notNamed.StatusCode, nobody.StatusCode)
	}
	// The full person pages, the export and the lists stay the network
	// manager's.
	for _, path := range []string{fmt.Sprintf("%s?id=%d", PersonPath, named.ID), fmt.Sprintf("%s?id=%d", ExportPath, named.ID), ListPath, LeaversPath, ReviewPath} {
		if r := dsl.Get(path); r.StatusCode != http.StatusForbidden {
			t.Errorf("DSL GET %s: %d", path, r.StatusCode)
		}
	}
	// The limited view is the DSL's alone.
	for _, role := range []string{store.RoleReception, store.RoleNetwork} {
		b := site.Browser(t, role)
		for _, path := range []string{NamedPath, fmt.Sprintf("%s?id=%d", NamedPersonPath, named.ID)} {
			if r := b.Get(path); r.StatusCode != http.StatusForbidden {
				t.Errorf("%s GET %s: %d", role, path, r.StatusCode)
			}
		}
	}
}
