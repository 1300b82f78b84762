package radius

// WPA-Enterprise end to end: eapol_test (Debian eapoltest, wpa_supplicant's
// EAP peer with a RADIUS client) in the testbed's management namespace logs
// in through the server in the router namespace, by each method over TLS 1.2
// and TLS 1.3. eapol_test compares the MPPE keys it derives with the ones in
// the Access-Accept (we never pass -n), so a wrong key label or a wrong
// MS-MPPE encryption fails the login.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/internal/testkit"

	"github.com/gatehouse-net/gatehouse/password"
	"github.com/gatehouse-net/gatehouse/radius/eap"
	"github.com/gatehouse-net/gatehouse/radius/mschapv2"
	"github.com/gatehouse-net/gatehouse/testbed"
)

const (
	eapServerName = "radius.school.example"
	amyPassword   = "correct horse battery"
	// amyNewPassword is amy's password after a reset.
	amyNewPassword = "staple battery horse"
)

// testPKI is a CA, a server certificate and client certificates, in PEM
// files for eapol_test and parsed for the server.
type testPKI struct {
	dir     string
	ca      *x509.Certificate
	caKey   *ecdsa.PrivateKey
	pool    *x509.CertPool
	server  tls.Certificate
	serials map[string]*big.Int // client name -> serial
}

func newTestPKI(t *testing.T, dir string) *testPKI {
	t.Helper()
	p := &testPKI{dir: dir, serials: map[string]*big.Int{}}
	var err error
	p.caKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test School CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.ca, _ = x509.ParseCertificate(der)
	p.pool = x509.NewCertPool()
	p.pool.AddCert(p.ca)
	p.write(t, "ca.pem", "CERTIFICATE", der)
	p.server = p.issue(t, "server", 2, func(c *x509.Certificate) {
		c.Subject.CommonName = eapServerName
		c.DNSNames = []string{eapServerName}
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	})
	return p
}

func (p *testPKI) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	f := filepath.Join(p.dir, name)
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// issue makes a certificate and key, written as NAME.pem and NAME.key.
func (p *testPKI) issue(t *testing.T, name string, serial int64, mod func(*x509.Certificate)) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature}
	mod(tmpl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p.write(t, name+".pem", "CERTIFICATE", der)
	p.write(t, name+".key", "PRIVATE KEY", kder)
	p.serials[name] = big.NewInt(serial)
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func (p *testPKI) client(t *testing.T, name, email string, serial int64) {
	t.Helper()
	p.issue(t, name, serial, func(c *x509.Certificate) {
		c.Subject.CommonName = name
		c.EmailAddresses = []string{email}
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	})
}

// revokedSerials is a deny-list, as the caller of VerifyClient keeps one.
type revokedSerials struct {
	mu sync.Mutex
	m  map[string]bool
}

func (r *revokedSerials) verify(_ context.Context, c *x509.Certificate) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m[c.SerialNumber.String()] {
		return "", errors.New("revoked")
	}
	return "", nil
}

type eapRig struct {
	*e2eRig
	pki       *testPKI
	revoked   *revokedSerials
	directory *revocable          // the server's Identities
	logs      *testkit.SyncBuffer // the server's log, written from its goroutines
}

