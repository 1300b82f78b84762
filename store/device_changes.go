package store

import (
	"context"
	"database/sql"
	"fmt"
	"net"
)

// DeviceState is what DHCP needs to know about one device: whether it is
// recorded, approved and blocked.
type DeviceState struct {
	MAC      net.HardwareAddr
	Present  bool // false: the record was deleted
	Approved bool
	Blocked  bool
}

// DeviceStates returns the state of every recorded device and the change
// sequence number it is at least as new as: changes after seq (see
// DeviceStateChanges) bring it up to date, whoever made them.
func (s *Store) DeviceStates(ctx context.Context) ([]DeviceState, int64, error) {
	// seq first: a change committed between the two reads is then both
	// in the rows and after seq, and applying it again changes nothing.
	var seq int64
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM device_changes`).Scan(&seq); err != nil {
		return nil, 0, fmt.Errorf("store: device states: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT mac, approved, blocked FROM devices`)
	if err != nil {
		return nil, 0, fmt.Errorf("store: device states: %w", err)
	}
	defer rows.Close()
	var out []DeviceState
	for rows.Next() {
		var m string
		d := DeviceState{Present: true}
		if err := rows.Scan(&m, &d.Approved, &d.Blocked); err != nil {
			return nil, 0, fmt.Errorf("store: device states: %w", err)
		}
		if d.MAC, err = net.ParseMAC(m); err != nil {
			continue // not a MAC DHCP could ask about
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("store: device states: %w", err)
	}
	return out, seq, nil
}

// DeviceStateChanges returns the device changes after seq, oldest first,
// at most limit of them, and the seq of the last one returned (seq itself
// when there are none). complete is false when changes after seq are no
// longer in the log (it keeps the last 8192) or the log restarted (a
// restored backup): the caller must reload with DeviceStates.
func (s *Store) DeviceStateChanges(ctx context.Context, seq int64, limit int) (changes []DeviceState, last int64, complete bool, err error) {
	stmt, err := s.prepared(ctx, stmtDeviceChanges, `SELECT seq, mac, present, approved, blocked FROM device_changes WHERE seq > ? ORDER BY seq LIMIT ?`)
	if err != nil {
		return nil, seq, false, fmt.Errorf("store: device changes: %w", err)
	}
	rows, err := stmt.QueryContext(ctx, seq, limit)
	if err != nil {
		return nil, seq, false, fmt.Errorf("store: device changes: %w", err)
	}
	defer rows.Close()
	last = seq
	first := true
	for rows.Next() {
		var n int64
		var m string
		var d DeviceState
		if err := rows.Scan(&n, &m, &d.Present, &d.Approved, &d.Blocked); err != nil {
			return nil, seq, false, fmt.Errorf("store: device changes: %w", err)
		}
		if first && n != seq+1 {
			// The row right after seq is gone (pruned) or the log is not
			// the one seq came from.
			return nil, seq, false, nil
		}
		first = false
		last = n
		if d.MAC, err = net.ParseMAC(m); err != nil {
			continue
		}
		changes = append(changes, d)
	}
	if err := rows.Err(); err != nil {
		return nil, seq, false, fmt.Errorf("store: device changes: %w", err)
	}
	if first {
		// Nothing after seq: still complete unless the log went backwards.
		var max int64
		if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM device_changes`).Scan(&max); err != nil && err != sql.ErrNoRows {
			return nil, seq, false, fmt.Errorf("store: device changes: %w", err)
		}
		if max < seq {
			return nil, seq, false, nil
		}
	}
	return changes, last, true, nil
}
