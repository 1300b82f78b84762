// This file: the portal's AUP and branding kept in memory between reads.

package store

import (
	"sync"
	"time"
)

// portalCacheTTL bounds how long a kept answer is used without asking the
// database again. The two writers of what it keeps, SetPortalAUP's and
// SetBranding's transactions (the admin pages), clear it at once; the
// bound is for a write by another process on the same file, which nothing
// in Gatehouse does today. (Not Commits: that moves on every lease and
// log write, and would empty the cache many times a second at a rush.)
const portalCacheTTL = time.Second

// portalCache keeps the last answers of CurrentPortalAUP and
// CurrentBranding. The captive portal reads both for every sign-in page
// and every sign-in, thousands of times a minute at a morning rush, and
// they change a few times a year; each read was a query of its own.
//
// gen counts writes: a reader notes it before its query and keeps the
// answer only if no write came in between, so an answer read just before
// a write is never kept after it.
type portalCache struct {
	mu       sync.Mutex
	gen      uint64
	aupAt    time.Time // zero: nothing kept
	aupVal   PortalAUP
	aupFound bool
	brandAt  time.Time
	brandVal Branding
}

func (c *portalCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// changed forgets what is kept, after a write (or a failed one: it may
// have committed before failing).
func (c *portalCache) changed() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.aupAt, c.brandAt = time.Time{}, time.Time{}
	c.aupVal, c.brandVal = PortalAUP{}, Branding{}
}

func fresh(at time.Time) bool { return !at.IsZero() && time.Since(at) < portalCacheTTL }

// aup returns the kept AUP: ok when one is kept and fresh, found false when
// what is kept is that none is set.
func (c *portalCache) aup() (p PortalAUP, found, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !fresh(c.aupAt) {
		return PortalAUP{}, false, false
	}
	return c.aupVal, c.aupFound, true
}

func (c *portalCache) keepAUP(gen uint64, p PortalAUP, found bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen == c.gen {
		c.aupAt, c.aupVal, c.aupFound = time.Now(), p, found
	}
}

// branding returns the kept branding; its Logo is shared, not to be
// changed.
func (c *portalCache) branding() (Branding, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !fresh(c.brandAt) {
		return Branding{}, false
	}
	return c.brandVal, true
}

func (c *portalCache) keepBranding(gen uint64, b Branding) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen == c.gen {
		c.brandAt, c.brandVal = time.Now(), b
	}
}
