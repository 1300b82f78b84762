package eap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
)

func (e *Engine) methodFunc(t byte) func(ctx context.Context, c *flight) methodResult {
	switch t {
	case TypeTLS:
		return e.runEAPTLS
	case TypeTTLS:
		return e.runTTLS
	case TypePEAP:
		return e.runPEAP
	}
	return func(context.Context, *flight) methodResult {
		return methodResult{reason: fmt.Sprintf("EAP type %d has no method", t)}
	}
}

func tlsVersion(v uint16) string {
	switch v {
	case tls.VersionTLS12:
		return "TLS 1.2"
	case tls.VersionTLS13:
		return "TLS 1.3"
	}
	return fmt.Sprintf("TLS %#x", v)
}

// exportKeys derives the MSK and EMSK: RFC 5216 2.3 ("client EAP
// encryption"; PEAP uses it too) and RFC 5281 8 ("ttls keying material")
// over TLS 1.2; over TLS 1.3 the exporter of RFC 9190 2.3 with the method's
// type as the context (RFC 9427 2.1 for TTLS and PEAP). crypto/tls refuses
// the TLS 1.2 exporter without Extended Master Secret, which every current
// supplicant negotiates and which keeps the keys bound to the handshake.
func exportKeys(st tls.ConnectionState, t byte) (msk, emsk []byte, err error) {
	var km []byte
	if st.Version == tls.VersionTLS13 {
		km, err = st.ExportKeyingMaterial("EXPORTER_EAP_TLS_Key_Material", []byte{t}, 128)
	} else {
		label := "client EAP encryption"
		if t == TypeTTLS {
			label = "ttls keying material"
		}
		km, err = st.ExportKeyingMaterial(label, nil, 128)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("deriving the keys: %w", err)
	}
	return km[:64], km[64:], nil
}

// CertIdentity is the login name a client certificate stands for: its
// first rfc822Name, else its first dNSName, else its subject's CN.
func CertIdentity(c *x509.Certificate) string {
	switch {
	case len(c.EmailAddresses) > 0:
		return c.EmailAddresses[0]
	case len(c.DNSNames) > 0:
		return c.DNSNames[0]
	}
	return c.Subject.CommonName
}

// handshake runs the TLS server over c. clientCert asks for (and
// verifies) a client certificate; the identity it stands for is returned.
// For the tunnelled methods (clientCert false) it returns the handshake's
// tickets: what it issued, and the login it resumed, if any.
func (e *Engine) handshake(ctx context.Context, c *flight, clientCert bool, method byte) (*tls.Conn, string, *tickets, error) {
	cfg := e.base.Clone()
	var identity string
	tk := &tickets{}
	if clientCert {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			// Also on resumption: a certificate revoked since is refused.
			if len(cs.PeerCertificates) == 0 {
				return errors.New("no client certificate")
			}
			leaf := cs.PeerCertificates[0]
			identity = CertIdentity(leaf)
			if e.o.VerifyClient != nil {
				id, err := e.o.VerifyClient(ctx, leaf)
				if err != nil {
					return fmt.Errorf("client certificate %s (serial %s) refused: %w", identity, leaf.SerialNumber, err)
				}
				if id != "" {
					identity = id
				}
			}
			if identity == "" {
				return errors.New("the client certificate names nobody")
			}
			return nil
		}
	} else {
		cfg.ClientAuth = tls.NoClientCert
		e.bindTickets(ctx, cfg, tk, method)
	}
	cfg.GetConfigForClient = tls12Curves(cfg)
	tc := tls.Server(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, "", nil, fmt.Errorf("TLS handshake: %w", err)
	}
	if !tc.ConnectionState().DidResume {
		tk.resumed, tk.cred = nil, credential{}
	}
	return tc, identity, tk, nil
}

// p256Groups are the key exchanges of a TLS 1.2 handshake whose client
// offers P-256: the NIST curves. (Debian's FreeRADIUS 3.2.1, which
// bench/eap.sh compares against, leaves ecdh_curve empty, so OpenSSL
// chooses, from the client's list: X25519 for wpa_supplicant. Either is a
// 128-bit key exchange; the signature is ECDSA P-256 on both sides, with
// the same certificate.)
var p256Groups = []tls.CurveID{tls.CurveP256, tls.CurveP384, tls.CurveP521}

// tls12Curves is cfg's GetConfigForClient: a client that will speak TLS
// 1.2 and offers P-256 gets ECDHE over P-256 rather than X25519, which
// crypto/tls would take (over TLS 1.2 it follows the client's order, and
// wpa_supplicant and Windows list X25519 first). Go's P-256 (assembly,
// with a table for the server's fixed-base multiplication) does the
// ephemeral key and the shared secret in about 40% of X25519's time
// here, and that pair was the largest part of a full login's CPU after
// the signature. Both give about 128-bit security; the server's
// certificate is a P-256 key already. TLS 1.3 keeps crypto/tls's choice
// (the hybrid post-quantum group, or the share the client sent): another
// group there would cost a HelloRetryRequest round.
func tls12Curves(cfg *tls.Config) func(*tls.ClientHelloInfo) (*tls.Config, error) {
	return func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
		if cfg.MaxVersion >= tls.VersionTLS13 && slices.Contains(hi.SupportedVersions, tls.VersionTLS13) {
			return nil, nil
		}
		if !slices.Contains(hi.SupportedCurves, tls.CurveP256) {
			return nil, nil
		}
		c := cfg.Clone()
		c.GetConfigForClient = nil
		c.CurvePreferences = p256Groups
		return c, nil
	}
}

// runEAPTLS is EAP-TLS (RFC 5216; RFC 9190 over TLS 1.3).
func (e *Engine) runEAPTLS(ctx context.Context, c *flight) methodResult {
	res := methodResult{method: "EAP-TLS"}
	tc, identity, _, err := e.handshake(ctx, c, true, TypeTLS)
	res.identity = identity
	if err != nil {
		res.reason = err.Error()
		return res
	}
	st := tc.ConnectionState()
	res.version = tlsVersion(st.Version)
	if st.Version == tls.VersionTLS13 {
		// RFC 9190 2.5: the protected success indication, one octet of
		// application data 0x00, says the server sends no more handshake.
		if _, err := tc.Write([]byte{0}); err != nil {
			res.reason = "writing the success indication: " + err.Error()
			return res
		}
	}
	// Our last flight, then the client's acknowledgement of it.
	in, err := c.exchange()
	if err != nil {
		res.reason = err.Error()
		return res
	}
	if len(in) != 0 {
		res.reason = "the client answered the last flight with more TLS (an alert?)"
		return res
	}
	if res.msk, res.emsk, err = exportKeys(st, TypeTLS); err != nil {
		res.reason = err.Error()
		return res
	}
	res.ok = true
	return res
}
