package web

import (
	"net/netip"
	"strconv"
	"testing"
	"time"
)

func TestIPThrottle(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	a := netip.MustParseAddr("192.0.2.1")
	tests := []struct {
		name        string
		fails       int
		spread      time.Duration // between failures
		checkAfter  time.Duration // after the last failure
		wantBlocked bool
	}{
		{"below limit", 9, time.Second, 0, false},
		{"at limit", 10, time.Second, 0, true},
		{"block ends", 10, time.Second, 15*time.Minute + time.Second, false},
		{"failures outside the window do not add up", 10, 2 * time.Minute, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			th := newIPThrottle(10, 15*time.Minute, 100)
			now := t0
			for i := range tc.fails {
				if i > 0 {
					now = now.Add(tc.spread)
				}
				th.fail(a, now)
			}
			if got := th.blocked(a, now.Add(tc.checkAfter)); got != tc.wantBlocked {
				t.Errorf("blocked = %v, want %v", got, tc.wantBlocked)
			}
			if th.blocked(netip.MustParseAddr("192.0.2.2"), now) {
				t.Error("another address is blocked")
			}
		})
	}

	t.Run("ipv6 counts per /64", func(t *testing.T) {
		th := newIPThrottle(10, 15*time.Minute, 100)
		for i := range 10 {
			th.fail(netip.MustParseAddr("2001:db8:1:2::"+string(rune('1'+i%9))), t0)
		}
		if !th.blocked(netip.MustParseAddr("2001:db8:1:2::ffff"), t0) {
			t.Error("same /64 not blocked")
		}
		if th.blocked(netip.MustParseAddr("2001:db8:1:3::1"), t0) {
			t.Error("another /64 blocked")
		}
	})

	t.Run("bounded", func(t *testing.T) {
		th := newIPThrottle(10, 15*time.Minute, 50)
		for i := range 500 {
			th.fail(netip.MustParseAddr("10.0."+strconv.Itoa(i/250)+"."+strconv.Itoa(i%250)), t0.Add(time.Duration(i)*time.Millisecond))
			if n := th.len(); n > 50 {
				t.Fatalf("after %d addresses the map holds %d records, want at most 50", i+1, n)
			}
		}
		// Expired records go first when room is needed.
		later := t0.Add(time.Hour)
		th.fail(netip.MustParseAddr("192.0.2.99"), later)
		if n := th.len(); n != 1 {
			t.Errorf("after the window passed, adding one record left %d, want 1", n)
		}
	})
}
