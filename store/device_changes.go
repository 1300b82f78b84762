package store

import (
	"context"
	"fmt"
	"net"
	"strings"
)

// The device change log (migration 0082, table device_changes). Triggers
// log the MAC of every change to devices (mac, approved, blocked, name,
// owner, person_id), radius_devices, radius_device_old_keys and
// radius_device_pmks, whichever connection or process makes it, so that a
// copy of them held in memory (DHCP's device states, RADIUS's device cache,
// RADIUS's PMK table) stays correct without any writer knowing it exists.
//
// The reading rule, for every reader:
//
//  1. Read LatestChange, then load what it holds (everything, or the
//     MACs it needs). The position is read first: a change committed
//     between the two reads is both in the load and after the position,
//     and applying it again changes nothing.
//  2. Every so often (each reader states its own bound), call
//     ChangesSince with its position and reload the MACs it returns
//     (reading the tables after the log, never before), then move to
//     next. The same MAC may be listed more than once.
//  3. When gap is set, the changes since the position are not all known
//     (pruned past it: the log keeps its last 10,000; more than the
//     reader asked for; or a log that went backwards, a restored backup):
//     reload everything, as in 1, from next.
//
// Why a log and not PRAGMA data_version: data_version is per connection
// and moves on every commit to any table (leases, the DNS log, accounting),
// so on a busy daemon it says "something changed" nearly always and never
// says which device. It serves only as a filter before the log's newest
// entry is read (changewatch.go): while it stands still, so does the log.

// LatestChange is the newest entry of the change log (0 when it is empty).
// Cheap enough to run before trusting a cached device.
func (s *Store) LatestChange(ctx context.Context) (int64, error) {
	return s.latest(ctx, deviceLog)
}

// ChangesSince returns the MACs (lower-case colon text, as the tables keep
// them) changed after position since, oldest first, at most max of them,
// and the position they bring the reader to. gap is set when the reader
// cannot know every change since then (see the reading rule above); macs
// is then nil and next is where a full reload starts from.
func (s *Store) ChangesSince(ctx context.Context, since int64, max int) (macs []string, next int64, gap bool, err error) {
	return changesSince[string](ctx, s, deviceLog, since, max, nil)
}

// DeviceState is what DHCP needs to know about one device: whether it is
// recorded, approved and blocked.
type DeviceState struct {
	MAC      net.HardwareAddr
	Present  bool // false: no record
	Approved bool
	Blocked  bool
}

// DeviceStates returns the state of every recorded device and the change
// log position it is at least as new as (rule 1 above).
func (s *Store) DeviceStates(ctx context.Context) ([]DeviceState, int64, error) {
	seq, err := s.LatestChange(ctx)
	if err != nil {
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

// statesPerQuery bounds the MACs of one IN list (SQLite's default limit
// on host parameters is 32766).
const statesPerQuery = 500

// DeviceStatesOf returns the state of each of macs (lower-case colon text,
// as ChangesSince lists them) that is a MAC: Present false for one with no
// record. Text that is not a MAC is skipped.
func (s *Store) DeviceStatesOf(ctx context.Context, macs []string) ([]DeviceState, error) {
	out := make([]DeviceState, 0, len(macs))
	for len(macs) > 0 {
		n := min(len(macs), statesPerQuery)
		part := macs[:n]
		macs = macs[n:]
		args := make([]any, len(part))
		for i, m := range part {
			args[i] = m
		}
		found := make(map[string]DeviceState, len(part))
		rows, err := s.db.QueryContext(ctx, `SELECT mac, approved, blocked FROM devices WHERE mac IN (?`+strings.Repeat(",?", len(part)-1)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("store: device states: %w", err)
		}
		for rows.Next() {
			var m string
			d := DeviceState{Present: true}
			if err := rows.Scan(&m, &d.Approved, &d.Blocked); err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: device states: %w", err)
			}
			found[m] = d
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("store: device states: %w", err)
		}
		for _, m := range part {
			mac, err := net.ParseMAC(m)
			if err != nil {
				continue
			}
			d := found[m]
			d.MAC = mac
			out = append(out, d)
		}
	}
	return out, nil
}

// HoldingKeys says whether any of macs (lower-case colon text, as
// ChangesSince lists them) holds a personal key, current or old, or a
// stored PMK: what the RADIUS server's PMK table is built from, so that a
// change to any other device (a new DHCP sighting) need not reload it.
func (s *Store) HoldingKeys(ctx context.Context, macs []string) (bool, error) {
	for len(macs) > 0 {
		n := min(len(macs), statesPerQuery)
		part := macs[:n]
		macs = macs[n:]
		in := `(?` + strings.Repeat(",?", len(part)-1) + `)`
		args := make([]any, 0, 3*len(part))
		for range 3 {
			for _, m := range part {
				args = append(args, m)
			}
		}
		var found bool
		err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM radius_devices WHERE psk_sealed IS NOT NULL AND mac IN `+in+`)
			OR EXISTS (SELECT 1 FROM radius_device_old_keys WHERE mac IN `+in+`)
			OR EXISTS (SELECT 1 FROM radius_device_pmks WHERE mac IN `+in+`)`, args...).Scan(&found)
		if err != nil {
			return false, fmt.Errorf("store: devices holding keys: %w", err)
		}
		if found {
			return true, nil
		}
	}
	return false, nil
}
