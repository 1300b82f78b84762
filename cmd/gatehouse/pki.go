package main

// Construction of the school CA (package pki) and its pages from the
// configuration. The EAP engine takes the server certificate, the client
// CA pool and VerifyClient from w.pki.

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/gatehouse-net/gatehouse/config"
	"github.com/gatehouse-net/gatehouse/pki"
	"github.com/gatehouse-net/gatehouse/pki/pkiweb"
)

// wirePKI opens the school CA and the RADIUS server certificate (making or
// renewing what is due) and adds the onboarding and certificate pages,
// when the configuration has a RADIUS authentication listener: without
// one nobody would check the certificates.
func wirePKI(_ context.Context, w *wiring) error {
	if w.cfg.RADIUS.Auth == "" {
		return nil
	}
	name, err := eapServerName(w.cfg)
	if err != nil {
		return err
	}
	e := w.cfg.RADIUS.EAP
	a, err := pki.Open(pki.Options{
		Dir: pki.DirFor(w.cfg.Database), ServerName: name,
		CertFile: e.CertFile, KeyFile: e.KeyFile, CAFile: e.CAFile,
		Organization: w.cfg.Site.Name, Store: w.store, People: w.store,
		Logger: w.log.With("component", "pki"),
	})
	if err != nil {
		return err
	}
	w.pki = a
	w.run("pki", a.Run) // renews the server certificate when due
	if err := pkiweb.Register(w.web, pkiweb.Options{Authority: a, People: w.store, Site: w.cfg.Site.Name,
		SSIDs: eapSSIDs(w.cfg), Logger: w.log.With("component", "pkiweb")}); err != nil {
		return fmt.Errorf("admin page: %w", err)
	}
	return nil
}

// eapServerName is radius.eap.server_name, else the first admin host name
// that is a DNS name, else the machine's host name.
func eapServerName(cfg *config.Config) (string, error) {
	if n := cfg.RADIUS.EAP.ServerName; n != "" {
		return n, nil
	}
	for _, h := range cfg.Admin.Hostnames {
		if strings.Contains(h, ".") && strings.Trim(h, "0123456789.") != "" {
			return strings.ToLower(h), nil
		}
	}
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "", fmt.Errorf("radius.eap.server_name is not set and the host name is unknown (%v); set it to the name supplicants should check", err)
	}
	return strings.ToLower(h), nil
}

// eapSSIDs is radius.eap.ssids, else every SSID of a segment without a
// captive portal except the guest network's.
func eapSSIDs(cfg *config.Config) []string {
	if len(cfg.RADIUS.EAP.SSIDs) > 0 {
		return cfg.RADIUS.EAP.SSIDs
	}
	var out []string
	for _, s := range cfg.Segments {
		if s.Portal {
			continue
		}
		for _, n := range s.SSIDs {
			if n != cfg.Site.GuestSSID && !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}
