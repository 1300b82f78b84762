package batch

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// sink records the batches written, and can hold or refuse them.
type sink struct {
	mu      sync.Mutex
	batches [][]int
	fail    error
	hold    chan struct{} // when set, Write waits for it
	purges  int
}

func (s *sink) write(ctx context.Context, items []int) error {
	if s.hold != nil {
		select {
		case <-s.hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.batches = append(s.batches, slices.Clone(items))
	return nil
}

func (s *sink) purge(context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purges++
}

func (s *sink) snapshot() ([][]int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.batches), s.purges
}

// start runs w until the returned stop is called (or the test ends).
func start[T any](t *testing.T, w *Writer[T]) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// eventually polls cond for up to 10 s; timings are never asserted.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s did not happen", what)
}

func TestFullBatchesAreWrittenAndTheRestOnStop(t *testing.T) {
	s := &sink{}
	w, err := New(Options[int]{Write: s.write, Purge: s.purge, Size: 4, FlushEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, w)
	for i := range 10 {
		if !w.Offer(i) {
			t.Fatalf("Offer(%d) refused with an empty queue", i)
		}
	}
	// Two full batches go at once, without waiting for the hour's flush.
	eventually(t, "two full batches written", func() bool { b, _ := s.snapshot(); return len(b) == 2 })
	stop()
	b, purges := s.snapshot()
	want := [][]int{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9}}
	if !slices.EqualFunc(b, want, slices.Equal) {
		t.Errorf("batches %v, want %v", b, want)
	}
	if purges != 1 {
		t.Errorf("%d purges, want the one at start", purges)
	}
	if st := w.Stats(); st != (Stats{Written: 10}) {
		t.Errorf("stats %+v", st)
	}
}

func TestPartialBatchIsWrittenOnTheFlushInterval(t *testing.T) {
	s := &sink{}
	w, err := New(Options[int]{Write: s.write, Size: 100, FlushEvery: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start(t, w)
	w.Offer(7)
	eventually(t, "the lone item written by the flush ticker", func() bool { return w.Stats().Written == 1 })
}

func TestPurgeRunsOnItsInterval(t *testing.T) {
	s := &sink{}
	w, err := New(Options[int]{Write: s.write, Purge: s.purge, PurgeEvery: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start(t, w)
	eventually(t, "a purge after the one at start", func() bool { _, p := s.snapshot(); return p >= 2 })
}

func TestFullQueueDropsWithoutBlocking(t *testing.T) {
	s := &sink{hold: make(chan struct{})}
	w, err := New(Options[int]{Write: s.write, Queue: 3, Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	start(t, w)
	// The first item is taken and its write held; three more fill the queue.
	w.Offer(0)
	eventually(t, "the first item taken off the queue", func() bool { return len(w.q) == 0 })
	for i := 1; i <= 3; i++ {
		if !w.Offer(i) {
			t.Fatalf("Offer(%d) refused below the bound", i)
		}
	}
	for i := 4; i < 10; i++ {
		if w.Offer(i) {
			t.Fatalf("Offer(%d) accepted beyond the bound", i)
		}
	}
	if st := w.Stats(); st.Dropped != 6 {
		t.Errorf("dropped %d, want 6", st.Dropped)
	}
	close(s.hold)
	eventually(t, "the queued items written", func() bool { return w.Stats().Written == 4 })
}

func TestFailedWritesAreCountedAndTheWriterGoesOn(t *testing.T) {
	s := &sink{fail: errors.New("disk full")}
	w, err := New(Options[int]{Write: s.write, Size: 2, FlushEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, w)
	w.Offer(1)
	w.Offer(2)
	eventually(t, "the failed batch counted", func() bool { return w.Stats().Failed == 2 })
	s.mu.Lock()
	s.fail = nil
	s.mu.Unlock()
	w.Offer(3)
	stop()
	if st := w.Stats(); st.Failed != 2 || st.Written != 1 {
		t.Errorf("stats %+v, want 2 failed and 1 written", st)
	}
}

// A database that hangs at shutdown does not hold the shutdown up beyond
// the grace.
func TestShutdownIsBoundedByTheGrace(t *testing.T) {
	s := &sink{hold: make(chan struct{})} // never released
	w, err := New(Options[int]{Write: s.write, Size: 1, ShutdownGrace: 50 * time.Millisecond, WriteTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w.Offer(1)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run held the shutdown up past its grace")
	}
	if st := w.Stats(); st.Failed != 1 {
		t.Errorf("stats %+v, want the held batch failed", st)
	}
}

func TestNewNeedsWrite(t *testing.T) {
	if _, err := New(Options[int]{}); err == nil {
		t.Fatal("New without Write succeeded")
	}
}
