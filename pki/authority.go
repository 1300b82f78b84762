package pki

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
)

// Store keeps the records of issued client certificates (package store).
type Store interface {
	RecordClientCert(ctx context.Context, actor string, c store.ClientCert) error
	ClientCert(ctx context.Context, serial string) (store.ClientCert, error)
	ClientCerts(ctx context.Context, f store.ClientCertFilter) ([]store.ClientCert, error)
	RevokeClientCert(ctx context.Context, actor, serial, reason string, now time.Time) (store.ClientCert, error)
	RevokePersonClientCerts(ctx context.Context, actor string, personID int64, reason string, now time.Time) (int, error)
	// Audit records what changes outside the database: a CA or server
	// certificate made.
	Audit(ctx context.Context, e store.AuditEntry) (store.AuditEntry, error)
}

// People looks a person up for a client certificate (package store).
type People interface {
	PersonByID(ctx context.Context, id int64) (store.Person, error)
}

// Options configure the authority.
type Options struct {
	// Dir holds the keys (DirFor the database); created 0700.
	Dir string
	// ServerName is the DNS name in the server certificate, which
	// supplicants check (Android's "Domain", Apple's trusted server names,
	// Windows' ServerNames). Required.
	ServerName string
	// CertFile, KeyFile and CAFile are the school's own server
	// certificate, its key and the CA that signed it; all three or none.
	CertFile, KeyFile, CAFile string
	// Organization names the school in the certificates' subjects.
	Organization string
	// Realm is the domain of people's certificate identities
	// (username@Realm) and of the anonymous outer identity; default the
	// server name without its first label (radius.school.example gives
	// school.example).
	Realm string
	// Store keeps the client certificate records; People finds the
	// person a certificate is for. Both required.
	Store  Store
	People People
	// ServerValidity (default 730 days: Apple refuses TLS server
	// certificates valid for more than 825), ClientValidity (default
	// 400 days: a school year and a summer) and RenewBefore (default 30
	// days) are the lifetimes.
	ServerValidity, ClientValidity, RenewBefore time.Duration
	// CheckEvery is how often Run looks at the server certificate's
	// expiry; default 12 hours.
	CheckEvery time.Duration
	Now        func() time.Time
	Logger     *slog.Logger
}

// Defaults for Options' lifetimes.
const (
	DefaultServerValidity = 730 * 24 * time.Hour
	DefaultClientValidity = 400 * 24 * time.Hour
	DefaultRenewBefore    = 30 * 24 * time.Hour
	caValidity            = 20 * 365 * 24 * time.Hour
)

// Authority is the school CA and the server certificate. Safe for
// concurrent use; what it holds does not change after Open.
type Authority struct {
	o   Options
	log *slog.Logger
	now func() time.Time

	ca     *x509.Certificate // Gatehouse's own CA: issues client certificates
	caKey  crypto.Signer
	caPool *x509.CertPool

	// server is the server certificate with its Leaf; swapped whole when
	// Run renews it, so handshakes in flight keep the one they started with.
	server    atomic.Pointer[tls.Certificate]
	renewMu   sync.Mutex
	serverCA  *x509.Certificate // what supplicants trust for the server: the school's CA file or ours
	schoolOwn bool
}

// Open loads the CA and the server certificate, making what is missing and
// renewing the server certificate when it is due.
func Open(o Options) (*Authority, error) {
	if o.Dir == "" || o.ServerName == "" || o.Store == nil || o.People == nil {
		return nil, errors.New("pki: open: directory, server name, store and people are required")
	}
	if err := checkDNSName(o.ServerName); err != nil {
		return nil, fmt.Errorf("pki: server name %q: %w", o.ServerName, err)
	}
	given := 0
	for _, f := range []string{o.CertFile, o.KeyFile, o.CAFile} {
		if f != "" {
			given++
		}
	}
	if given != 0 && given != 3 {
		return nil, errors.New("pki: the school's own server certificate needs all of cert_file, key_file and ca_file")
	}
	if o.Realm == "" {
		o.Realm = DefaultRealm(o.ServerName)
	}
	if o.ServerValidity <= 0 {
		o.ServerValidity = DefaultServerValidity
	}
	if o.ClientValidity <= 0 {
		o.ClientValidity = DefaultClientValidity
	}
	if o.RenewBefore <= 0 {
		o.RenewBefore = DefaultRenewBefore
	}
	if o.Organization == "" {
		o.Organization = "School"
	}
	a := &Authority{o: o, log: o.Logger, now: o.Now}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: create %s: %w", o.Dir, err)
	}
	if err := os.Chmod(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: %s: %w", o.Dir, err)
	}
	if err := a.loadCA(); err != nil {
		return nil, err
	}
	a.caPool = x509.NewCertPool()
	a.caPool.AddCert(a.ca)
	var err error
	if given == 3 {
		err = a.loadSchoolServer()
	} else {
		err = a.loadOwnServer()
	}
	if err != nil {
		return nil, err
	}
	return a, nil
}

