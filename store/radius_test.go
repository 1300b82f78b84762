package store

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestAccountingOpensUpdatesAndClosesSessionsAndWhoHeldFindsThem(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	mac := leaseTestMAC(t, "02:00:00:00:00:21")
	ap := "0a:00:00:00:00:01"
	if err := s.SetAPRoom(ctx, "nm", leaseTestMAC(t, ap), "Science 3"); err != nil {
		t.Fatal(err)
	}
	// No Framed-IP-Address: the DHCP lease supplies the address.
	ip := netip.MustParseAddr("10.20.3.7")
	if err := s.SaveDHCP(ctx, []DHCPLease{{Segment: "pupil", IP: ip, MAC: mac, State: "bound", Start: leaseT0, Expires: leaseT0.Add(time.Hour)}}, nil); err != nil {
		t.Fatal(err)
	}
	base := AccountingUpdate{NAS: "aps", NASAddr: netip.MustParseAddr("10.99.0.10"), AcctSessionID: "S1", MAC: mac, AP: ap, SSID: "Pupils", Person: "p123"}
	start := base
	start.Status, start.At = AcctStart, leaseT0
	got, err := s.RecordAccounting(ctx, start)
	if err != nil {
		t.Fatal(err)
	}
	if got.IP != ip || got.Room != "Science 3" || !got.Open() || got.Person != "p123" {
		t.Fatalf("after start: %+v", got)
	}
	interim := base
	interim.Status, interim.At, interim.InOctets, interim.OutOctets = AcctInterim, leaseT0.Add(10*time.Minute), 1000, 2000
	if got, err = s.RecordAccounting(ctx, interim); err != nil || got.InOctets != 1000 {
		t.Fatalf("interim: %+v %v", got, err)
	}
	stop := base
	stop.Status, stop.At, stop.InOctets, stop.OutOctets, stop.StopCause = AcctStop, leaseT0.Add(30*time.Minute), 5000, 6000, "User-Request"
	if got, err = s.RecordAccounting(ctx, stop); err != nil || got.Open() || got.OutOctets != 6000 {
		t.Fatalf("stop: %+v %v", got, err)
	}
	// A new session with the same id after the stop is a new row.
	again := base
	again.Status, again.At = AcctStart, leaseT0.Add(2*time.Hour)
	second, err := s.RecordAccounting(ctx, again)
	if err != nil || second.ID == got.ID {
		t.Fatalf("second start: %+v %v", second, err)
	}

	held, err := s.WhoHeld(ctx, ip, nil, leaseT0.Add(20*time.Minute))
	if err != nil || held.ID != got.ID || held.Person != "p123" || held.Room != "Science 3" {
		t.Fatalf("who held at 20m: %+v %v", held, err)
	}
	if _, err := s.WhoHeld(ctx, ip, nil, leaseT0.Add(time.Hour)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("who held between sessions: %v", err)
	}
	if held, err := s.WhoHeld(ctx, netip.Addr{}, mac, leaseT0.Add(3*time.Hour)); err != nil || held.ID != second.ID {
		t.Fatalf("who held the MAC during the open session: %+v %v", held, err)
	}

	n, err := s.CloseNASSessions(ctx, "aps", leaseT0.Add(4*time.Hour), "NAS-Reboot")
	if err != nil || n != 1 {
		t.Fatalf("close NAS sessions: %d %v", n, err)
	}
	if open, err := s.RADIUSSessions(ctx, SessionFilter{OpenOnly: true}); err != nil || len(open) != 0 {
		t.Fatalf("open after Accounting-On: %v %v", open, err)
	}
}

func TestInterimWithoutStartOpensTheSessionWhenItBegan(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	got, err := s.RecordAccounting(ctx, AccountingUpdate{Status: AcctInterim, NAS: "aps", AcctSessionID: "X",
		At: leaseT0, SessionTime: 5 * time.Minute, IP: netip.MustParseAddr("10.10.0.9")})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Start.Equal(leaseT0.Add(-5*time.Minute)) || !got.Open() {
		t.Fatalf("%+v", got)
	}
}

