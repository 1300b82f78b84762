package people

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
)

// calendar is the term dates in memory, as days (YYYY-MM-DD compares as
// text in date order).
type calendar struct {
	terms    []store.Term
	holidays []store.Holiday
}

func newCalendar(terms []store.Term, holidays []store.Holiday) calendar {
	return calendar{terms: terms, holidays: holidays}
}

// inTerm reports whether day is a term day (inside a term, outside its
// half-term and the holidays, Monday to Friday).
func (c calendar) inTerm(day string, wd time.Weekday) bool {
	if wd == time.Saturday || wd == time.Sunday {
		return false
	}
	for _, h := range c.holidays {
		if day >= h.StartsOn && day <= h.EndsOn {
			return false
		}
	}
	for _, t := range c.terms {
		if day >= t.StartsOn && day <= t.EndsOn {
			if t.HalfTermStarts != "" && day >= t.HalfTermStarts && day <= t.HalfTermEnds {
				return false
			}
			return true
		}
	}
	return false
}

// termEnd returns the last day of the term that day falls in, or of the
// next term after it; "" when the calendar has none.
func (c calendar) termEnd(day string) string {
	for _, t := range c.terms {
		if day <= t.EndsOn {
			return t.EndsOn
		}
	}
	return ""
}

// InTerm reports whether t (in the school's zone) falls on a term day; it
// implements policy.Directory's calendar.
func (s *Service) InTerm(t time.Time) bool {
	lt := t.In(s.loc)
	s.calMu.RLock()
	defer s.calMu.RUnlock()
	return s.cal.inTerm(lt.Format(dayLayout), lt.Weekday())
}

// Terms returns the calendar.
func (s *Service) Terms() []store.Term {
	s.calMu.RLock()
	defer s.calMu.RUnlock()
	return append([]store.Term(nil), s.cal.terms...)
}

// Holidays returns the holidays inside terms (bank holidays, INSET days,
// closures), in date order.
func (s *Service) Holidays() []store.Holiday {
	s.calMu.RLock()
	defer s.calMu.RUnlock()
	return append([]store.Holiday(nil), s.cal.holidays...)
}

// checkTerm cleans and checks one term as the calendar page gives it.
func checkTerm(t store.Term) (store.Term, error) {
	name, ok := cleanValue(t.Name)
	if !ok || name == "" {
		return t, errors.New("give the term a name")
	}
	t.Name = name
	for _, f := range []struct {
		what string
		dst  *string
		req  bool
	}{{"start", &t.StartsOn, true}, {"end", &t.EndsOn, true}, {"half-term start", &t.HalfTermStarts, false}, {"half-term end", &t.HalfTermEnds, false}} {
		d, ok := parseDay(*f.dst, isoThenUK...)
		switch {
		case !ok:
			return t, fmt.Errorf("the %s %q is not a date (YYYY-MM-DD)", f.what, *f.dst)
		case d == "" && f.req:
			return t, fmt.Errorf("give the term's %s", f.what)
		}
		*f.dst = d
	}
	switch {
	case t.EndsOn < t.StartsOn:
		return t, errors.New("the term ends before it starts")
	case (t.HalfTermStarts == "") != (t.HalfTermEnds == ""):
		return t, errors.New("a half-term needs a start and an end")
	case t.HalfTermStarts != "" && (t.HalfTermStarts < t.StartsOn || t.HalfTermEnds > t.EndsOn || t.HalfTermEnds < t.HalfTermStarts):
		return t, errors.New("the half-term is not inside the term")
	}
	return t, nil
}

// SaveTerm adds a term (was "") or changes the term that started on was,
// audited, and reloads the calendar. A term may not overlap another.
func (s *Service) SaveTerm(ctx context.Context, actor, was string, t store.Term) (store.Term, error) {
	t, err := checkTerm(t)
	if err != nil {
		return t, fmt.Errorf("people: term: %w", err)
	}
	for _, o := range s.Terms() {
		if o.StartsOn != was && t.StartsOn <= o.EndsOn && o.StartsOn <= t.EndsOn {
			return t, fmt.Errorf("people: term: %s to %s overlaps %s (%s to %s)", t.StartsOn, t.EndsOn, o.Name, o.StartsOn, o.EndsOn)
		}
	}
	if err := s.st.SaveTerm(ctx, actor, was, t, s.now()); err != nil {
		return t, err
	}
	return t, s.calendarChanged(ctx)
}

// DeleteTerm removes the term that starts on startsOn, audited.
func (s *Service) DeleteTerm(ctx context.Context, actor, startsOn string) error {
	if err := s.st.DeleteTerm(ctx, actor, startsOn, s.now()); err != nil {
		return err
	}
	return s.calendarChanged(ctx)
}

// SaveHoliday adds (ID 0) or changes a holiday, audited.
func (s *Service) SaveHoliday(ctx context.Context, actor string, h store.Holiday) (store.Holiday, error) {
	name, ok := cleanValue(h.Name)
	if !ok || name == "" {
		return h, errors.New("people: holiday: give it a name (like \"INSET day\")")
	}
	h.Name = name
	from, ok1 := parseDay(h.StartsOn, isoThenUK...)
	to, ok2 := parseDay(h.EndsOn, isoThenUK...)
	if !ok1 || !ok2 || from == "" {
		return h, errors.New("people: holiday: give its first day (and last day, if longer) as dates (YYYY-MM-DD)")
	}
	if to == "" {
		to = from // one day
	}
	if to < from {
		return h, errors.New("people: holiday: it ends before it starts")
	}
	h.StartsOn, h.EndsOn = from, to
	h, err := s.st.SaveHoliday(ctx, actor, h, s.now())
	if err != nil {
		return h, err
	}
	return h, s.calendarChanged(ctx)
}

