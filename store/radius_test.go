package store

import (
	"context"
	"errors"
	"net/netip"
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
