package store

import (
	"context"
	"fmt"
)

// RADIUS device change log (migration 0082): triggers on devices,
// radius_devices and radius_device_old_keys log the MAC of every change to
// what DeviceForRADIUS reads, whichever connection or process made it, so
// that the RADIUS server can keep devices in memory and still see
// `gatehouse device approve` from another process at once.
//
// Why a log and not PRAGMA data_version: data_version is per connection
// (it needs one connection held for the purpose) and moves on every commit
// to any table (leases, the DNS log, accounting), so on a busy daemon it
// says "something changed" nearly always and never says which device.

// RADIUSDeviceGeneration is the newest entry of the change log (0 when it
// is empty): unchanged means no device's RADIUS decision changed. One read
// of the table's last row, on a statement prepared once: cheap enough to
// run before trusting a cached device.
func (s *Store) RADIUSDeviceGeneration(ctx context.Context) (int64, error) {
	stmt, err := s.prepared(ctx, stmtRADIUSDeviceGeneration, `SELECT coalesce(max(seq), 0) FROM radius_device_changes`)
	if err != nil {
		return 0, fmt.Errorf("store: RADIUS device generation: %w", err)
	}
	var g int64
	// As DeviceForRADIUS: one row, over before a cancel could matter, and
	// a cancellable context costs a goroutine per query.
	if err := stmt.QueryRowContext(context.WithoutCancel(ctx)).Scan(&g); err != nil {
		return 0, fmt.Errorf("store: RADIUS device generation: %w", err)
	}
	return g, nil
}

// RADIUSDeviceChangesSince returns the MACs (lower-case colon text, as
// the devices table keeps them) changed after generation since, up to at
// most max of them, and the generation they bring the reader to. complete
// is false when the reader cannot know every change since then: more than
// max changes, the log pruned past since, or a generation that went
// backwards (a restored backup); the reader must then forget everything.
func (s *Store) RADIUSDeviceChangesSince(ctx context.Context, since int64, max int) (macs []string, gen int64, complete bool, err error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, mac FROM radius_device_changes WHERE seq > ? ORDER BY seq LIMIT ?`, since, max+1)
	if err != nil {
		return nil, 0, false, fmt.Errorf("store: RADIUS device changes: %w", err)
	}
	defer rows.Close()
	gen, complete = since, true
	for rows.Next() {
		var seq int64
		var mac string
		if err := rows.Scan(&seq, &mac); err != nil {
			return nil, 0, false, fmt.Errorf("store: RADIUS device changes: %w", err)
		}
		if seq != gen+1 || len(macs) == max {
			// A gap: pruned (or never seen); or too many to list.
			complete = false
		}
		gen = seq
		macs = append(macs, mac)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, false, fmt.Errorf("store: RADIUS device changes: %w", err)
	}
	if !complete || len(macs) == 0 {
		// Where the log stands now (also when since is ahead of it: a
		// restored backup, which nothing above would notice).
		now, err := s.RADIUSDeviceGeneration(ctx)
		if err != nil {
			return nil, 0, false, err
		}
		if now != gen {
			complete = false
		}
		gen = now
	}
	if !complete {
		macs = nil
	}
	return macs, gen, complete, nil
}
