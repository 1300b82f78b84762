package people

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Field names a person's field an import can carry.
type Field string

// The fields of a person that imports set.
const (
	FUPN         Field = "upn"
	FAdmissionNo Field = "admission_no"
	FStaffCode   Field = "staff_code"
	FTitle       Field = "title"
	FForename    Field = "legal_forename"
	FSurname     Field = "legal_surname"
	FPreferred   Field = "preferred_forename"
	FYear        Field = "year_group"
	FReg         Field = "reg_group"
	FRole        Field = "role"
	FStarts      Field = "starts_on"
	FLeaves      Field = "leaves_on"
	FUsername    Field = "username"
	FEmail       Field = "email"
)

// AllFields lists every field in display order.
var AllFields = []Field{FUPN, FAdmissionNo, FStaffCode, FTitle, FForename, FSurname, FPreferred, FYear, FReg,
	FRole, FStarts, FLeaves, FUsername, FEmail}

// Record is one person as a source describes them.
type Record struct {
	Line   int              // where in the source (1 is a CSV's header row)
	Kind   string           // "pupil" or "staff"
	Values map[Field]string // only the fields the source carries
}

func (r Record) get(f Field) string { return r.Values[f] }

// Problem is a row of a source that cannot be imported, and why.
type Problem struct {
	File   string `json:"file,omitempty"`
	Line   int    `json:"line"`
	Key    string `json:"key,omitempty"` // the row's UPN or staff code, when it had one
	Reason string `json:"reason"`
}

func (p Problem) String() string {
	if p.File != "" {
		return fmt.Sprintf("%s line %d: %s", p.File, p.Line, p.Reason)
	}
	return fmt.Sprintf("line %d: %s", p.Line, p.Reason)
}

// Batch is everything one source said: the people it lists, the rows it
// could not read, which kinds of people it covers (a pupil export says
// nothing about staff) and which fields it carries (a field it does not
// carry is left as it is).
type Batch struct {
	Source   string
	Kinds    []string
	Fields   map[Kind]map[Field]bool
	Records  []Record
	Problems []Problem
}

// Kind is "pupil" or "staff".
type Kind = string

// Limits on what one import may hold, so a wrong file cannot exhaust memory.
const (
	MaxRecords   = 50000
	MaxFileBytes = 64 << 20
	maxValue     = 200
)

// cleanValue trims a value and reports whether it is acceptable text.
func cleanValue(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxValue {
		return "", false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "", false
		}
	}
	return s, true
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// yearGroups are the National Curriculum years that exist.
func normaliseYear(s string) (string, bool) {
	t := strings.ToLower(strings.TrimSpace(s))
	switch t {
	case "":
		return "", true
	case "r", "rec", "reception", "yr r", "year r", "kg", "0", "00":
		return "Reception", true
	case "n", "nursery", "pk":
		return "Nursery", true
	}
	for _, p := range []string{"year ", "year", "yr ", "yr", "y"} {
		if strings.HasPrefix(t, p) {
			t = strings.TrimSpace(t[len(p):])
			break
		}
	}
	n, err := strconv.Atoi(t)
	if err != nil || n < 1 || n > 14 {
		return "", false
	}
	return "Year " + strconv.Itoa(n), true
}

// parseDay reads a date in one of layouts and returns it as YYYY-MM-DD.
func parseDay(s string, layouts ...string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", true
	}
	for _, l := range layouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.Format(dayLayout), true
		}
	}
	return "", false
}

const dayLayout = "2006-01-02"

