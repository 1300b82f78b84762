package people

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
)

// DeviceEnds (the RADIUS preload's one query) answers exactly as DeviceEnd
// per device: over owners leaving on a day, with grace from a registration
// group and from a custom group, postponed, with no end, a free-text owner
// and a MAC nobody recorded.
func TestDeviceEndsMatchesDeviceEnd(t *testing.T) {
	ctx := context.Background()
	s, c := school(t, Options{Grace: map[string]time.Duration{"13B": 7 * 24 * time.Hour, "Chess club": 30 * 24 * time.Hour}})
	ps, err := s.st.ListPeople(ctx, store.PeopleFilter{Group: "Year 13"})
	if err != nil || len(ps) < 4 {
		t.Fatalf("Year 13: %d people, %v; the sample school changed", len(ps), err)
	}
	var in13B, other []store.Person
	for _, p := range ps {
		if p.RegGroup == "13B" {
			in13B = append(in13B, p)
		} else {
			other = append(other, p)
		}
	}
	if len(in13B) == 0 || len(other) < 3 {
		t.Fatalf("Year 13 has %d in 13B and %d others; the sample school changed", len(in13B), len(other))
	}
	chess, err := s.st.CreateGroup(ctx, "test", "Chess club", "", c.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.st.SetGroupMember(ctx, "test", chess, other[0].ID, true, c.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Postpone(ctx, "web:nm", other[1].ID, "2027-08-20", "summer school"); err != nil {
		t.Fatal(err)
	}
	owners := []string{Key(in13B[0]), Key(other[0]), Key(other[1]), Key(other[2]), "MAT05", "the governors' projector"}
	if staff, err := s.st.ListPeople(ctx, store.PeopleFilter{Kind: "staff"}); err == nil && len(staff) > 0 {
		owners = append(owners, Key(staff[0]))
	}
	var macs []net.HardwareAddr
	for i, owner := range owners {
		m, _ := net.ParseMAC(fmt.Sprintf("02:00:00:00:07:%02x", i))
		if ok, err := s.Decide(ctx, "web:nm", m, store.DeviceDecision{Approved: true, Name: "laptop", Owner: owner}); err != nil || !ok {
			t.Fatalf("approving %s for %s: %v", m, owner, err)
		}
		macs = append(macs, m)
	}
	// A MAC nobody recorded.
	unknown, _ := net.ParseMAC("02:00:00:00:07:f1")
	macs = append(macs, unknown)

	e := RADIUSDeviceEnds{Service: s}
	got, err := e.DeviceEnds(ctx, macs)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(macs) {
		t.Fatalf("%d ends for %d devices", len(got), len(macs))
	}
	distinct := map[time.Time]bool{}
	for i, m := range macs {
		want, err := e.DeviceEnd(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		if !got[i].Equal(want) {
			t.Errorf("%s: DeviceEnds %v, DeviceEnd %v", m, got[i], want)
		}
		if !want.IsZero() {
			distinct[want] = true
		}
	}
	// Not vacuous: the leaving day, both graces and the postponement give
	// different ends.
	if len(distinct) < 4 {
		t.Errorf("only %d distinct ends among %v: the fixture no longer tells the cases apart", len(distinct), got)
	}
}
