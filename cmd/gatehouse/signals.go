package main

import (
	"context"
	"os"
	"os/signal"
)

// onSignal calls fn each time the process gets sig, until ctx ends: the
// daemon's operator signals beyond SIGHUP's reload (SIGUSR2's DHCP stage
// timings, and SIGUSR1's heap profile in a gatehouse_pprof build).
func onSignal(ctx context.Context, sig os.Signal, fn func()) error {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sig)
	defer signal.Stop(ch)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ch:
			fn()
		}
	}
}
