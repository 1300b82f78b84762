package store

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
)

// DefaultMaxDevices bounds the device inventory. Devices are keyed by the
// MAC a client sends, so a client making up MACs could otherwise grow the
// table without end; a school's real estate is a few thousand devices.
const DefaultMaxDevices = 50_000

// deviceCap is the inventory's bound; 0 means DefaultMaxDevices.
type deviceCap struct{ n atomic.Int64 }

func (c *deviceCap) get() int64 {
	if n := c.n.Load(); n > 0 {
		return n
	}
	return DefaultMaxDevices
}

// SetMaxDevices changes how many devices the inventory keeps (n <= 0 puts
// back DefaultMaxDevices). When a sighting takes it over the bound, the
// least recently seen devices nobody decided anything about (not approved,
// not blocked, no name, no owner, no reservation) are evicted first; what a
// person set up is never evicted, so the bound can be exceeded by those.
func (s *Store) SetMaxDevices(n int) { s.devCap.n.Store(int64(n)) }

// evictDevicesQuery deletes the least recently seen undecided devices
// beyond the bound (its one argument).
const evictDevicesQuery = `DELETE FROM devices WHERE mac IN (
	SELECT d.mac FROM devices AS d
	WHERE d.approved = 0 AND d.blocked = 0 AND d.name = '' AND d.owner = ''
	  AND NOT EXISTS (SELECT 1 FROM dhcp_reservations AS r WHERE r.mac = d.mac)
	ORDER BY d.last_seen, d.mac
	LIMIT max(0, (SELECT n FROM device_count WHERE only = 1) - ?))`

// evictDevicesTx deletes the least recently seen undecided devices beyond
// the bound, inside the sighting's transaction, and audits how many went
// (as "device.evict") so a network manager can tell why a device is gone.
func (s *Store) evictDevicesTx(ctx context.Context, tx *sql.Tx) error {
	limit := s.devCap.get()
	// One statement, no rows read back: a query inside a transaction
	// whose context can be cancelled makes database/sql start a goroutine
	// to watch it (Rows.initContextClose), and this runs in every DHCP
	// group commit with a sighting: under perfdhcp that goroutine, its
	// start and the thread switches it caused were 2% of the packaged
	// server's CPU per lease (bench/dhcp.sh at 3,000/s: 0.262 -> 0.257
	// ms, three alternating pairs). device_count is kept by triggers
	// (migration 0021), so the bound costs no COUNT(*); at or under it
	// the LIMIT is 0, which SQLite tests before the subquery's loop, so
	// no device is read; a negative LIMIT would mean none, hence max.
	// Prepared once, as the commit's other statements are.
	evict, err := s.txPrepared(ctx, tx, stmtEvictDevices, evictDevicesQuery)
	if err != nil {
		return err
	}
	res, err := evict.ExecContext(ctx, limit)
	if err != nil {
		return err
	}
	gone, err := res.RowsAffected()
	if err != nil || gone == 0 {
		return err
	}
	after, err := auditJSON(struct {
		Limit   int64 `json:"limit"`
		Evicted int64 `json:"evicted"`
	}{limit, gone})
	if err != nil {
		return err
	}
	return s.auditTx(ctx, tx, AuditEntry{Actor: "inventory", Action: "device.evict", Object: "devices", After: after})
}

// sightFindingsTx records the devices that findings name in the
// inventory: a device inspection saw (a static address, a lease from
// another server) is on the network as much as one that took a lease. The
// finding's time is a sighting: it can only move first_seen earlier (or
// set it, for a device recorded by hand) and last_seen later. The segment
// and address fill in only what DHCP has not told, or update them when the
// sighting is the newest.
func sightFindingsTx(ctx context.Context, tx *sql.Tx, fs []Finding) (int, error) {
	up, err := tx.PrepareContext(ctx, `INSERT INTO devices (mac, first_seen, last_seen, segment, ip)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (mac) DO UPDATE SET
		first_seen = CASE WHEN devices.first_seen = '' OR excluded.first_seen < devices.first_seen
			THEN excluded.first_seen ELSE devices.first_seen END,
		last_seen = CASE WHEN excluded.last_seen > devices.last_seen THEN excluded.last_seen ELSE devices.last_seen END,
		segment = CASE WHEN devices.segment = '' OR (excluded.segment <> '' AND excluded.last_seen > devices.last_seen)
			THEN excluded.segment ELSE devices.segment END,
		ip = CASE WHEN devices.ip = '' OR (excluded.ip <> '' AND excluded.last_seen > devices.last_seen)
			THEN excluded.ip ELSE devices.ip END`)
	if err != nil {
		return 0, err
	}
	defer up.Close()
	n := 0
	for _, f := range fs {
		if len(f.SrcMAC) != 6 || isGroupMAC(f.SrcMAC) {
			continue
		}
		at := formatTime(f.At)
		if _, err := up.ExecContext(ctx, macText(f.SrcMAC), at, at, f.Segment, addrText(f.SrcIP.Unmap())); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// isGroupMAC reports a multicast or broadcast address: never one device.
func isGroupMAC(m net.HardwareAddr) bool { return m[0]&1 == 1 }

// LeasesForMAC returns the lease rows a device holds or held, newest first.
func (s *Store) LeasesForMAC(ctx context.Context, mac net.HardwareAddr) ([]DHCPLease, error) {
	return queryAll(ctx, s.db, "leases for "+mac.String(), scanLease, leasesForMACQuery, macText(mac))
}

// CountDevices counts the devices f selects (its Limit and Offset ignored).
func (s *Store) CountDevices(ctx context.Context, f DeviceFilter) (int, error) {
	where, args := f.where()
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM devices`+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count devices: %w", err)
	}
	return n, nil
}

// where renders the filter as a WHERE clause and its arguments.
func (f DeviceFilter) where() (string, []any) {
	q := ` WHERE 1=1`
	var args []any
	if f.Segment != "" {
		q += ` AND segment = ?`
		args = append(args, f.Segment)
	}
	if f.Approved != nil {
		q += ` AND approved = ?`
		args = append(args, *f.Approved)
	}
	if f.Randomised != nil {
		q += ` AND randomised = ?`
		args = append(args, *f.Randomised)
	}
	if !f.SeenSince.IsZero() {
		q += ` AND last_seen >= ?`
		args = append(args, formatTime(f.SeenSince))
	}
	if f.Q != "" {
		like := likePattern(f.Q)
		q += ` AND (mac LIKE ? ESCAPE '\' OR lower(name) LIKE ? ESCAPE '\' OR lower(owner) LIKE ? ESCAPE '\'
			OR lower(hostname) LIKE ? ESCAPE '\' OR ip LIKE ? ESCAPE '\')`
		args = append(args, like, like, like, like, like)
	}
	return q, args
}

// likePattern is a LIKE pattern (used with ESCAPE) matching text that
// contains q, ignoring case: q's own % and _ match only themselves, since a
// search is plain text.
func likePattern(q string) string {
	return "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(strings.ToLower(q)) + "%"
}
