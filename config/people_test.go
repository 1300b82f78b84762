package config

import (
	"strings"
	"testing"
	"time"
)

func TestPeopleSection(t *testing.T) {
	c, err := Parse("/etc/gh/f.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if c.People.Retention != DefaultPeopleRetention || len(c.People.Imports) != 0 {
		t.Fatalf("defaults %+v", c.People)
	}
	c, err = Parse("/etc/gh/f.yaml", []byte(minimal+`people:
  retention: 400d
  max_leavers: 12
  notice_days: 10
  leavers_preview_to: [nm@school.example, it@school.example]
  grace: [{group: Year 13, period: 7d}]
  imports:
    - {name: mis, at: "02:30", files: [pupils.csv, /srv/staff.csv]}
    - {name: dir, at: "03:00", ldap: {url: "ldap://10.5.0.9", base_dn: "dc=x", password_file: pw}}
`))
	if err != nil {
		t.Fatal(err)
	}
	p := c.People
	if p.Retention != 400*24*time.Hour || p.MaxLeavers != 12 || p.NoticeDays != 10 || p.Grace["Year 13"] != 7*24*time.Hour ||
		strings.Join(p.LeaversPreviewTo, " ") != "nm@school.example it@school.example" {
		t.Fatalf("people %+v", p)
	}
	if len(p.Imports) != 2 || p.Imports[0].At != 2*time.Hour+30*time.Minute || p.Imports[0].Files[0] != "/etc/gh/pupils.csv" ||
		p.Imports[1].LDAP.PasswordFile != "/etc/gh/pw" {
		t.Fatalf("imports %+v", p.Imports)
	}
	_, err = Parse("f.yaml", []byte(minimal+`people:
  max_leavers: 0
  leavers_preview_to: [not an address]
  imports:
    - {name: a, at: "25:00", files: [x.csv], oneroster: dir}
    - {name: b, ldap: {url: "http://x"}}
`))
	for _, want := range []string{"people.max_leavers", "people.leavers_preview_to[0]", "people.imports[0].at", "exactly one of", "people.imports[1].ldap.url"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want a problem naming %q in: %v", want, err)
		}
	}
}