// DefaultRealm is the server name without its first label, when that
// leaves a domain of two labels or more.
func DefaultRealm(serverName string) string {
	if i := strings.IndexByte(serverName, '.'); i > 0 && strings.Contains(serverName[i+1:], ".") {
		return serverName[i+1:]
	}
	return serverName
}

func (a *Authority) path(name string) string { return filepath.Join(a.o.Dir, name) }

// loadCA reads the CA, or makes one on first start.
func (a *Authority) loadCA() error {
	certOK, err := exists(a.path(caCertFile))
	if err != nil {
		return fmt.Errorf("pki: CA certificate: %w", err)
	}
	keyOK, err := exists(a.path(caKeyFile))
	if err != nil {
		return fmt.Errorf("pki: CA key: %w", err)
	}
	switch {
	case certOK && keyOK:
		certs, err := readCerts(a.path(caCertFile))
		if err != nil {
			return fmt.Errorf("pki: CA certificate: %w", err)
		}
		key, err := readKey(a.path(caKeyFile))
		if err != nil {
			return fmt.Errorf("pki: CA key: %w", err)
		}
		if !samePublicKey(key, certs[0]) {
			return fmt.Errorf("pki: %s does not belong to the CA certificate %s", a.path(caKeyFile), a.path(caCertFile))
		}
		if !certs[0].IsCA {
			return fmt.Errorf("pki: %s is not a CA certificate", a.path(caCertFile))
		}
		if a.now().After(certs[0].NotAfter) {
			return fmt.Errorf("pki: the school CA %s expired on %s; move the pki directory aside to make a new one (every device must then be onboarded again)",
				a.path(caCertFile), certs[0].NotAfter.Format(time.DateOnly))
		}
		a.ca, a.caKey = certs[0], key
		return nil
	case certOK != keyOK:
		return fmt.Errorf("pki: %s and %s must both exist or both be absent; restore the missing one from a backup", a.path(caCertFile), a.path(caKeyFile))
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("pki: CA key: %w", err)
	}
	now := a.now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: a.o.Organization + " Wi-Fi CA", Organization: []string{a.o.Organization}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return fmt.Errorf("pki: make CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("pki: make CA: %w", err)
	}
	if err := writePair(a.o.Dir, caCertFile, caKeyFile, key, cert); err != nil {
		return fmt.Errorf("pki: write CA: %w", err)
	}
	a.ca, a.caKey = cert, key
	a.log.Info("pki: made the school CA", "subject", cert.Subject.CommonName, "sha256", Fingerprint(cert))
	a.audit("pki.ca.create", cert, "")
	return nil
}

// loadSchoolServer checks the school's own files; any fault stops the start.
func (a *Authority) loadSchoolServer() error {
	o := a.o
	chain, err := readCerts(o.CertFile)
	if err != nil {
		return fmt.Errorf("pki: cert_file: %w", err)
	}
	key, err := readKey(o.KeyFile)
	if err != nil {
		return fmt.Errorf("pki: key_file: %w", err)
	}
	cas, err := readCerts(o.CAFile)
	if err != nil {
		return fmt.Errorf("pki: ca_file: %w", err)
	}
	leaf := chain[0]
	if err := a.checkServerCert(leaf, key, cas, chain[1:]); err != nil {
		return fmt.Errorf("pki: the server certificate in %s: %w", o.CertFile, err)
	}
	if left := leaf.NotAfter.Sub(a.now()); left < o.RenewBefore {
		a.log.Warn("pki: the school's server certificate expires soon; replace cert_file and key_file", "file", o.CertFile, "expires", leaf.NotAfter)
	}
	tc := tls.Certificate{Certificate: rawChain(chain), PrivateKey: key, Leaf: leaf}
	a.serverCA, a.schoolOwn = cas[0], true
	// A certificate file without its chain: send the intermediates the CA
	// file holds (every CA there that is not self-signed), so supplicants
	// that trust only the root can build the path.
	if len(chain) == 1 {
		for _, c := range cas {
			if c.CheckSignatureFrom(c) != nil {
				tc.Certificate = append(tc.Certificate, c.Raw)
			}
		}
	}
	a.server.Store(&tc)
	for _, c := range cas {
		if c.IsCA && c.CheckSignatureFrom(c) == nil {
			a.serverCA = c // the root is what supplicants pin
			break
		}
	}
	return nil
}

