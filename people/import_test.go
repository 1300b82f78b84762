package people

import (
	"context"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/internal/testkit"
	"github.com/gatehouse-net/gatehouse/store"
)

// misDir is the sample school's exports, beside the repository.
func misDir(t testing.TB) string {
	t.Helper()
	d, err := filepath.Abs("../../shared/mis")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d, "pupils-sims.csv")); err != nil {
		t.Fatalf("sample MIS exports missing: %v (want them at %s)", err, d)
	}
	return d
}

func readMIS(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(misDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// london is the sample school's zone.
func london(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func newService(t testing.TB, at time.Time, opts Options) (*Service, *testkit.Clock) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "gh.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := testkit.NewClock(at)
	opts.Store, opts.Now = st, c.Now
	if opts.Kernel == nil {
		opts.Kernel = newFakeKernel()
	}
	if opts.Location == nil {
		opts.Location = london(t)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s, c
}

// sampleNow is a week after the pupil who "left mid-term last week".
var sampleNow = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func parseFile(t testing.TB, name string) Batch {
	t.Helper()
	b, err := ParseCSV(name, readMIS(t, name), nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func importFile(t testing.TB, s *Service, name string) Preview {
	t.Helper()
	pv, err := s.Preview(context.Background(), "test", parseFile(t, name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(context.Background(), "test", pv.ID); err != nil {
		t.Fatal(err)
	}
	return pv
}

func TestErrorsFileReportsExactlyTheBadRows(t *testing.T) {
	b := parseFile(t, "pupils-with-errors.csv")
	want := []struct {
		line   int
		reason string
	}{
		{7, "missing UPN"},
		{8, "duplicate UPN B00187910201A (also on line 2)"},
		{9, `leaving date "31/02/2027" is not a real date`},
		{10, `year group "Year 15" does not exist`},
		{11, "short row: 4 fields where the header has 11"},
	}
	if len(b.Problems) != len(want) {
		t.Fatalf("got %d problems, want %d: %v", len(b.Problems), len(want), b.Problems)
	}
	for i, w := range want {
		p := b.Problems[i]
		if p.Line != w.line || !strings.HasPrefix(p.Reason, w.reason) {
			t.Errorf("problem %d: %v, want line %d %q", i, p, w.line, w.reason)
		}
	}
	if len(b.Records) != 6 {
		t.Fatalf("%d good rows, want 6 (five plus the accented one)", len(b.Records))
	}
	last := b.Records[5]
	if last.get(FForename) != "Ñoño" || last.get(FSurname) != "Émilie" || last.get(FYear) != "Year 7" {
		t.Fatalf("accented row read as %+v", last.Values)
	}

	// Nothing is applied by a preview.
	s, _ := newService(t, sampleNow, Options{})
	pv, err := s.Preview(context.Background(), "test", b)
	if err != nil {
		t.Fatal(err)
	}
	if len(pv.Joiners) != 6 || len(pv.Problems) != 5 {
		t.Fatalf("preview %s", pv.Summary())
	}
	if ps, _ := s.st.ListPeople(context.Background(), store.PeopleFilter{}); len(ps) != 0 {
		t.Fatalf("a preview wrote %d people", len(ps))
	}
}

func TestEachSampleFileGivesTheExpectedPreview(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t, sampleNow, Options{})

	sims := importFile(t, s, "pupils-sims.csv")
	if len(sims.Joiners) != 300 || len(sims.Problems) != 0 || len(sims.Leavers) != 0 {
		t.Fatalf("SIMS into an empty database: %s", sims.Summary())
	}
	leaving := 0
	for _, j := range sims.Joiners {
		if j.Person.State == store.PersonLeaving {
			leaving++
		}
	}
	if leaving != 61 {
		t.Fatalf("%d pupils with a leaving date, want 61", leaving)
	}
	// The pupil who left mid-term last week lost access when the import
	// was applied (catch-up).
	revoked, _ := s.st.ListPeople(ctx, store.PeopleFilter{States: []string{store.PersonRevoked}})
	if len(revoked) != 1 || revoked[0].LeavesOn != "2026-11-20" {
		t.Fatalf("revoked after import: %+v", revoked)
	}

	// Re-importing the same file changes nothing.
	again, err := s.Preview(ctx, "test", parseFile(t, "pupils-sims.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if !again.Empty() || again.Unchanged != 300 {
		t.Fatalf("re-import: %s", again.Summary())
	}
	// The Arbor export is the same pupils in other columns.
	arbor, err := s.Preview(ctx, "test", parseFile(t, "pupils-arbor.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if !arbor.Empty() || arbor.Unchanged != 300 {
		t.Fatalf("Arbor after SIMS: %s %+v", arbor.Summary(), arbor.Changed)
	}
	staff := importFile(t, s, "staff.csv")
	if len(staff.Joiners) != 60 || len(staff.Problems) != 0 || len(staff.Leavers) != 0 {
		t.Fatalf("staff: %s", staff.Summary())
	}
	// A pupil export says nothing about staff, and the errors file is a
	// truncated export: 294 pupils it does not list become leavers, but
	// not the five it names on bad rows' neighbours, and no staff.
	errs, err := s.Preview(ctx, "test", parseFile(t, "pupils-with-errors.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if len(errs.Joiners) != 1 || errs.Unchanged != 5 || len(errs.Problems) != 5 || len(errs.Leavers) != 294 {
		t.Fatalf("errors file after SIMS: %s", errs.Summary())
	}
	for _, l := range errs.Leavers {
		if l.Person.Kind != "pupil" || l.Person.LeavesOn != "2026-11-27" {
			t.Fatalf("leaver %+v", l.Person)
		}
	}
}

// rewrite returns a CSV file's bytes with edit applied to each data row
// (nil drops the row).
func rewrite(t testing.TB, data []byte, edit func([]string) []string) []byte {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(string(data))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	w := csv.NewWriter(&sb)
	w.Write(rows[0])
	for _, r := range rows[1:] {
		if r = edit(r); r != nil {
			w.Write(r)
		}
	}
	w.Flush()
	return []byte(sb.String())
}

func TestYear11StayingOnIsAMoverNotALeaver(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t, sampleNow, Options{})
	importFile(t, s, "pupils-sims.csv")
	// Next September's export: Year 11 without a leaving date are in
	// Year 12 now.
	next := rewrite(t, readMIS(t, "pupils-sims.csv"), func(r []string) []string {
		if r[5] == "Year 11" && r[8] == "" {
			r[5], r[6] = "Year 12", "12"+r[6][2:]
		}
		return r
	})
	b, err := ParseCSV("next.csv", next, nil)
	if err != nil {
		t.Fatal(err)
	}
	pv, err := s.Preview(ctx, "test", b)
	if err != nil {
		t.Fatal(err)
	}
	if len(pv.Movers) != 28 || len(pv.Leavers) != 0 || len(pv.Joiners) != 0 || len(pv.Changed) != 0 {
		t.Fatalf("preview: %s", pv.Summary())
	}
	for _, m := range pv.Movers {
		if m.Person.YearGroup != "Year 12" || m.Person.State != store.PersonActive {
			t.Fatalf("mover %+v", m.Person)
		}
	}
	if _, err := s.Apply(ctx, "test", pv.ID); err != nil {
		t.Fatal(err)
	}
	before := strings.Count(string(readMIS(t, "pupils-sims.csv")), ",Year 12,")
	if y12, _ := s.Members(ctx, "Year 12"); len(y12) != 28+before {
		t.Fatalf("Year 12 has %d members, want %d", len(y12), 28+before)
	}
	if y11, _ := s.Members(ctx, "Year 11"); len(y11) != 15 {
		t.Fatalf("Year 11 keeps %d members, want the 15 with leaving dates", len(y11))
	}
}

func TestThresholdStopsATruncatedScheduledImport(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t, sampleNow, Options{})
	importFile(t, s, "pupils-sims.csv")
	drop := func(n int) Batch {
		i := 0
		data := rewrite(t, readMIS(t, "pupils-sims.csv"), func(r []string) []string {
			i++
			if i <= n && r[8] == "" {
				return nil
			}
			return r
		})
		b, err := ParseCSV("scheduled.csv", data, nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// 299 with access -> threshold 14.
	pv, err := s.ApplyScheduled(ctx, drop(100))
	if !errors.Is(err, ErrTooManyLeavers) {
		t.Fatalf("truncated import: %v (%s)", err, pv.Summary())
	}
	if ps, _ := s.st.ListPeople(ctx, store.PeopleFilter{States: []string{store.PersonLeaving}}); len(ps) != 60 {
		t.Fatalf("a refused import changed people: %d leaving", len(ps))
	}
	runs, _ := s.st.ListImports(ctx, 10)
	if runs[0].State != "waiting" {
		t.Fatalf("latest import %+v, want waiting", runs[0])
	}
	// A person can still confirm it.
	if _, err := s.Apply(ctx, "web:nm", runs[0].ID); err != nil {
		t.Fatal(err)
	}
	// A small change goes through by itself.
	s2, _ := newService(t, sampleNow, Options{})
	importFile(t, s2, "pupils-sims.csv")
	pv, err = s2.ApplyScheduled(ctx, drop(3))
	if err != nil || len(pv.Leavers) != 3 {
		t.Fatalf("small scheduled import: %v %s", err, pv.Summary())
	}
	// Applying it revoked nobody yet: their day ends tonight.
	if ps, _ := s2.st.ListPeople(ctx, store.PeopleFilter{States: []string{store.PersonRevoked}}); len(ps) != 1 {
		t.Fatalf("%d revoked", len(ps))
	}
}

// projection is the part of a person every source carries.
type projection struct {
	Kind, ID, Forename, Surname, Year, Reg, Email string
}

func project(ps []store.Person) []projection {
	var out []projection
	for _, p := range ps {
		id := p.UPN
		if p.Kind == "staff" {
			id = p.StaffCode
		}
		out = append(out, projection{p.Kind, id, p.LegalForename, p.LegalSurname, p.YearGroup, p.RegGroup, p.Email})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func peopleFrom(t *testing.T, batches ...Batch) []store.Person {
	t.Helper()
	s, _ := newService(t, sampleNow, Options{})
	for _, b := range batches {
		if len(b.Problems) > 0 {
			t.Fatalf("%s: problems %v", b.Source, b.Problems)
		}
		pv, err := s.Preview(context.Background(), "test", b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Apply(context.Background(), "test", pv.ID); err != nil {
			t.Fatal(err)
		}
	}
	ps, err := s.st.ListPeople(context.Background(), store.PeopleFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func oneRosterBatch(t testing.TB) Batch {
	t.Helper()
	bundle, err := ReadOneRoster(os.DirFS(filepath.Join(misDir(t), "oneroster")))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseOneRoster("oneroster", bundle, OneRosterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOneRosterGivesTheSamePeopleAsTheCSV(t *testing.T) {
	csvPeople := peopleFrom(t, parseFile(t, "pupils-sims.csv"), parseFile(t, "staff.csv"))
	or := oneRosterBatch(t)
	orPeople := peopleFrom(t, or)
	if len(csvPeople) != 360 || len(orPeople) != 360 {
		t.Fatalf("CSV gave %d people, OneRoster %d", len(csvPeople), len(orPeople))
	}
	if a, b := project(csvPeople), project(orPeople); !reflect.DeepEqual(a, b) {
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("first difference: CSV %+v, OneRoster %+v", a[i], b[i])
			}
		}
	}
	// Pupils' dates come from the homeroom enrolment: same as SIMS.
	byUPN := map[string]store.Person{}
	for _, p := range csvPeople {
		byUPN[p.UPN] = p
	}
	for _, p := range orPeople {
		if p.Kind == "pupil" && (byUPN[p.UPN].LeavesOn != p.LeavesOn || byUPN[p.UPN].StartsOn != p.StartsOn || byUPN[p.UPN].AdmissionNo != p.AdmissionNo) {
			t.Fatalf("OneRoster %+v differs from SIMS %+v", p, byUPN[p.UPN])
		}
	}

	// On top of the CSV imports OneRoster finds nobody new and nobody gone;
	// it adds the staff usernames staff.csv lacks.
	s, _ := newService(t, sampleNow, Options{})
	importFile(t, s, "pupils-sims.csv")
	importFile(t, s, "staff.csv")
	pv, err := s.Preview(context.Background(), "test", or)
	if err != nil {
		t.Fatal(err)
	}
	if len(pv.Joiners)+len(pv.Leavers)+len(pv.Movers) != 0 || len(pv.Changed) != 60 {
		t.Fatalf("OneRoster after CSV: %s", pv.Summary())
	}
	for _, c := range pv.Changed {
		if len(c.Fields) != 1 || c.Fields[0].Field != FUsername || c.Fields[0].Old != "" {
			t.Fatalf("change %+v", c)
		}
	}
}

func TestLDAPEntriesGiveTheSamePeopleAsTheCSV(t *testing.T) {
	entries, err := ReadLDIF(readMIS(t, "directory.ldif"))
	if err != nil {
		t.Fatal(err)
	}
	b := ParseLDAP("ldap", entries, LDAPOptions{})
	ldapPeople := peopleFrom(t, b)
	csvPeople := peopleFrom(t, parseFile(t, "pupils-sims.csv"), parseFile(t, "staff.csv"))
	if a, c := project(csvPeople), project(ldapPeople); !reflect.DeepEqual(a, c) {
		t.Fatalf("LDAP and CSV differ: %d vs %d people", len(c), len(a))
	}
}

func TestSavedColumnMappingReadsAnotherExport(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t, sampleNow, Options{})
	data := []byte("Pupil UPN,Surname,Given name,NC Year,Form,Left\nB00187910201A,Murphy,Priya,8,8B,\nC00223272516A,Jackson,Charlie,Yr 9,9C,20/07/2027\n,Nobody,X,9,9A,\n")
	if _, err := ParseCSV("other.csv", data, nil); !errors.Is(err, ErrUnknownShape) {
		t.Fatalf("unknown shape: %v", err)
	}
	header, err := ReadHeader(data)
	if err != nil {
		t.Fatal(err)
	}
	sh := Shape{Name: "other MIS", Kind: "pupil", Dates: []string{"02/01/2006"}, Columns: map[Field]string{
		FUPN: "Pupil UPN", FSurname: "Surname", FForename: "Given name", FYear: "NC Year", FReg: "Form", FLeaves: "Left"}}
	bad := sh
	bad.Columns = map[Field]string{FUPN: "No such column", FSurname: "Surname"}
	if err := s.SaveShape(ctx, "web:nm", header, bad); err == nil {
		t.Fatal("a mapping naming a missing column was saved")
	}
	if err := s.SaveShape(ctx, "web:nm", header, sh); err != nil {
		t.Fatal(err)
	}
	saved, err := s.SavedShapes(ctx)
	if err != nil || len(saved) != 1 {
		t.Fatalf("saved %v %v", saved, err)
	}
	b, err := ParseCSV("other.csv", data, saved)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Records) != 2 || len(b.Problems) != 1 || b.Problems[0].Line != 4 || b.Problems[0].Reason != "missing UPN" {
		t.Fatalf("records %d problems %v", len(b.Records), b.Problems)
	}
	if b.Records[1].get(FYear) != "Year 9" || b.Records[1].get(FLeaves) != "2027-07-20" {
		t.Fatalf("record %+v", b.Records[1].Values)
	}
}
