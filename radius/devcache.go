package radius

import (
	"context"
	"net"
	"sync"
	"time"
)

// DeviceChangeLog tells a reader which devices changed, whoever changed
// them (package store's device change log, migration 0082: triggers log
// every change to what DeviceForRADIUS and the personal keys' queries read,
// from this process or another, such as `gatehouse device approve` while
// the daemon runs). The reading rule is store's (device_changes.go).
type DeviceChangeLog interface {
	// LatestChange is the log's newest entry: unchanged, no device
	// changed.
	LatestChange(ctx context.Context) (int64, error)
	// ChangesSince lists the MACs (lower-case colon text) changed after
	// since, at most max, and the position that brings the reader to;
	// gap means "reload everything".
	ChangesSince(ctx context.Context, since int64, max int) (macs []string, next int64, gap bool, err error)
}

// maxChangesRead is how many logged changes the cache drops one by one;
// beyond that (a bulk import) it starts afresh.
const maxChangesRead = 1024

// deviceCache is Devices held in memory and checked against the change log
// before every answer: an Access-Request's lookup costs a map read and (at
// most) one read of the log's last row, shared by the requests that arrive
// while it runs, instead of a join over three tables.
//
// Correctness across processes: every lookup is covered by a check of the
// log's generation that began no earlier than maxStale before the lookup
// (and, with maxStale 0, after it), so a change committed by any
// connection of any process is seen by every request that arrives more
// than maxStale after the commit. The default, 5 ms, is far below anything
// a person or script can do between `gatehouse device approve` returning
// and a device asking (a new radclient process alone takes longer), and
// it is what makes the check cheap: under load one check (a read of the
// log's last row, through cgo and SQLite's file locks, which had become
// the largest part of a MAB answer) serves every request of the next 5 ms
// instead of about one each. A change this process commits (the admin
// page's approval, package people's block) moves the store's Commits, and
// the next lookup checks at once (follow.go). A fill from the store is
// discarded if changes were applied while it read (its row may predate
// them), so a stale row is never kept past the check that saw the change.
//
// Bounded: MACs come from the network (an unknown device is cached as
// unknown), so at most max entries; when full, an arbitrary one goes.
type deviceCache struct {
	src Devices
	log DeviceChangeLog
	max int
	f   follower // runs check under the rule above (follow.go)

	mu      sync.Mutex
	gen     int64                 // the log generation entries are current to
	primed  bool                  // gen has been read
	epoch   uint64                // moves whenever entries are dropped: voids fills begun before
	entries map[macKey]DeviceInfo // keyed by value: a lookup builds no string
}

// cachedDevices holds d in memory when it is a StoreDevices over a store
// with the change log, unless size is negative (0: 65536 devices).
func cachedDevices(d Devices, size int) Devices {
	sd, ok := d.(StoreDevices)
	if !ok || size < 0 {
		return d
	}
	log, ok := sd.Store.(DeviceChangeLog)
	if !ok {
		return d
	}
	if size == 0 {
		size = 65536
	}
	c := newDeviceCache(sd, log, size, defaultMaxStale)
	if lc, ok := sd.Store.(localCommits); ok {
		// This process's own approvals and blocks are seen at once.
		c.f.local = lc.Commits
	}
	return c
}

// localCommits is the store's count of this process's write transactions
// (store.Store.Commits): see follower.
type localCommits interface{ Commits() uint64 }

// defaultMaxStale is how long after a check began its answer covers new
// lookups (see deviceCache).
const defaultMaxStale = 5 * time.Millisecond

func newDeviceCache(src Devices, log DeviceChangeLog, max int, maxStale time.Duration) *deviceCache {
	c := &deviceCache{src: src, log: log, max: max, entries: make(map[macKey]DeviceInfo)}
	c.f.init(maxStale, c.check, nil)
	return c
}

