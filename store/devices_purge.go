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
	var total int64
	for {
		var n int64
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM devices WHERE mac IN (
				SELECT d.mac FROM devices AS d
				WHERE d.first_seen < ? AND d.approved = 0 AND d.blocked = 0 AND d.name = '' AND d.owner = ''
				  AND NOT EXISTS (SELECT 1 FROM dhcp_leases AS l WHERE l.mac = d.mac)
				  AND NOT EXISTS (SELECT 1 FROM dhcp_reservations AS r WHERE r.mac = d.mac)
				LIMIT ?)`, formatTime(before), purgeChunk)
			if err != nil {
				return err
			}
			if n, err = res.RowsAffected(); err != nil || n == 0 {
				return err
			}
			after, err := auditJSON(struct {
				Before  time.Time `json:"before"`
				Deleted int64     `json:"deleted"`
			}{before.UTC(), n})
			if err != nil {
				return err
			}
			return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "device.purge_unleased", Object: "devices", After: after})
		})
		if err != nil {
			return total, fmt.Errorf("store: purge unleased devices before %v: %w", before, err)
		}
		total += n
		if n < purgeChunk {
			return total, nil
		}
	}
}
