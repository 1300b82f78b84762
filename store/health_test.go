package store

import (
	"context"
	"net/netip"
	"strconv"
	"testing"
	"time"
)

// TestWriteHealthFollowsStorageFailures fills the database (max_page_count
// stands for a full disk: SQLite answers SQLITE_FULL either way) and checks
// that WriteHealth says writes are failing until one succeeds again.
func TestWriteHealthFollowsStorageFailures(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	s.db.SetMaxOpenConns(1) // the pragma is per connection
	var pages int
	if err := s.db.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `PRAGMA max_page_count = `+strconv.Itoa(pages+2)); err != nil {
		t.Fatal(err)
	}
	var failed bool
	for i := range 5000 {
		err := s.RecordVoucherAttempt(ctx, VoucherAttempt{At: leaseT0.Add(time.Duration(i) * time.Minute), IP: netip.MustParseAddr("10.40.0.9"), Outcome: "invalid"})
		if err != nil {
			failed = true
			break
		}
	}
	if !failed {
		t.Fatal("the database never filled up")
	}
	if w := s.WriteHealth(); !w.Failing || w.Failures == 0 || w.LastErr == "" {
		t.Fatalf("after a failed write: %+v, want failing", w)
	}
	if _, err := s.db.ExecContext(ctx, `PRAGMA max_page_count = 1000000`); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordVoucherAttempt(ctx, VoucherAttempt{At: leaseT0, Outcome: "invalid"}); err != nil {
		t.Fatal(err)
	}
	if w := s.WriteHealth(); w.Failing {
		t.Errorf("after a successful write: %+v, want not failing", w)
	}
}
