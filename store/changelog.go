package store

import (
	"context"
	"fmt"
)

// A change log table (device_changes, people_changes): triggers append the
// key of every changed row, and readers holding a copy in memory follow it
// by the reading rule in device_changes.go. Both logs are read the same
// way; only the table, the key's type and the "everyone" entry differ.
type changeLog struct {
	what            string // for errors: "device", "person"
	index           int    // which of changeWatch's logs
	sinceID         int    // prepared statement id (see prepared)
	latestQ, sinceQ string
}

var (
	deviceLog = changeLog{what: "device", index: 0, sinceID: stmtDeviceChanges,
		latestQ: `SELECT coalesce(max(seq), 0) FROM device_changes`,
		sinceQ:  `SELECT seq, mac FROM device_changes WHERE seq > ? ORDER BY seq LIMIT ?`}
	peopleLog = changeLog{what: "person", index: 1, sinceID: stmtPersonChanges,
		latestQ: `SELECT coalesce(max(seq), 0) FROM people_changes`,
		sinceQ:  `SELECT seq, person_id FROM people_changes WHERE seq > ? ORDER BY seq LIMIT ?`}
)

// numLogs is how many change logs there are (changeLog.index).
const numLogs = 2

// latest is the log's newest entry (0 when it is empty), read on the
// change watch's own connection, and not read again while nothing has been
// committed (changewatch.go): cheap enough to run before trusting a cached
// row.
func (s *Store) latest(ctx context.Context, l changeLog) (int64, error) {
	g, err := s.watch.latest(ctx, s.db, l)
	if err != nil {
		return 0, fmt.Errorf("store: latest %s change: %w", l.what, err)
	}
	return g, nil
}

// changesSince returns the keys changed in l after position since, oldest
// first, at most max of them, and the position they bring the reader to.
// gap is set when the reader cannot know every change since then (pruned
// past it, more than max, a log that went backwards, or an entry for which
// everyone reports true: a change that concerns every row); keys is then
// nil and next is where a full reload starts from.
func changesSince[K any](ctx context.Context, s *Store, l changeLog, since int64, max int, everyone func(K) bool) (keys []K, next int64, gap bool, err error) {
	stmt, err := s.prepared(ctx, l.sinceID, l.sinceQ)
	if err != nil {
		return nil, 0, false, fmt.Errorf("store: %s changes: %w", l.what, err)
	}
	rows, err := stmt.QueryContext(ctx, since, max+1)
	if err != nil {
		return nil, 0, false, fmt.Errorf("store: %s changes: %w", l.what, err)
	}
	defer rows.Close()
	next = since
	for rows.Next() {
		var seq int64
		var k K
		if err := rows.Scan(&seq, &k); err != nil {
			return nil, 0, false, fmt.Errorf("store: %s changes: %w", l.what, err)
		}
		if seq != next+1 || len(keys) == max || (everyone != nil && everyone(k)) {
			// Pruned (or never seen), too many to list, or everyone.
			gap = true
		}
		next = seq
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, false, fmt.Errorf("store: %s changes: %w", l.what, err)
	}
	if gap || len(keys) == 0 {
		// Where the log stands now (also when since is ahead of it: a
		// restored backup, which nothing above would notice).
		now, err := s.latest(ctx, l)
		if err != nil {
			return nil, 0, false, err
		}
		if now != next {
			gap = true
		}
		next = now
	}
	if gap {
		keys = nil
	}
	return keys, next, gap, nil
}
