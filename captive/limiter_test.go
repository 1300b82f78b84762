package captive

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
)

var lt0 = time.Date(2025, 10, 6, 9, 0, 0, 0, time.UTC)

func TestDeviceLockoutAfterFiveFailuresGrows(t *testing.T) {
	l := newLimiter(Limits{SiteFailures: 1000})
	now := lt0
	tryFail := func() {
		t.Helper()
		if w := l.allow("mac", now); w != 0 {
			t.Fatalf("at %v: wait %v, want none", now.Sub(lt0), w)
		}
		l.fail("mac", now)
	}
	for range 5 {
		tryFail()
		now = now.Add(time.Second)
	}
	// Sixth attempt within the minute: refused for about a minute.
	if w := l.allow("mac", now); w <= 50*time.Second || w > time.Minute {
		t.Fatalf("after 5 failures wait %v, want about 1m", w)
	}
	if w := l.allow("other", now); w != 0 {
		t.Fatalf("another device waits %v", w)
	}
	now = now.Add(time.Minute)
	for range 5 {
		tryFail()
	}
	if w := l.allow("mac", now); w != 2*time.Minute {
		t.Fatalf("second lockout %v, want 2m", w)
	}
	now = now.Add(2 * time.Minute)
	for range 5 {
		tryFail()
	}
	if w := l.allow("mac", now); w != 4*time.Minute {
		t.Fatalf("third lockout %v, want 4m", w)
	}
	// Lockouts are capped.
	for range 10 {
		now = now.Add(l.allow("mac", now))
		for range 5 {
			tryFail()
		}
	}
	if w := l.allow("mac", now); w != time.Hour {
		t.Fatalf("capped lockout %v, want 1h", w)
	}
}

func TestFailuresSpreadOverMoreThanAMinuteDoNotLock(t *testing.T) {
	l := newLimiter(Limits{SiteFailures: 1000})
	now := lt0
	for i := range 20 {
		if w := l.allow("mac", now); w != 0 {
			t.Fatalf("attempt %d waits %v", i, w)
		}
		l.fail("mac", now)
		now = now.Add(16 * time.Second) // 3.75 per minute
	}
}

func TestSuccessClearsFailures(t *testing.T) {
	l := newLimiter(Limits{})
	for range 4 {
		l.allow("mac", lt0)
		l.fail("mac", lt0)
	}
	l.succeed("mac")
	for i := range 4 {
		if w := l.allow("mac", lt0); w != 0 {
			t.Fatalf("attempt %d after success waits %v", i, w)
		}
		l.fail("mac", lt0)
	}
}

func TestSiteBreakerTripsOnceAndSpacesEveryone(t *testing.T) {
	l := newLimiter(Limits{SiteFailures: 30})
	now := lt0
	trips := 0
	for i := range 30 {
		key := fmt.Sprintf("mac%d", i)
		if w := l.allow(key, now); w != 0 {
			t.Fatalf("fresh device %d waits %v", i, w)
		}
		if l.fail(key, now) {
			trips++
		}
		now = now.Add(100 * time.Millisecond)
	}
	if trips != 1 {
		t.Fatalf("breaker reported %d trips, want 1", trips)
	}
	if !l.breakerTripped(now) {
		t.Fatal("breaker not tripped")
	}
	// While it is tripped, devices never seen before share one spacing
	// slot: made-up MACs do not each get a free try.
	if w := l.allow("new1", now); w != 0 {
		t.Fatalf("first new device while tripped waits %v", w)
	}
	l.fail("new1", now)
	if w := l.allow("new2", now.Add(time.Second)); w != 9*time.Second {
		t.Fatalf("second new device a second later waits %v, want 9s", w)
	}
	now = now.Add(10 * time.Second)
	// A device that just tried must now wait the spacing, even with no
	// lockout of its own.
	l.allow("fresh", now)
	if w := l.allow("fresh", now.Add(time.Second)); w != 9*time.Second {
		t.Fatalf("spacing wait %v, want 9s", w)
	}
	if w := l.allow("fresh", now.Add(10*time.Second)); w != 0 {
		t.Fatalf("after spacing wait %v", w)
	}
	later := now.Add(6 * time.Minute)
	if l.breakerTripped(later) {
		t.Fatal("breaker still tripped after its hold")
	}
	l.allow("fresh", later)
	if w := l.allow("fresh", later); w != 0 {
		t.Fatalf("spacing applied without the breaker: %v", w)
	}
}

func TestLimiterForgetsStalestWhenFull(t *testing.T) {
	l := newLimiter(Limits{MaxTracked: 10, SiteFailures: 1000})
	for i := range 100 {
		key := fmt.Sprintf("mac%d", i)
		l.allow(key, lt0.Add(time.Duration(i)*time.Second))
	}
	if n := len(l.devices); n > 10 {
		t.Fatalf("tracking %d devices, want at most 10", n)
	}
	if _, ok := l.devices["mac99"]; !ok {
		t.Fatal("newest device forgotten")
	}
}

func TestExtensionsNeverReviveOrPassTheMaximum(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	live := store.Voucher{CreatedAt: now.Add(-time.Hour), Duration: 2 * time.Hour, ExpiresAt: now.Add(time.Hour)}
	expired := store.Voucher{CreatedAt: now.Add(-3 * time.Hour), Duration: 2 * time.Hour, ExpiresAt: now.Add(-time.Hour)}
	windowed := store.Voucher{CreatedAt: now, Duration: time.Hour, NotBefore: now, NotAfter: now.Add(MaxDuration - time.Hour)}
	for _, tc := range []struct {
		name   string
		v      store.Voucher
		by     string
		status int
	}{
		{"a live code", live, "1h", 0},
		{"an expired code", expired, "1h", http.StatusConflict},
		{"a window past 366 days", windowed, "2h", http.StatusBadRequest},
		{"a window up to 366 days", windowed, "1h", 0},
	} {
		if _, status, msg := extension(tc.v, tc.by, now); status != tc.status {
			t.Errorf("%s: status %d (%s), want %d", tc.name, status, msg, tc.status)
		}
	}
}