func newEAPE2E(t *testing.T, mod func(*eap.Options)) *eapRig {
	t.Helper()
	for _, tool := range []string{"eapol_test"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (Debian eapoltest; build/deps installs it)", tool)
		}
	}
	school := testbed.New(t, testbed.Options{})
	e := &eapRig{e2eRig: &e2eRig{school: school, dir: t.TempDir()}, revoked: &revokedSerials{m: map[string]bool{}}, logs: &testkit.SyncBuffer{}}
	e.pki = newTestPKI(t, e.dir)
	e.pki.client(t, "amy", "amy@school.example", 100)
	e.pki.client(t, "revoked", "amy@school.example", 101)
	e.revoked.m["101"] = true
	e.rig = newRigWith(t, func(o *Options) {
		o.AuthAddr, o.AcctAddr = e2eAuth, e2eAcct
		o.Clients = []Client{{Name: "aps", Prefix: netip.MustParsePrefix(testbed.MgmtNet), Secret: []byte(e2eSecret), RequireMessageAuthenticator: true}}
		o.RejectDelay = -1
		o.Logger = slog.New(slog.NewTextHandler(e.logs, nil))
		e.directory = &revocable{Identities: o.Identities, after: -1}
		o.Identities = e.directory
		eo := &eap.Options{
			TLS:          &tls.Config{Certificates: []tls.Certificate{e.pki.server}, ClientCAs: e.pki.pool},
			VerifyClient: e.revoked.verify,
			// As people.Service.NTHash: nobody for a leaver.
			NTHash: func(_ context.Context, user string) ([16]byte, bool, error) {
				id, ok := e.ids.get(user)
				if !ok || !id.Active {
					return [16]byte{}, false, nil
				}
				if user == "amy" && e.directory.changed() {
					return mschapv2.NTPasswordHash(amyNewPassword), true, nil
				}
				return mschapv2.NTPasswordHash(amyPassword), true, nil
			},
		}
		if mod != nil {
			mod(eo)
		}
		o.EAP = eo
	}, func(srv *Server) error {
		return school.Do("router", srv.Listen)
	})
	hash, err := password.Hash(amyPassword)
	if err != nil {
		t.Fatal(err)
	}
	amy := Identity{Person: "T042", PasswordHash: hash, Active: true, Segment: "staff"}
	e.ids.set("amy", amy)
	e.ids.set("amy@school.example", amy)
	e.ids.set("leo", Identity{Person: "P0999", PasswordHash: hash, Active: false, Segment: "staff"})
	return e
}

// eapolTest runs eapol_test with a network block and returns whether it
// succeeded, and its output.
func (e *eapRig) eapolTest(t *testing.T, name, network string, extra ...string) (bool, string) {
	t.Helper()
	conf := filepath.Join(e.dir, name+".conf")
	body := "network={\n\tkey_mgmt=WPA-EAP\n" + network + "}\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{"-c", conf, "-a", testbed.MgmtRouterIP, "-p", "1812", "-s", e2eSecret, "-t", "40",
		"-M", "02:00:00:00:00:42", "-N", "30:s:0A-00-00-00-00-01:Staff"}, extra...)
	out, err := e.school.Command(ctx, "mgmt", "eapol_test", args...).CombinedOutput()
	return err == nil && strings.Contains(string(out), "SUCCESS"), string(out)
}

// tlsPhase1 pins the TLS version: wpa_supplicant 2.10 leaves TLS 1.3 off
// for PEAP and TTLS unless told.
func tlsPhase1(v string) string {
	if v == "1.3" {
		return "tls_disable_tlsv1_0=1 tls_disable_tlsv1_1=1 tls_disable_tlsv1_2=1 tls_disable_tlsv1_3=0"
	}
	return "tls_disable_tlsv1_0=1 tls_disable_tlsv1_1=1 tls_disable_tlsv1_3=1"
}

func (e *eapRig) network(method, version, user, pw string, extra ...string) string {
	ca := filepath.Join(e.dir, "ca.pem")
	var b strings.Builder
	fmt.Fprintf(&b, "\tca_cert=%q\n\tdomain_suffix_match=%q\n", ca, eapServerName)
	switch method {
	case "TLS":
		fmt.Fprintf(&b, "\teap=TLS\n\tidentity=%q\n\tclient_cert=%q\n\tprivate_key=%q\n", user,
			filepath.Join(e.dir, pw+".pem"), filepath.Join(e.dir, pw+".key"))
	case "TTLS-PAP", "TTLS-MSCHAPV2":
		fmt.Fprintf(&b, "\teap=TTLS\n\tanonymous_identity=\"anonymous@school.example\"\n\tidentity=%q\n\tpassword=%q\n\tphase2=\"auth=%s\"\n",
			user, pw, strings.TrimPrefix(method, "TTLS-"))
	case "PEAP":
		fmt.Fprintf(&b, "\teap=PEAP\n\tanonymous_identity=\"anonymous@school.example\"\n\tidentity=%q\n\tpassword=%q\n\tphase2=\"auth=MSCHAPV2\"\n", user, pw)
	}
	phase1 := tlsPhase1(version)
	if method == "PEAP" {
		// Require the crypto binding TLV (and its compound MSK).
		phase1 += " crypto_binding=2"
	}
	fmt.Fprintf(&b, "\tphase1=%q\n", phase1)
	for _, x := range extra {
		b.WriteString("\t" + x + "\n")
	}
	return b.String()
}

