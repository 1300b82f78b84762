package store

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

func leaseTestMAC(t *testing.T, s string) net.HardwareAddr {
	t.Helper()
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var leaseT0 = time.Date(2026, 3, 2, 8, 30, 0, 0, time.UTC)

func TestSaveDHCPRoundTripsLeasesAndMovesAMACsOnlyLease(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	a := leaseTestMAC(t, "02:00:00:00:00:0a")
	b := leaseTestMAC(t, "02:00:00:00:00:0b")
	ip1, ip2, ip3 := netip.MustParseAddr("10.40.0.50"), netip.MustParseAddr("10.40.0.51"), netip.MustParseAddr("10.40.0.52")
	first := []DHCPLease{
		{Segment: "visitor", IP: ip1, MAC: a, ClientID: []byte{1, 2, 0, 0, 0, 0, 0, 10}, Hostname: "phone", State: "bound", Start: leaseT0, Expires: leaseT0.Add(time.Hour),
			Relay: netip.MustParseAddr("10.40.0.2"), RelayInfo: []byte{1, 3, 'p', 'o', 'e'}},
		{Segment: "visitor", IP: ip2, MAC: b, State: "bound", Start: leaseT0, Expires: leaseT0.Add(time.Hour)},
		{Segment: "visitor", IP: ip3, State: "declined", Start: leaseT0, Expires: leaseT0.Add(10 * time.Minute)},
	}
	if err := s.SaveDHCP(ctx, first, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.DHCPLeases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("got %d leases, want 3: %+v", len(got), got)
	}
	g := got[0]
	if g.IP != ip1 || g.MAC.String() != a.String() || g.Hostname != "phone" || !g.Start.Equal(leaseT0) || !g.Expires.Equal(leaseT0.Add(time.Hour)) ||
		g.Relay != netip.MustParseAddr("10.40.0.2") || !bytes.Equal(g.RelayInfo, first[0].RelayInfo) || !bytes.Equal(g.ClientID, first[0].ClientID) {
		t.Errorf("lease did not round-trip: %+v", g)
	}
	if got[2].MAC != nil || got[2].State != "declined" {
		t.Errorf("declined lease: %+v", got[2])
	}

	// a moves to .52 (the declined address has rested): its .50 row goes.
	if err := s.SaveDHCP(ctx, []DHCPLease{{Segment: "visitor", IP: ip3, MAC: a, State: "bound", Start: leaseT0.Add(time.Hour), Expires: leaseT0.Add(2 * time.Hour)}}, nil); err != nil {
		t.Fatal(err)
	}
	got, err = s.DHCPLeases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].IP != ip2 || got[1].IP != ip3 || got[1].MAC.String() != a.String() {
		t.Fatalf("after move: %+v", got)
	}
}

func TestSaveDHCPRollsBackTheWholeBatchOnABadLease(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	batch := []DHCPLease{
		{Segment: "pupil", IP: netip.MustParseAddr("10.20.0.50"), MAC: leaseTestMAC(t, "00:11:22:33:44:55"), State: "bound", Start: leaseT0, Expires: leaseT0.Add(time.Hour)},
		{Segment: "pupil", IP: netip.MustParseAddr("10.20.0.51"), MAC: leaseTestMAC(t, "00:11:22:33:44:56"), State: "granted", Start: leaseT0, Expires: leaseT0.Add(time.Hour)},
	}
	if err := s.SaveDHCP(ctx, batch, []Device{{MAC: batch[0].MAC, FirstSeen: leaseT0, LastSeen: leaseT0}}); err == nil {
		t.Fatal("a lease with an unknown state was saved")
	}
	got, err := s.DHCPLeases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("half a batch committed: %+v", got)
	}
	if known, _, _, err := s.DeviceStatus(ctx, batch[0].MAC); err != nil || known {
		t.Fatalf("device of a failed batch recorded: known=%v err=%v", known, err)
	}
}

