package captive

import (
	"sync"
	"time"
)

// Limits bound code guessing. The zero value of a field means its default.
type Limits struct {
	// DeviceFailures failed codes within Window lock a device out.
	DeviceFailures int           // default 5
	Window         time.Duration // default 1 minute
	// The first lockout lasts FirstLockout; each further one (without a quiet
	// hour in between) twice as long as the previous, up to MaxLockout.
	FirstLockout time.Duration // default 1 minute
	MaxLockout   time.Duration // default 1 hour
	// SiteFailures failed codes across the whole site within Window trip the
	// breaker for BreakerHold: while it is tripped every device may try at
	// most once per BreakerSpacing, and an alert is raised.
	SiteFailures   int           // default 30
	BreakerHold    time.Duration // default 5 minutes
	BreakerSpacing time.Duration // default 10 seconds
	// MaxTracked bounds the devices remembered (memory under a flood of
	// spoofed MACs); the stalest are forgotten first.
	MaxTracked int // default 10000
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.DeviceFailures, 5)
	defD(&l.Window, time.Minute)
	defD(&l.FirstLockout, time.Minute)
	defD(&l.MaxLockout, time.Hour)
	def(&l.SiteFailures, 30)
	defD(&l.BreakerHold, 5*time.Minute)
	defD(&l.BreakerSpacing, 10*time.Second)
	def(&l.MaxTracked, 10000)
	return l
}

// limiter applies Limits. Keys are MACs (or "ip:" addresses when the MAC is
// unknown). It is safe for concurrent use.
type limiter struct {
	lim Limits

	mu           sync.Mutex
	devices      map[string]*deviceLimit
	siteFails    []time.Time // failures within the window, oldest first
	trippedUntil time.Time
	// lastNew is when a device the limiter did not know last tried while
	// the breaker was tripped: new devices share one spacing slot then, or
	// a guesser would make up a new MAC for every try.
	lastNew time.Time
}

type deviceLimit struct {
	fails       []time.Time
	lockUntil   time.Time
	lockouts    int
	lastAttempt time.Time
	lastFail    time.Time
}

func newLimiter(l Limits) *limiter {
	return &limiter{lim: l.withDefaults(), devices: map[string]*deviceLimit{}}
}

// allow reports how long key must wait before it may try a code; 0 means it
// may try now. A permitted attempt is recorded for the breaker's spacing.
func (l *limiter) allow(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.devices[key]
	if d != nil && now.Before(d.lockUntil) {
		return d.lockUntil.Sub(now)
	}
	if now.Before(l.trippedUntil) && d != nil && !d.lastAttempt.IsZero() {
		if next := d.lastAttempt.Add(l.lim.BreakerSpacing); now.Before(next) {
			return next.Sub(now)
		}
	}
	if d == nil {
		if now.Before(l.trippedUntil) {
			if next := l.lastNew.Add(l.lim.BreakerSpacing); !l.lastNew.IsZero() && now.Before(next) {
				return next.Sub(now)
			}
			l.lastNew = now
		}
		d = l.track(key, now)
	}
	d.lastAttempt = now
	return 0
}

// track adds key, first forgetting the stalest devices when full.
func (l *limiter) track(key string, now time.Time) *deviceLimit {
	if len(l.devices) >= l.lim.MaxTracked {
		// Forget everyone idle for an hour and unlocked; if that frees
		// nothing, the single stalest.
		var stalest string
		var stalestAt time.Time
		for k, d := range l.devices {
			if !now.Before(d.lockUntil) && now.Sub(d.lastAttempt) > time.Hour {
				delete(l.devices, k)
				continue
			}
			if stalest == "" || d.lastAttempt.Before(stalestAt) {
				stalest, stalestAt = k, d.lastAttempt
			}
		}
		if len(l.devices) >= l.lim.MaxTracked {
			delete(l.devices, stalest)
		}
	}
	d := &deviceLimit{}
	l.devices[key] = d
	return d
}

// fail records a wrong code from key. It returns true when this failure
// tripped the site-wide breaker (it was not tripped before), so the caller
// raises the alert once per trip.
func (l *limiter) fail(key string, now time.Time) (tripped bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.devices[key]
	if d == nil {
		d = l.track(key, now)
		d.lastAttempt = now
	}
	// A quiet hour forgives earlier lockouts.
	if !d.lastFail.IsZero() && now.Sub(d.lastFail) > time.Hour {
		d.lockouts = 0
	}
	d.lastFail = now
	d.fails = append(prune(d.fails, now.Add(-l.lim.Window)), now)
	if len(d.fails) >= l.lim.DeviceFailures {
		lock := l.lim.FirstLockout << min(d.lockouts, 20)
		if lock > l.lim.MaxLockout || lock <= 0 {
			lock = l.lim.MaxLockout
		}
		d.lockouts++
		d.lockUntil = now.Add(lock)
		d.fails = d.fails[:0]
	}

	l.siteFails = append(prune(l.siteFails, now.Add(-l.lim.Window)), now)
	if len(l.siteFails) >= l.lim.SiteFailures {
		was := now.Before(l.trippedUntil)
		l.trippedUntil = now.Add(l.lim.BreakerHold)
		return !was
	}
	return false
}

// succeed clears key's recent failures after a valid code.
func (l *limiter) succeed(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if d := l.devices[key]; d != nil {
		d.fails = d.fails[:0]
	}
}

// breakerTripped reports whether the site-wide breaker is on.
func (l *limiter) breakerTripped(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return now.Before(l.trippedUntil)
}

// prune drops times before cut from an ascending slice, in place.
func prune(ts []time.Time, cut time.Time) []time.Time {
	i := 0
	for i < len(ts) && ts[i].Before(cut) {
		i++
	}
	return append(ts[:0], ts[i:]...)
}
