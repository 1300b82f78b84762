package people

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Shape is a CSV export's layout: which column holds which field, the kind
// of person every row is, and how dates are written. The built-in shapes
// (SIMS-style, Arbor-style, staff) are recognised by their headers; any
// other export needs a saved Shape (a column mapping).
type Shape struct {
	Name    string           `json:"name"`
	Kind    string           `json:"kind"`
	Columns map[Field]string `json:"columns"`
	// Dates are Go layouts tried in order; default ISO then dd/mm/yyyy.
	Dates []string `json:"dates,omitempty"`
}

var (
	isoThenUK = []string{dayLayout, "02/01/2006"}
	ukThenISO = []string{"02/01/2006", dayLayout}
)

// BuiltinShapes are the exports the sample school's MIS produces.
func BuiltinShapes() []Shape {
	return []Shape{
		{Name: "SIMS-style pupils", Kind: "pupil", Dates: isoThenUK, Columns: map[Field]string{
			FUPN: "UPN", FAdmissionNo: "Adno", FSurname: "Legal Surname", FForename: "Legal Forename",
			FPreferred: "Preferred Forename", FYear: "Year", FReg: "Reg", FStarts: "Date of Admission",
			FLeaves: "Leaving Date", FUsername: "Username", FEmail: "Email"}},
		{Name: "Arbor-style pupils", Kind: "pupil", Dates: ukThenISO, Columns: map[Field]string{
			FAdmissionNo: "Student ID", FUPN: "UPN", FForename: "First name", FSurname: "Last name",
			FYear: "Year group", FReg: "Registration form", FStarts: "Start date", FLeaves: "End date",
			FEmail: "Email address"}},
		{Name: "staff", Kind: "staff", Dates: isoThenUK, Columns: map[Field]string{
			FStaffCode: "Staff Code", FTitle: "Title", FForename: "Forename", FSurname: "Surname", FRole: "Role",
			FEmail: "Email", FStarts: "Employment Start", FLeaves: "Employment End"}},
	}
}

// Check reports what is wrong with a shape a person saved.
func (s Shape) Check() error {
	if s.Kind != "pupil" && s.Kind != "staff" {
		return fmt.Errorf("kind must be pupil or staff, not %q", s.Kind)
	}
	if len(s.Columns) == 0 {
		return errors.New("no columns mapped")
	}
	known := map[Field]bool{}
	for _, f := range AllFields {
		known[f] = true
	}
	for f, c := range s.Columns {
		if !known[f] {
			return fmt.Errorf("unknown field %q", f)
		}
		if strings.TrimSpace(c) == "" {
			return fmt.Errorf("field %s has no column", f)
		}
	}
	id := FUPN
	if s.Kind == "staff" {
		id = FStaffCode
	}
	if s.Columns[id] == "" && s.Columns[FAdmissionNo] == "" && s.Columns[FUsername] == "" {
		return fmt.Errorf("map %s (or an admission number or username) so people can be recognised again", id)
	}
	return nil
}

func normHeader(h string) string { return strings.ToLower(strings.TrimSpace(h)) }

// HeaderKey is a header row normalised, the key a saved mapping is found by.
func HeaderKey(header []string) string {
	out := make([]string, len(header))
	for i, h := range header {
		out[i] = normHeader(h)
	}
	return strings.Join(out, "\x1f")
}

// matches reports whether every column the shape maps is in the header.
func (s Shape) matches(header []string) bool {
	have := map[string]bool{}
	for _, h := range header {
		have[normHeader(h)] = true
	}
	for _, c := range s.Columns {
		if !have[normHeader(c)] {
			return false
		}
	}
	return true
}

// ErrUnknownShape is returned when no built-in or saved shape matches a
// CSV's header row; the caller may save a mapping for it.
var ErrUnknownShape = errors.New("people: the CSV's columns match no known export; save a column mapping for it")

// SavedShape is a mapping saved for one exact header row.
type SavedShape struct {
	HeaderKey string
	Shape     Shape
}

// ReadHeader returns a CSV's header row.
func ReadHeader(data []byte) ([]string, error) {
	r := csv.NewReader(bytes.NewReader(stripBOM(data)))
	r.FieldsPerRecord = -1
	h, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("people: read CSV header: %w", err)
	}
	return h, nil
}