func TestApproveDeviceAndKeyAreAudited(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	mac := leaseTestMAC(t, "02:00:00:00:00:31")
	if err := s.SetDeviceKey(ctx, "nm", mac, []byte("sealed"), leaseT0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("key for an unknown device: %v", err)
	}
	if err := s.ApproveDevice(ctx, "nm", mac, "staff", "Laptop 7", leaseT0); err != nil {
		t.Fatal(err)
	}
	if known, approved, blocked, err := s.DeviceStatus(ctx, mac); err != nil || !known || !approved || blocked {
		t.Fatalf("status %v %v %v %v", known, approved, blocked, err)
	}
	if err := s.SetDeviceKey(ctx, "nm", mac, []byte("sealed"), leaseT0); err != nil {
		t.Fatal(err)
	}
	v, err := s.DeviceForRADIUS(ctx, mac)
	if err != nil || !v.Known || !v.Approved || v.Segment != "staff" || v.Name != "Laptop 7" || string(v.PSKSealed) != "sealed" {
		t.Fatalf("device for RADIUS %+v %v", v, err)
	}
	if v, err := s.DeviceForRADIUS(ctx, leaseTestMAC(t, "02:00:00:00:00:99")); err != nil || v.Known {
		t.Fatalf("unknown device %+v %v", v, err)
	}
	d, err := s.RADIUSDeviceByMAC(ctx, mac)
	if err != nil || d.Segment != "staff" || string(d.PSKSealed) != "sealed" {
		t.Fatalf("%+v %v", d, err)
	}
	log, err := s.AuditList(ctx, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]bool{}
	for _, e := range log {
		actions[e.Action] = true
		if e.Action == "device.key" && strings.Contains(e.After, "sealed") {
			t.Fatalf("the audit row holds the key: %s", e.After)
		}
	}
	if !actions["device.approve"] || !actions["device.key"] {
		t.Fatalf("audit actions %v", actions)
	}
}

