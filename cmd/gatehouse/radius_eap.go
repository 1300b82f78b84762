package main

import (
	"crypto/tls"

	"github.com/gatehouse-net/gatehouse/config"
	"github.com/gatehouse-net/gatehouse/people"
	"github.com/gatehouse-net/gatehouse/pki"
	"github.com/gatehouse-net/gatehouse/radius/eap"
)

// radiusEAP builds the EAP engine's options (WPA-Enterprise): the server
// certificate, client CA and certificate check from the school CA, the NT
// hashes from people when they are stored (storeNTHashes), and
// radius.eap's methods and limits. nil (EAP off) without the CA.
func radiusEAP(cfg *config.Config, a *pki.Authority, svc *people.Service) *eap.Options {
	if a == nil {
		return nil
	}
	c := cfg.RADIUS.EAP
	// VerifyLogin, not VerifyClient: the engine wants the login name RADIUS
	// looks the person up by (their username), not the certificate's
	// rfc822Name (username@realm), which no person lookup matches.
	o := &eap.Options{TLS: a.TLSConfig(), Methods: c.Methods, FragmentSize: c.FragmentSize, VerifyClient: a.VerifyLogin}
	if c.TLSMinVersion == "1.3" {
		o.MinVersion = tls.VersionTLS13
	}
	if storeNTHashes(cfg) && svc != nil {
		o.NTHash = svc.NTHash
	}
	return o
}
