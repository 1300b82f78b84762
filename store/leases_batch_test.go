package store

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// dumpDHCP is every column of dhcp_leases and of devices' DHCP columns, as
// text (blobs as hex, NULL marked), in key order.
func dumpDHCP(t *testing.T, s *Store) []string {
	t.Helper()
	var out []string
	for _, q := range []string{
		`SELECT segment, ip, mac, quote(client_id), hostname, state, start_at, expires_at, relay, quote(relay_info), typeof(hostname) FROM dhcp_leases ORDER BY segment, ip`,
		`SELECT mac, first_seen, last_seen, segment, ip, hostname, vendor_class, fingerprint, os, manufacturer, randomised, typeof(randomised), typeof(mac) FROM devices ORDER BY mac`,
	} {
		rows, err := s.db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]sql.NullString, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprint(vals))
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestSaveDHCPBatchEqualsOneWriteAtATime: a batch written as one
// transaction (the JSON-argument statements) leaves the tables exactly as
// the same writes made one SaveDHCP call each: moves within the batch, the
// same address leased twice, declined addresses, nil and empty blobs,
// repeated devices, first-seen kept.
func TestSaveDHCPBatchEqualsOneWriteAtATime(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		batch, _ := openTemp(t)
		single, _ := openTemp(t)
		for range 5 {
			n := 1 + rng.IntN(60)
			var ls []DHCPLease
			var ds []Device
			for range n {
				mac := net.HardwareAddr{2, 0, 0, 0, 0, byte(rng.IntN(12))}
				seg := []string{"pupils", "staff"}[rng.IntN(2)]
				ip := netip.AddrFrom4([4]byte{10, 40, 0, byte(1 + rng.IntN(16))})
				at := leaseT0.Add(time.Duration(rng.IntN(3600)) * time.Second)
				l := DHCPLease{Segment: seg, IP: ip, MAC: mac, State: "bound", Start: at, Expires: at.Add(time.Hour)}
				switch rng.IntN(6) {
				case 0:
					l.MAC, l.State = nil, "declined"
				case 1:
					l.State = "released"
					l.ClientID = []byte{}
				case 2:
					l.ClientID = append([]byte{1}, mac...)
					l.RelayInfo = []byte{1, 4, 0, 0xff, 'a', 'b'}
					l.Relay = netip.MustParseAddr("10.40.0.254")
					l.Hostname = "host-" + strings.Repeat("x", rng.IntN(3))
				}
				ls = append(ls, l)
				if rng.IntN(2) == 0 {
					d := Device{MAC: mac, FirstSeen: at, LastSeen: at, Segment: seg, Fingerprint: "1,3,6", Randomised: rng.IntN(2) == 0}
					if rng.IntN(2) == 0 {
						d.IP, d.Hostname, d.OS, d.VendorClass, d.Manufacturer = ip, "h", "Android", "MSFT 5.0", "Acme"
					}
					if d.MAC == nil {
						d.MAC = net.HardwareAddr{2, 0, 0, 0, 1, 1}
					}
					ds = append(ds, d)
				}
			}
			if err := batch.SaveDHCP(ctx, ls, ds); err != nil {
				t.Fatal(err)
			}
			for _, l := range ls {
				if err := single.SaveDHCP(ctx, []DHCPLease{l}, nil); err != nil {
					t.Fatal(err)
				}
			}
			for _, d := range ds {
				if err := single.SaveDHCP(ctx, nil, []Device{d}); err != nil {
					t.Fatal(err)
				}
			}
		}
		got, want := dumpDHCP(t, batch), dumpDHCP(t, single)
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: batched:\n%s\none at a time:\n%s", round, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// TestSaveDHCPTextJSONWouldEscape: text the batched statements do not take
// (quotes, backslashes, control bytes, bytes past ASCII, invalid UTF-8) is
// stored byte for byte, by the statement-per-row way.
func TestSaveDHCPTextJSONWouldEscape(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	odd := "a\"b\\c\x00d\x01é\xff"
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 9}
	ip := netip.MustParseAddr("10.40.0.9")
	if err := s.SaveDHCP(ctx, []DHCPLease{{Segment: "pupils", IP: ip, MAC: mac, Hostname: odd, State: "bound", Start: leaseT0, Expires: leaseT0.Add(time.Hour)}},
		[]Device{{MAC: mac, FirstSeen: leaseT0, LastSeen: leaseT0, Segment: "pupils", VendorClass: odd, Hostname: odd}}); err != nil {
		t.Fatal(err)
	}
	ls, err := s.DHCPLeases(ctx)
	if err != nil || len(ls) != 1 || ls[0].Hostname != odd {
		t.Fatalf("leases %+v, %v", ls, err)
	}
	d, err := s.DeviceByMAC(ctx, mac)
	if err != nil || d.VendorClass != odd || d.Hostname != odd {
		t.Fatalf("device %+v, %v", d, err)
	}
}