func TestDisablePersonKeysRemovesOnlyThatPersonsKeys(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	p, err := s.CreatePerson(ctx, "nm", Person{Kind: "pupil", UPN: "A123", LegalForename: "Ann", LegalSurname: "Lee"}, leaseT0)
	if err != nil {
		t.Fatal(err)
	}
	hers, other := leaseTestMAC(t, "02:00:00:00:00:41"), leaseTestMAC(t, "02:00:00:00:00:42")
	for _, m := range []net.HardwareAddr{hers, other} {
		if err := s.ApproveDevice(ctx, "nm", m, "", "", leaseT0); err != nil {
			t.Fatal(err)
		}
		if err := s.SetDeviceKey(ctx, "nm", m, []byte("sealed"), leaseT0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetDeviceOwner(ctx, "nm", hers, p.ID, leaseT0); err != nil {
		t.Fatal(err)
	}
	if v, err := s.DeviceForRADIUS(ctx, hers); err != nil || v.Owner != strconv.FormatInt(p.ID, 10) {
		t.Fatalf("owner %+v %v", v, err)
	}
	n, err := s.DisablePersonKeys(ctx, "leavers", p.ID, leaseT0)
	if err != nil || n != 1 {
		t.Fatalf("disabled %d %v", n, err)
	}
	if v, _ := s.DeviceForRADIUS(ctx, hers); v.PSKSealed != nil {
		t.Fatal("her key survived")
	}
	if v, _ := s.DeviceForRADIUS(ctx, other); v.PSKSealed == nil {
		t.Fatal("someone else's key went too")
	}
}

// A rotation with an overlap keeps the replaced key until the time asked
// for; after it the key is no longer read, the next rotation deletes it,
// and disabling the owner's keys takes old ones too.
func TestRotationOverlapKeepsTheOldKeyUntilItExpires(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	mac := leaseTestMAC(t, "02:00:00:00:00:32")
	if err := s.ApproveDevice(ctx, "nm", mac, "staff", "", leaseT0); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDeviceKey(ctx, "nm", mac, []byte("key-1"), leaseT0); err != nil {
		t.Fatal(err)
	}
	t1 := leaseT0.Add(time.Hour)
	if err := s.SetDeviceKeyKeepingOld(ctx, "nm", mac, []byte("key-2"), t1, t1.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	sealed := func(ks []OldKey) (out []string) {
		for _, k := range ks {
			out = append(out, string(k.Sealed))
		}
		return out
	}
	d, err := s.RADIUSDeviceAt(ctx, mac, t1.Add(47*time.Hour))
	if err != nil || string(d.PSKSealed) != "key-2" || strings.Join(sealed(d.OldKeys), ",") != "key-1" ||
		!d.OldKeys[0].SetAt.Equal(leaseT0) || !d.OldKeys[0].Expires.Equal(t1.Add(48*time.Hour)) {
		t.Fatalf("within the overlap: %+v %v", d, err)
	}
	if d, err := s.RADIUSDeviceAt(ctx, mac, t1.Add(48*time.Hour)); err != nil || len(d.OldKeys) != 0 {
		t.Fatalf("at the overlap's end the old key is still read: %+v %v", d, err)
	}
	// The hot path reads every kept key; the RADIUS server's clock decides.
	v, err := s.DeviceForRADIUS(ctx, mac)
	if err != nil || string(v.PSKSealed) != "key-2" || strings.Join(sealed(v.OldKeys), ",") != "key-1" {
		t.Fatalf("device for RADIUS: %+v %v", v, err)
	}
	// A plain rotation keeps nothing new; one after expiry deletes the old row.
	t2 := t1.Add(49 * time.Hour)
	if err := s.SetDeviceKey(ctx, "nm", mac, []byte("key-3"), t2); err != nil {
		t.Fatal(err)
	}
	if v, err := s.DeviceForRADIUS(ctx, mac); err != nil || string(v.PSKSealed) != "key-3" || len(v.OldKeys) != 0 {
		t.Fatalf("after a plain rotation past expiry: %+v %v", v, err)
	}
	// Keeping old while none is set keeps nothing.
	mac2 := leaseTestMAC(t, "02:00:00:00:00:33")
	if err := s.ApproveDevice(ctx, "nm", mac2, "staff", "", leaseT0); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDeviceKeyKeepingOld(ctx, "nm", mac2, []byte("first"), t1, t1.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if v, err := s.DeviceForRADIUS(ctx, mac2); err != nil || len(v.OldKeys) != 0 {
		t.Fatalf("a first key kept a phantom old one: %+v %v", v, err)
	}
	// A person's keys disabled: the overlap key goes too.
	p, err := s.CreatePerson(ctx, "nm", Person{Kind: "staff", StaffCode: "OVL", LegalForename: "Ov", LegalSurname: "Lap"}, leaseT0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetDeviceOwner(ctx, "nm", mac, p.ID, leaseT0); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDeviceKeyKeepingOld(ctx, "nm", mac, []byte("key-4"), t2, t2.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DisablePersonKeys(ctx, "leavers", p.ID, t2); err != nil {
		t.Fatal(err)
	}
	if v, err := s.DeviceForRADIUS(ctx, mac); err != nil || v.PSKSealed != nil || len(v.OldKeys) != 0 {
		t.Fatalf("after disabling the person's keys: %+v %v", v, err)
	}
	log, err := s.AuditList(ctx, 20, 0)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range log {
		found = found || (e.Action == "device.key" && strings.Contains(e.After, "previous_valid_until"))
		if strings.Contains(e.After, "key-") {
			t.Fatalf("the audit row holds a key: %s", e.After)
		}
	}
	if !found {
		t.Fatal("no audit row says the old key was kept")
	}
}
