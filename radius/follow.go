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
type follower struct {
	check func(context.Context) error
	local func() uint64

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
	if err := f.check(ctx); err != nil {
		return err
	}
	f.localAt.Store(local)
	f.completed.Store(n)
	f.freshAt.Store(began)
	return nil
}

func (f *follower) localCount() uint64 {
	if f.local == nil {
		return 0
	}
	return f.local()
}
