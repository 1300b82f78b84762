package radius

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"
)

// dupKey names one request: RFC 5080 2.2.2's (client, source, identifier,
// request authenticator). It holds no pointer or string (the client by
// its number, the address as 16 octets), so it is hashed and compared as
// plain memory. An IPv6 zone is not part of it; two link-local peers
// that differ only by interface would also need the same identifier and
// random authenticator.
type dupKey struct {
	client uint16
	addr   [16]byte
	port   uint16
	id     byte
	auth   [16]byte
}

func newDupKey(c *Client, src netip.AddrPort, pkt []byte) dupKey {
	k := dupKey{client: c.num, addr: src.Addr().As16(), port: src.Port(), id: pkt[1]}
	copy(k.auth[:], pkt[4:20])
	return k
}

type dupState int

const (
	dupNew        dupState = iota // first time: handle it
	dupInProgress                 // being handled, or its reply is not due yet: ignore
	dupReplay                     // answered: send the cached reply again
	dupFull                       // the cache is full: drop, so no request is ever handled twice
)

// dupCache remembers requests for a window so that a retransmission gets the
// byte-identical reply without being handled (and written) twice.
//
// Entries all live the same time, so they sit in a ring in arrival order,
// each numbered (seq) as it arrives, and expiry moves the ring's tail. A
// hash index finds them: a bucket holds the number of its newest entry,
// and each entry the number of the next older one in its bucket, so a
// chain runs from new to old and ends at the first number the ring has
// already expired: nothing is ever unlinked. No entry is a map entry or
// an allocation of its own: under radclient's load the map this replaced
// (its hashing, its growth and rehashing as entries came and went, and
// the collector scanning it) was 7-8% of the daemon's CPU per MAB answer
// (bench/radius.sh, PERF). The ring grows by doubling while it is used,
// up to its bound, and never shrinks.
//
// The bucket is a keyed hash (maphash, a seed per cache) of the key: the
// request authenticator is the sender's choice, and an unkeyed hash would
// let a client with the secret's address put every entry in one chain.
type dupCache struct {
	mu      sync.Mutex
	window  time.Duration
	max     int // entries not forgotten, at most
	ringMax int // entries in the ring (forgotten ones too), at most: 2*max
	seed    maphash.Seed

	ring  []dupSlot // len is a power of two; entry seq is at seq&(len-1)
	heads []uint64  // per bucket, the seq of its newest entry; 0: none
	tail  uint64    // the oldest entry's seq (seqs start at 1)
	next  uint64    // the seq of the next entry
	live  int       // entries in the ring not forgotten
	base  time.Time // at and readyAt are durations since base
	last  uint64    // the seq begin added last: usually the next complete's
}

// dupSlot is one entry. Times are offsets from the cache's base, not
// time.Time: a third of the size, and no location pointer to scan.
type dupSlot struct {
	key     dupKey
	done    bool // answered: reply is set
	gone    bool // forgotten: skipped by lookups, removed at expiry
	seq     uint64
	older   uint64 // the next older entry of the same bucket
	at      time.Duration
	readyAt time.Duration // a delayed reject: retransmissions before this are ignored
	reply   []byte
}

func newDupCache(window time.Duration, max int) *dupCache {
	return &dupCache{window: window, max: max, ringMax: 2 * max, seed: maphash.MakeSeed(), tail: 1, next: 1}
}

// since is now as an offset from the cache's base (set at first use).
func (c *dupCache) since(now time.Time) time.Duration {
	if c.base.IsZero() {
		c.base = now
	}
	return now.Sub(c.base)
}

func (c *dupCache) bucket(k *dupKey) int {
	var b [40]byte
	b[0], b[1] = byte(k.client), byte(k.client>>8)
	copy(b[2:18], k.addr[:])
	b[18], b[19], b[20] = byte(k.port), byte(k.port>>8), k.id
	copy(b[21:37], k.auth[:])
	return int(maphash.Bytes(c.seed, b[:37]) & uint64(len(c.heads)-1))
}

func (c *dupCache) n() int { return int(c.next - c.tail) }

func (c *dupCache) expire(now time.Duration) {
	for c.tail < c.next {
		e := &c.ring[c.tail&uint64(len(c.ring)-1)]
		if !e.gone && now-e.at < c.window {
			break
		}
		if !e.gone {
			c.live--
		}
		*e = dupSlot{} // drops the reply
		c.tail++
	}
}

// find is k's entry not forgotten, nil when none; b is k's bucket.
func (c *dupCache) find(k *dupKey, b int) *dupSlot {
	if len(c.ring) == 0 {
		return nil
	}
	mask := uint64(len(c.ring) - 1)
	for s := c.heads[b]; s >= c.tail && s != 0; {
		e := &c.ring[s&mask]
		if e.seq != s {
			return nil // overwritten: every older one is gone too
		}
		if !e.gone && e.key == *k {
			return e
		}
		s = e.older
	}
	return nil
}

// lastOrFind is find for k, without hashing when k is the entry begin
// added last (the read loop completes each request right after it
// began it).
func (c *dupCache) lastOrFind(k *dupKey) *dupSlot {
	if c.last >= c.tail && c.last < c.next {
		if e := &c.ring[c.last&uint64(len(c.ring)-1)]; e.seq == c.last && !e.gone && e.key == *k {
			return e
		}
	}
	return c.find(k, c.bucket(k))
}

// grow doubles the ring (and the buckets) and indexes its entries again,
// oldest first so that each chain runs from new to old.
func (c *dupCache) grow() {
	size := max(64, 2*len(c.ring))
	ring := make([]dupSlot, size)
	mask := uint64(size - 1)
	old := c.ring
	c.ring, c.heads = ring, make([]uint64, size)
	for s := c.tail; s < c.next; s++ {
		e := old[s&uint64(len(old)-1)]
		b := c.bucket(&e.key)
		e.older = c.heads[b]
		c.heads[b] = s
		ring[s&mask] = e
	}
}

// begin records k as seen and says what to do with it.
func (c *dupCache) begin(k dupKey, now time.Time) (dupState, []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.since(now)
	c.expire(t)
	if len(c.ring) == 0 {
		c.grow()
	}
	b := c.bucket(&k)
	if e := c.find(&k, b); e != nil {
		if !e.done || t < e.readyAt {
			return dupInProgress, nil
		}
		return dupReplay, e.reply
	}
	// The ring counts forgotten entries too (a flood of requests dropped
	// unanswered), so it is bounded as well.
	if c.live >= c.max || c.n() >= c.ringMax {
		return dupFull, nil
	}
	if c.n() == len(c.ring) {
		c.grow()
		b = c.bucket(&k) // more buckets now
	}
	s := c.next
	c.next++
	c.ring[s&uint64(len(c.ring)-1)] = dupSlot{key: k, seq: s, older: c.heads[b], at: t}
	c.heads[b] = s
	c.live++
	c.last = s
	return dupNew, nil
}

// complete stores the reply to k, sent at readyAt.
func (c *dupCache) complete(k dupKey, reply []byte, readyAt time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.lastOrFind(&k); e != nil {
		e.done, e.reply, e.readyAt = true, reply, c.since(readyAt)
	}
}

// forget drops k: it was not answered, so a retransmission is handled anew.
func (c *dupCache) forget(k dupKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.find(&k, c.bucket(&k)); e != nil {
		e.gone, e.reply = true, nil
		c.live--
	}
}

func (c *dupCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live
}
