package people_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
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

// slapdTLS is the TLS part of a directory that requires it: a simple bind
// needs a connection with TLS (ssf 128), by ldaps:// or StartTLS.
const slapdTLS = `TLSCACertificateFile DIR/ca.pem
TLSCertificateFile DIR/server.pem
TLSCertificateKeyFile DIR/server.key
security simple_bind=128
`

// startSlapd runs Debian's slapd in the testbed's management namespace
// (where a school's directory server would sit) loaded with the sample
// school's directory.ldif, and returns its URL.
func startSlapd(t *testing.T, s *testbed.School) string {
	t.Helper()
	url, _ := startSlapdWith(t, s, false)
	return url
}

// startSlapdTLS is startSlapd with TLS required: it listens on ldap://
// (for StartTLS) and ldaps://, with a certificate for its address signed
// by a CA of the test's, whose PEM file it returns.
func startSlapdTLS(t *testing.T, s *testbed.School) (caFile string) {
	t.Helper()
	_, dir := startSlapdWith(t, s, true)
	return filepath.Join(dir, "ca.pem")
}

// writeTestCA writes ca.pem, server.pem and server.key into dir: a CA and
// a server certificate it signed for ip.
func writeTestCA(t *testing.T, dir string, ip net.IP) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Bars Academy test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: ip.String()}, IPAddresses: []net.IP{ip},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string]*pem.Block{"ca.pem": {Type: "CERTIFICATE", Bytes: caDER},
		"server.pem": {Type: "CERTIFICATE", Bytes: der}, "server.key": {Type: "PRIVATE KEY", Bytes: pkcs8}} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func startSlapdWith(t *testing.T, s *testbed.School, withTLS bool) (string, string) {
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
	text := slapdConf
	if withTLS {
		writeTestCA(t, dir, net.ParseIP(testbed.MgmtClientIP))
		text = slapdTLS + text
	}
	if err := os.WriteFile(conf, []byte(strings.ReplaceAll(text, "DIR", dir)), 0o600); err != nil {
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
	listen := url
	if withTLS {
		listen += " ldaps://" + testbed.MgmtClientIP + ":636/"
	}
	srvCtx, stop := context.WithCancel(context.Background())
	cmd := s.Command(srvCtx, "mgmt", "/usr/sbin/slapd", "-f", conf, "-h", listen, "-d", "0")
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
			if !withTLS {
				return url, dir
			}
			if c, err = s.DialContext(ctx, "router", "tcp", testbed.MgmtClientIP+":636"); err == nil {
				c.Close()
				return url, dir
			}
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

// TestLDAPOverStartTLSAndLDAPSWithAConfiguredAttributeMap reads the sample
// school from a real slapd that refuses a simple bind without TLS: over
// ldap:// with StartTLS and over ldaps://, each trusting only the test's
// CA file, and with an attribute map that is not the default (usernames
// from mail, the admission number from uid, the kind from a different
// attribute's values), which the people read must follow.
func TestLDAPOverStartTLSAndLDAPSWithAConfiguredAttributeMap(t *testing.T) {
	s := testbed.New(t, testbed.Options{})
	caFile := startSlapdTLS(t, s)
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no CA in", caFile)
	}
	ip := testbed.MgmtClientIP
	base := people.LDAPOptions{
		BaseDN: "dc=bars-academy,dc=sch,dc=uk",
		BindDN: "cn=gatehouse,dc=bars-academy,dc=sch,dc=uk", Password: "reader-secret",
		TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return s.DialContext(ctx, "router", network, addr)
		},
	}
	ctx := context.Background()
	fetch := func(o people.LDAPOptions) ([]people.LDAPEntry, error) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return people.FetchLDAP(ctx, o)
	}

	// In clear, the directory refuses the bind: TLS is really required.
	plain := base
	plain.URL = "ldap://" + ip + ":389/"
	if _, err := fetch(plain); err == nil || !strings.Contains(err.Error(), "bind") {
		t.Fatalf("a bind without TLS: %v, want it refused", err)
	}
	startTLS := plain
	startTLS.StartTLS = true
	ldaps := base
	ldaps.URL = "ldaps://" + ip + ":636/"
	for name, o := range map[string]people.LDAPOptions{"starttls": startTLS, "ldaps": ldaps} {
		es, err := fetch(o)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if b := people.ParseLDAP(name, es, o); len(b.Records) != 360 || len(b.Problems) != 0 {
			t.Fatalf("%s: %d people, problems %v", name, len(b.Records), b.Problems)
		}
		// Without the CA file the server's certificate is not trusted.
		o.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		if _, err := fetch(o); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("%s without the CA: %v, want a certificate error", name, err)
		}
	}

	// A different attribute map: the username from mail and the admission
	// number from uid; then the kind from departmentNumber, where "Year 9"
	// means a pupil and nothing means staff, so only Year 9 are read.
	mapped := startTLS
	mapped.Attributes = map[people.Field]string{people.FUsername: "mail", people.FAdmissionNo: "uid"}
	es, err := fetch(mapped)
	if err != nil {
		t.Fatal(err)
	}
	b := people.ParseLDAP("mapped", es, mapped)
	if len(b.Records) != 360 {
		t.Fatalf("mapped: %d people", len(b.Records))
	}
	pupils := 0
	for _, r := range b.Records {
		if r.Values[people.FUsername] == "" || !strings.Contains(r.Values[people.FUsername], "@") {
			t.Fatalf("username not from mail: %+v", r.Values)
		}
		if r.Kind == "pupil" {
			pupils++
			if r.Values[people.FAdmissionNo] == "" || strings.Contains(r.Values[people.FAdmissionNo], "@") {
				t.Fatalf("admission number not from uid: %+v", r.Values)
			}
		}
	}
	if pupils == 0 {
		t.Fatal("no pupils")
	}
	kinds := mapped
	kinds.KindAttribute, kinds.PupilValues, kinds.StaffValues = "departmentNumber", []string{"Year 9"}, []string{"nobody"}
	b = people.ParseLDAP("kinds", es, kinds)
	if len(b.Records) == 0 || len(b.Records) >= 360 {
		t.Fatalf("kind from departmentNumber: %d people", len(b.Records))
	}
	for _, r := range b.Records {
		if r.Kind != "pupil" || r.Values[people.FYear] != "Year 9" {
			t.Fatalf("kind map: %+v %+v", r.Kind, r.Values)
		}
	}
	t.Logf("Year 9 by the kind map: %d pupils", len(b.Records))
}
