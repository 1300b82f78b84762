package people

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// seedFiles adds the sample school's files to a fuzz corpus.
func seedFiles(f *testing.F, names ...string) {
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("../../shared/mis", n))
		if err != nil {
			f.Fatalf("seed %s: %v", n, err)
		}
		f.Add(b)
	}
}

// checkBatch is what every parser promises of a batch it returns.
func checkBatch(t *testing.T, b Batch) {
	t.Helper()
	if len(b.Records) > MaxRecords {
		t.Fatalf("%d records", len(b.Records))
	}
	keys := map[string]bool{}
	for _, r := range b.Records {
		if r.Kind != "pupil" && r.Kind != "staff" {
			t.Fatalf("record kind %q", r.Kind)
		}
		k := r.key()
		if k == "" || keys[k] {
			t.Fatalf("record key %q empty or duplicated", k)
		}
		keys[k] = true
		for f, v := range r.Values {
			if !utf8.ValidString(v) || strings.TrimSpace(v) != v || utf8.RuneCountInString(v) > maxValue {
				t.Fatalf("field %s = %q not clean", f, v)
			}
		}
		if y := r.get(FYear); y != "" {
			if n, ok := normaliseYear(y); !ok || n != y {
				t.Fatalf("year %q not normalised", y)
			}
		}
		for _, f := range []Field{FStarts, FLeaves} {
			if d := r.get(f); d != "" {
				if len(d) != 10 || d[4] != '-' {
					t.Fatalf("%s %q not YYYY-MM-DD", f, d)
				}
			}
		}
	}
	for i, p := range b.Problems {
		if p.Reason == "" || p.Line < 0 {
			t.Fatalf("problem %+v", p)
		}
		if i > 0 && b.Problems[i-1].Line > p.Line {
			t.Fatalf("problems out of line order: %v", b.Problems)
		}
	}
}

func FuzzParseCSV(f *testing.F) {
	seedFiles(f, "pupils-sims.csv", "pupils-arbor.csv", "staff.csv", "pupils-with-errors.csv")
	f.Add([]byte("UPN,Adno,Legal Surname,Legal Forename,Preferred Forename,Year,Reg,Date of Admission,Leaving Date,Username,Email\n\"a\nb\",1,x,y,,Y9,,,,,\n"))
	f.Add([]byte("\xef\xbb\xbfStaff Code,Title,Forename,Surname,Role,Email,Employment Start,Employment End\nA,,\x00,b,,,,\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseCSV("f.csv", data, nil)
		if err != nil {
			return
		}
		checkBatch(t, b)
		b2, _ := ParseCSV("f.csv", data, nil)
		if len(b2.Records) != len(b.Records) || len(b2.Problems) != len(b.Problems) {
			t.Fatal("ParseCSV is not deterministic")
		}
	})
}

func FuzzParseOneRosterUsers(f *testing.F) {
	seedFiles(f, "oneroster/users.csv")
	enrol, err := os.ReadFile("../../shared/mis/oneroster/enrollments.csv")
	if err != nil {
		f.Fatal(err)
	}
	classes, err := os.ReadFile("../../shared/mis/oneroster/classes.csv")
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte("sourcedId,role,userIds,givenName,familyName,identifier,grades\nu1,student,\"{UPN:A1},{x}\",a,b,1,09\n"))
	f.Fuzz(func(t *testing.T, users []byte) {
		b, err := ParseOneRoster("or", OneRosterBundle{"users.csv": users, "enrollments.csv": enrol, "classes.csv": classes}, OneRosterOptions{})
		if err != nil {
			return
		}
		checkBatch(t, b)
	})
}

func FuzzReadLDIF(f *testing.F) {
	seedFiles(f, "directory.ldif")
	f.Add([]byte("version: 1\ndn: uid=a,dc=x\nuid:: YQ==\n cont\nemployeeType: pupil\nemployeeNumber: A1\nsn: b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := ReadLDIF(data)
		if err != nil {
			return
		}
		checkBatch(t, ParseLDAP("ldif", es, LDAPOptions{}))
	})
}

func FuzzParseTermDates(f *testing.F) {
	seedFiles(f, "term-dates-2026-27.csv")
	f.Add([]byte("term,starts,ends\nA,2026-09-03,2026-09-01\nB,03/09/2026,18/12/2026\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		terms, _, err := ParseTermDates(data)
		if err != nil {
			return
		}
		for i, tm := range terms {
			if tm.EndsOn < tm.StartsOn || tm.Name == "" {
				t.Fatalf("term %+v", tm)
			}
			for _, o := range terms[:i] {
				if tm.StartsOn <= o.EndsOn && o.StartsOn <= tm.EndsOn {
					t.Fatalf("terms overlap: %+v %+v", o, tm)
				}
			}
		}
	})
}
