package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// PurgeUnleasedDevices deletes device rows that never completed a lease:
// first seen before the cut-off, no lease row ever held by the MAC, no
// reservation, and nothing a person decided (not approved, not blocked, no
// name, no owner). Made-up MACs from a DHCP flood end up here; without this
// they would stay for ever. Each chunk is audited as
// "device.purge_unleased" with its count in the same transaction.
func (s *Store) PurgeUnleasedDevices(ctx context.Context, actor string, before time.Time) (int64, error) {
	return s.purgeDevices(ctx, actor, "device.purge_unleased", before, `DELETE FROM devices WHERE mac IN (
		SELECT d.mac FROM devices AS d
		WHERE d.first_seen <> '' AND d.first_seen < ? AND d.approved = 0 AND d.blocked = 0 AND d.name = '' AND d.owner = ''
		  AND NOT EXISTS (SELECT 1 FROM dhcp_leases AS l WHERE l.mac = d.mac)
		  AND NOT EXISTS (SELECT 1 FROM dhcp_reservations AS r WHERE r.mac = d.mac)
		LIMIT ?)`, formatTime(before))
}

// PurgeStaleDevices deletes the rows of every device last seen before the
// cut-off, leased or not, approved or not: the inventory keeps a device only
// for the configured retention after it was last on the network. What a
// person set up to outlast absence stays: a reservation (the device is
// expected back) and a block (forgetting it would let the device back in
// as a stranger). The device's old lease rows go with it; a lease still
// running keeps it. Each chunk is audited as "device.purge_stale" with its
// count in the same transaction.
func (s *Store) PurgeStaleDevices(ctx context.Context, actor string, before, now time.Time) (int64, error) {
	return s.purgeDevices(ctx, actor, "device.purge_stale", before, `DELETE FROM devices WHERE mac IN (
		SELECT d.mac FROM devices AS d
		WHERE d.last_seen < ? AND d.blocked = 0
		  AND NOT EXISTS (SELECT 1 FROM dhcp_leases AS l WHERE l.mac = d.mac AND l.state = 'bound' AND l.expires_at > ?)
		  AND NOT EXISTS (SELECT 1 FROM dhcp_reservations AS r WHERE r.mac = d.mac)
		LIMIT ?)`, formatTime(before), formatTime(now))
}

// purgeDevices runs a device purge query (its last argument is the chunk
// size) until a chunk comes back short, each chunk audited as action.
func (s *Store) purgeDevices(ctx context.Context, actor, action string, before time.Time, query string, args ...any) (int64, error) {
	var total int64
	for {
		var n int64
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, query, append(args, purgeChunk)...)
			if err != nil {
				return err
			}
			if n, err = res.RowsAffected(); err != nil || n == 0 {
				return err
			}
			if action == "device.purge_stale" {
				// Their ended leases name MACs the inventory no longer has.
				if _, err := tx.ExecContext(ctx, `DELETE FROM dhcp_leases WHERE mac != '' AND expires_at < ?
					AND mac NOT IN (SELECT mac FROM devices)`, formatTime(before)); err != nil {
					return err
				}
			}
			after, err := auditJSON(struct {
				Before  time.Time `json:"before"`
				Deleted int64     `json:"deleted"`
			}{before.UTC(), n})
			if err != nil {
				return err
			}
			return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: action, Object: "devices", After: after})
		})
		if err != nil {
			return total, fmt.Errorf("store: %s before %v: %w", action, before, err)
		}
		total += n
		if n < purgeChunk {
			return total, nil
		}
	}
}
