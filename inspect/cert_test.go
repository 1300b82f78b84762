package inspect

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/inspect/tlshello"
)

// testCert makes a certificate with crypto/x509, the oracle the light
// reader is checked against.
func testCert(t testing.TB, subject, issuer pkix.Name, dns []string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: subject, Issuer: issuer, DNSNames: dns,
		NotBefore: time.Unix(1700000000, 0), NotAfter: time.Unix(1800000000, 0)}
	parent := &x509.Certificate{Subject: issuer}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// checkAgainstX509 compares what the light reader found with crypto/x509.
func checkAgainstX509(t *testing.T, der []byte) {
	var c leafCert
	ok := c.parse(der)
	want, err := x509.ParseCertificate(der)
	if err != nil {
		return // x509 is stricter (keys, times); nothing to compare
	}
	if !ok {
		t.Fatalf("x509 parses the certificate, the light reader does not")
	}
	if got := lastAttr(c.subject, "CN"); got != want.Subject.CommonName {
		t.Errorf("subject CN %q, x509 %q", got, want.Subject.CommonName)
	}
	if got := lastAttr(c.issuer, "CN"); got != want.Issuer.CommonName {
		t.Errorf("issuer CN %q, x509 %q", got, want.Issuer.CommonName)
	}
	if countAttr(c.subject, "O") != len(want.Subject.Organization) || countAttr(c.issuer, "O") != len(want.Issuer.Organization) {
		t.Errorf("organisations %d/%d, x509 %d/%d", countAttr(c.subject, "O"), countAttr(c.issuer, "O"), len(want.Subject.Organization), len(want.Issuer.Organization))
	}
	var names []string
	for _, n := range c.dnsNames {
		names = append(names, string(n))
	}
	if !slices.Equal(names, want.DNSNames) {
		t.Errorf("DNS names %q, x509 %q", names, want.DNSNames)
	}
}

func TestLeafCertReadsWhatX509Reads(t *testing.T) {
	cases := []struct {
		subject, issuer pkix.Name
		dns             []string
	}{
		{pkix.Name{CommonName: "www.fd45bmni.net"}, pkix.Name{CommonName: "www.yngqjhpe2t2u.com"}, nil},
		{pkix.Name{CommonName: "vpn.example.net", Organization: []string{"NordVPN", "Second"}, OrganizationalUnit: []string{"OpenVPN"}},
			pkix.Name{CommonName: "Example CA", Organization: []string{"Example"}, Country: []string{"GB"}}, []string{"vpn.example.net", "*.example.net"}},
		{pkix.Name{}, pkix.Name{CommonName: "ASA Temporary Self Signed Certificate"}, []string{"a.example"}},
	}
	for _, tc := range cases {
		der := testCert(t, tc.subject, tc.issuer, tc.dns)
		checkAgainstX509(t, der)
	}
	var c leafCert
	if !c.parse(testCert(t, cases[1].subject, cases[1].issuer, nil)) {
		t.Fatal("no parse")
	}
	if !nameHas(c.subject, "O=NordVPN") || !nameHas(c.subject, "OU=OpenVPN") || nameHas(c.subject, "O=OpenVPN") || !nameHas(c.issuer, "Example CA") {
		t.Errorf("markers: subject %s issuer %s", nameString(c.subject), nameString(c.issuer))
	}
	for _, bad := range [][]byte{nil, {0x30}, {0x30, 0x03, 0x30, 0x01, 0x00}} {
		if c.parse(bad) {
			t.Errorf("%x parsed as a certificate", bad)
		}
	}
}

// FuzzLeafCert checks the light certificate reader against crypto/x509,
// seeded with the leaf certificates of real server flights from the
// shared captures and with made ones.
func FuzzLeafCert(f *testing.F) {
	var flight tlshello.ServerFlight
	for _, p := range seeds(f, 2000) {
		if _, err := flight.ParseServerFlight(p.Payload, nil); err == nil && flight.LeafCert != nil {
			f.Add(append([]byte(nil), flight.LeafCert...))
		}
	}
	f.Add(testCert(f, pkix.Name{CommonName: "a", Organization: []string{"O"}}, pkix.Name{CommonName: "b"}, []string{"x.example"}))
	f.Fuzz(func(t *testing.T, der []byte) {
		checkAgainstX509(t, der)
	})
}
