package store

import "context"

// The people change log (migration 0090, table people_changes). Triggers
// log the id of every person whose row or group memberships change, and 0
// ("everyone") for a change to the term calendar or to a group, whichever
// connection or process makes it, so that a copy of people's login
// identities held in memory (RADIUS's identity cache) stays correct
// without any writer knowing it exists. The reading rule is the device
// change log's (device_changes.go), with person ids for MACs; an entry for
// everyone is reported as a gap (reload everything).

// LatestPersonChange is the newest entry of the people change log (0 when
// it is empty).
func (s *Store) LatestPersonChange(ctx context.Context) (int64, error) {
	return s.latest(ctx, peopleLog)
}

// PersonChangesSince returns the ids of the people changed after position
// since, oldest first, at most max of them, and the position they bring
// the reader to. gap is set when the reader cannot know every change since
// then (pruned past it, more than max, a log that went backwards, or a
// change that concerns everyone); ids is then nil and next is where a full
// reload starts from. The same id may be listed more than once.
func (s *Store) PersonChangesSince(ctx context.Context, since int64, max int) (ids []int64, next int64, gap bool, err error) {
	return changesSince(ctx, s, peopleLog, since, max, func(id int64) bool { return id == 0 })
}
