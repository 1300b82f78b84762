package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// TestOnSignalCallsFnForEachSignalUntilCancelled: SIGUSR2 (the DHCP stage
// timings) reaches fn, and onSignal returns once ctx ends.
func TestOnSignalCallsFnForEachSignalUntilCancelled(t *testing.T) {
	// SIGUSR2's default action ends the process: a channel of the test's
	// own keeps it caught while onSignal registers.
	guard := make(chan os.Signal, 8)
	signal.Notify(guard, syscall.SIGUSR2)
	defer signal.Stop(guard)

	ctx, cancel := context.WithCancel(context.Background())
	called := make(chan struct{}, 64)
	done := make(chan error, 1)
	go func() { done <- onSignal(ctx, syscall.SIGUSR2, func() { called <- struct{}{} }) }()

	deadline := time.After(10 * time.Second)
	for got := 0; got < 2; {
		if err := syscall.Kill(os.Getpid(), syscall.SIGUSR2); err != nil {
			t.Fatal(err)
		}
		select {
		case <-called:
			got++
		case <-time.After(50 * time.Millisecond):
			// onSignal had not registered yet: send again.
		case <-deadline:
			t.Fatalf("fn called %d times in 10 s, want 2", got)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("onSignal returned %v, want nil after cancel", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("onSignal did not return after its context ended")
	}
}
