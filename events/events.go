// Package events is Gatehouse's in-process publish/subscribe hub.
//
// Components announce what happened (a lease granted, a guest session
// started, a finding raised, a person revoked) and other components react,
// without importing each other. The hub owns delivery only: it does not
// store events (the store does) and it does not decide what an event means.
//
// Publishing never blocks. Each subscriber has its own bounded queue; when a
// subscriber falls behind, new events for it are dropped and counted, so a
// slow consumer (say, an SMTP notifier) can never stall the packet or DHCP
// path that published the event.
package events

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Kind names what happened. Kinds are plain strings so that feature packages
// can add their own without touching this package.
type Kind string

// The kinds the core components publish.
const (
	LeaseGranted   Kind = "lease.granted"
	LeaseReleased  Kind = "lease.released"
	SessionStarted Kind = "session.started"
	SessionEnded   Kind = "session.ended"
	FindingRaised  Kind = "finding.raised"
	PersonRevoked  Kind = "person.revoked"
	ConfigReloaded Kind = "config.reloaded"
)

// Event is one thing that happened. Data holds the publisher's own value
// (for example a dhcp.Lease); subscribers type-switch on it.
type Event struct {
	Kind Kind
	At   time.Time
	Data any
}

// DefaultQueue is the queue length a subscriber gets when it asks for none.
const DefaultQueue = 256

// Hub fans events out to subscribers. The zero value is not usable; call New.
type Hub struct {
	now func() time.Time

	mu   sync.RWMutex
	subs map[*Subscription]struct{}

	published atomic.Uint64
	dropped   atomic.Uint64
}

// New returns an empty hub. now is the clock used to stamp events that
// arrive without a time; nil means time.Now.
func New(now func() time.Time) *Hub {
	if now == nil {
		now = time.Now
	}
	return &Hub{now: now, subs: make(map[*Subscription]struct{})}
}

// Subscription is one subscriber's queue.
type Subscription struct {
	hub     *Hub
	name    string
	kinds   map[Kind]bool // nil: every kind
	ch      chan Event
	dropped atomic.Uint64
	once    sync.Once
}

// Subscribe registers a subscriber for the given kinds (none: all kinds)
// with a queue of size queue (<= 0: DefaultQueue). name identifies the
// subscriber in metrics and logs.
func (h *Hub) Subscribe(name string, queue int, kinds ...Kind) *Subscription {
	if queue <= 0 {
		queue = DefaultQueue
	}
	s := &Subscription{hub: h, name: name, ch: make(chan Event, queue)}
	if len(kinds) > 0 {
		s.kinds = make(map[Kind]bool, len(kinds))
		for _, k := range kinds {
			s.kinds[k] = true
		}
	}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

// Publish delivers e to every interested subscriber without blocking. It
// returns how many subscribers it could not deliver to.
func (h *Hub) Publish(e Event) int {
	if e.At.IsZero() {
		e.At = h.now()
	}
	h.published.Add(1)
	dropped := 0
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.subs {
		if s.kinds != nil && !s.kinds[e.Kind] {
			continue
		}
		select {
		case s.ch <- e:
		default:
			s.dropped.Add(1)
			h.dropped.Add(1)
			dropped++
		}
	}
	return dropped
}

// Published is the number of events ever published.
func (h *Hub) Published() uint64 { return h.published.Load() }

// Dropped is the number of deliveries dropped because a queue was full,
// over all subscribers.
func (h *Hub) Dropped() uint64 { return h.dropped.Load() }

// Stats reports each live subscriber's name, queue depth and drops.
func (h *Hub) Stats() []SubscriberStats {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]SubscriberStats, 0, len(h.subs))
	for s := range h.subs {
		out = append(out, SubscriberStats{Name: s.name, Queued: len(s.ch), Capacity: cap(s.ch), Dropped: s.dropped.Load()})
	}
	return out
}

// SubscriberStats is a snapshot of one subscriber.
type SubscriberStats struct {
	Name     string
	Queued   int
	Capacity int
	Dropped  uint64
}

// C is the subscriber's queue. It is closed by Close.
func (s *Subscription) C() <-chan Event { return s.ch }

// Dropped is how many events this subscriber missed.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close unsubscribes and closes the queue. Safe to call more than once.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.hub.mu.Lock()
		delete(s.hub.subs, s)
		s.hub.mu.Unlock()
		close(s.ch)
	})
}

// Run calls fn for each event until ctx is done or the subscription is
// closed, then closes the subscription. It is the usual way to own a
// subscriber goroutine: `go sub.Run(ctx, handle)` tied to the caller's ctx.
func (s *Subscription) Run(ctx context.Context, fn func(context.Context, Event)) {
	defer s.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-s.ch:
			if !ok {
				return
			}
			fn(ctx, e)
		}
	}
}