func TestDeviceSightingsKeepFirstSeenAndPeoplesDecisions(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	mac := leaseTestMAC(t, "3C:22:FB:01:02:03")
	if known, approved, blocked, err := s.DeviceStatus(ctx, mac); err != nil || known || approved || blocked {
		t.Fatalf("unknown device status: %v %v %v %v", known, approved, blocked, err)
	}
	seen := Device{MAC: mac, FirstSeen: leaseT0, LastSeen: leaseT0, Segment: "staff", IP: netip.MustParseAddr("10.10.0.60"), Hostname: "MacBook-Air",
		VendorClass: "", Fingerprint: "1,121,3,6,15,108,114,119,252,95,44,46", OS: "macOS", Manufacturer: "Apple"}
	if err := s.SaveDHCP(ctx, nil, []Device{seen}); err != nil {
		t.Fatal(err)
	}
	if err := s.DecideDevice(ctx, "web:nm", mac, DeviceDecision{Approved: true, Name: "Head's laptop", Owner: "staff:jdoe"}, leaseT0); err != nil {
		t.Fatal(err)
	}
	// A later sighting without a host name or address must not erase them,
	// nor the approval, nor move first_seen forward.
	later := Device{MAC: mac, FirstSeen: leaseT0.Add(time.Hour), LastSeen: leaseT0.Add(time.Hour), Segment: "staff", Fingerprint: seen.Fingerprint, Manufacturer: "Apple"}
	if err := s.SaveDHCP(ctx, nil, []Device{later}); err != nil {
		t.Fatal(err)
	}
	d, err := s.DeviceByMAC(ctx, mac)
	if err != nil {
		t.Fatal(err)
	}
	if !d.FirstSeen.Equal(leaseT0) || !d.LastSeen.Equal(leaseT0.Add(time.Hour)) || d.Hostname != "MacBook-Air" || d.IP != seen.IP || d.OS != "macOS" ||
		!d.Approved || d.Name != "Head's laptop" || d.Owner != "staff:jdoe" {
		t.Errorf("device after sightings and decision: %+v", d)
	}
	if known, approved, blocked, err := s.DeviceStatus(ctx, mac); err != nil || !known || !approved || blocked {
		t.Errorf("status: %v %v %v %v", known, approved, blocked, err)
	}
	yes := true
	list, err := s.ListDevices(ctx, DeviceFilter{Segment: "staff", Approved: &yes})
	if err != nil || len(list) != 1 {
		t.Fatalf("list approved staff devices: %v %v", list, err)
	}
	no := false
	if list, err := s.ListDevices(ctx, DeviceFilter{Approved: &no}); err != nil || len(list) != 0 {
		t.Fatalf("list unapproved: %v %v", list, err)
	}
	entries, err := s.AuditList(ctx, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range entries {
		if e.Action == "device.update" && e.Object == "device:3c:22:fb:01:02:03" && e.Actor == "web:nm" {
			found = true
		}
	}
	if !found {
		t.Errorf("approval not audited: %+v", entries)
	}
}

// A device recorded by hand before anything saw it has no first sighting:
// the recording time is not when it was first seen (issue 15). The first
// DHCP sighting sets it, and neither purge takes the hand-made record.
func TestDeviceRecordedByHandIsNotSeenUntilDHCPSeesIt(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	byHand, approved := mustMAC(t, "02:00:00:00:15:01"), mustMAC(t, "02:00:00:00:15:02")
	if err := s.DecideDevice(ctx, "web:nm", byHand, DeviceDecision{Name: "visitor projector"}, leaseT0); err != nil {
		t.Fatal(err)
	}
	if err := s.ApproveDevice(ctx, "cli:root", approved, "staff", "printer", leaseT0); err != nil {
		t.Fatal(err)
	}
	for _, mac := range []net.HardwareAddr{byHand, approved} {
		d, err := s.DeviceByMAC(ctx, mac)
		if err != nil {
			t.Fatal(err)
		}
		if !d.FirstSeen.IsZero() {
			t.Errorf("%s recorded by hand: first seen %v, want never", mac, d.FirstSeen)
		}
	}
	if n, err := s.PurgeUnleasedDevices(ctx, "test", leaseT0.Add(30*24*time.Hour)); err != nil || n != 0 {
		t.Errorf("unleased purge took %d hand-made records (%v)", n, err)
	}
	seen := leaseT0.Add(48 * time.Hour)
	if err := s.SaveDHCP(ctx, nil, []Device{{MAC: byHand, FirstSeen: seen, LastSeen: seen, Segment: "staff"}}); err != nil {
		t.Fatal(err)
	}
	d, err := s.DeviceByMAC(ctx, byHand)
	if err != nil {
		t.Fatal(err)
	}
	if !d.FirstSeen.Equal(seen) || !d.LastSeen.Equal(seen) || d.Name != "visitor projector" {
		t.Errorf("after its first sighting: %+v, want first and last seen %v and the name kept", d, seen)
	}
}

func TestReservationsAreUniquePerAddressAndAudited(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	printer := leaseTestMAC(t, "00:00:48:aa:bb:cc")
	other := leaseTestMAC(t, "00:00:48:aa:bb:cd")
	ip := netip.MustParseAddr("10.10.0.20")
	if err := s.ReserveAddress(ctx, "web:nm", DHCPReservation{Segment: "staff", MAC: printer, IP: ip}); err != nil {
		t.Fatal(err)
	}
	err := s.ReserveAddress(ctx, "web:nm", DHCPReservation{Segment: "staff", MAC: other, IP: ip})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("second reservation of one address: %v", err)
	}
	rs, err := s.DHCPReservations(ctx)
	if err != nil || len(rs) != 1 || rs[0].IP != ip || rs[0].MAC.String() != printer.String() {
		t.Fatalf("reservations: %+v %v", rs, err)
	}
	if err := s.Unreserve(ctx, "web:nm", "staff", printer); err != nil {
		t.Fatal(err)
	}
	if err := s.Unreserve(ctx, "web:nm", "staff", printer); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unreserve twice: %v", err)
	}
	entries, err := s.AuditList(ctx, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]bool{}
	for _, e := range entries {
		actions[e.Action] = true
	}
	if !actions["dhcp.reserve"] || !actions["dhcp.unreserve"] {
		t.Errorf("reservation changes not audited: %v", actions)
	}
}

