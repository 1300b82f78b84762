package radius

import (
	"context"
	"sync"
	"time"
)

// IdentityChangeLog tells a reader whose login identity changed, whoever
// changed it (package store's people change log, migration 0090: triggers
// log every change to a person's row, their group memberships, the groups
// and the term calendar, from this process or another, such as `gatehouse
// people password` while the daemon runs). The reading rule is store's
// (device_changes.go, people_changes.go). An Identities that also
// implements it is held in memory by the server.
type IdentityChangeLog interface {
	// LatestPersonChange is the log's newest entry: unchanged, nobody's
	// identity changed.
	LatestPersonChange(ctx context.Context) (int64, error)
	// PersonChangesSince lists the people (as Identity.Person names them)
	// changed after since, at most max, and the position that brings the
	// reader to; gap means "forget everyone".
	PersonChangesSince(ctx context.Context, since int64, max int) (people []string, next int64, gap bool, err error)
	// Commits counts this process's write transactions to the store (a
	// change here moves it before the writer returns): while it stands
	// still, the cache may trust a check up to maxStale old; once it
	// moves, the next lookup checks, so this process's own revocations
	// and password changes are seen by the very next request.
	Commits() uint64
}

// identityMaxAge is how long a cached identity is trusted without being
// read again even though the change log names no change to it. The log
// covers everything stored; this covers what is not: the clock (an
// identity's end of access counts from "today" in the school's calendar)
// and the calendar package people holds in memory, which it reloads a
// moment after the stored one changes. Once a minute per person costs
// nothing next to a read per request.
const identityMaxAge = time.Minute

// identityCache is Identities held in memory and checked against the
// people change log before every answer, as deviceCache is for devices
// (devcache.go: the same rule, the same 5 ms bound): a PAP or TTLS-PAP
// re-authentication costs a map read instead of two or three SQLite
// queries through cgo. A revocation, a leaver, a password change or a move
// committed by this process is seen by the very next request (Commits),
// and one committed by another process (`gatehouse people ...`, the
// sqlite3 shell) by every request that arrives more than maxStale after
// the commit.
//
// Safety: an entry holds what the directory returned, the argon2id hash
// included (never a password: the credential cache, credcache.go, keeps
// only an HMAC of it). Only names that exist are cached, keyed as SQLite's
// NOCASE compares them (ASCII letters folded), so a client sending
// made-up names or case variants of one name cannot grow the cache past
// the directory's people; and it is bounded by max besides.
type identityCache struct {
	src Identities
	log IdentityChangeLog
	max int
	now func() time.Time
	f   follower

	mu       sync.Mutex
	gen      int64  // the log generation entries are current to
	primed   bool   // gen has been read
	epoch    uint64 // moves whenever entries are dropped: voids fills begun before
	entries  map[string]identityEntry
	byPerson map[string][]string // Identity.Person -> keys of entries
}

type identityEntry struct {
	id Identity
	at time.Time // when it was read (monotonic)
}

// cachedIdentities holds ids in memory when it follows a change log
// (size 0: 65536 people); otherwise it returns ids as it is.
func cachedIdentities(ids Identities, size int) Identities {
	log, ok := ids.(IdentityChangeLog)
	if !ok || size < 0 {
		return ids
	}
	if size == 0 {
		size = 65536
	}
	return newIdentityCache(ids, log, size, defaultMaxStale, time.Now)
}

func newIdentityCache(src Identities, log IdentityChangeLog, max int, maxStale time.Duration, now func() time.Time) *identityCache {
	c := &identityCache{src: src, log: log, max: max, now: now,
		entries: make(map[string]identityEntry), byPerson: make(map[string][]string)}
	c.f.init(maxStale, c.check, log.Commits)
	return c
}

