package radius

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// follower runs a change log check on behalf of the lookups of an
// in-memory cache (devcache.go, identities.go), under the rule deviceCache
// states: every lookup is covered by a check that began no earlier
// than maxStale before the lookup (and, with maxStale 0, after it). Checks
// are serialised and numbered: a lookup that arrives while check n runs is
// covered by check n+1, which one of the waiters runs for all of them, so
// under load one read of the log serves every request of the next
// maxStale instead of about one each. When local (this process's count of
// writes to the store; nil: none) has moved since the last check began,
// the next lookup checks whatever maxStale says: the process's own changes
// are never waited for.
//
// probe (nil: none) marks the database's commits (commitmark_linux.go):
// when its mark is what it was as the last check that ended well began,
// nothing has committed since, anywhere, so the log is as that check read
// it and this check ends well without reading it.
type follower struct {
	check func(context.Context) error
	local func() uint64
	probe func() (commitMark, bool)
	// mark is probe's mark as the last check that ended well began;
	// markOK says there is one. Both under checkMu.
	mark   commitMark
	markOK bool

	checkMu   sync.Mutex
	started   atomic.Uint64 // checks begun
	completed atomic.Uint64 // the number of the last check that ended well
	// freshAt is when (since base) the last check that ended well began;
	// lookups up to maxStale after that trust it without a check.
	base     time.Time
	maxStale time.Duration
	freshAt  atomic.Int64
	// localAt is local's count when the last check that ended well began.
	localAt atomic.Uint64
}

func (f *follower) init(maxStale time.Duration, check func(context.Context) error, local func() uint64) {
	f.check, f.local, f.maxStale, f.base = check, local, maxStale, time.Now()
	f.freshAt.Store(-int64(time.Hour)) // never checked
}

// sync returns once a check that began no earlier than maxStale before it
// was called (after it, with maxStale 0) has ended well.
func (f *follower) sync(ctx context.Context) error {
	arrived := f.started.Load()
	at := int64(time.Since(f.base)) // monotonic
	if f.maxStale > 0 && at-f.freshAt.Load() < int64(f.maxStale) && f.localCount() == f.localAt.Load() {
		return nil
	}
	f.checkMu.Lock()
	defer f.checkMu.Unlock()
	if f.completed.Load() > arrived {
		// A check that began after this call arrived has ended.
		return nil
	}
	n := f.started.Add(1)
	local := f.localCount() // before the check: a write after it moves it again
	began := int64(time.Since(f.base))
	var mark commitMark
	marked := false
	if f.probe != nil {
		mark, marked = f.probe()
		if marked && f.markOK && mark == f.mark && local == f.localAt.Load() {
			f.completed.Store(n)
			f.freshAt.Store(began)
			return nil
		}
	}
	if err := f.check(ctx); err != nil {
		return err
	}
	f.mark, f.markOK = mark, marked
	f.localAt.Store(local)
	f.completed.Store(n)
	f.freshAt.Store(began)
	return nil
}

// commitMarkLen is the octets of a commit mark: the two copies of
// SQLite's 48-octet WAL-index header.
const commitMarkLen = 96

// commitMark is what a probe read: equal marks, no commit between them.
type commitMark [commitMarkLen / 4]uint32

// storePath is a store that names its database file (store.Store).
type storePath interface{ Path() string }

func (f *follower) localCount() uint64 {
	if f.local == nil {
		return 0
	}
	return f.local()
}
