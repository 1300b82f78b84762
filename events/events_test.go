package events

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestPublishDeliversToSubscribersOfTheTypeOnly(t *testing.T) {
	h := New()
	leases := Subscribe[LeaseGranted](h, "leases", 4)
	sessions := Subscribe[SessionStarted](h, "sessions", 4)
	defer leases.Close()
	defer sessions.Close()

	ip := netip.MustParseAddr("10.20.0.50")
	Publish(h, LeaseGranted{Segment: "pupil", IP: ip})
	Publish(h, LeaseReleased{Segment: "pupil", IP: ip})

	if got := sessions.Queued(); got != 0 {
		t.Errorf("session subscriber has %d events queued, want 0", got)
	}
	if got := leases.Queued(); got != 1 {
		t.Fatalf("lease subscriber has %d events queued, want 1", got)
	}
	if l := <-leases.Events(); l.Segment != "pupil" || l.IP != ip {
		t.Errorf("lease subscriber got %+v", l)
	}
}

// A type defined elsewhere with the same shape is another topic.
type otherLease LeaseGranted

func TestTopicIsTheExactType(t *testing.T) {
	h := New()
	leases := Subscribe[LeaseGranted](h, "leases", 4)
	defer leases.Close()
	Publish(h, otherLease{Segment: "byod"})
	Publish[any](h, LeaseGranted{Segment: "byod"})
	if got := leases.Queued(); got != 0 {
		t.Errorf("%d values of other types reached a LeaseGranted subscriber", got)
	}
}

func TestSlowSubscriberNeverBlocksPublisherAndDropsAreCounted(t *testing.T) {
	h := New()
	slow := Subscribe[LeaseGranted](h, "slow", 2)
	fast := Subscribe[LeaseGranted](h, "fast", 100)
	defer slow.Close()
	defer fast.Close()

	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 10 {
			Publish(h, LeaseGranted{})
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Publish blocked on a full subscriber")
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
	h := New()
	sub := Subscribe[PersonRevoked](h, "worker", 4)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan int64, 4)
	stopped := make(chan struct{})
	go func() {
		sub.Run(ctx, func(_ context.Context, p PersonRevoked) { got <- p.PersonID })
		close(stopped)
	}()
	Publish(h, PersonRevoked{PersonID: 7})
	if id := <-got; id != 7 {
		t.Fatalf("handler saw person %d", id)
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
	// Publishing after the subscriber left goes nowhere, without panicking.
	if n := Publish(h, PersonRevoked{}); n != 0 {
		t.Errorf("%d drops after the only subscriber left", n)
	}
	sub.Close()
}

func TestEventsChannelClosesWithTheSubscription(t *testing.T) {
	h := New()
	sub := Subscribe[ConfigReloaded](h, "reader", 4)
	c := sub.Events()
	Publish(h, ConfigReloaded{Path: "/etc/gatehouse.yaml"})
	select {
	case v := <-c:
		if v.Path != "/etc/gatehouse.yaml" {
			t.Errorf("got %+v", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no value on Events")
	}
	sub.Close()
	select {
	case _, open := <-c:
		if open {
			t.Error("a value after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Events not closed by Close")
	}
}

func TestNilHubDropsQuietly(t *testing.T) {
	var h *Hub
	if n := Publish(h, LeaseGranted{}); n != 0 {
		t.Errorf("Publish on a nil hub = %d", n)
	}
}

func TestCollectorReportsPublishedAndDropped(t *testing.T) {
	h := New()
	a := Subscribe[DNSQuery](h, "notify", 1)
	b := Subscribe[DNSQuery](h, "notify", 1)
	defer a.Close()
	defer b.Close()
	for range 3 {
		Publish(h, DNSQuery{})
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

func TestDrainTakesWhatIsQueuedWithoutWaiting(t *testing.T) {
	h := New()
	sub := Subscribe[LeaseReleased](h, "poller", 8)
	defer sub.Close()
	if got := sub.Drain(); len(got) != 0 {
		t.Fatalf("Drain of an empty queue = %v", got)
	}
	for i := range 3 {
		Publish(h, LeaseReleased{Segment: string(rune('a' + i))})
	}
	got := sub.Drain()
	if len(got) != 3 || got[0].Segment != "a" || got[2].Segment != "c" || sub.Queued() != 0 {
		t.Fatalf("Drain = %+v (queued %d), want a, b, c in order", got, sub.Queued())
	}
}