// Lookup answers from memory once the change log says the entry is current.
func (c *identityCache) Lookup(ctx context.Context, username string) (Identity, error) {
	if err := c.f.sync(ctx); err != nil {
		return Identity{}, err
	}
	key := foldASCII(username)
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[key]
	epoch := c.epoch
	c.mu.Unlock()
	if ok && now.Sub(e.at) < identityMaxAge && !now.Before(e.at) && (e.id.Until.IsZero() || now.Before(e.id.Until)) {
		return e.id, nil
	}
	id, err := c.src.Lookup(ctx, username)
	if err != nil {
		// Unknown names are not kept (see identityCache), nor failures.
		return Identity{}, err
	}
	c.mu.Lock()
	// Keep it only if no change was applied since the check above: a
	// change the read may have missed would otherwise stay cached.
	if c.epoch == epoch {
		c.put(key, identityEntry{id: id, at: now})
	}
	c.mu.Unlock()
	return id, nil
}

// held says whether username's identity is in memory and fresh enough
// for Lookup to answer from it, and whom the credential cache knows it as
// (verifyPassword's who): a hint for the read loop (inline.go), which
// checks nothing against the change log; Lookup still does. name is the
// packet's User-Name, not kept.
func (c *identityCache) held(name []byte, now time.Time) (who string, ok bool) {
	var e identityEntry
	c.mu.Lock()
	if hasUpperASCII(name) {
		e, ok = c.entries[foldASCII(string(name))]
	} else {
		e, ok = c.entries[string(name)] // converted in the index: no allocation
	}
	c.mu.Unlock()
	if !ok || now.Sub(e.at) >= identityMaxAge || now.Before(e.at) || (!e.id.Until.IsZero() && !now.Before(e.id.Until)) {
		return "", false
	}
	if e.id.Person == "" {
		return "", false // keyed "user:"+name: not worth a string built per request
	}
	return e.id.Person, true
}

func hasUpperASCII(b []byte) bool {
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			return true
		}
	}
	return false
}

// put stores e under key, dropping an arbitrary entry when full. c.mu held.
func (c *identityCache) put(key string, e identityEntry) {
	if old, ok := c.entries[key]; ok {
		c.unindex(key, old.id.Person)
	} else if len(c.entries) >= c.max {
		for k, old := range c.entries {
			delete(c.entries, k)
			c.unindex(k, old.id.Person)
			break
		}
	}
	c.entries[key] = e
	c.byPerson[e.id.Person] = append(c.byPerson[e.id.Person], key)
}

// unindex removes key from person's keys. c.mu held.
func (c *identityCache) unindex(key, person string) {
	keys := c.byPerson[person]
	for i, k := range keys {
		if k == key {
			keys[i] = keys[len(keys)-1]
			keys = keys[:len(keys)-1]
			break
		}
	}
	if len(keys) == 0 {
		delete(c.byPerson, person)
	} else {
		c.byPerson[person] = keys
	}
}

// check reads the log's generation and drops whoever changed since the last.
func (c *identityCache) check(ctx context.Context) error {
	g, err := c.log.LatestPersonChange(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	same, primed, since := g == c.gen, c.primed, c.gen
	c.mu.Unlock()
	if primed && same {
		return nil
	}
	var people []string
	gap := true // not primed: nothing is cached yet, start from g
	if primed {
		if people, g, gap, err = c.log.PersonChangesSince(ctx, since, maxChangesRead); err != nil {
			return err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !gap {
		for _, p := range people {
			for _, k := range c.byPerson[p] {
				delete(c.entries, k)
			}
			delete(c.byPerson, p)
		}
	} else {
		clear(c.entries)
		clear(c.byPerson)
	}
	c.epoch++
	c.gen, c.primed = g, true
	return nil
}

// len is the number of cached identities (tests).
func (c *identityCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// foldASCII lower-cases ASCII letters only, as SQLite's NOCASE collation
// (which the people's username lookup uses) compares them: two names that
// find the same person share one entry, and two that SQLite tells apart
// (non-ASCII case) do not.
func foldASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