// Lookup answers from memory once the change log says the entry is current.
func (c *deviceCache) Lookup(ctx context.Context, mac net.HardwareAddr) (DeviceInfo, error) {
	if err := c.sync(ctx); err != nil {
		return DeviceInfo{}, err
	}
	if len(mac) != len(macKey{}) {
		// Not an Ethernet MAC (ParseMAC gives none such): not cached.
		return c.src.Lookup(ctx, mac)
	}
	key := macKey(mac)
	c.mu.Lock()
	info, ok := c.entries[key]
	epoch := c.epoch
	c.mu.Unlock()
	if ok {
		return info, nil
	}
	info, err := c.src.Lookup(ctx, mac)
	if err != nil {
		return DeviceInfo{}, err
	}
	c.mu.Lock()
	// Keep it only if no change was applied since the check above: a
	// change the read may have missed would otherwise stay cached.
	if c.epoch == epoch {
		if len(c.entries) >= c.max {
			for k := range c.entries {
				delete(c.entries, k)
				break
			}
		}
		c.entries[key] = info
	}
	c.mu.Unlock()
	return info, nil
}

// preload fills the cache with the approved devices its source can read
// in bulk (StoreDevices over package store), at most its bound, instead of
// one worker's store read per device as each first asks: after a restart
// every device of a school asks within minutes, and each such first
// request went to a worker and SQLite (bench/radius.sh: 7% of the MAB
// run's CPU for its first 1,000 devices). The rows are kept under the rule
// a single fill keeps (Lookup): read after a check of the change log, and
// discarded when a change was applied while they were read; an entry a
// lookup filled meanwhile is kept, being at least as new. It tries a few
// times when changes keep arriving, then leaves the rest to lookups.
func (c *deviceCache) preload(ctx context.Context) (int, error) {
	sd, ok := c.src.(StoreDevices)
	if !ok {
		return 0, nil
	}
	for range 3 {
		if err := c.sync(ctx); err != nil {
			return 0, err
		}
		c.mu.Lock()
		epoch := c.epoch
		c.mu.Unlock()
		macs, infos, ok, err := sd.approved(ctx, c.max)
		if err != nil || !ok {
			return 0, err
		}
		c.mu.Lock()
		n := 0
		if c.epoch == epoch {
			for i, k := range macs {
				if len(c.entries) >= c.max {
					break
				}
				if _, held := c.entries[k]; !held {
					c.entries[k] = infos[i]
					n++
				}
			}
		}
		applied := c.epoch == epoch
		c.mu.Unlock()
		if applied {
			return n, nil
		}
	}
	return 0, nil
}

// sync brings the entries up to a generation read no earlier than
// maxStale before it was called (after it, with maxStale 0).
func (c *deviceCache) sync(ctx context.Context) error { return c.f.sync(ctx) }

// check reads the log's generation and drops what changed since the last.
func (c *deviceCache) check(ctx context.Context) error {
	g, err := c.log.LatestChange(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	same, primed, since := g == c.gen, c.primed, c.gen
	c.mu.Unlock()
	if primed && same {
		return nil
	}
	var macs []string
	gap := true // not primed: nothing is cached yet, start from g
	if primed {
		if macs, g, gap, err = c.log.ChangesSince(ctx, since, maxChangesRead); err != nil {
			return err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !gap {
		for _, m := range macs {
			k, ok := parseMAC6(m) // lower-case colon text
			if !ok {
				// Not a MAC this cache could hold: forget everything
				// rather than guess which entry it meant.
				gap = true
				break
			}
			delete(c.entries, k)
		}
	}
	if gap {
		clear(c.entries)
	}
	c.epoch++
	c.gen, c.primed = g, true
	return nil
}

// approved says whether mac is held as approved (and not blocked), without
// checking the log: a hint, not a decision (inline.go).
func (c *deviceCache) approved(key macKey) bool {
	c.mu.Lock()
	info, ok := c.entries[key]
	c.mu.Unlock()
	return ok && info.Approved && !info.Blocked
}

// len is the number of cached devices (tests).
func (c *deviceCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
