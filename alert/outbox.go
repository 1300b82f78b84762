package alert

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
)

// Channel delivers one outbox item. a is the item's alert (nil for a
// digest). An error leaves the item in the outbox for a later attempt.
type Channel interface {
	Send(ctx context.Context, item store.OutboxItem, a *store.Alert) error
}

// OutboxStore is what the outbox reads and writes.
type OutboxStore interface {
	DueOutbox(ctx context.Context, now time.Time, limit int) ([]store.OutboxItem, error)
	NextOutboxAt(ctx context.Context) (time.Time, bool, error)
	OutboxSent(ctx context.Context, id int64, at time.Time) error
	OutboxFailed(ctx context.Context, id int64, next time.Time, why string) error
	AlertByID(ctx context.Context, id int64) (store.Alert, error)
}

// OutboxOptions configure an Outbox.
type OutboxOptions struct {
	Store    OutboxStore        // required
	Channels map[string]Channel // by store.Channel*; an item for a missing channel waits
	// RetryMin and RetryMax bound the back-off between attempts: RetryMin
	// doubled per failed attempt, at most RetryMax. Defaults 10s and 5m.
	RetryMin, RetryMax time.Duration
	// SendTimeout bounds one attempt; default 30s.
	SendTimeout time.Duration
	Logger      *slog.Logger
	Now         func() time.Time
	Metrics     *Metrics
}

// Outbox delivers queued notifications, retrying with back-off. Nothing is
// held in memory: a restart picks up where the database says.
type Outbox struct {
	opt  OutboxOptions
	log  *slog.Logger
	poke chan struct{}
}

// NewOutbox checks opt and returns an outbox; call Run.
func NewOutbox(opt OutboxOptions) (*Outbox, error) {
	if opt.Store == nil {
		return nil, errors.New("alert: new outbox: Options.Store is required")
	}
	if opt.RetryMin <= 0 {
		opt.RetryMin = 10 * time.Second
	}
	if opt.RetryMax <= 0 {
		opt.RetryMax = 5 * time.Minute
	}
	if opt.SendTimeout <= 0 {
		opt.SendTimeout = 30 * time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Outbox{opt: opt, log: log, poke: make(chan struct{}, 1)}, nil
}

// Poke says new items were queued. It never blocks.
func (o *Outbox) Poke() {
	select {
	case o.poke <- struct{}{}:
	default:
	}
}

// idleCheck bounds how long the outbox sleeps with nothing due, so items
// queued by another process (the CLI) are picked up too.
const idleCheck = 30 * time.Second

// Run delivers until ctx is done.
func (o *Outbox) Run(ctx context.Context) error {
	for {
		if err := o.Deliver(ctx); err != nil && ctx.Err() == nil {
			o.log.Error("alert: outbox", "err", err)
		}
		wait := idleCheck
		if next, ok, err := o.opt.Store.NextOutboxAt(ctx); err == nil && ok {
			if d := next.Sub(o.opt.Now()); d < wait {
				wait = max(d, 10*time.Millisecond)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-o.poke:
		case <-t.C:
		}
		t.Stop()
	}
}

// Deliver attempts every item due now once.
func (o *Outbox) Deliver(ctx context.Context) error {
	for {
		due, err := o.opt.Store.DueOutbox(ctx, o.opt.Now(), 32)
		if err != nil {
			return err
		}
		if len(due) == 0 {
			return nil
		}
		for _, it := range due {
			if err := o.attempt(ctx, it); err != nil {
				return err
			}
		}
	}
}

// attempt sends one item and records the result; only a database error is
// returned.
func (o *Outbox) attempt(ctx context.Context, it store.OutboxItem) error {
	var a *store.Alert
	var sendErr error
	if it.AlertID != 0 {
		got, err := o.opt.Store.AlertByID(ctx, it.AlertID)
		if err != nil {
			sendErr = fmt.Errorf("read alert %d: %w", it.AlertID, err)
		}
		a = &got
	}
	ch := o.opt.Channels[it.Channel]
	if sendErr == nil && ch == nil {
		sendErr = fmt.Errorf("channel %s is not configured", it.Channel)
	}
	if sendErr == nil {
		sctx, cancel := context.WithTimeout(ctx, o.opt.SendTimeout)
		sendErr = ch.Send(sctx, it, a)
		cancel()
	}
	now := o.opt.Now()
	if sendErr == nil {
		if o.opt.Metrics != nil && a != nil {
			o.opt.Metrics.Latency.WithLabelValues(it.Channel).Observe(now.Sub(a.FirstSeen).Seconds())
		}
		o.log.Info("alert: notification delivered", "channel", it.Channel, "alert", it.AlertID, "attempts", it.Attempts+1)
		return o.opt.Store.OutboxSent(ctx, it.ID, now)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	next := now.Add(o.Backoff(it.Attempts + 1))
	o.log.Warn("alert: notification not delivered; will retry", "channel", it.Channel, "alert", it.AlertID,
		"attempt", it.Attempts+1, "retry_at", next, "err", sendErr)
	return o.opt.Store.OutboxFailed(ctx, it.ID, next, sendErr.Error())
}

// Backoff is the wait after the n-th failed attempt (n >= 1).
func (o *Outbox) Backoff(n int) time.Duration {
	d := o.opt.RetryMin
	for i := 1; i < n && d < o.opt.RetryMax; i++ {
		d *= 2
	}
	return min(d, o.opt.RetryMax)
}
