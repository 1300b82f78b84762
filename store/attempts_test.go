package store

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

func TestVoucherAttemptsAreAggregatedPerDeviceOutcomeAndMinute(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	ip := netip.MustParseAddr("10.40.0.60")
	for i := range 300 {
		if err := s.RecordVoucherAttempt(ctx, VoucherAttempt{At: t0.Add(time.Duration(i) * 100 * time.Millisecond), IP: ip, Outcome: "unknown-device"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RecordVoucherAttempt(ctx, VoucherAttempt{At: t0.Add(10 * time.Second), IP: ip, Outcome: "throttled"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.VoucherAttempts(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	// 300 attempts over 30 s: one row of 300; the other outcome its own.
	if len(got) != 2 || got[1].Count != 300 || got[0].Count != 1 || got[0].Outcome != "throttled" {
		t.Fatalf("rows %+v, want one unknown-device row counting 300 and one throttled row", got)
	}
	// The next minute starts a new row.
	if err := s.RecordVoucherAttempt(ctx, VoucherAttempt{At: t0.Add(time.Minute), IP: ip, Outcome: "unknown-device"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.VoucherAttempts(ctx, 100); len(got) != 3 {
		t.Errorf("%d rows after a new minute, want 3", len(got))
	}
}
