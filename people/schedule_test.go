package people

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
)

// 06:30 is 06:30 on the days the clocks change, and an import set for a
// time already past today runs tomorrow.
func TestNextRunKeepsTheWallClockAcrossClockChanges(t *testing.T) {
	loc := london(t)
	at := 6*time.Hour + 30*time.Minute
	for _, tc := range []struct {
		name        string
		after, want time.Time
	}{
		{"later today", time.Date(2026, 11, 27, 5, 0, 0, 0, loc), time.Date(2026, 11, 27, 6, 30, 0, 0, loc)},
		{"past today", time.Date(2026, 11, 27, 7, 0, 0, 0, loc), time.Date(2026, 11, 28, 6, 30, 0, 0, loc)},
		{"exactly now", time.Date(2026, 11, 27, 6, 30, 0, 0, loc), time.Date(2026, 11, 28, 6, 30, 0, 0, loc)},
		// BST -> GMT on 25 Oct 2026: 06:30 GMT is 06:30 UTC.
		{"autumn change", time.Date(2026, 10, 25, 0, 30, 0, 0, loc), time.Date(2026, 10, 25, 6, 30, 0, 0, time.UTC)},
		// GMT -> BST on 28 Mar 2027: 06:30 BST is 05:30 UTC.
		{"spring change", time.Date(2027, 3, 28, 0, 30, 0, 0, loc), time.Date(2027, 3, 28, 5, 30, 0, 0, time.UTC)},
	} {
		if got := NextRun(at, tc.after, loc); !got.Equal(tc.want) {
			t.Errorf("%s: after %v: %v, want %v", tc.name, tc.after, got, tc.want)
		}
	}
}

// A scheduled import runs at its time, applies through the scheduled rules,
// and a source that cannot be read applies nothing.
func TestScheduledImportRunsAtItsTime(t *testing.T) {
	loc := london(t)
	// 40 ms before 06:30 local: the timer fires almost at once.
	s, _ := newService(t, time.Date(2026, 11, 27, 6, 29, 59, 960_000_000, loc), Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	bad := ScheduledImport{Name: "broken", At: 6*time.Hour + 30*time.Minute,
		Read: func(context.Context) (Batch, error) { return Batch{}, errors.New("share not mounted") }}
	if _, err := s.RunImport(ctx, bad); err == nil || !strings.Contains(err.Error(), "share not mounted") {
		t.Fatalf("unreadable source: %v", err)
	}

	ran := make(chan struct{}, 8)
	good := ScheduledImport{Name: "sims", At: 6*time.Hour + 30*time.Minute, Read: func(context.Context) (Batch, error) {
		ran <- struct{}{}
		return ParseCSV("pupils-sims.csv", readMIS(t, "pupils-sims.csv"), nil)
	}}
	done := make(chan error, 1)
	go func() { done <- s.RunImports(ctx, []ScheduledImport{good}) }()
	select {
	case <-ran:
	case <-ctx.Done():
		t.Fatal("the scheduled import did not run at its time")
	}
	// Let that run apply, then stop the scheduler.
	deadline := time.Now().Add(20 * time.Second)
	for {
		ps, err := s.st.ListPeople(ctx, store.PeopleFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) == 300 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the scheduled import %d people, want the 300 of the export", len(ps))
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunImports: %v", err)
	}
	if err := s.RunImports(context.Background(), []ScheduledImport{{Name: "no source"}}); err == nil {
		t.Error("an import without a source was accepted")
	}
}
