package events

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestPublishDeliversToInterestedSubscribersOnly(t *testing.T) {
	h := New(nil)
	all := h.Subscribe("all", 4)
	leases := h.Subscribe("leases", 4, LeaseGranted)
	defer all.Close()
	defer leases.Close()

	h.Publish(Event{Kind: LeaseGranted, Data: "10.20.0.50"})
	h.Publish(Event{Kind: FindingRaised, Data: "vpn"})

	if got := len(all.C()); got != 2 {
		t.Errorf("subscriber to all kinds has %d events queued, want 2", got)
	}
	if got := len(leases.C()); got != 1 {
		t.Fatalf("lease subscriber has %d events queued, want 1", got)
	}
	e := <-leases.C()
	if e.Kind != LeaseGranted || e.Data != "10.20.0.50" || e.At.IsZero() {
		t.Errorf("lease subscriber got %+v", e)
	}
}

func TestSlowSubscriberNeverBlocksPublisherAndDropsAreCounted(t *testing.T) {
	h := New(nil)
	slow := h.Subscribe("slow", 2)
	fast := h.Subscribe("fast", 100)
	defer slow.Close()
	defer fast.Close()

	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 10; i++ {
			h.Publish(Event{Kind: FindingRaised})
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Publish blocked on a full subscriber queue")
	}
	if got := slow.Dropped(); got != 8 {
		t.Errorf("slow subscriber dropped %d, want 8", got)
	}
	if got := fast.Dropped(); got != 0 {
		t.Errorf("fast subscriber dropped %d, want 0", got)
	}
	if got := h.Dropped(); got != 8 {
		t.Errorf("hub dropped %d, want 8", got)
	}
	if got := h.Published(); got != 10 {
		t.Errorf("hub published %d, want 10", got)
	}
}

func TestRunStopsWithContextAndUnsubscribes(t *testing.T) {
	h := New(nil)
	sub := h.Subscribe("worker", 4)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan Kind, 4)
	stopped := make(chan struct{})
	go func() {
		sub.Run(ctx, func(_ context.Context, e Event) { got <- e.Kind })
		close(stopped)
	}()
	h.Publish(Event{Kind: PersonRevoked})
	if k := <-got; k != PersonRevoked {
		t.Fatalf("handler saw %q", k)
	}
	cancel()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if n := len(h.Stats()); n != 0 {
		t.Errorf("%d subscribers remain after Run returned", n)
	}
	// Publishing after the subscriber left must not panic on a closed channel.
	h.Publish(Event{Kind: PersonRevoked})
	sub.Close()
}

func TestCollectorReportsPublishedAndDropped(t *testing.T) {
	h := New(nil)
	a := h.Subscribe("notify", 1)
	b := h.Subscribe("notify", 1)
	defer a.Close()
	defer b.Close()
	for i := 0; i < 3; i++ {
		h.Publish(Event{Kind: FindingRaised})
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(h))
	want := `
# HELP gatehouse_events_dropped_total Event deliveries dropped because a subscriber's queue was full.
# TYPE gatehouse_events_dropped_total counter
gatehouse_events_dropped_total{subscriber="notify"} 4
# HELP gatehouse_events_published_total Events published on the hub.
# TYPE gatehouse_events_published_total counter
gatehouse_events_published_total 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "gatehouse_events_published_total", "gatehouse_events_dropped_total"); err != nil {
		t.Error(err)
	}
}
