package radius

import (
	"net/netip"
	"sync"
	"time"
)

// dupKey names one request: RFC 5080 2.2.2's (client, source, identifier,
// request authenticator). It holds no pointer or string (the client by
// its number, the address as 16 octets), so the map hashes it as plain
// memory: with the client's name and a netip.AddrPort the key's hashing
// and comparison were most of the cache's CPU under load. An IPv6 zone is
// not part of it; two link-local peers that differ only by interface
// would also need the same identifier and random authenticator.
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

type dupEntry struct {
	at      time.Time
	done    bool
	reply   []byte
	readyAt time.Time // a delayed reject: retransmissions before this are ignored
}

type dupState int

const (
	dupNew        dupState = iota // first time: handle it
	dupInProgress                 // being handled, or its reply is not due yet: ignore
	dupReplay                     // answered: send the cached reply again
	dupFull                       // the cache is full: drop, so no request is ever handled twice
)

// dupCache remembers requests for a window so that a retransmission gets the
// byte-identical reply without being handled (and written) twice. Entries
// all live the same time, so expiry walks a FIFO; the size is bounded.
// Entries are values in the map and the FIFO is a ring: under load a
// pointer per entry and the FIFO's compaction (a copy of thousands of keys
// every thousand requests) were a tenth of a MAB answer's CPU.
type dupCache struct {
	mu     sync.Mutex
	window time.Duration
	max    int
	m      map[dupKey]dupEntry
	fifo   []dupKey // a ring: n keys from head, in arrival order
	head   int
	n      int
}

func newDupCache(window time.Duration, max int) *dupCache {
	return &dupCache{window: window, max: max, m: make(map[dupKey]dupEntry)}
}

func (c *dupCache) expire(now time.Time) {
	for c.n > 0 {
		k := c.fifo[c.head]
		e, ok := c.m[k]
		if ok && now.Sub(e.at) < c.window {
			break
		}
		if ok {
			delete(c.m, k)
		}
		c.fifo[c.head] = dupKey{}
		c.head = (c.head + 1) % len(c.fifo)
		c.n--
	}
}

// push appends k to the ring, growing it when full. A forgotten key stays
// in the ring until it expires, so the ring may hold more keys than the
// map; it is bounded by what arrives in one window.
func (c *dupCache) push(k dupKey) {
	if c.n == len(c.fifo) {
		grown := make([]dupKey, max(64, 2*len(c.fifo)))
		copied := copy(grown, c.fifo[c.head:])
		copy(grown[copied:], c.fifo[:c.head])
		c.fifo, c.head = grown, 0
	}
	c.fifo[(c.head+c.n)%len(c.fifo)] = k
	c.n++
}

// begin records k as seen and says what to do with it.
func (c *dupCache) begin(k dupKey, now time.Time) (dupState, []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	if e, ok := c.m[k]; ok {
		if !e.done || now.Before(e.readyAt) {
			return dupInProgress, nil
		}
		return dupReplay, e.reply
	}
	// The ring counts forgotten keys too (a flood of requests dropped
	// unanswered), so it is bounded as well.
	if len(c.m) >= c.max || c.n >= 2*c.max {
		return dupFull, nil
	}
	c.m[k] = dupEntry{at: now}
	c.push(k)
	return dupNew, nil
}

// complete stores the reply to k, sent at readyAt.
func (c *dupCache) complete(k dupKey, reply []byte, readyAt time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		e.done, e.reply, e.readyAt = true, reply, readyAt
		c.m[k] = e
	}
}

// forget drops k: it was not answered, so a retransmission is handled anew.
func (c *dupCache) forget(k dupKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, k)
}

func (c *dupCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