func stripBOM(b []byte) []byte { return bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) }

// ParseCSV reads one CSV export. A saved mapping for its exact header row
// wins; otherwise the built-in shape whose columns it has (the one mapping
// most columns, if several) is used. Rows that cannot be imported become
// Problems with their line; an unreadable file is an error.
func ParseCSV(name string, data []byte, saved []SavedShape) (Batch, error) {
	if len(data) > MaxFileBytes {
		return Batch{}, fmt.Errorf("people: %s is larger than %d MiB", name, MaxFileBytes>>20)
	}
	data = stripBOM(data)
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.ReuseRecord = false
	header, err := r.Read()
	if err != nil {
		return Batch{}, fmt.Errorf("people: %s: read header: %w", name, err)
	}
	shape, ok := pickShape(header, saved)
	if !ok {
		return Batch{}, fmt.Errorf("%s: %w", name, ErrUnknownShape)
	}
	return parseRows(name, r, header, shape)
}

func pickShape(header []string, saved []SavedShape) (Shape, bool) {
	key := HeaderKey(header)
	for _, s := range saved {
		if s.HeaderKey == key {
			return s.Shape, true
		}
	}
	var best Shape
	found := false
	for _, s := range BuiltinShapes() {
		if s.matches(header) && (!found || len(s.Columns) > len(best.Columns)) {
			best, found = s, true
		}
	}
	return best, found
}

func parseRows(name string, r *csv.Reader, header []string, shape Shape) (Batch, error) {
	col := map[string]int{}
	for i, h := range header {
		if _, dup := col[normHeader(h)]; !dup {
			col[normHeader(h)] = i
		}
	}
	b := Batch{Source: name, Kinds: []string{shape.Kind}, Fields: map[Kind]map[Field]bool{shape.Kind: {}}}
	fields := make([]Field, 0, len(shape.Columns))
	for f := range shape.Columns {
		fields = append(fields, f)
		b.Fields[shape.Kind][f] = true
	}
	sort.Slice(fields, func(i, j int) bool { return fields[i] < fields[j] })
	for {
		row, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				// A broken quote spoils the rest of the file's framing:
				// stop here rather than guess at the rows after it.
				b.Problems = append(b.Problems, Problem{File: name, Line: pe.StartLine, Reason: "not valid CSV: " + pe.Err.Error()})
				break
			}
			return Batch{}, fmt.Errorf("people: %s: %w", name, err)
		}
		// Only a record read without error has a position.
		line, _ := r.FieldPos(0)
		if len(b.Records)+len(b.Problems) >= MaxRecords {
			return Batch{}, fmt.Errorf("people: %s has more than %d rows", name, MaxRecords)
		}
		if len(row) == 1 && strings.TrimSpace(row[0]) == "" {
			continue
		}
		if len(row) != len(header) {
			b.Problems = append(b.Problems, Problem{File: name, Line: line, Key: strings.TrimSpace(row[0]),
				Reason: fmt.Sprintf("short row: %d fields where the header has %d", len(row), len(header))})
			if len(row) > len(header) {
				b.Problems[len(b.Problems)-1].Reason = fmt.Sprintf("long row: %d fields where the header has %d", len(row), len(header))
			}
			continue
		}
		rec := Record{Line: line, Kind: shape.Kind, Values: make(map[Field]string, len(fields))}
		for _, f := range fields {
			rec.Values[f] = row[col[normHeader(shape.Columns[f])]]
		}
		b.Records = append(b.Records, rec)
	}
	dates := shape.Dates
	if len(dates) == 0 {
		dates = isoThenUK
	}
	b.finish(name, dates)
	return b, nil
}

// ShapeJSON and ParseShapeJSON convert a saved mapping for the store.
func ShapeJSON(s Shape) ([]byte, error) { return json.Marshal(s) }

// ParseShapeJSON reads a mapping saved with ShapeJSON.
func ParseShapeJSON(b []byte) (Shape, error) {
	var s Shape
	if err := json.Unmarshal(b, &s); err != nil {
		return Shape{}, fmt.Errorf("people: saved mapping: %w", err)
	}
	return s, s.Check()
}
