package dhcp

import (
	"sync"
	"time"
)

// Defaults of the flood limits.
const (
	// DefaultPacketsPerSecond is each interface's sustained request rate; a
	// burst of twice as many passes. A school segment's real clients send a
	// handful a second even at the start of the day.
	DefaultPacketsPerSecond = 200
	// DefaultNewDevicesPerMinute is how many MACs the segment has never seen
	// (no device record, no binding) may be offered an address per minute.
	// Made-up MACs are how a pool is emptied; a class arriving at once is
	// about 30.
	DefaultNewDevicesPerMinute = 60
)

// bucket is a token bucket: rate tokens a second, at most burst saved.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate int) *bucket {
	return &bucket{rate: float64(rate), burst: float64(2 * rate), tokens: float64(2 * rate)}
}

// take spends one token, reporting false when there is none.
func (b *bucket) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() {
		b.tokens += now.Sub(b.last).Seconds() * b.rate
		if b.tokens > b.burst {
			b.tokens = b.burst
		}
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// window counts events in the current minute; its state is two numbers, so
// no table grows with the MACs an attacker makes up.
type window struct {
	mu      sync.Mutex
	limit   int
	start   time.Time
	n       int
	tripped bool // the limit was hit in this window (one finding per window)
}

// allow counts one event and reports whether it is within the limit, and
// whether this is the first refusal of the window.
func (w *window) allow(now time.Time) (ok, firstRefusal bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if now.Sub(w.start) >= time.Minute || now.Before(w.start) {
		w.start, w.n, w.tripped = now, 0, false
	}
	if w.n < w.limit {
		w.n++
		return true, false
	}
	first := !w.tripped
	w.tripped = true
	return false, first
}
