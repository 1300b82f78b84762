package config

// Decoding of the configuration file's site, admin and uplink sections.

import (
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

func (d *decoder) site(c *Config, path string, v *yaml.Node) {
	d.mapping(v, path, map[string]fieldFunc{
		"name": func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok {
				c.Site.Name = strings.TrimSpace(s)
			}
		},
		"timezone": func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok && s != "" {
				c.Site.Timezone = s
			}
		},
		"guest_ssid": func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok {
				c.Site.GuestSSID = s
			}
		},
	})
	// Checked here so the problem names the line of the bad value; the
	// Location is set in crossChecks, which also covers a missing site.
	if _, err := time.LoadLocation(c.Site.Timezone); err != nil {
		d.at(join(path, "timezone"), "unknown time zone %q; use an IANA name such as Europe/London", c.Site.Timezone)
	}
}

func (d *decoder) admin(c *Config, path string, v *yaml.Node) {
	d.mapping(v, path, map[string]fieldFunc{
		"listen": func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok && s != "" {
				c.Admin.Listen = s
				if err := checkHostPort(s); err != nil {
					d.at(p, "%v", err)
				}
			}
		},
		"tls": func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok && s != "" {
				c.Admin.TLS = s
				if s != "auto" && s != "files" {
					d.at(p, "must be \"auto\" (self-signed certificate made on first start) or \"files\" (cert_file and key_file), not %q", s)
				}
			}
		},
		"cert_file": func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok {
				c.Admin.CertFile = s
			}
		},
		"key_file": func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok {
				c.Admin.KeyFile = s
			}
		},
		"hostnames": func(p string, v *yaml.Node) {
			d.strList(p, v, func(ip, s string) {
				s = strings.TrimSpace(s)
				if s == "" || strings.ContainsAny(s, " /:\t") || len(s) > 253 {
					d.at(ip, "must be a host name such as gatehouse.school.example, not %q", s)
					return
				}
				c.Admin.Hostnames = append(c.Admin.Hostnames, s)
			})
		},
		"idle_timeout": func(p string, v *yaml.Node) { d.adminIdle(c, p, v) },
		"metrics_from": func(p string, v *yaml.Node) {
			d.strList(p, v, func(ip, s string) {
				pfx, err := netip.ParsePrefix(s)
				if err != nil {
					a, aerr := netip.ParseAddr(s)
					if aerr != nil {
						d.at(ip, "must be an address or a prefix such as 10.99.0.5 or 10.99.0.0/24, not %q", s)
						return
					}
					pfx = netip.PrefixFrom(a, a.BitLen())
				}
				c.Admin.MetricsFrom = append(c.Admin.MetricsFrom, pfx.Masked())
			})
		},
	})
}

// adminFiles resolves the certificate paths once the database path is known,
// since "auto" keeps its pair next to the database.
func (d *decoder) adminFiles(c *Config, dir string) {
	a := &c.Admin
	a.CertFile, a.KeyFile = relTo(dir, a.CertFile), relTo(dir, a.KeyFile)
	switch a.TLS {
	case "files":
		if a.CertFile == "" {
			d.missing("admin.cert_file", "admin", `the certificate file, because admin.tls is "files"`)
		}
		if a.KeyFile == "" {
			d.missing("admin.key_file", "admin", `the private key file, because admin.tls is "files"`)
		}
	case "auto":
		if c.Database == "" {
			return
		}
		dbDir := filepath.Dir(c.Database)
		if a.CertFile == "" {
			a.CertFile = filepath.Join(dbDir, adminCertName)
		}
		if a.KeyFile == "" {
			a.KeyFile = filepath.Join(dbDir, adminKeyName)
		}
	}
	if a.CertFile != "" && a.CertFile == a.KeyFile {
		d.at("admin.key_file", "must differ from admin.cert_file")
	}
}

func (d *decoder) uplink(c *Config, path string, v *yaml.Node) {
	d.mapping(v, path, map[string]fieldFunc{
		"interface": func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok && s != "" {
				c.Uplink.Interface = s
				if err := checkInterfaceName(s); err != nil {
					d.at(p, "%v", err)
				}
			}
		},
	})
}
