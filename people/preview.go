package people

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/gatehouse-net/gatehouse/store"
)

// FieldChange is one field an import changes.
type FieldChange struct {
	Field Field  `json:"field"`
	Old   string `json:"old"`
	New   string `json:"new"`
}

// Entry is one person in a preview, as they will be after the import.
type Entry struct {
	Person store.Person  `json:"person"`
	Fields []FieldChange `json:"fields,omitempty"`
}

// Preview is what an import would do. Nothing is applied until Apply.
type Preview struct {
	ID     int64    `json:"id"`
	Source string   `json:"source"`
	Kinds  []string `json:"kinds"`
	// Joiners are new people.
	Joiners []Entry `json:"joiners"`
	// Movers changed year or registration group (a Year 11 staying on for
	// Year 12 is a mover, never a leaver).
	Movers []Entry `json:"movers"`
	// Changed had other fields change (names, email, a leaving date).
	Changed []Entry `json:"changed"`
	// Leavers are people with access whom the source no longer lists:
	// their leaving day becomes the day of the import.
	Leavers []Entry `json:"leavers"`
	// Unchanged counts people the import leaves as they are.
	Unchanged int `json:"unchanged"`
	// Problems are the rows that cannot be imported.
	Problems []Problem `json:"problems"`
	// Threshold is the most leavers a scheduled import applies by itself.
	Threshold int `json:"threshold"`
	// Changes are what Apply writes.
	Changes []store.PersonChange `json:"changes"`
}

// Summary is the one-line account of a preview.
func (p Preview) Summary() string {
	return fmt.Sprintf("%d joiners, %d movers, %d changed, %d leavers, %d unchanged, %d bad rows",
		len(p.Joiners), len(p.Movers), len(p.Changed), len(p.Leavers), p.Unchanged, len(p.Problems))
}

// Empty reports whether applying would change nothing.
func (p Preview) Empty() bool { return len(p.Changes) == 0 }

func personField(p *store.Person, f Field) *string {
	switch f {
	case FUPN:
		return &p.UPN
	case FAdmissionNo:
		return &p.AdmissionNo
	case FStaffCode:
		return &p.StaffCode
	case FTitle:
		return &p.Title
	case FForename:
		return &p.LegalForename
	case FSurname:
		return &p.LegalSurname
	case FPreferred:
		return &p.PreferredForename
	case FYear:
		return &p.YearGroup
	case FReg:
		return &p.RegGroup
	case FRole:
		return &p.Role
	case FStarts:
		return &p.StartsOn
	case FLeaves:
		return &p.LeavesOn
	case FUsername:
		return &p.Username
	case FEmail:
		return &p.Email
	}
	return nil
}

// index finds existing people by the keys records use.
type index map[string]*store.Person

func indexPeople(ps []store.Person) index {
	ix := index{}
	for i := range ps {
		p := &ps[i]
		if p.Kind == "pupil" {
			if p.UPN != "" {
				ix["upn:"+strings.ToUpper(p.UPN)] = p
			}
			if p.AdmissionNo != "" {
				ix["adno:"+p.AdmissionNo] = p
			}
		} else {
			if p.StaffCode != "" {
				ix["staff:"+strings.ToUpper(p.StaffCode)] = p
			}
			if p.Username != "" {
				ix["user:"+strings.ToLower(p.Username)] = p
			}
		}
	}
	return ix
}

// stateFor is a person's state from their leaving date, for people who
// still have access.
func stateFor(p store.Person) string {
	if p.State == store.PersonRevoked || p.State == store.PersonLeft {
		return p.State
	}
	if p.LeavesOn != "" || p.LeavesAtTermEnd {
		return store.PersonLeaving
	}
	return store.PersonActive
}