// check validates and normalises a record in place, returning the reasons
// it cannot be imported (none when it can).
func (r *Record) check(dateLayouts []string) []string {
	var why []string
	for f, v := range r.Values {
		c, ok := cleanValue(v)
		if !ok {
			why = append(why, fmt.Sprintf("%s is not printable text of at most %d characters", f, maxValue))
			continue
		}
		r.Values[f] = c
	}
	if len(why) > 0 {
		return why
	}
	switch r.Kind {
	case "pupil":
		if _, has := r.Values[FUPN]; has {
			if r.get(FUPN) == "" {
				why = append(why, "missing UPN")
			}
		} else if r.get(FAdmissionNo) == "" {
			why = append(why, "missing admission number")
		}
	case "staff":
		if _, has := r.Values[FStaffCode]; has {
			if r.get(FStaffCode) == "" {
				why = append(why, "missing staff code")
			}
		} else if r.get(FUsername) == "" {
			why = append(why, "missing username")
		}
	default:
		why = append(why, fmt.Sprintf("unknown kind of person %q", r.Kind))
	}
	for _, f := range []Field{FUPN, FAdmissionNo, FStaffCode, FUsername} {
		if v := r.get(f); v != "" && !idPattern.MatchString(v) {
			why = append(why, fmt.Sprintf("%s %q is not letters and digits", f, v))
		}
	}
	if r.get(FForename) == "" && r.get(FSurname) == "" {
		why = append(why, "missing name")
	}
	if v, has := r.Values[FYear]; has {
		if y, ok := normaliseYear(v); ok {
			r.Values[FYear] = y
		} else {
			why = append(why, fmt.Sprintf("year group %q does not exist", v))
		}
	}
	for _, f := range []Field{FStarts, FLeaves} {
		v, has := r.Values[f]
		if !has {
			continue
		}
		if d, ok := parseDay(v, dateLayouts...); ok {
			r.Values[f] = d
		} else {
			what := "start date"
			if f == FLeaves {
				what = "leaving date"
			}
			why = append(why, fmt.Sprintf("%s %q is not a real date (want %s)", what, v, layoutHint(dateLayouts)))
		}
	}
	if v := r.get(FEmail); v != "" && !strings.Contains(v, "@") {
		why = append(why, fmt.Sprintf("email %q has no @", v))
	}
	if _, has := r.Values[FPreferred]; has && r.get(FPreferred) == "" {
		r.Values[FPreferred] = r.get(FForename)
	}
	return why
}

func layoutHint(ls []string) string {
	var out []string
	for _, l := range ls {
		out = append(out, strings.NewReplacer("2006", "YYYY", "01", "MM", "02", "DD").Replace(l))
	}
	return strings.Join(out, " or ")
}

// key is the record's identity within its kind: UPN (else admission
// number) for pupils, staff code (else username) for staff.
func (r Record) key() string {
	if r.Kind == "pupil" {
		if v := r.get(FUPN); v != "" {
			return "upn:" + strings.ToUpper(v)
		}
		if v := r.get(FAdmissionNo); v != "" {
			return "adno:" + v
		}
		return ""
	}
	if v := r.get(FStaffCode); v != "" {
		return "staff:" + strings.ToUpper(v)
	}
	if v := r.get(FUsername); v != "" {
		return "user:" + strings.ToLower(v)
	}
	return ""
}

func (r Record) label() string {
	for _, f := range []Field{FUPN, FStaffCode, FAdmissionNo, FUsername} {
		if v := r.get(f); v != "" {
			return v
		}
	}
	return ""
}

// finish checks every record of b, moves the bad ones to Problems and
// reports duplicates (the second and later rows with one key).
func (b *Batch) finish(file string, dateLayouts []string) {
	seen := map[string]int{}
	good := b.Records[:0]
	for _, r := range b.Records {
		why := r.check(dateLayouts)
		k := r.key()
		if len(why) == 0 && k != "" {
			if first, dup := seen[k]; dup {
				what := "UPN"
				if r.Kind == "staff" {
					what = "staff code"
				}
				if !strings.HasPrefix(k, "upn:") && !strings.HasPrefix(k, "staff:") {
					what = "identifier"
				}
				why = append(why, fmt.Sprintf("duplicate %s %s (also on line %d)", what, r.label(), first))
			} else {
				seen[k] = r.Line
			}
		}
		if len(why) > 0 {
			b.Problems = append(b.Problems, Problem{File: file, Line: r.Line, Key: r.label(), Reason: strings.Join(why, "; ")})
			continue
		}
		good = append(good, r)
	}
	b.Records = good
	sort.SliceStable(b.Problems, func(i, j int) bool { return b.Problems[i].Line < b.Problems[j].Line })
}
