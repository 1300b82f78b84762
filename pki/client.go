package pki

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/gatehouse-net/gatehouse/store"
)

// Errors VerifyClient wraps, so the EAP engine can log why.
var (
	ErrUntrusted = errors.New("pki: certificate not issued by the school CA")
	ErrExpired   = errors.New("pki: certificate expired or not yet valid")
	ErrRevoked   = errors.New("pki: certificate revoked")
	ErrUnknown   = errors.New("pki: certificate not on record")
	ErrNoPerson  = errors.New("pki: the person cannot have a certificate")
	ErrBadName   = errors.New("pki: not a device name")
)

// Issued is a new client certificate: the PKCS#12 file and its password
// exist only in this value, to be shown once.
type Issued struct {
	Cert     store.ClientCert
	PKCS12   []byte
	Password string
	FileName string // e.g. "alovelace.p12"
}

// IssuePerson issues a client certificate for a person with access; its
// identity is the rfc822Name username@Realm.
func (a *Authority) IssuePerson(ctx context.Context, actor string, personID int64) (Issued, error) {
	p, err := a.o.People.PersonByID(ctx, personID)
	if err != nil {
		return Issued{}, fmt.Errorf("pki: issue for person %d: %w", personID, err)
	}
	if p.State != store.PersonActive && p.State != store.PersonLeaving {
		return Issued{}, fmt.Errorf("pki: person %d has no access (%s): %w", personID, p.State, ErrNoPerson)
	}
	user := strings.ToLower(p.Username)
	if user == "" || strings.ContainsAny(user, "@ \t\r\n\"<>") {
		return Issued{}, fmt.Errorf("pki: person %d has no username to put in a certificate: %w", personID, ErrNoPerson)
	}
	id := user + "@" + a.o.Realm
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: user, Organization: []string{a.o.Organization}}, EmailAddresses: []string{id}}
	return a.issue(ctx, actor, tmpl, store.ClientCert{Kind: store.CertPerson, Identity: id, PersonID: p.ID}, user)
}

// IssueDevice issues a client certificate for a device (a shared laptop, a
// printer) named by a DNS name, which is its identity.
func (a *Authority) IssueDevice(ctx context.Context, actor, name string) (Issued, error) {
	name = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(name), "."))
	if err := checkDNSName(name); err != nil {
		return Issued{}, fmt.Errorf("%w: %q: %v", ErrBadName, name, err)
	}
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: name, Organization: []string{a.o.Organization}}, DNSNames: []string{name}}
	return a.issue(ctx, actor, tmpl, store.ClientCert{Kind: store.CertDevice, Identity: name}, name)
}

func (a *Authority) issue(ctx context.Context, actor string, tmpl *x509.Certificate, rec store.ClientCert, file string) (Issued, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Issued{}, fmt.Errorf("pki: client key: %w", err)
	}
	now := a.now()
	tmpl.SerialNumber = randomSerial()
	tmpl.NotBefore = now.Add(-time.Hour) // a device whose clock is a little behind
	tmpl.NotAfter = now.Add(a.o.ClientValidity)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	cert, err := a.sign(tmpl, key.Public())
	if err != nil {
		return Issued{}, fmt.Errorf("pki: sign client certificate: %w", err)
	}
	pw, err := newPassword()
	if err != nil {
		return Issued{}, err
	}
	// Modern2023: PBES2 with AES-256-CBC and PBKDF2-HMAC-SHA-256, and an
	// HMAC-SHA-256 MAC, which OpenSSL 3, Windows 10 1709+ and current
	// macOS, iOS and Android import; the legacy RC2/3DES forms are
	// refused by OpenSSL 3 without its legacy provider.
	p12, err := pkcs12.Modern2023.Encode(key, cert, []*x509.Certificate{a.ca}, pw)
	if err != nil {
		return Issued{}, fmt.Errorf("pki: encode PKCS#12: %w", err)
	}
	rec.Serial = SerialHex(cert)
	rec.SHA256 = sha256Hex(cert.Raw)
	rec.NotBefore, rec.NotAfter, rec.IssuedAt = cert.NotBefore, cert.NotAfter, now
	if err := a.o.Store.RecordClientCert(ctx, actor, rec); err != nil {
		return Issued{}, fmt.Errorf("pki: record client certificate: %w", err)
	}
	rec.IssuedBy = actor
	a.log.Info("pki: client certificate issued", "serial", rec.Serial, "identity", rec.Identity, "by", actor)
	return Issued{Cert: rec, PKCS12: p12, Password: pw, FileName: file + ".p12"}, nil
}

// newPassword is 20 characters from an alphabet without look-alikes
// (about 100 bits), typed once on a phone.
func newPassword() (string, error) {
	const alphabet = "abcdefghjkmnpqrstuvwxyz23456789" // 31 symbols
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("pki: password: %w", err)
	}
	out := make([]byte, 0, 24)
	for i, c := range b {
		if i > 0 && i%5 == 0 {
			out = append(out, '-')
		}
		// 256 = 8*31 + 8: the bias is under 4 % on a few symbols, and
		// 20 symbols keep well over 90 bits.
		out = append(out, alphabet[int(c)%len(alphabet)])
	}
	return string(out), nil
}

