package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// purgeChunk bounds one purge transaction, so a large backlog does not hold
// the write lock for long and DHCP commits keep flowing meanwhile.
const purgeChunk = 5000

// purgeOlder deletes the rows of table whose "at" is before the cut-off, a
// chunk per transaction, and returns how many went. Each chunk that deleted
// anything is audited as action with its count in the same transaction, so
// the audit log accounts for every row removed by retention. table is one of
// this package's own table names, never input.
func (s *Store) purgeOlder(ctx context.Context, actor, table, action string, before time.Time) (int64, error) {
	var total int64
	for {
		var n int64
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE id IN
				(SELECT id FROM `+table+` WHERE at < ? ORDER BY at LIMIT ?)`, formatTime(before), purgeChunk)
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
			return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: action, Object: table, After: after})
		})
		if err != nil {
			return total, fmt.Errorf("store: purge %s before %v: %w", table, before, err)
		}
		total += n
		if n < purgeChunk {
			return total, nil
		}
	}
}
