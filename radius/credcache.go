package radius

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	gohash "hash"
	"sync"
	"time"
)

// credCache remembers, for a short while, which person's password was
// last verified against which argon2id hash, so that a re-authentication
// (roaming between access points, a laptop waking up) costs an HMAC rather
// than another argon2id verification. The first login of a person, and
// any login after the entry expired, still pays the full argon2id cost.
//
// It never holds a password: an entry is HMAC-SHA256 under a key drawn at
// random for this process (so nothing in memory can be tested offline
// after a restart or a dump without the key, and nothing is written to
// disk) over the stored hash and the password. Binding the stored hash
// makes a password change invalidate the entry by itself (the new hash
// has a new salt); a person who left or was revoked is refused before the
// cache is asked, because every login still reads the person's current
// state (from the identity cache, identities.go, which the people change
// log keeps current).
type credCache struct {
	key [32]byte
	ttl time.Duration
	max int
	// macs holds HMAC-SHA256 states keyed with key, reused (Reset) so a
	// re-authentication's tag allocates no HMAC: a new one each time (two
	// SHA-256 states and the padded key) cost about 6 µs of a cached PAP
	// answer's CPU.
	macs sync.Pool

	mu       sync.Mutex
	m        map[string]credEntry
	checking map[string]chan struct{} // people whose password is being verified now
}

type credEntry struct {
	tag [sha256.Size]byte
	at  time.Time
}

// newCredCache returns a cache of at most max entries, each trusted for
// ttl; a ttl <= 0 returns nil, which caches nothing.
func newCredCache(ttl time.Duration, max int) (*credCache, error) {
	if ttl <= 0 || max <= 0 {
		return nil, nil
	}
	c := &credCache{ttl: ttl, max: max, m: make(map[string]credEntry), checking: make(map[string]chan struct{})}
	if _, err := rand.Read(c.key[:]); err != nil {
		return nil, fmt.Errorf("credential cache key: %w", err)
	}
	c.macs.New = func() any { return &credMAC{h: hmac.New(sha256.New, c.key[:])} }
	return c, nil
}

// credMAC is a pooled HMAC and the buffers it is fed from: writing the
// strings through io.WriteString (hmac has no WriteString: a copy of
// each), a []byte{0} and a stack array for Sum were four allocations per
// tag, half its cost (a cached PAP answer's tag, bench/radius.sh PERF).
type credMAC struct {
	h   gohash.Hash
	in  [256]byte // hash, 0, password: an argon2id hash is about 100 octets
	sum [sha256.Size]byte
}

func (c *credCache) tag(hash, pw string) [sha256.Size]byte {
	m := c.macs.Get().(*credMAC)
	b := append(m.in[:0], hash...) // past len(m.in) only for a very long hash or password
	b = append(b, 0)
	b = append(b, pw...)
	m.h.Reset()
	m.h.Write(b)
	t := [sha256.Size]byte(m.h.Sum(m.sum[:0]))
	// The password leaves no copy behind: the input cleared, and the
	// HMAC back to its keyed state (that rewrites the digest's block
	// buffer, which held the last bytes).
	clear(b)
	clear(m.sum[:])
	m.h.Reset()
	c.macs.Put(m)
	return t
}

// verified reports whether who's password pw was verified against hash
// within the ttl.
func (c *credCache) verified(who, hash, pw string, now time.Time) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	e, ok := c.m[who]
	c.mu.Unlock()
	if !ok || now.Sub(e.at) >= c.ttl || now.Before(e.at) {
		return false
	}
	t := c.tag(hash, pw)
	return hmac.Equal(t[:], e.tag[:])
}

// holds says whether who has an entry within the ttl, whatever its
// password: a hint (inline.go), not a verification.
func (c *credCache) holds(who string, now time.Time) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	e, ok := c.m[who]
	c.mu.Unlock()
	return ok && now.Sub(e.at) < c.ttl && !now.Before(e.at)
}

// remember records that pw verified against who's hash at now.
func (c *credCache) remember(who, hash, pw string, now time.Time) {
	if c == nil {
		return
	}
	t := c.tag(hash, pw)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[who]; !ok && len(c.m) >= c.max {
		for k, e := range c.m {
			if now.Sub(e.at) >= c.ttl {
				delete(c.m, k)
			}
		}
		if len(c.m) >= c.max {
			// Still full of live entries: drop one (map order is
			// arbitrary) rather than grow; that person pays argon2id
			// again next time.
			for k := range c.m {
				delete(c.m, k)
				break
			}
		}
	}
	c.m[who] = credEntry{tag: t, at: now}
}

// turn waits until nobody else is verifying a password of who, then
// returns done, which the caller must call when its own verification is
// over. Concurrent logins of one person (a device retrying through two
// access points, a burst after an outage) then cost one argon2id: the
// others find its result in the cache. It also keeps a guesser hammering
// one account to one argon2id at a time. ok is false when ctx ended first.
func (c *credCache) turn(ctx context.Context, who string) (done func(), ok bool) {
	if c == nil {
		return func() {}, true
	}
	for {
		c.mu.Lock()
		ch, busy := c.checking[who]
		if !busy {
			ch = make(chan struct{})
			c.checking[who] = ch
			c.mu.Unlock()
			return func() {
				c.mu.Lock()
				delete(c.checking, who)
				c.mu.Unlock()
				close(ch)
			}, true
		}
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, false
		}
	}
}

func (c *credCache) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