// DeleteHoliday removes a holiday, audited.
func (s *Service) DeleteHoliday(ctx context.Context, actor string, id int64) error {
	if err := s.st.DeleteHoliday(ctx, actor, id, s.now()); err != nil {
		return err
	}
	return s.calendarChanged(ctx)
}

// calendarChanged reloads the calendar and lets the rules about term time
// see it.
func (s *Service) calendarChanged(ctx context.Context) error {
	if err := s.Load(ctx); err != nil {
		return err
	}
	return s.changed(ctx)
}

// ParseTermDates reads a term-dates CSV (term,starts,ends,half_term_starts,
// half_term_ends; dates ISO or dd/mm/yyyy). Every problem is reported with
// its line.
func ParseTermDates(data []byte) ([]store.Term, []Problem, error) {
	if len(data) > 1<<20 {
		return nil, nil, errors.New("people: a term-dates file is at most 1 MiB")
	}
	r := csv.NewReader(bytes.NewReader(stripBOM(data)))
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("people: term dates: read header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[normHeader(h)] = i
	}
	for _, need := range []string{"term", "starts", "ends"} {
		if _, ok := col[need]; !ok {
			return nil, nil, fmt.Errorf("people: term dates: no %q column (want term,starts,ends,half_term_starts,half_term_ends)", need)
		}
	}
	var terms []store.Term
	var probs []Problem
	for {
		row, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				probs = append(probs, Problem{Line: pe.StartLine, Reason: "not valid CSV: " + pe.Err.Error()})
				break
			}
			return nil, nil, fmt.Errorf("people: term dates: %w", err)
		}
		// Only a record read without error has a position.
		line, _ := r.FieldPos(0)
		if len(terms) > 100 {
			return nil, nil, errors.New("people: term dates: more than 100 terms")
		}
		if len(row) != len(header) {
			probs = append(probs, Problem{Line: line, Reason: fmt.Sprintf("%d fields where the header has %d", len(row), len(header))})
			continue
		}
		get := func(name string) string {
			if i, ok := col[name]; ok {
				return strings.TrimSpace(row[i])
			}
			return ""
		}
		name, ok := cleanValue(get("term"))
		var why []string
		if !ok || name == "" {
			why = append(why, "missing term name")
		}
		t := store.Term{Name: name}
		for _, f := range []struct {
			col string
			dst *string
			req bool
		}{{"starts", &t.StartsOn, true}, {"ends", &t.EndsOn, true}, {"half_term_starts", &t.HalfTermStarts, false}, {"half_term_ends", &t.HalfTermEnds, false}} {
			v := get(f.col)
			d, ok := parseDay(v, isoThenUK...)
			switch {
			case !ok:
				why = append(why, fmt.Sprintf("%s %q is not a real date", f.col, v))
			case d == "" && f.req:
				why = append(why, "missing "+f.col)
			default:
				*f.dst = d
			}
		}
		if len(why) == 0 {
			switch {
			case t.EndsOn < t.StartsOn:
				why = append(why, "the term ends before it starts")
			case (t.HalfTermStarts == "") != (t.HalfTermEnds == ""):
				why = append(why, "a half-term needs a start and an end")
			case t.HalfTermStarts != "" && (t.HalfTermStarts < t.StartsOn || t.HalfTermEnds > t.EndsOn || t.HalfTermEnds < t.HalfTermStarts):
				why = append(why, "the half-term is not inside the term")
			}
		}
		for _, o := range terms {
			if len(why) == 0 && t.StartsOn <= o.EndsOn && o.StartsOn <= t.EndsOn {
				why = append(why, "overlaps "+o.Name)
			}
		}
		if len(why) > 0 {
			probs = append(probs, Problem{Line: line, Key: name, Reason: strings.Join(why, "; ")})
			continue
		}
		terms = append(terms, t)
	}
	return terms, probs, nil
}

// ImportTerms replaces the calendar's terms over the span the file covers
// (audited) and reloads the calendar. A file with any bad row changes
// nothing.
func (s *Service) ImportTerms(ctx context.Context, actor string, data []byte) ([]store.Term, error) {
	terms, probs, err := ParseTermDates(data)
	if err != nil {
		return nil, err
	}
	if len(probs) > 0 {
		var msgs []string
		for _, p := range probs {
			msgs = append(msgs, p.String())
		}
		return nil, fmt.Errorf("people: term dates: %s", strings.Join(msgs, "; "))
	}
	if len(terms) == 0 {
		return nil, errors.New("people: term dates: no terms in the file")
	}
	from, to := terms[0].StartsOn, terms[0].EndsOn
	for _, t := range terms {
		from, to = min(from, t.StartsOn), max(to, t.EndsOn)
	}
	if err := s.st.SaveTerms(ctx, actor, from, to, terms, s.now()); err != nil {
		return nil, err
	}
	if err := s.Load(ctx); err != nil {
		return nil, err
	}
	return terms, s.changed(ctx)
}

// endOfDay is the instant a local day ends: the next day's midnight in the
// school's zone (which, across a clock change, is not 24 hours after the
// day began).
func endOfDay(day string, loc *time.Location) (time.Time, error) {
	d, err := time.ParseInLocation(dayLayout, day, loc)
	if err != nil {
		return time.Time{}, err
	}
	return time.Date(d.Year(), d.Month(), d.Day()+1, 0, 0, 0, 0, loc), nil
}
