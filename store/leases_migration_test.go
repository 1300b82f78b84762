package store

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Migration 0103 rebuilds dhcp_leases keyed by (ip, segment) without a
// rowid: the leases a school already has come through unchanged, the
// upsert still finds its row, and "who held this address" is a key
// lookup, not a scan.
func TestLeasesByIPMigrationKeepsLeases(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	old := openBefore(t, path, 103)
	macA := net.HardwareAddr{2, 0, 0, 0, 1, 3}
	macB := net.HardwareAddr{2, 0, 0, 0, 1, 4}
	ip := netip.MustParseAddr("10.20.3.7")
	want := []DHCPLease{
		{Segment: "pupil", IP: ip, MAC: macA, Hostname: "a", State: "bound", Start: leaseT0, Expires: leaseT0.Add(time.Hour), ClientID: []byte{1, 2}},
		// The same address on another segment: the key is the pair.
		{Segment: "staff", IP: ip, MAC: macB, State: "released", Start: leaseT0, Expires: leaseT0.Add(2 * time.Hour),
			Relay: netip.MustParseAddr("10.0.0.2"), RelayInfo: []byte{9}},
	}
	if err := old.SaveDHCP(ctx, want, nil); err != nil {
		t.Fatal(err)
	}
	old.Close()

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.DHCPLeases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("after the migration %d leases, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Segment != w.Segment || g.IP != w.IP || g.MAC.String() != w.MAC.String() || g.Hostname != w.Hostname || g.State != w.State ||
			!g.Start.Equal(w.Start) || !g.Expires.Equal(w.Expires) || g.Relay != w.Relay || !slices.Equal(g.ClientID, w.ClientID) || !slices.Equal(g.RelayInfo, w.RelayInfo) {
			t.Errorf("lease %d after the migration = %+v, want %+v", i, g, w)
		}
	}
	// The upsert finds the migrated row by its key: one row, updated.
	renewed := want[0]
	renewed.Expires = leaseT0.Add(3 * time.Hour)
	if err := s.SaveDHCP(ctx, []DHCPLease{renewed}, nil); err != nil {
		t.Fatal(err)
	}
	l, err := s.LeaseFor(ctx, ip, leaseT0.Add(2*time.Hour+time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if l.Segment != "pupil" || !l.Expires.Equal(renewed.Expires) {
		t.Errorf("LeaseFor after the renewal = %+v, want pupil's renewed lease", l)
	}
	if got, _ := s.DHCPLeases(ctx); len(got) != 2 {
		t.Errorf("after the renewal %d leases, want 2", len(got))
	}
	var ddl string
	if err := s.db.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'dhcp_leases'`).Scan(&ddl); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ddl, "WITHOUT ROWID") || !strings.Contains(ddl, "PRIMARY KEY (ip, segment)") {
		t.Errorf("dhcp_leases is %s", ddl)
	}
	// The statements LeaseFor, the lease move, LeasesForMAC and
	// accounting run, by their own text: a search, never a scan.
	for _, q := range []string{leaseForQuery, leaseMoveQuery, leasesForMACQuery, boundIPForMACQuery} {
		args := make([]any, strings.Count(q, "?"))
		for i := range args {
			args[i] = "x"
		}
		rows, err := s.db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if p := strings.Join(plan, "; "); !strings.Contains(p, "SEARCH") || strings.Contains(p, "SCAN dhcp_leases") {
			t.Errorf("%s: plan %q, want a search by key or index", q, p)
		}
	}
}
