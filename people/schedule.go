package people

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ScheduledImport is one daily import from the MIS: its name, the local
// time of day it runs at, and how to read its source (CSV files, a
// OneRoster bundle or a directory; the daemon supplies the reader).
type ScheduledImport struct {
	Name string
	At   time.Duration // after local midnight, in the site's zone: 06:30 is 6h30m
	Read func(context.Context) (Batch, error)
}

// NextRun is the first time after `after` at which an import set for `at`
// runs, in loc. It is built from the calendar date and the wall-clock time,
// so 06:30 stays 06:30 on the days the clocks change (midnight plus 6h30m
// would be 05:30 or 07:30 there).
func NextRun(at time.Duration, after time.Time, loc *time.Location) time.Time {
	h, m := int(at/time.Hour), int(at%time.Hour/time.Minute)
	l := after.In(loc)
	t := time.Date(l.Year(), l.Month(), l.Day(), h, m, 0, 0, loc)
	if !t.After(after) {
		t = time.Date(l.Year(), l.Month(), l.Day()+1, h, m, 0, 0, loc)
	}
	return t
}

// RunImports runs each import daily at its time until ctx ends. Each run
// goes through ApplyScheduled: it applies by itself only below the leavers
// threshold and with no bad rows, and otherwise waits on the imports page
// for a person. A source that cannot be read is logged and tried again the
// next day; nothing is applied from it.
func (s *Service) RunImports(ctx context.Context, imports []ScheduledImport) error {
	if len(imports) == 0 {
		<-ctx.Done()
		return nil
	}
	for _, im := range imports {
		if im.Read == nil {
			return fmt.Errorf("people: scheduled import %q has no source", im.Name)
		}
	}
	due := make([]time.Time, len(imports))
	for i, im := range imports {
		due[i] = NextRun(im.At, s.now(), s.loc)
		s.log.Info("scheduled import", "import", im.Name, "next", due[i])
	}
	for {
		soonest := 0
		for i := range due {
			if due[i].Before(due[soonest]) {
				soonest = i
			}
		}
		t := time.NewTimer(due[soonest].Sub(s.now()))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		im := imports[soonest]
		due[soonest] = NextRun(im.At, s.now(), s.loc)
		if _, err := s.RunImport(ctx, im); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Warn("scheduled import not applied", "import", im.Name, "err", err)
		}
	}
}

// RunImport reads and applies one scheduled import now, with the
// scheduled rules (see RunImports).
func (s *Service) RunImport(ctx context.Context, im ScheduledImport) (Preview, error) {
	b, err := im.Read(ctx)
	if err != nil {
		return Preview{}, fmt.Errorf("reading its source: %w", err)
	}
	pv, err := s.ApplyScheduled(ctx, b)
	if err != nil {
		return pv, fmt.Errorf("%s: %w", pv.Summary(), err)
	}
	s.log.Info("scheduled import applied", "import", im.Name, "summary", pv.Summary())
	return pv, nil
}
