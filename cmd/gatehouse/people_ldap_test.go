package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/config"
	"github.com/gatehouse-net/gatehouse/people"
)

// TestLDAPOptionsReadTheCAAndPasswordFiles: the directory's CA file
// becomes the only roots its TLS trusts, the password comes from its file,
// and a CA file with no certificate is an error, not a silent fall back to
// the system's roots.
func TestLDAPOptionsReadTheCAAndPasswordFiles(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "directory CA"}, IsCA: true,
		BasicConstraintsValid: true, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, pw, bad := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "pw"), filepath.Join(dir, "bad.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(pw, []byte("reader-secret\n"), 0o600)
	os.WriteFile(bad, []byte("not a certificate"), 0o600)
	o, err := ldapOptions(&config.PeopleLDAP{URL: "ldaps://dc1.school.example", BaseDN: "dc=x", CAFile: ca, PasswordFile: pw})
	if err != nil {
		t.Fatal(err)
	}
	if o.Password != "reader-secret" || o.TLS == nil || o.TLS.RootCAs == nil {
		t.Fatalf("options %+v", o)
	}
	cert, _ := x509.ParseCertificate(der)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: o.TLS.RootCAs}); err != nil {
		t.Fatalf("the CA file's certificate is not in the pool: %v", err)
	}
	if _, err := ldapOptions(&config.PeopleLDAP{URL: "ldaps://x", BaseDN: "dc=x", CAFile: bad}); err == nil || !strings.Contains(err.Error(), "ca_file") {
		t.Fatalf("a CA file with no certificate: %v", err)
	}
}

func TestLDAPAttributeKeysAllMap(t *testing.T) {
	attrs := map[string]string{}
	for i, k := range config.LDAPAttributeKeys {
		attrs[k] = "attr" + strings.Repeat("x", i)
	}
	o, err := ldapOptions(&config.PeopleLDAP{URL: "ldap://10.5.0.9", BaseDN: "dc=x", StartTLS: true, Attributes: attrs,
		PupilValues: []string{"Student"}, StaffValues: []string{"Employee"}})
	if err != nil {
		t.Fatal(err)
	}
	if o.KindAttribute != attrs["kind"] || !o.StartTLS || o.PupilValues[0] != "Student" || o.StaffValues[0] != "Employee" {
		t.Fatalf("options %+v", o)
	}
	if len(o.Attributes) != len(config.LDAPAttributeKeys)-1 {
		t.Fatalf("%d of %d attribute keys reached a field: %v", len(o.Attributes), len(config.LDAPAttributeKeys)-1, o.Attributes)
	}
	if o.Attributes[people.FAdmissionNo] != attrs["admission_number"] || o.Attributes[people.FUsername] != attrs["username"] {
		t.Fatalf("attributes %v", o.Attributes)
	}
}
