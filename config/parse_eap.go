package config

// Decoding of the radius.eap section: the school CA's server certificate
// (package pki) and the SSIDs WPA-Enterprise onboarding covers.

import (
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// EAP configures the certificates of WPA-Enterprise. Every key is optional.
type EAP struct {
	// ServerName is the DNS name in the RADIUS server's certificate, which
	// supplicants check (Android's "Domain"); "" means the first of
	// admin.hostnames, else the machine's host name.
	ServerName string
	// CertFile, KeyFile and CAFile are the school's own server
	// certificate, key and issuing CA; all three or none (then Gatehouse's
	// own CA makes one).
	CertFile, KeyFile, CAFile string
	// SSIDs are the WPA-Enterprise networks onboarding profiles are made
	// for; empty means the SSIDs of every segment without a captive
	// portal. Each must be a segment's SSID.
	SSIDs []string
	// Methods are the EAP methods offered, in this order: peap, ttls,
	// tls. Empty: every method the certificates and stored passwords allow.
	Methods []string
	// TLSMinVersion is "1.2" (the default) or "1.3".
	TLSMinVersion string
	// FragmentSize bounds the TLS data in one EAP request (Framed-MTU
	// lowers it); 0: the NAS's Framed-MTU, up to 1400, else 1000.
	FragmentSize int
}

func (d *decoder) radiusEAP(c *Config, path string, v *yaml.Node) {
	dir := filepath.Dir(d.file)
	file := func(dst *string) fieldFunc {
		return func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok && s != "" {
				*dst = relTo(dir, s)
			}
		}
	}
	e := &c.RADIUS.EAP
	d.mapping(v, path, map[string]fieldFunc{
		"server_name": func(p string, v *yaml.Node) {
			s, ok := d.str(p, v)
			if !ok || s == "" {
				return
			}
			if err := checkDNSName(s); err != nil {
				d.at(p, "%v", err)
				return
			}
			e.ServerName = strings.ToLower(s)
		},
		"cert_file": file(&e.CertFile),
		"key_file":  file(&e.KeyFile),
		"ca_file":   file(&e.CAFile),
		"methods": func(p string, v *yaml.Node) {
			d.strList(p, v, func(ip, s string) {
				switch s {
				case "peap", "ttls", "tls":
					e.Methods = append(e.Methods, s)
				default:
					d.at(ip, "%q is not an EAP method here (peap, ttls or tls)", s)
				}
			})
		},
		"tls_min_version": func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok && s != "" {
				if s != "1.2" && s != "1.3" {
					d.at(p, "%q: the TLS minimum version is 1.2 or 1.3", s)
					return
				}
				e.TLSMinVersion = s
			}
		},
		"fragment_size": func(p string, v *yaml.Node) {
			if n, ok := d.integer(p, v); ok {
				if n < 200 || n > 4000 {
					d.at(p, "%d: the fragment size is between 200 and 4000 octets", n)
					return
				}
				e.FragmentSize = n
			}
		},
		"ssids": func(p string, v *yaml.Node) {
			d.strList(p, v, func(ip, s string) {
				if s == "" || len(s) > 32 || !utf8.ValidString(s) {
					d.at(ip, "an SSID is 1 to 32 bytes of text, not %q", s)
					return
				}
				e.SSIDs = append(e.SSIDs, s)
			})
		},
	})
	n := 0
	for _, f := range []string{e.CertFile, e.KeyFile, e.CAFile} {
		if f != "" {
			n++
		}
	}
	if n != 0 && n != 3 {
		d.at(path, "the school's own server certificate needs all of cert_file, key_file and ca_file")
	}
}

// eapChecks compares radius with the segments: a client's default segment
// must exist, and every onboarding SSID must be one a segment serves, or
// the profiles would name a network that puts nobody anywhere.
func (d *decoder) eapChecks(c *Config) {
	served := map[string]bool{}
	for _, s := range c.Segments {
		for _, n := range s.SSIDs {
			served[n] = true
		}
	}
	names := map[string]bool{}
	for _, s := range c.Segments {
		names[s.Name] = true
	}
	for i, rc := range c.RADIUS.Clients {
		if rc.Segment != "" && !names[rc.Segment] {
			d.at(fmt.Sprintf("radius.clients[%d].segment", i), "%q is not the name of any segment", rc.Segment)
		}
	}
	for i, s := range c.RADIUS.EAP.SSIDs {
		if !served[s] {
			d.at(fmt.Sprintf("radius.eap.ssids[%d]", i), "%q is not the SSID of any segment (segments[].ssids)", s)
		}
	}
}

// checkDNSName accepts a host name of letters, digits and hyphens in
// dotted labels.
func checkDNSName(s string) error {
	if len(s) > 253 {
		return fmt.Errorf("%q is longer than a DNS name may be", s)
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' ||
			strings.IndexFunc(l, func(r rune) bool {
				return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-')
			}) >= 0 {
			return fmt.Errorf("%q is not a DNS name such as radius.school.example", s)
		}
	}
	return nil
}
