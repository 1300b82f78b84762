package store

import (
	"context"
	"fmt"
)

// The people change log (migration 0090, table people_changes). Triggers
// log the id of every person whose row or group memberships change, and 0
// ("everyone") for a change to the term calendar or to a group, whichever
// connection or process makes it, so that a copy of people's login
// identities held in memory (RADIUS's identity cache) stays correct
// without any writer knowing it exists. The reading rule is the device
// change log's (device_changes.go), with person ids for MACs; an entry for
// everyone is reported as a gap (reload everything).

// LatestPersonChange is the newest entry of the people change log (0 when
// it is empty). One read of the table's last row, on a statement prepared
// once: cheap enough to run before trusting a cached identity.
func (s *Store) LatestPersonChange(ctx context.Context) (int64, error) {
	stmt, err := s.prepared(ctx, stmtLatestPersonChange, `SELECT coalesce(max(seq), 0) FROM people_changes`)
	if err != nil {
		return 0, fmt.Errorf("store: latest person change: %w", err)
	}
	var g int64
	// As LatestChange: one row, over before a cancel could matter, and a
	// cancellable context costs a goroutine per query.
	if err := stmt.QueryRowContext(context.WithoutCancel(ctx)).Scan(&g); err != nil {
		return 0, fmt.Errorf("store: latest person change: %w", err)
	}
	return g, nil
}

// PersonChangesSince returns the ids of the people changed after position
// since, oldest first, at most max of them, and the position they bring
// the reader to. gap is set when the reader cannot know every change since
// then (pruned past it, more than max, a log that went backwards, or a
// change that concerns everyone); ids is then nil and next is where a full
// reload starts from. The same id may be listed more than once.
func (s *Store) PersonChangesSince(ctx context.Context, since int64, max int) (ids []int64, next int64, gap bool, err error) {
	stmt, err := s.prepared(ctx, stmtPersonChanges, `SELECT seq, person_id FROM people_changes WHERE seq > ? ORDER BY seq LIMIT ?`)
	if err != nil {
		return nil, 0, false, fmt.Errorf("store: person changes: %w", err)
	}
	rows, err := stmt.QueryContext(ctx, since, max+1)
	if err != nil {
		return nil, 0, false, fmt.Errorf("store: person changes: %w", err)
	}
	defer rows.Close()
	next = since
	for rows.Next() {
		var seq, id int64
		if err := rows.Scan(&seq, &id); err != nil {
			return nil, 0, false, fmt.Errorf("store: person changes: %w", err)
		}
		if seq != next+1 || len(ids) == max || id == 0 {
			// Pruned (or never seen), too many to list, or everyone.
			gap = true
		}
		next = seq
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, false, fmt.Errorf("store: person changes: %w", err)
	}
	if gap || len(ids) == 0 {
		// Where the log stands now (also when since is ahead of it: a
		// restored backup, which nothing above would notice).
		now, err := s.LatestPersonChange(ctx)
		if err != nil {
			return nil, 0, false, err
		}
		if now != next {
			gap = true
		}
		next = now
	}
	if gap {
		ids = nil
	}
	return ids, next, gap, nil
}
