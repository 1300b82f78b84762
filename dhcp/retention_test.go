package dhcp

import (
	"context"
	"testing"
	"time"
)

// stalePurger is a memStore that records the cut-offs it was asked to purge
// devices before.
type stalePurger struct {
	*memStore
	before, now time.Time
}

func (p *stalePurger) PurgeStaleDevices(_ context.Context, before, now time.Time) (int64, error) {
	p.before, p.now = before, now
	return 0, nil
}

// Every device's record goes after the configured retention, not only those
// of devices that never completed a lease.
func TestEveryDeviceIsPurgedAfterTheRetention(t *testing.T) {
	for _, tc := range []struct {
		name      string
		retention time.Duration
		want      time.Duration
	}{
		{"default", 0, DefaultDeviceRetention},
		{"configured", 30 * 24 * time.Hour, 30 * 24 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &stalePurger{memStore: newMemStore()}
			s, err := New(Config{Segments: testSegments(), Store: p, Enforcer: &enforcer{}, DeviceRetention: tc.retention})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Date(2026, 9, 1, 3, 0, 0, 0, time.UTC)
			s.purgeStale(context.Background(), now)
			if !p.now.Equal(now) || !p.before.Equal(now.Add(-tc.want)) {
				t.Errorf("purged before %v (now %v), want before %v", p.before, p.now, now.Add(-tc.want))
			}
		})
	}
}
