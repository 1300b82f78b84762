// Package testkit holds the small helpers many packages' tests share: a
// buffer several goroutines may write to (SyncBuffer) and a clock a test
// moves by hand (Clock).
//
// It owns nothing of Gatehouse itself and imports no Gatehouse package, so
// any test may use it. Harnesses that need a store, a web server or network
// namespaces live with what they drive (web/webtest, testbed).
package testkit

import (
	"bytes"
	"sync"
	"time"
)

// SyncBuffer is an io.Writer safe for concurrent use: a log sink shared by
// a server's goroutines, or a child process's stdout and stderr pipes, that
// the test reads while they still write. The zero value is ready to use.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Clock is a fake time source for code that takes a `func() time.Time`:
// pass c.Now. It stands still until the test moves it, so expiries and
// windows are tested without sleeping. Safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock showing t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d (back, if d is negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Set puts the clock at t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
