package pki

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/gatehouse-net/gatehouse/internal/testkit"
	"github.com/gatehouse-net/gatehouse/store"
)

type bench struct {
	st    *store.Store
	clock *testkit.Clock
	dir   string
	opts  Options
}

func newBench(t *testing.T) *bench {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := &bench{st: st, clock: testkit.NewClock(time.Now().Truncate(time.Second)), dir: dir}
	b.opts = Options{Dir: DirFor(filepath.Join(dir, "gatehouse.db")), ServerName: "radius.school.example", Organization: "Test School",
		Store: st, People: st, Now: b.clock.Now}
	return b
}

func (b *bench) open(t *testing.T) *Authority {
	t.Helper()
	a, err := Open(b.opts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (b *bench) person(t *testing.T, username string) store.Person {
	t.Helper()
	p, err := b.st.CreatePerson(context.Background(), "test", store.Person{Kind: "staff", StaffCode: strings.ToUpper(username),
		LegalForename: "A", LegalSurname: username, Username: username}, b.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenMakesCAAndServerCertificateAndKeepsThem(t *testing.T) {
	b := newBench(t)
	a := b.open(t)
	if a.Realm() != "school.example" {
		t.Fatalf("realm %q", a.Realm())
	}
	ca, leaf := a.CA(), a.ServerLeaf()
	if !ca.IsCA || ca.PublicKeyAlgorithm != x509.ECDSA || a.TrustAnchor() != ca || a.SchoolOwnServerCert() {
		t.Fatalf("CA %+v", ca.Subject)
	}
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "radius.school.example" || len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Fatalf("server SAN %v EKU %v", leaf.DNSNames, leaf.ExtKeyUsage)
	}
	if leaf.NotAfter.Sub(leaf.NotBefore) > 825*24*time.Hour {
		t.Fatalf("server validity %v is longer than Apple accepts", leaf.NotAfter.Sub(leaf.NotBefore))
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "radius.school.example", CurrentTime: b.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	tc := a.ServerCertificate()
	if len(tc.Certificate) != 2 || tc.PrivateKey == nil {
		t.Fatalf("tls certificate chain %d", len(tc.Certificate))
	}
	if tc := a.TLSConfig(); tc.GetCertificate == nil || !tc.ClientCAs.Equal(pool) || tc.MinVersion != tls.VersionTLS12 {
		t.Fatal("TLS config")
	}
	if !a.ClientCAs().Equal(pool) {
		t.Fatal("client CA pool is not the school CA")
	}
	for _, f := range []string{caKeyFile, serverKeyFile} {
		st, err := os.Stat(filepath.Join(b.opts.Dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, st.Mode(), err)
		}
	}
	if st, _ := os.Stat(b.opts.Dir); st.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v", st.Mode())
	}

	var made []string
	for _, e := range mustAudit(t, b.st) {
		made = append(made, e.Action+" "+e.Actor)
	}
	if strings.Join(made, ",") != "pki.ca.create pki,pki.server.issue pki" {
		t.Fatalf("audit %v", made)
	}

	// A restart keeps both.
	a2 := b.open(t)
	if !a2.CA().Equal(ca) || !a2.ServerLeaf().Equal(leaf) {
		t.Fatal("restart made new certificates")
	}

	// Near expiry, the server certificate is renewed at start; the CA stays.
	b.clock.Set(leaf.NotAfter.Add(-DefaultRenewBefore + time.Hour))
	a3 := b.open(t)
	if !a3.CA().Equal(ca) || a3.ServerLeaf().Equal(leaf) || !a3.ServerLeaf().NotAfter.After(leaf.NotAfter) {
		t.Fatal("due server certificate was not renewed")
	}

	// A new name gets a new certificate.
	b.opts.ServerName = "wifi.school.example"
	a4 := b.open(t)
	if a4.ServerLeaf().DNSNames[0] != "wifi.school.example" {
		t.Fatalf("renamed: %v", a4.ServerLeaf().DNSNames)
	}

	// A key file others can read is refused.
	if err := os.Chmod(filepath.Join(b.opts.Dir, caKeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(b.opts); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Fatalf("world-readable CA key: %v", err)
	}
}

// schoolPKI writes a school's own CA and server pair as a school would get
// them, signed for name and valid from nb to na.
func schoolPKI(t *testing.T, dir, name string, nb, na time.Time) (certFile, keyFile, caFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caT := &x509.Certificate{SerialNumber: randomSerial(), Subject: pkix.Name{CommonName: "School Root"}, NotBefore: nb.Add(-time.Hour),
		NotAfter: na.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caT, caT, caKey.Public(), caKey)
	ca, _ := x509.ParseCertificate(caDER)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	lt := &x509.Certificate{SerialNumber: randomSerial(), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: nb, NotAfter: na, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, lt, ca, k.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := writePair(dir, "school.pem", "school-key.pem", k, leaf); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(filepath.Join(dir, "school-ca.pem"), certPEM(ca), 0o644); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "school.pem"), filepath.Join(dir, "school-key.pem"), filepath.Join(dir, "school-ca.pem")
}

func TestSchoolOwnServerFilesAreCheckedAtLoad(t *testing.T) {
	b := newBench(t)
	now := b.clock.Now()
	good := filepath.Join(b.dir, "good")
	cf, kf, caf := schoolPKI(t, good, "radius.school.example", now.Add(-time.Hour), now.AddDate(1, 0, 0))
	b.opts.CertFile, b.opts.KeyFile, b.opts.CAFile = cf, kf, caf
	a := b.open(t)
	if !a.SchoolOwnServerCert() || a.TrustAnchor().Subject.CommonName != "School Root" || a.CA().Equal(a.TrustAnchor()) {
		t.Fatalf("school files: anchor %v", a.TrustAnchor().Subject)
	}
	if a.ServerCertificate().Leaf.Subject.CommonName != "radius.school.example" {
		t.Fatal("school certificate not used")
	}

	cases := []struct {
		name string
		mod  func()
		want string
	}{
		{"expired", func() {
			b.opts.CertFile, b.opts.KeyFile, b.opts.CAFile = schoolPKI(t, filepath.Join(b.dir, "old"), "radius.school.example", now.AddDate(-2, 0, 0), now.Add(-time.Hour))
		}, "expired"},
		{"not yet valid", func() {
			b.opts.CertFile, b.opts.KeyFile, b.opts.CAFile = schoolPKI(t, filepath.Join(b.dir, "new"), "radius.school.example", now.Add(48*time.Hour), now.AddDate(1, 0, 0))
		}, "not valid until"},
		{"name mismatch", func() {
			b.opts.CertFile, b.opts.KeyFile, b.opts.CAFile = schoolPKI(t, filepath.Join(b.dir, "other"), "www.school.example", now.Add(-time.Hour), now.AddDate(1, 0, 0))
		}, "name mismatch"},
		{"key mismatch", func() {
			_, okf, _ := schoolPKI(t, filepath.Join(b.dir, "k2"), "radius.school.example", now.Add(-time.Hour), now.AddDate(1, 0, 0))
			b.opts.CertFile, b.opts.KeyFile, b.opts.CAFile = cf, okf, caf
		}, "key mismatch"},
		{"wrong CA", func() {
			_, _, oca := schoolPKI(t, filepath.Join(b.dir, "ca2"), "radius.school.example", now.Add(-time.Hour), now.AddDate(1, 0, 0))
			b.opts.CertFile, b.opts.KeyFile, b.opts.CAFile = cf, kf, oca
		}, "does not verify against the CA file"},
		{"partial", func() { b.opts.CertFile, b.opts.KeyFile, b.opts.CAFile = cf, kf, "" }, "all of cert_file, key_file and ca_file"},
		{"missing", func() { b.opts.CertFile, b.opts.KeyFile, b.opts.CAFile = cf+".nope", kf, caf }, "cert_file"},
	}
	for _, c := range cases {
		c.mod()
		_, err := Open(b.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error saying %q", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Errorf("%s: error quotes the key: %v", c.name, err)
		}
	}
}

func TestClientCertificatesIssueVerifyRevoke(t *testing.T) {
	b := newBench(t)
	a := b.open(t)
	ctx := context.Background()
	p := b.person(t, "ALovelace")

	iss, err := a.IssuePerson(ctx, "web:nm", p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if iss.Cert.Identity != "alovelace@school.example" || iss.FileName != "alovelace.p12" || len(iss.Password) < 20 {
		t.Fatalf("%+v", iss.Cert)
	}
	key, cert, chain, err := pkcs12.DecodeChain(iss.PKCS12, iss.Password)
	if err != nil {
		t.Fatal(err)
	}
	if key == nil || len(chain) != 1 || !chain[0].Equal(a.CA()) {
		t.Fatal("PKCS#12 lacks the key or the CA")
	}
	if _, _, _, err := pkcs12.DecodeChain(iss.PKCS12, "wrong"); err == nil {
		t.Fatal("wrong password decoded")
	}
	if cert.EmailAddresses[0] != "alovelace@school.example" || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Fatalf("SAN %v EKU %v", cert.EmailAddresses, cert.ExtKeyUsage)
	}
	got, err := a.VerifyClientCert(ctx, cert)
	if err != nil || got.Identity != "alovelace@school.example" || got.PersonID != p.ID || got.Kind != store.CertPerson {
		t.Fatalf("%+v %v", got, err)
	}

	if login, err := a.VerifyLogin(ctx, cert); err != nil || login != "ALovelace" {
		t.Fatalf("login name %q %v", login, err)
	}

	dev, err := a.IssueDevice(ctx, "web:nm", "Library-Printer.school.example.")
	if err != nil {
		t.Fatal(err)
	}
	_, dcert, _, err := pkcs12.DecodeChain(dev.PKCS12, dev.Password)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := a.VerifyClient(ctx, dcert); err != nil || id != "library-printer.school.example" {
		t.Fatalf("device: %q %v", id, err)
	}
	if _, err := a.IssueDevice(ctx, "web:nm", "bad name!"); err == nil {
		t.Fatal("bad device name accepted")
	}

	// Identity falls back to the CN when there is no SAN.
	if id := Identity(&x509.Certificate{Subject: pkix.Name{CommonName: "kiosk-3"}}); id != "kiosk-3" {
		t.Fatalf("CN identity %q", id)
	}

	// Revoked: by serial, and a person's all at once (the leaver hook).
	if _, err := a.Revoke(ctx, "web:nm", "00"+strings.ToUpper(dev.Cert.Serial), "stolen"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.VerifyClient(ctx, dcert); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked device: %v", err)
	}
	if err := (PersonCertificates{Store: b.st, Actor: "people"}).DisablePerson(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.VerifyClient(ctx, cert); !errors.Is(err, ErrRevoked) {
		t.Fatalf("leaver: %v", err)
	}
	if _, err := a.VerifyLogin(ctx, cert); !errors.Is(err, ErrRevoked) {
		t.Fatalf("leaver's login: %v", err)
	}

	// Expired: the clock runs past the end.
	fresh, err := a.IssueDevice(ctx, "web:nm", "laptop-7")
	if err != nil {
		t.Fatal(err)
	}
	_, fcert, _, _ := pkcs12.DecodeChain(fresh.PKCS12, fresh.Password)
	if _, err := a.VerifyClient(ctx, fcert); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(DefaultClientValidity + time.Hour)
	if _, err := a.VerifyClient(ctx, fcert); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired: %v", err)
	}
}

func TestVerifyClientRefusesOtherCAsAndUnrecordedCertificates(t *testing.T) {
	b := newBench(t)
	a := b.open(t)
	ctx := context.Background()

	// Another Gatehouse's CA (another school) issues a certificate.
	other := newBench(t)
	oa := other.open(t)
	iss, err := oa.IssueDevice(ctx, "web:x", "laptop-1")
	if err != nil {
		t.Fatal(err)
	}
	_, c, _, _ := pkcs12.DecodeChain(iss.PKCS12, iss.Password)
	if _, err := a.VerifyClient(ctx, c); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("other CA: %v", err)
	}

	// Signed by our CA but never recorded (a restored older database).
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := b.clock.Now()
	forged, err := a.sign(&x509.Certificate{SerialNumber: randomSerial(), Subject: pkix.Name{CommonName: "x"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, k.Public())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.VerifyClient(ctx, forged); !errors.Is(err, ErrUnknown) {
		t.Fatalf("unrecorded: %v", err)
	}

	// The server certificate is not a client certificate.
	if _, err := a.VerifyClient(ctx, a.ServerLeaf()); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("server certificate as client: %v", err)
	}

	// A person without access or without a username gets none.
	p := b.person(t, "gone")
	if _, err := b.st.RevokePerson(ctx, "test", p.ID, "left", now); err != nil {
		t.Fatal(err)
	}
	if _, err := a.IssuePerson(ctx, "web:nm", p.ID); !errors.Is(err, ErrNoPerson) {
		t.Fatalf("revoked person: %v", err)
	}
}

// TestPKCS12ReadsBackWithOpenSSL proves the download imports where the
// school's machines import it: OpenSSL 3 (no legacy provider) reads it
// with the password, refuses a wrong one, and names the modern algorithms.
func TestPKCS12ReadsBackWithOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	b := newBench(t)
	a := b.open(t)
	iss, err := a.IssueDevice(context.Background(), "web:nm", "laptop-9")
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), iss.FileName)
	if err := os.WriteFile(f, iss.PKCS12, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("openssl", "pkcs12", "-info", "-in", f, "-passin", "pass:"+iss.Password, "-noenc").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	s := string(out)
	for _, want := range []string{"MAC: sha256", "PBES2, PBKDF2, AES-256-CBC", "BEGIN PRIVATE KEY", "CN = laptop-9", "Wi-Fi CA"} {
		if !strings.Contains(s, want) {
			t.Errorf("openssl output lacks %q:\n%s", want, s)
		}
	}
	if out, err := exec.Command("openssl", "pkcs12", "-info", "-in", f, "-passin", "pass:wrong", "-noenc").CombinedOutput(); err == nil {
		t.Fatalf("openssl accepted a wrong password:\n%s", out)
	}
}

// TestRunningAuthorityRenewsTheServerCertificateInPlace: the engine's TLS
// configuration serves the new certificate after a renewal without being
// rebuilt; the school's own files are never replaced.
func TestRunningAuthorityRenewsTheServerCertificateInPlace(t *testing.T) {
	b := newBench(t)
	a := b.open(t)
	tc := a.TLSConfig()
	old := a.ServerLeaf()
	if renewed, err := a.RenewIfDue(); err != nil || renewed {
		t.Fatalf("fresh certificate renewed: %v %v", renewed, err)
	}
	b.clock.Set(old.NotAfter.Add(-DefaultRenewBefore + time.Minute))
	if renewed, err := a.RenewIfDue(); err != nil || !renewed {
		t.Fatalf("due certificate not renewed: %v %v", renewed, err)
	}
	got, err := tc.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil || got.Leaf.Equal(old) || !got.Leaf.Equal(a.ServerLeaf()) || !got.Leaf.NotAfter.After(old.NotAfter) {
		t.Fatal("the TLS configuration still serves the old certificate")
	}
	// The file on disk is the new one: a restart keeps it.
	if !b.open(t).ServerLeaf().Equal(got.Leaf) {
		t.Fatal("the renewed certificate was not written")
	}

	now := b.clock.Now()
	cf, kf, caf := schoolPKI(t, filepath.Join(b.dir, "own"), "radius.school.example", now.Add(-time.Hour), now.Add(24*time.Hour))
	b.opts.CertFile, b.opts.KeyFile, b.opts.CAFile = cf, kf, caf
	s := b.open(t)
	if renewed, err := s.RenewIfDue(); err != nil || renewed || s.ServerLeaf().Subject.CommonName != "radius.school.example" || !s.SchoolOwnServerCert() {
		t.Fatalf("school's own certificate replaced: %v %v", renewed, err)
	}
}

func mustAudit(t *testing.T, st *store.Store) []store.AuditEntry {
	t.Helper()
	log, err := st.AuditList(context.Background(), 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(log) // oldest first
	return log
}

// TestSchoolChainWithAnIntermediate: a school CA file holding an
// intermediate and its root, and a certificate file with only the leaf:
// the server sends the leaf and the intermediate, and onboarding pins the
// root.
func TestSchoolChainWithAnIntermediate(t *testing.T) {
	b := newBench(t)
	now := b.clock.Now()
	mk := func(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if parent == nil {
			parent, parentKey = tmpl, k
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, k.Public(), parentKey)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c, k
	}
	root, rootKey := mk(&x509.Certificate{SerialNumber: randomSerial(), Subject: pkix.Name{CommonName: "Trust Root"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.AddDate(5, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil, nil)
	inter, interKey := mk(&x509.Certificate{SerialNumber: randomSerial(), Subject: pkix.Name{CommonName: "Trust Issuing"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.AddDate(5, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, root, rootKey)
	leaf, leafKey := mk(&x509.Certificate{SerialNumber: randomSerial(), Subject: pkix.Name{CommonName: "radius.school.example"},
		DNSNames: []string{"radius.school.example"}, NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, inter, interKey)
	dir := filepath.Join(b.dir, "chain")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := writePair(dir, "leaf.pem", "leaf-key.pem", leafKey, leaf); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(filepath.Join(dir, "ca.pem"), certPEM(inter, root), 0o644); err != nil {
		t.Fatal(err)
	}
	b.opts.CertFile, b.opts.KeyFile, b.opts.CAFile = filepath.Join(dir, "leaf.pem"), filepath.Join(dir, "leaf-key.pem"), filepath.Join(dir, "ca.pem")
	a := b.open(t)
	sent := a.ServerCertificate().Certificate
	if len(sent) != 2 || !bytes.Equal(sent[1], inter.Raw) || !a.TrustAnchor().Equal(root) {
		t.Fatalf("sent %d certificates; anchor %s", len(sent), a.TrustAnchor().Subject.CommonName)
	}
	// A supplicant that trusts only the root connects (as for PEAP).
	if _, err := handshake(t, a, tls.VersionTLS13, root, "radius.school.example", nil); err != nil {
		t.Fatalf("the supplicant could not build the path to the root: %v", err)
	}
}
