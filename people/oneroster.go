package people

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// OneRosterOptions say how a bundle's conventions map to Gatehouse's; the
// zero value suits Groupcall- and Wonde-style UK exports.
type OneRosterOptions struct {
	// UPNType is the userIds type holding a pupil's UPN ("UPN").
	UPNType string
	// StaffCodeType is the userIds type holding a staff code
	// ("StaffCode"); the user's identifier is used when absent.
	StaffCodeType string
	// Grades maps a grades value to a year group; by default "01".."13"
	// are Year 1..13 and "KG"/"R" Reception.
	Grades map[string]string
}

// OneRosterBundle is the files of a OneRoster 1.1 CSV bundle by name
// ("users.csv", "enrollments.csv", ...).
type OneRosterBundle map[string][]byte

// ReadOneRoster reads a bundle's files from a directory (or a zip's fs).
func ReadOneRoster(fsys fs.FS) (OneRosterBundle, error) {
	b := OneRosterBundle{}
	for _, n := range []string{"manifest.csv", "users.csv", "enrollments.csv", "classes.csv", "orgs.csv", "academicSessions.csv"} {
		data, err := fs.ReadFile(fsys, n)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("people: OneRoster %s: %w", n, err)
		}
		if len(data) > MaxFileBytes {
			return nil, fmt.Errorf("people: OneRoster %s is larger than %d MiB", n, MaxFileBytes>>20)
		}
		b[n] = data
	}
	if _, ok := b["users.csv"]; !ok {
		return nil, errors.New("people: OneRoster bundle has no users.csv")
	}
	return b, nil
}

// csvTable is a CSV file read into rows keyed by column name.
type csvTable struct {
	name string
	rows []map[string]string
	line []int
}

func readTable(name string, data []byte, probs *[]Problem) (csvTable, error) {
	t := csvTable{name: name}
	if data == nil {
		return t, nil
	}
	r := csv.NewReader(bytes.NewReader(stripBOM(data)))
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return t, fmt.Errorf("people: OneRoster %s: read header: %w", name, err)
	}
	for {
		row, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				*probs = append(*probs, Problem{File: name, Line: pe.StartLine, Reason: "not valid CSV: " + pe.Err.Error()})
				break
			}
			return t, fmt.Errorf("people: OneRoster %s: %w", name, err)
		}
		// Only a record read without error has a position.
		line, _ := r.FieldPos(0)
		if len(t.rows) >= MaxRecords*4 {
			return t, fmt.Errorf("people: OneRoster %s has too many rows", name)
		}
		if len(row) != len(header) {
			*probs = append(*probs, Problem{File: name, Line: line, Reason: fmt.Sprintf("%d fields where the header has %d", len(row), len(header))})
			continue
		}
		m := make(map[string]string, len(header))
		for i, h := range header {
			m[strings.TrimSpace(h)] = strings.TrimSpace(row[i])
		}
		t.rows = append(t.rows, m)
		t.line = append(t.line, line)
	}
	return t, nil
}

