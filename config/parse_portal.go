package config

// Decoding of the configuration file's portal section.

import (
	"path/filepath"
	"regexp"

	"gopkg.in/yaml.v3"
)

// portal reads the captive portal's HTTPS settings and record retention.
func (d *decoder) portal(c *Config, path string, v *yaml.Node) {
	dir := filepath.Dir(d.file)
	file := func(dst *string) fieldFunc {
		return func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok && s != "" {
				*dst = relTo(dir, s)
			}
		}
	}
	d.mapping(v, path, map[string]fieldFunc{
		"host": func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok && s != "" {
				if !portalHostRe.MatchString(s) {
					d.at(p, "%q is not a host name like wifi.school.example", s)
					return
				}
				c.Portal.Host = s
			}
		},
		"cert_file": file(&c.Portal.CertFile),
		"key_file":  file(&c.Portal.KeyFile),
		"retention": func(p string, v *yaml.Node) { d.retention(p, v, &c.Portal.Retention) },
	})
	set := 0
	for _, f := range []string{c.Portal.Host, c.Portal.CertFile, c.Portal.KeyFile} {
		if f != "" {
			set++
		}
	}
	if set != 0 && set != 3 {
		d.at(path, "HTTPS for the portal needs all of host, cert_file and key_file")
	}
}

// portalHostRe is a fully qualified name, as a certificate names it.
var portalHostRe = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$`)
