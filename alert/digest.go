package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
)

// Schedule is when digests go out: every day, or one weekday, at a local
// time.
type Schedule struct {
	Daily    bool
	Weekday  time.Weekday // when not Daily
	Hour     int
	Minute   int
	Location *time.Location // nil: time.Local
}

// DefaultSchedule is Monday 07:30 local.
var DefaultSchedule = Schedule{Weekday: time.Monday, Hour: 7, Minute: 30}

// ParseSchedule reads "daily 07:30" or "weekly Mon 07:30" (weekday names
// in English, three letters or full).
func ParseSchedule(s string, loc *time.Location) (Schedule, error) {
	f := strings.Fields(s)
	sc := Schedule{Location: loc}
	var hm string
	switch {
	case len(f) == 2 && f[0] == "daily":
		sc.Daily, hm = true, f[1]
	case len(f) == 3 && f[0] == "weekly":
		found := false
		for d := time.Sunday; d <= time.Saturday; d++ {
			if strings.EqualFold(f[1], d.String()) || strings.EqualFold(f[1], d.String()[:3]) {
				sc.Weekday, found = d, true
			}
		}
		if !found {
			return Schedule{}, fmt.Errorf("digest %q: %q is not a weekday", s, f[1])
		}
		hm = f[2]
	default:
		return Schedule{}, fmt.Errorf("digest %q: want \"daily HH:MM\" or \"weekly Mon HH:MM\"", s)
	}
	t, err := time.Parse("15:04", hm)
	if err != nil {
		return Schedule{}, fmt.Errorf("digest %q: %q is not a time like 07:30", s, hm)
	}
	sc.Hour, sc.Minute = t.Hour(), t.Minute()
	return sc, nil
}

// Next returns the first digest time strictly after t. Days are counted in
// the schedule's zone, so 07:30 stays 07:30 across a clock change.
func (s Schedule) Next(t time.Time) time.Time {
	loc := s.Location
	if loc == nil {
		loc = time.Local
	}
	lt := t.In(loc)
	for i := 0; i <= 8; i++ {
		d := time.Date(lt.Year(), lt.Month(), lt.Day()+i, s.Hour, s.Minute, 0, 0, loc)
		if !d.After(t) {
			continue
		}
		if s.Daily || d.Weekday() == s.Weekday {
			return d
		}
	}
	panic("alert: schedule found no day in 8") // unreachable: a weekday comes within 7 days
}

// DigestStore is what the digest reads and writes.
type DigestStore interface {
	AlertProgress(ctx context.Context, name string) (string, error)
	ListAlerts(ctx context.Context, f store.AlertFilter) ([]store.Alert, error)
	EnqueueDigest(ctx context.Context, payload, progress, value string, now time.Time) error
}

const digestProgress = "alert.digest"

// Digest queues, at each scheduled time, one email listing the alerts of
// the period that were not emailed at once (medium and low severity).
type Digest struct {
	Store    DigestStore
	Schedule Schedule
	Mailer   *Mailer // renders times and links; required
	Now      func() time.Time
	// After is the wait between looks at the clock; nil means time.After.
	// A test that moves Now on gives its own, so the digest is sent at the
	// scheduled time of Now's clock without waiting for Monday.
	After  func(time.Duration) <-chan time.Time
	Logger *slog.Logger
	Queued func() // poked after a digest was queued
}

// Run queues digests until ctx is done. The period's end is recorded with
// the queued digest in one transaction, so each period is sent once, and a
// router that was off at the time sends it when it starts.
func (d *Digest) Run(ctx context.Context) error {
	if d.Store == nil || d.Mailer == nil {
		return errors.New("alert: digest: Store and Mailer are required")
	}
	now := d.Now
	if now == nil {
		now = time.Now
	}
	log := d.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	after := d.After
	if after == nil {
		after = time.After
	}
	for {
		last, err := d.lastPeriodEnd(ctx, now())
		if err != nil {
			return err
		}
		next := d.Schedule.Next(last)
		if wait := next.Sub(now()); wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-after(min(wait, time.Hour)):
			}
			continue
		}
		if err := d.Queue(ctx, last, next, now()); err != nil {
			log.Error("alert: digest", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-after(time.Minute):
			}
		}
	}
}

func (d *Digest) lastPeriodEnd(ctx context.Context, now time.Time) (time.Time, error) {
	p, err := d.Store.AlertProgress(ctx, digestProgress)
	if err != nil {
		return time.Time{}, err
	}
	if p == "" {
		// First start: the first digest covers from now on.
		if err := d.Store.EnqueueDigest(ctx, "", digestProgress, now.UTC().Format(time.RFC3339Nano), now); err != nil {
			return time.Time{}, err
		}
		return now, nil
	}
	t, err := time.Parse(time.RFC3339Nano, p)
	if err != nil {
		return time.Time{}, fmt.Errorf("alert: digest progress %q: %w", p, err)
	}
	return t, nil
}

// Queue builds and queues the digest for [from, to).
func (d *Digest) Queue(ctx context.Context, from, to, now time.Time) error {
	as, err := d.Store.ListAlerts(ctx, store.AlertFilter{Since: from, Until: to,
		Severities: []string{store.SeverityMedium, store.SeverityLow}, Limit: 1000})
	if err != nil {
		return err
	}
	payload := ""
	if len(as) > 0 {
		subject, body := d.Mailer.DigestMessage(as, from, to)
		b, err := json.Marshal(digestPayload{subject, body})
		if err != nil {
			return err
		}
		payload = string(b)
	}
	if err := d.Store.EnqueueDigest(ctx, payload, digestProgress, to.UTC().Format(time.RFC3339Nano), now); err != nil {
		return err
	}
	if payload != "" && d.Queued != nil {
		d.Queued()
	}
	return nil
}

// DigestMessage renders a digest: one line per alert, newest last.
func (m *Mailer) DigestMessage(as []store.Alert, from, to time.Time) (subject, body string) {
	subject = fmt.Sprintf("[Digest] %s: %d alert(s) from %s to %s", siteOr(m.opt.Site), len(as),
		from.In(m.opt.Location).Format("Mon 2 Jan"), to.In(m.opt.Location).Format("Mon 2 Jan"))
	var b strings.Builder
	fmt.Fprintf(&b, "Alerts raised between %s and %s that were not emailed at once:\n\n", m.when(from), m.when(to))
	for i := len(as) - 1; i >= 0; i-- {
		a := as[i]
		fmt.Fprintf(&b, "- %s, %s: %s by %s (%d time(s))", a.FirstSeen.In(m.opt.Location).Format("Mon 2 Jan 15:04"), a.Severity,
			MeaningOf(a.Class).Title, WhoText(a), a.Count)
		if room := RoomText(a); room != "" {
			fmt.Fprintf(&b, ", %s", room)
		}
		b.WriteString("\n")
		if m.opt.Link != nil {
			fmt.Fprintf(&b, "  %s\n", m.opt.Link(a.ID))
		}
	}
	return subject, b.String()
}
