package testkit

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSyncBufferKeepsEveryConcurrentWrite(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 100 {
				fmt.Fprintf(&b, "w%d-%d\n", i, j)
				_ = b.String() // readers run alongside writers
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(b.String(), "\n"); n != 800 {
		t.Fatalf("%d lines, want 800", n)
	}
	if !strings.Contains(b.String(), "w7-99\n") {
		t.Error("a write is missing")
	}
}

func TestClockMovesOnlyWhenTold(t *testing.T) {
	t0 := time.Date(2026, 1, 12, 8, 0, 0, 0, time.UTC)
	c := NewClock(t0)
	if !c.Now().Equal(t0) {
		t.Fatalf("Now = %v, want %v", c.Now(), t0)
	}
	c.Advance(90 * time.Minute)
	if want := t0.Add(90 * time.Minute); !c.Now().Equal(want) {
		t.Errorf("after Advance Now = %v, want %v", c.Now(), want)
	}
	c.Set(t0.Add(-time.Hour))
	if want := t0.Add(-time.Hour); !c.Now().Equal(want) {
		t.Errorf("after Set Now = %v, want %v", c.Now(), want)
	}
}