// checkServerCert says what is wrong with a server certificate, if anything.
func (a *Authority) checkServerCert(leaf *x509.Certificate, key crypto.Signer, roots, intermediates []*x509.Certificate) error {
	now := a.now()
	if !samePublicKey(key, leaf) {
		return errors.New("the private key does not belong to the certificate (key mismatch)")
	}
	if now.After(leaf.NotAfter) {
		return fmt.Errorf("it expired on %s", leaf.NotAfter.UTC().Format(time.DateTime))
	}
	if now.Before(leaf.NotBefore) {
		return fmt.Errorf("it is not valid until %s (is the clock right?)", leaf.NotBefore.UTC().Format(time.DateTime))
	}
	if err := leaf.VerifyHostname(a.o.ServerName); err != nil {
		return fmt.Errorf("it is not for %s, the configured server name (name mismatch; it names %s)", a.o.ServerName, strings.Join(leaf.DNSNames, ", "))
	}
	rp, ip := x509.NewCertPool(), x509.NewCertPool()
	for _, c := range roots {
		rp.AddCert(c)
		ip.AddCert(c)
	}
	for _, c := range intermediates {
		ip.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: rp, Intermediates: ip, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return fmt.Errorf("it does not verify against the CA file for a TLS server: %w", err)
	}
	return nil
}

// loadOwnServer reads the server certificate the CA made, making a new one
// when there is none or it is due (expiring, renamed, another CA).
func (a *Authority) loadOwnServer() error {
	why := ""
	chain, err := readCerts(a.path(serverCertFile))
	var key crypto.Signer
	if err == nil {
		key, err = readKey(a.path(serverKeyFile))
	}
	switch {
	case errors.Is(err, os.ErrNotExist):
		why = "none yet"
	case err != nil:
		return fmt.Errorf("pki: server certificate: %w", err)
	case a.now().Add(a.o.RenewBefore).After(chain[0].NotAfter):
		why = "expires " + chain[0].NotAfter.UTC().Format(time.DateOnly)
	default:
		if cerr := a.checkServerCert(chain[0], key, []*x509.Certificate{a.ca}, nil); cerr != nil {
			why = cerr.Error()
		}
	}
	a.serverCA = a.ca
	if why == "" {
		a.server.Store(&tls.Certificate{Certificate: rawChain(chain), PrivateKey: key, Leaf: chain[0]})
		return nil
	}
	return a.renewServer(why)
}

// audit records a certificate the authority made by itself (actor
// "pki"): which, for what name, until when and why. A failure is logged,
// not returned: the certificate is already in place.
func (a *Authority) audit(action string, c *x509.Certificate, why string) {
	after, err := json.Marshal(struct {
		Serial   string    `json:"serial"`
		Subject  string    `json:"subject"`
		DNS      []string  `json:"dns,omitempty"`
		NotAfter time.Time `json:"not_after"`
		SHA256   string    `json:"sha256"`
		Why      string    `json:"why,omitempty"`
	}{SerialHex(c), c.Subject.CommonName, c.DNSNames, c.NotAfter.UTC(), Fingerprint(c), why})
	if err == nil {
		_, err = a.o.Store.Audit(context.Background(), store.AuditEntry{Actor: "pki", Action: action, Object: "cert:" + SerialHex(c), After: string(after)})
	}
	if err != nil {
		a.log.Error("pki: audit", "action", action, "err", err)
	}
}

// renewServer makes, writes and puts in place a new server certificate.
func (a *Authority) renewServer(why string) error {
	leaf, key, err := a.issueServer()
	if err != nil {
		return err
	}
	if err := writePair(a.o.Dir, serverCertFile, serverKeyFile, key, leaf, a.ca); err != nil {
		return fmt.Errorf("pki: write server certificate: %w", err)
	}
	a.log.Info("pki: made a new server certificate", "name", a.o.ServerName, "why", why, "expires", leaf.NotAfter)
	a.audit("pki.server.issue", leaf, why)
	a.server.Store(&tls.Certificate{Certificate: [][]byte{leaf.Raw, a.ca.Raw}, PrivateKey: key, Leaf: leaf})
	return nil
}

// RenewIfDue renews the server certificate Gatehouse made when it expires
// within RenewBefore, and reports whether it did. The school's own files
// are never replaced; their coming expiry is logged as a warning.
func (a *Authority) RenewIfDue() (bool, error) {
	a.renewMu.Lock()
	defer a.renewMu.Unlock()
	leaf := a.ServerLeaf()
	if !a.now().Add(a.o.RenewBefore).After(leaf.NotAfter) {
		return false, nil
	}
	if a.schoolOwn {
		a.log.Warn("pki: the school's server certificate expires soon; replace cert_file and key_file and restart",
			"file", a.o.CertFile, "expires", leaf.NotAfter)
		return false, nil
	}
	if err := a.renewServer("expires " + leaf.NotAfter.UTC().Format(time.DateOnly)); err != nil {
		return false, err
	}
	return true, nil
}