func TestLeaseForAttributesAnAddressAtATime(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	mac := leaseTestMAC(t, "02:aa:00:00:00:01")
	ip := netip.MustParseAddr("10.20.0.77")
	if err := s.SaveDHCP(ctx, []DHCPLease{{Segment: "pupil", IP: ip, MAC: mac, State: "bound", Start: leaseT0, Expires: leaseT0.Add(time.Hour)}}, nil); err != nil {
		t.Fatal(err)
	}
	l, err := s.LeaseFor(ctx, ip, leaseT0.Add(30*time.Minute))
	if err != nil || l.MAC.String() != mac.String() {
		t.Fatalf("LeaseFor inside the lease: %+v %v", l, err)
	}
	for _, at := range []time.Time{leaseT0.Add(-time.Minute), leaseT0.Add(2 * time.Hour)} {
		if _, err := s.LeaseFor(ctx, ip, at); !errors.Is(err, ErrNotFound) {
			t.Errorf("LeaseFor at %v: %v, want ErrNotFound", at, err)
		}
	}
}

// BenchmarkSaveDHCPBatch times one group commit of the DHCP server's as it
// happens under load (n new leases and their devices per transaction) on
// the disk the test's temporary directory is on, and reports the p50, p99
// and worst commit: the fsync of synchronous=FULL, and the WAL checkpoint
// that some commits run, are the floor of an ACK's latency.
func BenchmarkSaveDHCPBatch(b *testing.B) {
	for _, n := range []int{1, 8, 32} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			s, err := Open(ctx, filepath.Join(b.TempDir(), "gatehouse.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			durs := make([]time.Duration, 0, b.N)
			next := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ls := make([]DHCPLease, n)
				ds := make([]Device, n)
				for j := range ls {
					next++
					mac := net.HardwareAddr{2, 0, 0, byte(next >> 16), byte(next >> 8), byte(next)}
					ip := netip.AddrFrom4([4]byte{10, 50, byte(next >> 8), byte(next)})
					ls[j] = DHCPLease{Segment: "bench", IP: ip, MAC: mac, State: "bound", Start: leaseT0, Expires: leaseT0.Add(time.Hour)}
					ds[j] = Device{MAC: mac, FirstSeen: leaseT0, LastSeen: leaseT0, Segment: "bench", IP: ip, Fingerprint: "1,3,6,15"}
				}
				// The DHCP committer's context: a deadline per transaction.
				tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				t0 := time.Now()
				err := s.SaveDHCP(tctx, ls, ds)
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				durs = append(durs, time.Since(t0))
			}
			b.StopTimer()
			slices.Sort(durs)
			at := func(p float64) float64 {
				return float64(durs[min(len(durs)-1, int(float64(len(durs))*p))].Microseconds()) / 1000
			}
			b.ReportMetric(at(0.5), "p50-ms")
			b.ReportMetric(at(0.99), "p99-ms")
			b.ReportMetric(at(1), "max-ms")
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "leases/s")
		})
	}
}

