package people_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/people"
	"github.com/gatehouse-net/gatehouse/testbed"
)

// slapdConf is a minimal OpenLDAP server for the sample school: the schemas
// the LDIF needs, one mdb database, a bind DN with a password, and read
// access for it.
const slapdConf = `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile DIR/slapd.pid
database mdb
maxsize 67108864
suffix "dc=bars-academy,dc=sch,dc=uk"
rootdn "cn=gatehouse,dc=bars-academy,dc=sch,dc=uk"
rootpw reader-secret
directory DIR/db
access to * by dn.exact="cn=gatehouse,dc=bars-academy,dc=sch,dc=uk" read by * none
`

// startSlapd runs Debian's slapd in the testbed's management namespace
// (where a school's directory server would sit) loaded with the sample
// school's directory.ldif, and returns its URL.
func startSlapd(t *testing.T, s *testbed.School) string {
	t.Helper()
	for _, tool := range []string{"slapd", "slapadd"} {
		if _, err := exec.LookPath(tool); err != nil {
			if _, err := os.Stat("/usr/sbin/" + tool); err != nil {
				t.Fatalf("the test needs %s (Debian package slapd)", tool)
			}
		}
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(conf, []byte(strings.ReplaceAll(slapdConf, "DIR", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	ldif, err := filepath.Abs("../../shared/mis/directory.ldif")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "/usr/sbin/slapadd", "-f", conf, "-l", ldif).CombinedOutput(); err != nil {
		t.Fatalf("slapadd: %v\n%s", err, out)
	}
	url := "ldap://" + testbed.MgmtClientIP + ":389/"
	srvCtx, stop := context.WithCancel(context.Background())
	cmd := s.Command(srvCtx, "mgmt", "/usr/sbin/slapd", "-f", conf, "-h", url, "-d", "0")
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		stop()
		t.Fatalf("slapd: %v", err)
	}
	t.Cleanup(func() {
		stop()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := s.DialContext(ctx, "router", "tcp", testbed.MgmtClientIP+":389")
		if err == nil {
			c.Close()
			return url
		}
		if time.Now().After(deadline) {
			t.Fatalf("slapd did not listen: %v\n%s", err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type person struct{ Kind, ID, Forename, Surname, Year, Reg, Email, Username string }

func projectBatch(b people.Batch) []person {
	var out []person
	for _, r := range b.Records {
		id := r.Values[people.FUPN]
		if r.Kind == "staff" {
			id = r.Values[people.FStaffCode]
		}
		out = append(out, person{r.Kind, id, r.Values[people.FForename], r.Values[people.FSurname], r.Values[people.FYear],
			r.Values[people.FReg], r.Values[people.FEmail], r.Values[people.FUsername]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// TestLDAPFromARealSlapdGivesTheSamePeopleAsTheCSV reads the directory from
// a real slapd over the testbed's network, paging through it, and compares
// the people with the CSV exports and the OneRoster bundle.
func TestLDAPFromARealSlapdGivesTheSamePeopleAsTheCSV(t *testing.T) {
	s := testbed.New(t, testbed.Options{})
	url := startSlapd(t, s)
	opts := people.LDAPOptions{
		URL: url, BaseDN: "dc=bars-academy,dc=sch,dc=uk",
		BindDN: "cn=gatehouse,dc=bars-academy,dc=sch,dc=uk", Password: "reader-secret",
		PageSize: 50, // 360 people: several pages
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return s.DialContext(ctx, "router", network, addr)
		},
	}
	ctx := context.Background()
	entries, err := people.FetchLDAP(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	b := people.ParseLDAP("ldap", entries, opts)
	if len(b.Problems) != 0 || len(b.Records) != 360 {
		t.Fatalf("LDAP: %d people, problems %v", len(b.Records), b.Problems)
	}
	read := func(n string) []byte {
		d, err := os.ReadFile("../../shared/mis/" + n)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	pupils, err := people.ParseCSV("pupils-sims.csv", read("pupils-sims.csv"), nil)
	if err != nil {
		t.Fatal(err)
	}
	staff, err := people.ParseCSV("staff.csv", read("staff.csv"), nil)
	if err != nil {
		t.Fatal(err)
	}
	fromCSV := projectBatch(people.Merge("csv", pupils, staff))
	fromLDAP := projectBatch(b)
	// staff.csv has no usernames; compare those with OneRoster's.
	bundle, err := people.ReadOneRoster(os.DirFS("../../shared/mis/oneroster"))
	if err != nil {
		t.Fatal(err)
	}
	or, err := people.ParseOneRoster("oneroster", bundle, people.OneRosterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fromOR := projectBatch(or)
	for i := range fromCSV {
		if fromCSV[i].Kind == "staff" {
			fromCSV[i].Username = fromOR[i].Username
		}
	}
	if !reflect.DeepEqual(fromCSV, fromLDAP) {
		for i := range fromCSV {
			if fromCSV[i] != fromLDAP[i] {
				t.Fatalf("first difference: CSV %+v, LDAP %+v", fromCSV[i], fromLDAP[i])
			}
		}
	}
	if !reflect.DeepEqual(fromOR, fromLDAP) {
		t.Fatal("OneRoster and LDAP differ")
	}

	// A wrong password is an error naming the bind, not an empty school.
	bad := opts
	bad.Password = "wrong"
	if _, err := people.FetchLDAP(ctx, bad); err == nil || !strings.Contains(err.Error(), "bind") {
		t.Fatalf("wrong password: %v", err)
	}
}