// Diff compares a batch with the people the database holds and returns
// the preview. today (YYYY-MM-DD, the school's zone) becomes the leaving
// day of people the source no longer lists.
func Diff(b Batch, existing []store.Person, today string, threshold int) Preview {
	pv := Preview{Source: b.Source, Kinds: b.Kinds, Problems: b.Problems}
	ix := indexPeople(existing)
	covered := map[string]bool{}
	for _, k := range b.Kinds {
		covered[k] = true
	}
	seen := map[int64]bool{}
	// People named by a bad row are not leavers: the row is there, only
	// unreadable.
	protected := map[int64]bool{}
	for _, pr := range b.Problems {
		if pr.Key == "" {
			continue
		}
		for _, prefix := range []string{"upn:", "staff:", "adno:", "user:"} {
			k := prefix + strings.ToUpper(pr.Key)
			if prefix == "user:" {
				k = prefix + strings.ToLower(pr.Key)
			}
			if p, ok := ix[k]; ok {
				protected[p.ID] = true
			}
		}
	}
	for _, r := range b.Records {
		fields := b.Fields[r.Kind]
		cur, ok := ix[r.key()]
		if ok && cur.Kind != r.Kind {
			ok = false
		}
		if !ok {
			p := store.Person{Kind: r.Kind}
			for f := range fields {
				*personField(&p, f) = r.get(f)
			}
			if p.PreferredForename == "" {
				p.PreferredForename = p.LegalForename
			}
			p.Source = b.Source
			p.State = stateFor(p)
			pv.Joiners = append(pv.Joiners, Entry{Person: p})
			pv.Changes = append(pv.Changes, store.PersonChange{Person: p})
			continue
		}
		if seen[cur.ID] {
			continue // listed twice under two keys: the first row wins
		}
		seen[cur.ID] = true
		next := *cur
		var fc []FieldChange
		for _, f := range AllFields {
			if !fields[f] {
				continue
			}
			dst := personField(&next, f)
			if v := r.get(f); *dst != v {
				fc = append(fc, FieldChange{Field: f, Old: *dst, New: v})
				*dst = v
			}
		}
		if next.LeftOn != "" && (next.State == store.PersonActive || next.State == store.PersonLeaving) {
			// Back in the MIS after an import found them gone.
			fc = append(fc, FieldChange{Field: "left_on", Old: next.LeftOn})
			next.LeftOn = ""
		}
		if st := stateFor(next); st != next.State {
			next.State = st
		}
		if len(fc) == 0 && next.State == cur.State {
			pv.Unchanged++
			continue
		}
		e := Entry{Person: next, Fields: fc}
		mover := false
		for _, c := range fc {
			if c.Field == FYear || c.Field == FReg {
				mover = true
			}
		}
		if mover {
			pv.Movers = append(pv.Movers, e)
		} else {
			pv.Changed = append(pv.Changed, e)
		}
		pv.Changes = append(pv.Changes, store.PersonChange{Person: next, Version: cur.Version})
	}
	for _, p := range existing {
		if seen[p.ID] || protected[p.ID] || !covered[p.Kind] {
			continue
		}
		switch p.State {
		case store.PersonActive, store.PersonLeaving:
			if p.LeftOn != "" {
				continue // an earlier import already found them gone
			}
			next := p
			if next.LeavesOn == "" || next.LeavesOn > today {
				next.LeavesOn = today
			}
			next.LeftOn = today
			next.State = store.PersonLeaving
			e := Entry{Person: next}
			if next.LeavesOn != p.LeavesOn {
				e.Fields = []FieldChange{{Field: FLeaves, Old: p.LeavesOn, New: next.LeavesOn}}
			}
			pv.Leavers = append(pv.Leavers, e)
			pv.Changes = append(pv.Changes, store.PersonChange{Person: next, Version: p.Version})
		case store.PersonRevoked:
			// Gone from the MIS as well: retention counts from today.
			next := p
			next.State, next.LeftOn = store.PersonLeft, today
			pv.Changes = append(pv.Changes, store.PersonChange{Person: next, Version: p.Version})
		}
	}
	if threshold <= 0 {
		n := 0
		for _, p := range existing {
			if covered[p.Kind] && (p.State == store.PersonActive || p.State == store.PersonLeaving) {
				n++
			}
		}
		threshold = max(5, n/20)
	}
	pv.Threshold = threshold
	for _, l := range [][]Entry{pv.Joiners, pv.Movers, pv.Changed, pv.Leavers} {
		sort.SliceStable(l, func(i, j int) bool { return Key(l[i].Person) < Key(l[j].Person) })
	}
	return pv
}

// Preview compares a batch with the database and records the preview
// (audited); nothing about people changes until Apply.
func (s *Service) Preview(ctx context.Context, actor string, b Batch) (Preview, error) {
	existing, err := s.st.ListPeople(ctx, store.PeopleFilter{})
	if err != nil {
		return Preview{}, err
	}
	pv := Diff(b, existing, s.today(), s.opts.MaxLeavers)
	raw, err := json.Marshal(pv)
	if err != nil {
		return Preview{}, fmt.Errorf("people: encode preview: %w", err)
	}
	id, err := s.st.SaveImport(ctx, actor, store.ImportRun{Source: b.Source, Summary: pv.Summary(), Preview: raw, CreatedAt: s.now()})
	if err != nil {
		return Preview{}, err
	}
	pv.ID = id
	return pv, nil
}

// LoadPreview returns a recorded preview and its run.
func (s *Service) LoadPreview(ctx context.Context, id int64) (Preview, store.ImportRun, error) {
	run, err := s.st.Import(ctx, id)
	if err != nil {
		return Preview{}, store.ImportRun{}, err
	}
	var pv Preview
	if err := json.Unmarshal(run.Preview, &pv); err != nil {
		return Preview{}, run, fmt.Errorf("people: import %d: stored preview: %w", id, err)
	}
	pv.ID = id
	return pv, run, nil
}

// ErrTooManyLeavers is returned by ApplyScheduled when an import would
// make as many leavers as the threshold or more: it waits for a person.
var ErrTooManyLeavers = errors.New("people: the import would make too many leavers; it waits for a person to confirm it")