// tlsVersionUsed finds the version wpa_supplicant's OpenSSL negotiated.
func tlsVersionUsed(out string) string {
	switch {
	case strings.Contains(out, "Using TLS version TLSv1.3"):
		return "1.3"
	case strings.Contains(out, "Using TLS version TLSv1.2"):
		return "1.2"
	}
	return "?"
}

func TestEapolTestMethodsOverTLS12And13(t *testing.T) {
	e := newEAPE2E(t, nil)
	methods := []struct{ method, user, secret string }{
		{"PEAP", "amy", amyPassword},
		{"TTLS-PAP", "amy", amyPassword},
		{"TTLS-MSCHAPV2", "amy", amyPassword},
		{"TLS", "amy@school.example", "amy"},
	}
	for _, m := range methods {
		for _, v := range []string{"1.2", "1.3"} {
			t.Run(m.method+"/TLS"+v, func(t *testing.T) {
				ok, out := e.eapolTest(t, "ok", e.network(m.method, v, m.user, m.secret))
				if !ok {
					t.Fatalf("eapol_test failed:\n%s", tail(out, 80))
				}
				if !strings.Contains(out, "MPPE keys OK: 1  mismatch: 0") {
					t.Fatalf("MPPE keys not checked or wrong:\n%s", tail(out, 40))
				}
				// EAP_DUMP=DIR keeps each output: radius/eap's fuzz seeds
				// (testdata/eapol_test-*.hex) are its EAP-Message dumps.
				if d := os.Getenv("EAP_DUMP"); d != "" {
					os.WriteFile(filepath.Join(d, strings.ReplaceAll(m.method+v, "/", "_")+".txt"), []byte(out), 0o644)
				}
				if got := tlsVersionUsed(out); got != v {
					t.Fatalf("negotiated TLS %s, wanted %s", got, v)
				}
			})
		}
	}
	t.Run("wrong password fails", func(t *testing.T) {
		for _, m := range []string{"PEAP", "TTLS-PAP", "TTLS-MSCHAPV2"} {
			if ok, out := e.eapolTest(t, "bad", e.network(m, "1.2", "amy", "not it")); ok || !strings.Contains(out, "CTRL-EVENT-EAP-FAILURE") {
				t.Fatalf("%s wrong password:\n%s", m, tail(out, 40))
			}
		}
	})
	t.Run("a leaver fails", func(t *testing.T) {
		for _, m := range []string{"PEAP", "TTLS-PAP", "TTLS-MSCHAPV2"} {
			if ok, out := e.eapolTest(t, "leaver", e.network(m, "1.3", "leo", amyPassword)); ok {
				t.Fatalf("%s leaver:\n%s", m, tail(out, 40))
			}
		}
		// Each rejection says why, and no log line ever holds a password.
		logs := e.logs.String()
		// (PAP says the person left; MSCHAPv2 finds no NT hash for a
		// leaver, as people.Service.NTHash answers.)
		if !strings.Contains(logs, "PAP: the person is not active") || !strings.Contains(logs, "MSCHAPv2: no Wi-Fi password for") {
			t.Fatalf("the leaver's rejections are not logged with a reason:\n%s", grepLines(logs, "Access-Reject"))
		}
		if strings.Contains(logs, amyPassword) || strings.Contains(logs, "not it") {
			t.Fatal("a password reached the log")
		}
	})
	t.Run("a certificate the callback refuses fails", func(t *testing.T) {
		for _, v := range []string{"1.2", "1.3"} {
			if ok, out := e.eapolTest(t, "revoked", e.network("TLS", v, "amy@school.example", "revoked")); ok {
				t.Fatalf("revoked certificate over TLS %s:\n%s", v, tail(out, 40))
			}
		}
	})
	t.Run("a wrong server domain fails", func(t *testing.T) {
		nw := strings.Replace(e.network("TTLS-PAP", "1.2", "amy", amyPassword), eapServerName, "radius.other.example", 1)
		if ok, out := e.eapolTest(t, "domain", nw); ok || !strings.Contains(out, "Domain suffix mismatch") {
			t.Fatalf("wrong domain:\n%s", tail(out, 40))
		}
	})
}

