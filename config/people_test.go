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
    - name: dir
      at: "03:00"
      ldap:
        url: "ldap://10.5.0.9"
        base_dn: "dc=x"
        password_file: pw
        starttls: true
        ca_file: ldap-ca.pem
        attributes: {username: sAMAccountName, admission_number: employeeID, kind: extensionAttribute1}
        pupil_values: [Student]
        staff_values: [Employee, Teacher]
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
		p.Imports[1].LDAP.PasswordFile != "/etc/gh/pw" || !p.Imports[1].LDAP.StartTLS || p.Imports[1].LDAP.CAFile != "/etc/gh/ldap-ca.pem" ||
		p.Imports[1].LDAP.Attributes["username"] != "sAMAccountName" || p.Imports[1].LDAP.Attributes["admission_number"] != "employeeID" ||
		p.Imports[1].LDAP.Attributes["kind"] != "extensionAttribute1" || len(p.Imports[1].LDAP.Attributes) != 3 ||
		strings.Join(p.Imports[1].LDAP.PupilValues, ",") != "Student" || strings.Join(p.Imports[1].LDAP.StaffValues, ",") != "Employee,Teacher" {
		t.Fatalf("imports %+v", p.Imports)
	}
	_, err = Parse("f.yaml", []byte(minimal+`people:
  max_leavers: 0
  leavers_preview_to: [not an address]
  imports:
    - {name: a, at: "25:00", files: [x.csv], oneroster: dir}
    - {name: b, ldap: {url: "http://x"}}
    - {name: c, ldap: {url: "ldaps://x", base_dn: "dc=x", starttls: true}}
    - {name: d, ldap: {url: "ldap://x", base_dn: "dc=x", attributes: {upn: "employee Number", shoe_size: x}}}
`))
	for _, want := range []string{"people.max_leavers", "people.leavers_preview_to[0]", "people.imports[0].at", "exactly one of", "people.imports[1].ldap.url",
		"people.imports[2].ldap", "starttls is for ldap://", "people.imports[3].ldap.attributes.upn", "shoe_size"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want a problem naming %q in: %v", want, err)
		}
	}
}