// Apply writes a previewed import in one transaction (every person audited)
// and then revokes anyone whose access has already ended (a leaving day in
// the past). A preview made before another change to the same people is
// refused with store.ErrConflict: preview again.
func (s *Service) Apply(ctx context.Context, actor string, id int64) (Preview, error) {
	pv, _, err := s.LoadPreview(ctx, id)
	if err != nil {
		return Preview{}, err
	}
	if _, err := s.st.ApplyImport(ctx, actor, id, pv.Changes, s.now()); err != nil {
		return pv, err
	}
	s.log.Info("import applied", "import", id, "by", actor, "summary", pv.Summary())
	err = s.changed(ctx)
	// Anyone whose access has already ended loses it now. Without the
	// kernel (the command line) the daemon's scheduler does it within a
	// minute.
	if s.opts.Kernel != nil {
		if _, terr := s.Tick(ctx); terr != nil {
			err = errors.Join(err, terr)
		}
	}
	return pv, err
}

// ApplyScheduled records and applies a scheduled import's preview when it
// makes fewer leavers than the threshold and has no bad rows; otherwise the
// preview waits (state "waiting") for a person, and ErrTooManyLeavers or
// the problem count is returned.
func (s *Service) ApplyScheduled(ctx context.Context, b Batch) (Preview, error) {
	const actor = "scheduler"
	pv, err := s.Preview(ctx, actor, b)
	if err != nil {
		return pv, err
	}
	if pv.Empty() && len(pv.Problems) == 0 {
		return pv, s.st.DiscardImport(ctx, actor, pv.ID, s.now())
	}
	if len(pv.Leavers) >= pv.Threshold || len(pv.Problems) > 0 {
		if err := s.markWaiting(ctx, pv); err != nil {
			return pv, err
		}
		if len(pv.Leavers) >= pv.Threshold {
			return pv, fmt.Errorf("%w (%d leavers, threshold %d)", ErrTooManyLeavers, len(pv.Leavers), pv.Threshold)
		}
		return pv, fmt.Errorf("people: the import has %d bad rows; it waits for a person to confirm it", len(pv.Problems))
	}
	return s.Apply(ctx, actor, pv.ID)
}

func (s *Service) markWaiting(ctx context.Context, pv Preview) error {
	raw, err := json.Marshal(pv)
	if err != nil {
		return err
	}
	// A waiting import is a new run in state waiting, and the preview is
	// discarded, so the list shows what is held back.
	if err := s.st.DiscardImport(ctx, "scheduler", pv.ID, s.now()); err != nil {
		return err
	}
	_, err = s.st.SaveImport(ctx, "scheduler", store.ImportRun{Source: pv.Source, State: "waiting", Summary: pv.Summary(), Preview: raw, CreatedAt: s.now()})
	return err
}

func (s *Service) today() string { return s.now().In(s.loc).Format(dayLayout) }

// SavedShapes returns the column mappings people saved, for ParseCSV.
func (s *Service) SavedShapes(ctx context.Context) ([]SavedShape, error) {
	ms, err := s.st.ImportMappings(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]SavedShape, 0, len(ms))
	for _, m := range ms {
		sh, err := ParseShapeJSON(m.Mapping)
		if err != nil {
			s.log.Warn("saved column mapping unusable", "name", m.Name, "err", err)
			continue
		}
		out = append(out, SavedShape{HeaderKey: m.HeaderKey, Shape: sh})
	}
	return out, nil
}

// SaveShape saves a column mapping for a CSV whose header row is header.
func (s *Service) SaveShape(ctx context.Context, actor string, header []string, sh Shape) error {
	if err := sh.Check(); err != nil {
		return fmt.Errorf("people: column mapping: %w", err)
	}
	for f, c := range sh.Columns {
		found := false
		for _, h := range header {
			if normHeader(h) == normHeader(c) {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("people: column mapping: %s names column %q, which the file does not have", f, c)
		}
	}
	raw, err := ShapeJSON(sh)
	if err != nil {
		return err
	}
	return s.st.SaveImportMapping(ctx, actor, store.ImportMapping{Name: sh.Name, HeaderKey: HeaderKey(header), Mapping: raw}, s.now())
}

// Merge joins batches read together (a pupil export and a staff export)
// into one, so that one import covers every kind either covers.
func Merge(source string, bs ...Batch) Batch {
	out := Batch{Source: source, Fields: map[Kind]map[Field]bool{}}
	kinds := map[string]bool{}
	for _, b := range bs {
		for _, k := range b.Kinds {
			if !kinds[k] {
				kinds[k] = true
				out.Kinds = append(out.Kinds, k)
			}
		}
		for k, fs := range b.Fields {
			if out.Fields[k] == nil {
				out.Fields[k] = map[Field]bool{}
			}
			for f := range fs {
				out.Fields[k][f] = true
			}
		}
		out.Records = append(out.Records, b.Records...)
		for _, p := range b.Problems {
			if p.File == "" {
				p.File = b.Source
			}
			out.Problems = append(out.Problems, p)
		}
	}
	return out
}