func tail(s string, n int) string {
	l := strings.Split(s, "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// e2eMethods are the methods the end-to-end tests log in by, with the
// login that works for each.
var e2eMethods = []struct{ name, method, user, secret string }{
	{eap.MethodPEAP, "PEAP", "amy", amyPassword},
	{eap.MethodTTLS, "TTLS-PAP", "amy", amyPassword},
	{eap.MethodTLS, "TLS", "amy@school.example", "amy"},
}

// Every enabled method NAKs to every other: the server offers one first
// and the supplicant, configured for another, asks for that instead.
func TestEapolTestNAKFromEveryMethodToEveryOther(t *testing.T) {
	for _, first := range e2eMethods {
		t.Run("offering "+first.name, func(t *testing.T) {
			order := []string{first.name}
			for _, m := range e2eMethods {
				if m.name != first.name {
					order = append(order, m.name)
				}
			}
			e := newEAPE2E(t, func(o *eap.Options) { o.Methods = order })
			for _, m := range e2eMethods {
				if m.name == first.name {
					continue
				}
				ok, out := e.eapolTest(t, "nak", e.network(m.method, "1.3", m.user, m.secret))
				if !ok || !strings.Contains(out, "-> NAK") || !strings.Contains(out, "MPPE keys OK: 1  mismatch: 0") {
					t.Fatalf("%s after a NAK from %s:\n%s", m.method, first.name, tail(out, 60))
				}
			}
			// Asking only for a method that is not offered fails.
			ok, out := e.eapolTest(t, "md5", "\teap=MD5\n\tidentity=\"amy\"\n\tpassword=\"x\"\n")
			if ok || !strings.Contains(out, "CTRL-EVENT-EAP-FAILURE") {
				t.Fatalf("NAK to MD5:\n%s", tail(out, 40))
			}
		})
	}
}

// 32 logins at once, every method and both TLS versions, each from its own
// device: all succeed with their keys.
func TestEapolTest32Parallel(t *testing.T) {
	e := newEAPE2E(t, nil)
	const n = 32
	var wg sync.WaitGroup
	errs := make(chan string, n)
	all := append(e2eMethods, struct{ name, method, user, secret string }{eap.MethodTTLS, "TTLS-MSCHAPV2", "amy", amyPassword})
	for i := range n {
		m := all[i%len(all)]
		v := []string{"1.2", "1.3"}[(i/len(all))%2]
		conf := filepath.Join(e.dir, fmt.Sprintf("par%d.conf", i))
		if err := os.WriteFile(conf, []byte("network={\n\tkey_mgmt=WPA-EAP\n"+e.network(m.method, v, m.user, m.secret)+"}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
			defer cancel()
			out, err := e.school.Command(ctx, "mgmt", "eapol_test", "-c", conf, "-a", testbed.MgmtRouterIP, "-p", "1812", "-s", e2eSecret,
				"-t", "120", "-M", fmt.Sprintf("02:00:00:00:10:%02x", i), "-N", "30:s:0A-00-00-00-00-01:Staff").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "SUCCESS") || !strings.Contains(string(out), "MPPE keys OK: 1  mismatch: 0") {
				errs <- fmt.Sprintf("login %d (%s over TLS %s): %v\n%s", i, m.method, v, err, tail(string(out), 30))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
	if n := e.srv.eap.InProgress(); n > 32 {
		t.Errorf("%d logins still in the table", n)
	}
}

// EAP-TLS resumes its TLS session on re-authentication (eapol_test -r 1)
// over TLS 1.3, by session ticket (crypto/tls checks the certificate again
// through VerifyConnection, so VerifyClient still decides). Over TLS 1.2
// wpa_supplicant offers only session-ID resumption unless its phase1 says
// tls_disable_session_ticket=0, and crypto/tls serves tickets only: those
// logins run in full. PEAP and TTLS: TestEapolTestTunnelsResume.
func TestEapolTestEAPTLSResumes(t *testing.T) {
	e := newEAPE2E(t, nil)
	for _, v := range []string{"1.3"} {
		ok, out := e.eapolTest(t, "resume", e.network("TLS", v, "amy@school.example", "amy"), "-r", "1")
		if !ok || strings.Count(out, "MPPE keys OK: 1  mismatch: 0") != 1 && !strings.Contains(out, "MPPE keys OK: 2  mismatch: 0") {
			t.Fatalf("TLS %s re-authentication:\n%s", v, tail(out, 40))
		}
		if !strings.Contains(out, "resumed=1") {
			t.Fatalf("TLS %s: the second login did not resume:\n%s", v, grepLines(out, "resumed", "ticket", "Ticket", "Session ID"))
		}
	}
}

// revocable is the directory of people, which revokes a person (or
// changes their password) after some lookups of them: the person revoked
// between two logins, however quickly eapol_test runs the second.
type revocable struct {
	Identities
	mu      sync.Mutex
	user    string
	after   int // lookups of user answered as they are; -1: all
	lookups int
	newHash string // set: after those lookups the password is changed to it, not the person revoked
}

// changed reports whether the password of the person set has been changed.
func (r *revocable) changed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.newHash != "" && r.after >= 0 && r.lookups > r.after
}

func (r *revocable) Lookup(ctx context.Context, u string) (Identity, error) {
	id, err := r.Identities.Lookup(ctx, u)
	r.mu.Lock()
	defer r.mu.Unlock()
	if u == r.user {
		r.lookups++
		switch {
		case r.after < 0 || r.lookups <= r.after:
		case r.newHash != "":
			id.PasswordHash = r.newHash
		default:
			id.Active = false
		}
	}
	return id, err
}

func (r *revocable) set(user string, after int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.lookups
	r.user, r.after, r.lookups, r.newHash = user, after, 0, ""
	return n
}

// setPassword is set, the password changed to newHash instead of the
// person revoked.
func (r *revocable) setPassword(user string, after int, newHash string) {
	r.set(user, after)
	r.mu.Lock()
	r.newHash = newHash
	r.mu.Unlock()
}

// PEAP and TTLS resume their tunnel on re-authentication (eapol_test -r 1)
// over TLS 1.2 (by session ticket, which wpa_supplicant offers when
// phase1 says tls_disable_session_ticket=0) and TLS 1.3, and the resumed
// login skips the inner method: the short handshake, and no second
// password check. A person revoked between the two logins is rejected at
// the resumed one. A password changed (reset) between the two logins ends
// the resumption: the second login runs in full, and the old password the
// device still has fails there.
func TestEapolTestTunnelsResume(t *testing.T) {
	e := newEAPE2E(t, nil)
	newHash, err := password.Hash(amyNewPassword)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"PEAP", "TTLS-PAP"} {
		for _, v := range []string{"1.2", "1.3"} {
			t.Run(m+"/TLS"+v, func(t *testing.T) {
				nw := strings.Replace(e.network(m, v, "amy", amyPassword), "tls_disable_tlsv1_0=1", "tls_disable_session_ticket=0 tls_disable_tlsv1_0=1", 1)
				// One login alone: how many lookups of amy a full login makes.
				e.directory.set("amy", -1)
				if ok, out := e.eapolTest(t, "resume-one", nw); !ok {
					t.Fatalf("the first login failed:\n%s", tail(out, 40))
				}
				full := e.directory.set("amy", -1)
				before := strings.Count(e.logs.String(), "resumed=true")
				ok, out := e.eapolTest(t, "resume", nw, "-r", "1")
				if !ok || !strings.Contains(out, "MPPE keys OK: 2  mismatch: 0") {
					t.Fatalf("re-authentication:\n%s\nserver:\n%s", grepLines(out, "EAP-PEAP", "EAP-TTLS", "esum", "CTRL-EVENT", "MPPE"), tail(e.logs.String(), 6))
				}
				if got := tlsVersionUsed(out); got != v {
					t.Fatalf("negotiated TLS %s, wanted %s", got, v)
				}
				if n := strings.Count(e.logs.String(), "resumed=true"); n != before+1 {
					t.Fatalf("the server resumed %d logins, want 1:\n%s\n%s", n-before, grepLines(e.logs.String(), "EAP login"),
						grepLines(out, "esum", "icket", "Phase 2"))
				}
				// Revoked after the first login's lookups: the resumed one
				// must fail.
				e.directory.set("amy", full)
				ok, out = e.eapolTest(t, "resume-revoked", nw, "-r", "1")
				e.directory.set("", -1)
				if ok || strings.Count(out, "CTRL-EVENT-EAP-SUCCESS") != 1 || !strings.Contains(out, "resumed=1") ||
					!strings.Contains(out, "MPPE keys OK: 1  mismatch: 1") {
					t.Fatalf("revoked between the logins: want the first to succeed and the resumed one to fail:\n%s", grepLines(out, "CTRL-EVENT", "resumed=", "MPPE"))
				}
				logs := e.logs.String()
				if !strings.Contains(logs[strings.LastIndex(logs, "EAP login"):], "the person is not active") {
					t.Fatalf("the resumed login of a revoked person is not rejected for it:\n%s", tail(logs, 10))
				}
				// The password reset after the first login's lookups: the
				// second login must not resume, and must fail its inner
				// login with the old password.
				e.directory.setPassword("amy", full, newHash)
				before = strings.Count(e.logs.String(), "resumed=true")
				mark := len(e.logs.String())
				ok, out = e.eapolTest(t, "resume-changed", nw, "-r", "1")
				changed := e.directory.changed()
				e.directory.set("", -1)
				logs = e.logs.String()[mark:]
				if !changed {
					t.Fatal("the password was never changed: the rig's lookups count is off")
				}
				if ok || strings.Count(out, "CTRL-EVENT-EAP-SUCCESS") != 1 || strings.Contains(out, "resumed=1") ||
					!strings.Contains(out, "MPPE keys OK: 1  mismatch: 1") {
					t.Fatalf("password changed between the logins: want the first to succeed and the second, not resumed, to fail:\n%s",
						grepLines(out, "CTRL-EVENT", "resumed=", "MPPE"))
				}
				if n := strings.Count(e.logs.String(), "resumed=true"); n != before {
					t.Fatalf("the server resumed %d logins after the password changed", n-before)
				}
				if !strings.Contains(logs, "resumption refused") {
					t.Fatalf("the server did not refuse the resumption:\n%s", tail(logs, 10))
				}
				// The old password fails the full inner login: TTLS-PAP's
				// check rejects it; inside PEAP the MSCHAPv2 failure (E=691,
				// no retry) ends the login at the client, before any
				// Access-Reject.
				last := logs[max(strings.LastIndex(logs, "EAP login"), 0):]
				rejected := strings.Contains(last, "Access-Reject") && strings.Contains(last, "wrong password")
				if m == "PEAP" {
					rejected = strings.Contains(out, "EAP-MSCHAPV2: Received failure") && strings.Contains(out, "E=691")
				}
				if !rejected {
					t.Fatalf("the second login is not rejected for its old password:\n%s\n%s", tail(logs, 10), grepLines(out, "CTRL-EVENT", "resumed=", "EAP-MSCHAPV2: R", "E=6"))
				}
				if strings.Contains(logs, amyPassword) || strings.Contains(logs, newHash) {
					t.Fatal("the server logged a password or hash")
				}
			})
		}
	}
}

func grepLines(s string, subs ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, x := range subs {
			if strings.Contains(l, x) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