// Run checks the server certificate every CheckEvery (default 12 hours)
// and renews it when due, so a router that runs for years without a
// restart keeps a valid certificate; it returns when ctx ends.
func (a *Authority) Run(ctx context.Context) error {
	every := a.o.CheckEvery
	if every <= 0 {
		every = 12 * time.Hour
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if _, err := a.RenewIfDue(); err != nil {
				a.log.Error("pki: renewing the server certificate failed; the current one stays", "err", err)
			}
		}
	}
}

func (a *Authority) issueServer() (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: server key: %w", err)
	}
	now := a.now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: a.o.ServerName, Organization: []string{a.o.Organization}},
		DNSNames:     []string{a.o.ServerName},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(a.o.ServerValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	cert, err := a.sign(tmpl, key.Public())
	if err != nil {
		return nil, nil, fmt.Errorf("pki: sign server certificate: %w", err)
	}
	return cert, key, nil
}

func (a *Authority) sign(tmpl *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.ca, pub, a.caKey)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func rawChain(chain []*x509.Certificate) [][]byte {
	out := make([][]byte, len(chain))
	for i, c := range chain {
		out[i] = c.Raw
	}
	return out
}

// randomSerial is 127 random bits: positive, unique without a counter.
func randomSerial() *big.Int {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24)
	b[0] &= 0x7f
	b[0] |= 0x01 // never shorter than 16 bytes, so serials sort and read alike
	return new(big.Int).SetBytes(b)
}

// ServerCertificate is the RADIUS server's certificate and key, with its
// chain, for tls.Config.Certificates.
func (a *Authority) ServerCertificate() tls.Certificate { return *a.server.Load() }

// TLSConfig is the TLS configuration the EAP engine takes
// (eap.Options.TLS): the server certificate with its chain, and the school
// CA as the pool EAP-TLS client certificates must chain to. The engine
// sets ClientAuth per method; pass VerifyLogin as its VerifyClient.
func (a *Authority) TLSConfig() *tls.Config {
	return &tls.Config{
		// The current certificate at each handshake: a renewal needs no
		// restart of the engine.
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return a.server.Load(), nil },
		ClientCAs:      a.caPool,
		MinVersion:     tls.VersionTLS12,
	}
}

// ServerLeaf is the server certificate itself.
func (a *Authority) ServerLeaf() *x509.Certificate { return a.server.Load().Leaf }

// ServerName is the name supplicants must check.
func (a *Authority) ServerName() string { return a.o.ServerName }

// Realm is the domain of identities (username@Realm, anonymous@Realm).
func (a *Authority) Realm() string { return a.o.Realm }

// ClientCAs is the pool client certificates must chain to, for
// tls.Config.ClientCAs: Gatehouse's own CA.
func (a *Authority) ClientCAs() *x509.CertPool { return a.caPool }

// CA is Gatehouse's own CA certificate (the issuer of client certificates).
func (a *Authority) CA() *x509.Certificate { return a.ca }

// TrustAnchor is the CA supplicants must trust for the server: the
// school's CA file when it gave its own certificate, else Gatehouse's CA.
// Onboarding publishes this one.
func (a *Authority) TrustAnchor() *x509.Certificate { return a.serverCA }

// SchoolOwnServerCert reports whether the server certificate is the
// school's own files.
func (a *Authority) SchoolOwnServerCert() bool { return a.schoolOwn }

// Fingerprint is the SHA-256 of a certificate's DER, as colon-separated
// upper-case hex (what browsers and `openssl x509 -fingerprint` show).
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return colonHex(sum[:])
}

// Thumbprint is the SHA-1 of a certificate's DER as Windows shows and
// matches it (its WLAN profiles' TrustedRootCA).
func Thumbprint(c *x509.Certificate) string {
	sum := sha1.Sum(c.Raw)
	return hex.EncodeToString(sum[:])
}

func colonHex(b []byte) string {
	h := strings.ToUpper(hex.EncodeToString(b))
	var sb strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			sb.WriteByte(':')
		}
		sb.WriteString(h[i : i+2])
	}
	return sb.String()
}

// checkDNSName accepts a host name of letters, digits and hyphens in dotted
// labels.
func checkDNSName(s string) error {
	if len(s) > 253 || s == "" {
		return errors.New("a DNS name is 1 to 253 characters")
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return errors.New("not a DNS name (labels of 1 to 63 letters, digits and inner hyphens)")
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("not a DNS name (%q is not allowed)", r)
			}
		}
	}
	return nil
}
