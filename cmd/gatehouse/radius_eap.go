package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/gatehouse-net/gatehouse/config"
	"github.com/gatehouse-net/gatehouse/radius/eap"
)

// radiusEAP converts radius.eap into the EAP engine's options; nil (EAP
// off) when no server certificate is configured.
func radiusEAP(c config.RADIUSEAP) (*eap.Options, error) {
	if c.CertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("radius.eap: loading the server certificate: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	if c.ClientCAFile != "" {
		pem, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("radius.eap: reading the client CAs: %w", err)
		}
		cfg.ClientCAs = x509.NewCertPool()
		if !cfg.ClientCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("radius.eap: %s holds no PEM certificate", c.ClientCAFile)
		}
	}
	o := &eap.Options{TLS: cfg, Methods: c.Methods, FragmentSize: c.FragmentSize}
	if c.TLSMinVersion == "1.3" {
		o.MinVersion = tls.VersionTLS13
	}
	return o, nil
}