// SerialHex is how the store names a certificate: lower-case hex.
func SerialHex(c *x509.Certificate) string { return c.SerialNumber.Text(16) }

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Client is a verified client certificate's holder.
type Client struct {
	Identity string // rfc822Name, else DNS name, else CN
	Kind     string // store.CertPerson or store.CertDevice
	PersonID int64  // 0 for a device
	Serial   string
}

// VerifyClient checks a client certificate presented in EAP-TLS: it must
// chain to the school CA for client authentication, be within its validity,
// be on record and not revoked. The identity is the certificate's SAN
// rfc822Name, else its DNS name, else its CN.
func (a *Authority) VerifyClient(ctx context.Context, cert *x509.Certificate) (string, error) {
	c, err := a.VerifyClientCert(ctx, cert)
	return c.Identity, err
}

// VerifyClientCert is VerifyClient with the record's person.
func (a *Authority) VerifyClientCert(ctx context.Context, cert *x509.Certificate) (Client, error) {
	if cert == nil {
		return Client{}, fmt.Errorf("%w: no certificate", ErrUntrusted)
	}
	now := a.now()
	serial := SerialHex(cert)
	if now.After(cert.NotAfter) || now.Before(cert.NotBefore) {
		return Client{}, fmt.Errorf("%w: serial %s valid %s to %s", ErrExpired, serial,
			cert.NotBefore.UTC().Format(time.DateTime), cert.NotAfter.UTC().Format(time.DateTime))
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: a.caPool, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return Client{}, fmt.Errorf("%w: serial %s: %v", ErrUntrusted, serial, err)
	}
	rec, err := a.o.Store.ClientCert(ctx, serial)
	if errors.Is(err, store.ErrNotFound) {
		return Client{}, fmt.Errorf("%w: serial %s", ErrUnknown, serial)
	}
	if err != nil {
		return Client{}, fmt.Errorf("pki: look up serial %s: %w", serial, err)
	}
	if rec.SHA256 != sha256Hex(cert.Raw) {
		return Client{}, fmt.Errorf("%w: serial %s is on record for another certificate", ErrUnknown, serial)
	}
	if rec.Revoked() {
		return Client{}, fmt.Errorf("%w: serial %s on %s (%s)", ErrRevoked, serial, rec.RevokedAt.UTC().Format(time.DateTime), rec.RevokeReason)
	}
	return Client{Identity: Identity(cert), Kind: rec.Kind, PersonID: rec.PersonID, Serial: serial}, nil
}

// VerifyLogin is VerifyClient for the EAP engine (eap.Options.VerifyClient),
// which wants the login name RADIUS looks the person up by: for a person's
// certificate their current username (the certificate is tied to the
// person, so a username changed in the MIS follows), for a device's its
// DNS name.
func (a *Authority) VerifyLogin(ctx context.Context, cert *x509.Certificate) (string, error) {
	c, err := a.VerifyClientCert(ctx, cert)
	if err != nil {
		return "", err
	}
	if c.Kind != store.CertPerson {
		return c.Identity, nil
	}
	if c.PersonID == 0 {
		return "", fmt.Errorf("%w: serial %s: its person is no longer on record", ErrNoPerson, c.Serial)
	}
	p, err := a.o.People.PersonByID(ctx, c.PersonID)
	if err != nil {
		return "", fmt.Errorf("pki: serial %s: look up person %d: %w", c.Serial, c.PersonID, err)
	}
	if p.Username == "" {
		return "", fmt.Errorf("%w: serial %s: person %d has no username", ErrNoPerson, c.Serial, c.PersonID)
	}
	return p.Username, nil
}

// Identity is who a certificate names: the SAN rfc822Name, else the SAN
// DNS name, else the subject CN.
func Identity(c *x509.Certificate) string {
	switch {
	case len(c.EmailAddresses) > 0:
		return c.EmailAddresses[0]
	case len(c.DNSNames) > 0:
		return c.DNSNames[0]
	}
	return c.Subject.CommonName
}

// ClientCerts lists issued certificates, newest first.
func (a *Authority) ClientCerts(ctx context.Context, f store.ClientCertFilter) ([]store.ClientCert, error) {
	return a.o.Store.ClientCerts(ctx, f)
}

// Revoke puts a certificate on the deny-list; the next EAP-TLS login with
// it fails.
func (a *Authority) Revoke(ctx context.Context, actor, serial, reason string) (store.ClientCert, error) {
	serial = strings.ToLower(strings.TrimLeft(strings.TrimSpace(serial), "0"))
	c, err := a.o.Store.RevokeClientCert(ctx, actor, serial, reason, a.now())
	if err != nil {
		return c, err
	}
	a.log.Info("pki: client certificate revoked", "serial", serial, "identity", c.Identity, "by", actor)
	return c, nil
}

// PersonCertificates revokes a person's client certificates: package
// people's Credentials, for leavers and revoked people. Actor is who is
// recorded.
type PersonCertificates struct {
	Store interface {
		RevokePersonClientCerts(ctx context.Context, actor string, personID int64, reason string, now time.Time) (int, error)
	}
	Actor string
}

// DisablePerson revokes every certificate of the person still in force.
func (p PersonCertificates) DisablePerson(ctx context.Context, personID int64) error {
	_, err := p.Store.RevokePersonClientCerts(ctx, p.Actor, personID, "person's access revoked", time.Now())
	return err
}