// userIDs parses OneRoster's "{type:id},{type:id}" list.
func userIDs(s string) map[string]string {
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		part = strings.TrimSuffix(strings.TrimPrefix(part, "{"), "}")
		if k, v, ok := strings.Cut(part, ":"); ok {
			out[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
	}
	return out
}

var staffRoles = map[string]bool{"teacher": true, "aide": true, "administrator": true, "proctor": true}

// ParseOneRoster turns a bundle into a batch: students become pupils (UPN
// from userIds, admission number from identifier, year from grades,
// registration group and dates from their homeroom enrollment), teachers,
// aides, administrators and proctors become staff. OneRoster carries no
// end date for staff, so staff leaving dates are left as they are.
func ParseOneRoster(name string, b OneRosterBundle, opts OneRosterOptions) (Batch, error) {
	if opts.UPNType == "" {
		opts.UPNType = "UPN"
	}
	if opts.StaffCodeType == "" {
		opts.StaffCodeType = "StaffCode"
	}
	var probs []Problem
	if m, ok := b["manifest.csv"]; ok {
		mt, err := readTable("manifest.csv", m, &probs)
		if err != nil {
			return Batch{}, err
		}
		for _, r := range mt.rows {
			if r["propertyName"] == "oneroster.version" && r["value"] != "1.1" {
				return Batch{}, fmt.Errorf("people: %s: OneRoster version %q; this reads 1.1", name, r["value"])
			}
		}
	}
	users, err := readTable("users.csv", b["users.csv"], &probs)
	if err != nil {
		return Batch{}, err
	}
	classes, err := readTable("classes.csv", b["classes.csv"], &probs)
	if err != nil {
		return Batch{}, err
	}
	enrols, err := readTable("enrollments.csv", b["enrollments.csv"], &probs)
	if err != nil {
		return Batch{}, err
	}
	homeroom := map[string]string{} // class sourcedId -> title
	for _, c := range classes.rows {
		if strings.EqualFold(c["classType"], "homeroom") {
			homeroom[c["sourcedId"]] = c["title"]
		}
	}
	type enrol struct{ reg, begin, end string }
	byUser := map[string]enrol{}
	for _, e := range enrols.rows {
		if strings.EqualFold(e["status"], "tobedeleted") || !strings.EqualFold(e["role"], "student") {
			continue
		}
		if t, ok := homeroom[e["classSourcedId"]]; ok {
			byUser[e["userSourcedId"]] = enrol{reg: t, begin: e["beginDate"], end: e["endDate"]}
		}
	}
	out := Batch{Source: name, Kinds: []string{"pupil", "staff"}, Problems: probs, Fields: map[Kind]map[Field]bool{
		"pupil": {FUPN: true, FAdmissionNo: true, FForename: true, FSurname: true, FPreferred: true, FYear: true,
			FReg: true, FStarts: true, FLeaves: true, FUsername: true, FEmail: true},
		"staff": {FStaffCode: true, FForename: true, FSurname: true, FPreferred: true, FUsername: true, FEmail: true},
	}}
	hasEnrolments := b["enrollments.csv"] != nil
	for i, u := range users.rows {
		if strings.EqualFold(u["status"], "tobedeleted") || strings.EqualFold(u["enabledUser"], "false") {
			continue
		}
		if len(out.Records) >= MaxRecords {
			return Batch{}, fmt.Errorf("people: %s has more than %d users", name, MaxRecords)
		}
		ids := userIDs(u["userIds"])
		role := strings.ToLower(u["role"])
		rec := Record{Line: users.line[i], Values: map[Field]string{
			FForename: u["givenName"], FSurname: u["familyName"], FPreferred: u["givenName"],
			FUsername: u["username"], FEmail: u["email"]}}
		switch {
		case role == "student":
			rec.Kind = "pupil"
			rec.Values[FUPN] = ids[strings.ToLower(opts.UPNType)]
			rec.Values[FAdmissionNo] = u["identifier"]
			rec.Values[FYear] = gradeYear(u["grades"], opts.Grades)
			if hasEnrolments {
				e := byUser[u["sourcedId"]]
				rec.Values[FReg], rec.Values[FStarts], rec.Values[FLeaves] = e.reg, e.begin, e.end
			}
		case staffRoles[role]:
			rec.Kind = "staff"
			code := ids[strings.ToLower(opts.StaffCodeType)]
			if code == "" {
				code = u["identifier"]
			}
			rec.Values[FStaffCode] = code
		default:
			continue // parents, guardians, relatives: not Gatehouse's people
		}
		out.Records = append(out.Records, rec)
	}
	if !hasEnrolments {
		delete(out.Fields["pupil"], FReg)
		delete(out.Fields["pupil"], FStarts)
		delete(out.Fields["pupil"], FLeaves)
	}
	// Each record's problems name users.csv.
	out.finish("users.csv", []string{dayLayout})
	return out, nil
}

// gradeYear maps a OneRoster grade to a year group, leaving unknown values
// for the record check to refuse with the value in the reason.
func gradeYear(g string, custom map[string]string) string {
	g = strings.TrimSpace(g)
	if i := strings.IndexByte(g, ','); i >= 0 {
		g = g[:i]
	}
	if y, ok := custom[g]; ok {
		return y
	}
	switch strings.ToUpper(g) {
	case "KG", "R":
		return "Reception"
	case "PK":
		return "Nursery"
	}
	return strings.TrimLeft(g, "0")
}
