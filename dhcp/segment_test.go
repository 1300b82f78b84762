package dhcp

import (
	"net/netip"
	"testing"
)

func TestPoolSize(t *testing.T) {
	a := netip.MustParseAddr
	for _, c := range []struct {
		start, end string
		want       int
	}{
		{"10.40.0.50", "10.40.0.70", 21},
		{"10.40.0.50", "10.40.0.50", 1},
		{"10.20.0.10", "10.20.7.254", 2037},
		{"10.40.0.70", "10.40.0.50", 0}, // backwards
		{"2001:db8::1", "2001:db8::9", 0},
	} {
		if got := (Segment{RangeStart: a(c.start), RangeEnd: a(c.end)}).PoolSize(); got != c.want {
			t.Errorf("%s-%s: %d addresses, want %d", c.start, c.end, got, c.want)
		}
	}
	if got := (Segment{}).PoolSize(); got != 0 {
		t.Errorf("a segment without a range: %d addresses", got)
	}
}