// BenchmarkSaveDHCPWALFrames reports how many WAL frames (database pages,
// 4 KiB each) a DHCP group commit of n new leases and their devices
// appends, per lease, into a database that already holds 20,000 of them
// at random addresses and MACs (what perfdhcp's random clients make): each
// frame is written and fsynced by the commit and copied again by a
// checkpoint, so this is the disk work an ACK costs, whatever the disk.
// Only frames/lease is the figure; the time includes a checkpoint after
// every commit, to count the next commit's frames alone.
func BenchmarkSaveDHCPWALFrames(b *testing.B) {
	for _, n := range []int{1, 4, 16, 64} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			ctx := context.Background()
			s, err := Open(ctx, filepath.Join(b.TempDir(), "gatehouse.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			rng := rand.New(rand.NewPCG(1, 2))
			batch := func(k int) ([]DHCPLease, []Device) {
				ls := make([]DHCPLease, k)
				ds := make([]Device, k)
				for j := range ls {
					i := rng.IntN(1 << 22)
					mac := net.HardwareAddr{2, 0, 0, byte(i >> 16), byte(i >> 8), byte(i)}
					ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
					ls[j] = DHCPLease{Segment: "bench", IP: ip, MAC: mac, State: "bound", Start: leaseT0, Expires: leaseT0.Add(time.Hour)}
					ds[j] = Device{MAC: mac, FirstSeen: leaseT0, LastSeen: leaseT0, Segment: "bench", IP: ip, Fingerprint: "1,3,6,15"}
				}
				return ls, ds
			}
			for range 40 {
				ls, ds := batch(500)
				if err := s.SaveDHCP(ctx, ls, ds); err != nil {
					b.Fatal(err)
				}
			}
			checkpoint := func() int {
				var busy, log, done int
				if err := s.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &log, &done); err != nil {
					b.Fatal(err)
				}
				return log
			}
			checkpoint()
			frames := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ls, ds := batch(n)
				if err := s.SaveDHCP(ctx, ls, ds); err != nil {
					b.Fatal(err)
				}
				frames += checkpoint()
			}
			b.ReportMetric(float64(frames)/float64(n*b.N), "frames/lease")
		})
	}
}

// SaveDHCP runs its statements uncancellable (for speed), but a caller
// that has given up still gets an error and no write: the context still
// governs the transaction.
func TestSaveDHCPWithAnEndedContextWritesNothing(t *testing.T) {
	s, _ := openTemp(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	mac := leaseTestMAC(t, "02:00:00:00:00:0c")
	ip := netip.MustParseAddr("10.40.0.60")
	for range 20 { // inTx's select picks at random between ready cases
		err := s.SaveDHCP(ctx, []DHCPLease{{Segment: "visitor", IP: ip, MAC: mac, State: "bound", Start: leaseT0, Expires: leaseT0.Add(time.Hour)}},
			[]Device{{MAC: mac, FirstSeen: leaseT0, LastSeen: leaseT0, Segment: "visitor"}})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("SaveDHCP with an ended context: %v, want context.Canceled", err)
		}
	}
	got, err := s.DHCPLeases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("leases written by a caller that gave up: %+v", got)
	}
	if _, err := s.DeviceByMAC(context.Background(), mac); !errors.Is(err, ErrNotFound) {
		t.Fatalf("device written by a caller that gave up: %v", err)
	}
}
