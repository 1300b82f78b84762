// Package events is Gatehouse's in-process publish/subscribe hub.
//
// Components announce what happened (a lease granted, a guest session
// started, a person revoked) and other components react,
// without importing each other. The hub owns delivery only: it does not
// store events (the store does) and it does not decide what an event means.
//
// Events are typed: the type of a value is its topic. A publisher calls
// Publish(hub, v) with a value of a payload type; a subscriber calls
// Subscribe[T](hub, ...) and receives values of type T, so it never
// type-asserts and imports only the package that defines T, not the
// publisher. The shared payload types are defined here (LeaseGranted,
// SessionStarted, PersonRevoked, ...); a publisher must not publish a type of its own
// package that others would have to import to hear it. The shape follows
// Tailscale's util/eventbus.
//
// Publishing never blocks. Each subscriber has its own bounded queue; when a
// subscriber falls behind, new events for it are dropped and counted, so a
// slow consumer (say, an SMTP notifier) can never stall the packet or DHCP
// path that published the event. That is why findings, which must not be
// lost, do not travel here: each source offers them to the finding.Sink it
// was built with (alert/finding).
package events

import (
	"context"
	"reflect"
	"sync"
	"sync/atomic"
)

// DefaultQueue is the queue length a subscriber gets when it asks for none.
const DefaultQueue = 256

// Hub fans events out to subscribers by type. The zero value is not
// usable; call New. A nil *Hub is valid for publishing: it drops
// everything, so a component may leave its hub unset.
type Hub struct {
	mu   sync.RWMutex
	subs map[reflect.Type]map[*queue]struct{}

	published atomic.Uint64
	dropped   atomic.Uint64
}

// New returns an empty hub.
func New() *Hub {
	return &Hub{subs: make(map[reflect.Type]map[*queue]struct{})}
}

// queue is one subscriber's bounded queue, whatever its type.
type queue struct {
	name    string
	typ     reflect.Type
	ch      chan any
	dropped atomic.Uint64
}

func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }

// Publish delivers v to every subscriber of T without blocking. It returns
// how many subscribers it could not deliver to (their queues were full);
// those drops are counted.
func Publish[T any](h *Hub, v T) int {
	if h == nil {
		return 0
	}
	h.published.Add(1)
	dropped := 0
	h.mu.RLock()
	defer h.mu.RUnlock()
	for q := range h.subs[typeOf[T]()] {
		select {
		case q.ch <- v:
		default:
			q.dropped.Add(1)
			h.dropped.Add(1)
			dropped++
		}
	}
	return dropped
}

// Subscription is one subscriber's queue of T.
type Subscription[T any] struct {
	hub  *Hub
	q    *queue
	ch   chan T
	once sync.Once
	stop chan struct{}
}

// Subscribe registers a subscriber for values of type T with a queue of
// size n (<= 0: DefaultQueue). name identifies the subscriber in metrics
// and logs. Subscribe before the publishers start, so nothing is missed.
func Subscribe[T any](h *Hub, name string, n int) *Subscription[T] {
	if n <= 0 {
		n = DefaultQueue
	}
	q := &queue{name: name, typ: typeOf[T](), ch: make(chan any, n)}
	s := &Subscription[T]{hub: h, q: q, ch: make(chan T), stop: make(chan struct{})}
	h.mu.Lock()
	if h.subs[q.typ] == nil {
		h.subs[q.typ] = make(map[*queue]struct{})
	}
	h.subs[q.typ][q] = struct{}{}
	h.mu.Unlock()
	return s
}

// Events returns the subscriber's values one at a time; it is closed by
// Close. Use it or Run, not both.
func (s *Subscription[T]) Events() <-chan T {
	s.once.Do(func() { go s.forward() })
	return s.ch
}

// forward turns the untyped queue into typed values; it is owned by the
// subscription and ends with Close.
func (s *Subscription[T]) forward() {
	defer close(s.ch)
	for {
		select {
		case <-s.stop:
			return
		case v := <-s.q.ch:
			select {
			case s.ch <- v.(T):
			case <-s.stop:
				return
			}
		}
	}
}

// Drain returns the values queued now, without waiting: for a consumer that
// polls (and for tests, which see at once what a synchronous publisher
// sent). Use it instead of Events or Run, not with them.
func (s *Subscription[T]) Drain() []T {
	var out []T
	for {
		select {
		case v := <-s.q.ch:
			out = append(out, v.(T))
		default:
			return out
		}
	}
}

// Queued is how many values wait in the queue.
func (s *Subscription[T]) Queued() int { return len(s.q.ch) }

// Dropped is how many values this subscriber missed.
func (s *Subscription[T]) Dropped() uint64 { return s.q.dropped.Load() }

// Close unsubscribes. Safe to call more than once; values still queued are
// discarded.
func (s *Subscription[T]) Close() {
	s.hub.mu.Lock()
	_, live := s.hub.subs[s.q.typ][s.q]
	delete(s.hub.subs[s.q.typ], s.q)
	s.hub.mu.Unlock()
	if live {
		close(s.stop)
	}
}

// Run calls fn for each value until ctx is done or the subscription is
// closed, then closes the subscription. It is the usual way to own a
// subscriber goroutine: `go sub.Run(ctx, handle)` tied to the caller's ctx.
func (s *Subscription[T]) Run(ctx context.Context, fn func(context.Context, T)) {
	defer s.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.stop:
			return
		case v := <-s.q.ch:
			fn(ctx, v.(T))
		}
	}
}

// Published is the number of events ever published.
func (h *Hub) Published() uint64 { return h.published.Load() }

// Dropped is the number of deliveries dropped because a queue was full,
// over all subscribers.
func (h *Hub) Dropped() uint64 { return h.dropped.Load() }

// Stats reports each live subscriber's name, topic, queue depth and drops.
func (h *Hub) Stats() []SubscriberStats {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var out []SubscriberStats
	for _, qs := range h.subs {
		for q := range qs {
			out = append(out, SubscriberStats{Name: q.name, Topic: q.typ.String(), Queued: len(q.ch), Capacity: cap(q.ch), Dropped: q.dropped.Load()})
		}
	}
	return out
}

// SubscriberStats is a snapshot of one subscriber.
type SubscriberStats struct {
	Name     string
	Topic    string // the payload type, e.g. "events.LeaseGranted"
	Queued   int
	Capacity int
	Dropped  uint64
}
