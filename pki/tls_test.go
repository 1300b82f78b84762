package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"testing"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// handshake runs a TLS 1.2 or 1.3 handshake between the authority's server
// configuration (asking for a client certificate, as EAP-TLS does) and a
// supplicant that trusts anchor for serverName and presents client; it
// returns what the server saw.
func handshake(t *testing.T, a *Authority, version uint16, anchor *x509.Certificate, serverName string, client *tls.Certificate) (*x509.Certificate, error) {
	t.Helper()
	sc := a.TLSConfig()
	sc.ClientAuth = tls.RequireAndVerifyClientCert
	if client == nil {
		sc.ClientAuth = tls.NoClientCert // PEAP and TTLS: the server alone proves itself
	}
	sc.MinVersion, sc.MaxVersion = version, version
	roots := x509.NewCertPool()
	roots.AddCert(anchor)
	cc := &tls.Config{RootCAs: roots, ServerName: serverName, MinVersion: version, MaxVersion: version}
	if client != nil {
		cc.Certificates = []tls.Certificate{*client}
	}
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	srv := tls.Server(c1, sc)
	errc := make(chan error, 1)
	go func() {
		err := tls.Client(c2, cc).Handshake()
		c2.Close()
		errc <- err
	}()
	serr := srv.Handshake()
	cerr := <-errc
	if serr != nil || cerr != nil {
		return nil, errors.Join(serr, cerr)
	}
	if client == nil {
		return nil, nil
	}
	return srv.ConnectionState().PeerCertificates[0], nil
}

// TestServerAndClientCertificatesWorkInTLS proves the pieces fit
// crypto/tls as the EAP engine uses it, over TLS 1.2 and 1.3: a supplicant
// that trusts the school CA and checks the server name connects with a
// client certificate from the PKCS#12, and one checking another name does
// not.
func TestServerAndClientCertificatesWorkInTLS(t *testing.T) {
	b := newBench(t)
	a := b.open(t)
	ctx := context.Background()
	p := b.person(t, "jbloggs")
	iss, err := a.IssuePerson(ctx, "web:nm", p.ID)
	if err != nil {
		t.Fatal(err)
	}
	key, cert, chain, err := pkcs12.DecodeChain(iss.PKCS12, iss.Password)
	if err != nil {
		t.Fatal(err)
	}
	client := &tls.Certificate{Certificate: [][]byte{cert.Raw, chain[0].Raw}, PrivateKey: key}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		seen, err := handshake(t, a, v, a.TrustAnchor(), "radius.school.example", client)
		if err != nil {
			t.Fatalf("TLS %x: %v", v, err)
		}
		if login, err := a.VerifyLogin(ctx, seen); err != nil || login != "jbloggs" {
			t.Fatalf("TLS %x: login %q %v", v, login, err)
		}
		if _, err := handshake(t, a, v, a.TrustAnchor(), "evil.example", client); err == nil {
			t.Fatalf("TLS %x: a supplicant checking another domain connected", v)
		}
	}
}
