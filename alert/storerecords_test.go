package alert

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store/storetest"

	"github.com/gatehouse-net/gatehouse/store"
)

// RADIUS accounting and the people directory, as the store keeps them,
// name the pupil behind an address: the alert says who, where and on which
// network.
func TestRADIUSAndPeopleAttributeAnAlert(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t)
	now := time.Now().Truncate(time.Second)
	mac := net.HardwareAddr{0x00, 0x1c, 0xb3, 1, 2, 3}
	ap := net.HardwareAddr{0x00, 0x11, 0x22, 0x33, 0x44, 0x55}
	ip := netip.MustParseAddr("10.20.3.7")
	if _, err := st.CreatePerson(ctx, "test", store.Person{Kind: "pupil", UPN: "A123456789012", AdmissionNo: "S1042", Username: "sam.pupil",
		LegalForename: "Samuel", PreferredForename: "Sam", LegalSurname: "Pupil", YearGroup: "9", RegGroup: "9B"}, now); err != nil {
		t.Fatal(err)
	}
	if err := st.SetAPRoom(ctx, "test", ap, "B12 Science"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RecordAccounting(ctx, store.AccountingUpdate{Status: store.AcctStart, NAS: "aps", NASAddr: netip.MustParseAddr("10.99.0.10"),
		AcctSessionID: "s1", Username: "sam.pupil", Person: "sam.pupil", MAC: mac, IP: ip, AP: ap.String(), SSID: "School-Pupil", At: now.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	e, err := New(Options{Store: st, Attributor: &Attributor{Records: st, Sessions: StoreSessions{Store: st}, People: StorePeople{Store: st}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.InsertFindings(ctx, []store.Finding{{At: now, Source: "inspect", Class: "vpn", Segment: "pupil", SrcIP: ip}}); err != nil {
		t.Fatal(err)
	}
	if err := e.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	as, err := st.ListAlerts(ctx, store.AlertFilter{})
	if err != nil || len(as) != 1 {
		t.Fatalf("alerts %+v %v", as, err)
	}
	a := as[0]
	if a.AttributedBy != ByRADIUS || a.PersonName != "Sam Pupil" || a.PersonGroup != "Year 9, 9B" || a.Room != "B12 Science" ||
		a.SSID != "School-Pupil" || a.SrcMAC.String() != mac.String() {
		t.Errorf("alert %+v", a)
	}
}

func TestStorePeopleNamesStaffAndNobody(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t)
	now := time.Now()
	if _, err := st.CreatePerson(ctx, "test", store.Person{Kind: "staff", StaffCode: "JSM", Username: "j.smith",
		LegalForename: "Jane", LegalSurname: "Smith"}, now); err != nil {
		t.Fatal(err)
	}
	p, found, err := StorePeople{Store: st}.Person(ctx, "j.smith")
	if err != nil || !found || p.Name != "Jane Smith" || p.Role != "Staff" || p.Group != "" {
		t.Errorf("staff member: %+v found %v err %v; want Jane Smith, role Staff", p, found, err)
	}
	if _, found, err := (StorePeople{Store: st}).Person(ctx, "nobody"); found || err != nil {
		t.Errorf("an unknown reference: found %v err %v; want not found and no error", found, err)
	}
	if _, found, err := (StoreSessions{Store: st}).WhoHeld(ctx, netip.MustParseAddr("10.20.9.9"), nil, now); found || err != nil {
		t.Errorf("an address no session held: found %v err %v; want not found and no error", found, err)
	}
}
