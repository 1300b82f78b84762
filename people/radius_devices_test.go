package people

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	layeh "layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/gatehouse-net/gatehouse/radius"
	"github.com/gatehouse-net/gatehouse/store"
)

// A device linked to a person ends its access with its owner's: a MAB
// Access-Accept's Session-Timeout runs exactly to the owner's departure
// (not further, as it did when devices had no end), a free-text owner's
// device has no end, a new leaving day reaches RADIUS's device cache on
// the next request, and once the day has passed the device is rejected
// even before the leavers' scheduler revokes it.
func TestMABSessionTimeoutEndsWithTheOwner(t *testing.T) {
	ctx := context.Background()
	s, c := school(t, Options{})
	leaver := state(t, s, "MAT05")
	if leaver.State != store.PersonLeaving || leaver.LeavesOn != "2026-12-31" {
		t.Fatalf("MAT05 is %s leaving %q; the sample school changed", leaver.State, leaver.LeavesOn)
	}
	owned, _ := net.ParseMAC("02:00:00:00:05:01")
	loose, _ := net.ParseMAC("02:00:00:00:05:02")
	for mac, owner := range map[string]string{owned.String(): "MAT05", loose.String(): "the governors' projector"} {
		m, _ := net.ParseMAC(mac)
		if ok, err := s.Decide(ctx, "web:nm", m, store.DeviceDecision{Approved: true, Name: "laptop", Owner: owner}); err != nil || !ok {
			t.Fatalf("approving %s for %s: %v", mac, owner, err)
		}
	}

	const secret = "testing123"
	srv := startRADIUS(t, secret, radius.Options{
		Segments: []radius.Segment{{Name: "pupil", VLAN: 20, SSIDs: []string{"Pupils"}}},
		Devices:  radius.StoreDevices{Store: s.st, Ends: RADIUSDeviceEnds{Service: s}},
		Now:      c.Now,
	})

	// mab returns the answer's code and Session-Timeout (-1: none).
	mab := func(mac net.HardwareAddr) (layeh.Code, int64) {
		t.Helper()
		pkt := layeh.New(layeh.CodeAccessRequest, []byte(secret))
		hex := net.HardwareAddr(mac).String()
		_ = rfc2865.UserName_SetString(pkt, hex)
		_ = rfc2865.UserPassword_SetString(pkt, hex)
		_ = rfc2865.CallingStationID_SetString(pkt, hex)
		_ = rfc2865.CalledStationID_SetString(pkt, "0A-00-00-00-00-01:Pupils")
		resp := exchange(t, srv, pkt)
		st, err := rfc2865.SessionTimeout_Lookup(resp)
		if err != nil {
			return resp.Code, -1
		}
		return resp.Code, int64(st)
	}
	// The end of the leaving day, local time (GMT in winter).
	secondsTo := func(end time.Time) int64 { return int64(end.Sub(c.Now()) / time.Second) }

	if code, st := mab(owned); code != layeh.CodeAccessAccept || st != secondsTo(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("the leaver's device: %v, Session-Timeout %d s; want Accept, %d s (to midnight after 31 Dec)", code, st, secondsTo(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)))
	}
	if code, st := mab(loose); code != layeh.CodeAccessAccept || st != -1 {
		t.Fatalf("a free-text owner's device: %v, Session-Timeout %d; want Accept with none", code, st)
	}

	// The MIS brings the leaving day forward: the change log names the
	// device (so another process's change reaches the cache too), and the
	// next request is clamped to the new day.
	from, err := s.st.LatestChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leaver.LeavesOn = "2026-12-10"
	if leaver, err = s.st.UpdatePerson(ctx, "test", "person.update", leaver, c.Now()); err != nil {
		t.Fatal(err)
	}
	macs, _, _, err := s.st.ChangesSince(ctx, from, 100)
	if err != nil || !slices.Contains(macs, owned.String()) || slices.Contains(macs, loose.String()) {
		t.Fatalf("device changes after the owner's update: %v (%v); want %s and not %s", macs, err, owned, loose)
	}
	if code, st := mab(owned); code != layeh.CodeAccessAccept || st != secondsTo(time.Date(2026, 12, 11, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("after the new leaving day: %v, Session-Timeout %d s; want %d s", code, st, secondsTo(time.Date(2026, 12, 11, 0, 0, 0, 0, time.UTC)))
	}

	// A change to the term calendar moves everyone's end: every owned
	// device is named.
	from, _ = s.st.LatestChange(ctx)
	if _, err := s.ImportTerms(ctx, "test", readMIS(t, "term-dates-2026-27.csv")); err != nil {
		t.Fatal(err)
	}
	if macs, _, _, err = s.st.ChangesSince(ctx, from, 100); err != nil || !slices.Contains(macs, owned.String()) {
		t.Fatalf("device changes after a calendar import: %v (%v); want %s", macs, err, owned)
	}

	// Past the end of the leaving day, before any revocation: rejected.
	c.Set(time.Date(2026, 12, 11, 0, 0, 1, 0, time.UTC))
	if code, _ := mab(owned); code != layeh.CodeAccessReject {
		t.Fatalf("after the owner's departure: %v, want reject", code)
	}
	if code, _ := mab(loose); code != layeh.CodeAccessAccept {
		t.Fatalf("the free-text owner's device after that day: %v, want accept", code)
	}
}
