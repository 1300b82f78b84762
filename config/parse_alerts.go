package config

// Decoding of the configuration file's alerts section.

import (
	"fmt"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

func (d *decoder) alerts(c *Config, path string, v *yaml.Node) {
	d.mapping(v, path, map[string]fieldFunc{
		"smtp": func(p string, v *yaml.Node) {
			d.mapping(v, p, map[string]fieldFunc{
				"server": func(p string, v *yaml.Node) {
					if s, ok := d.str(p, v); ok && s != "" {
						c.Alerts.SMTP.Server = s
						if err := checkHostPort(s); err != nil {
							d.at(p, "%v", err)
						}
					}
				},
				"from": func(p string, v *yaml.Node) {
					if s, ok := d.str(p, v); ok && s != "" {
						c.Alerts.SMTP.From = s
						if err := checkEmail(s); err != nil {
							d.at(p, "%v", err)
						}
					}
				},
				"starttls": func(p string, v *yaml.Node) {
					if s, ok := d.str(p, v); ok && s != "" {
						if s != "auto" && s != "always" && s != "never" {
							d.at(p, "%q must be auto, always or never", s)
							return
						}
						c.Alerts.SMTP.StartTLS = s
					}
				},
				"ca_file": func(p string, v *yaml.Node) {
					if s, ok := d.str(p, v); ok {
						c.Alerts.SMTP.CAFile = s
					}
				},
				"username": func(p string, v *yaml.Node) {
					if s, ok := d.str(p, v); ok {
						c.Alerts.SMTP.Username = s
					}
				},
				"password_file": func(p string, v *yaml.Node) {
					if s, ok := d.str(p, v); ok {
						c.Alerts.SMTP.PasswordFile = s
					}
				},
			})
		},
		"webhook_secret_file": func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok {
				c.Alerts.WebhookSecretFile = s
			}
		},
		"syslog": func(p string, v *yaml.Node) {
			d.mapping(v, p, map[string]fieldFunc{
				"server": func(p string, v *yaml.Node) {
					if s, ok := d.str(p, v); ok && s != "" {
						c.Alerts.Syslog.Server = s
						if err := checkHostPort(s); err != nil {
							d.at(p, "%v", err)
						}
					}
				},
				"tls":     func(p string, v *yaml.Node) { c.Alerts.Syslog.TLS = d.boolean(p, v, false) },
				"ca_file": func(p string, v *yaml.Node) { c.Alerts.Syslog.CAFile, _ = d.str(p, v) },
			})
		},
		"digest": func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok && s != "" {
				if err := checkDigest(s); err != nil {
					d.at(p, "%v", err)
					return
				}
				c.Alerts.Digest = s
			}
		},
		"severity": func(p string, v *yaml.Node) {
			for _, kv := range d.pairs(v, p, 0) {
				s, ok := d.str(p+"."+kv.key.Value, kv.value)
				if !ok {
					continue
				}
				if s != "high" && s != "medium" && s != "low" {
					d.at(p+"."+kv.key.Value, "%q must be high, medium or low", s)
					continue
				}
				if c.Alerts.Severity == nil {
					c.Alerts.Severity = map[string]string{}
				}
				c.Alerts.Severity[kv.key.Value] = s
			}
		},
		"retention": func(p string, v *yaml.Node) { d.retention(p, v, &c.Alerts.Retention) },
		"link": func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok && s != "" {
				if err := checkWebhook(s); err != nil {
					d.at(p, "%v", err)
					return
				}
				c.Alerts.Link = strings.TrimRight(s, "/")
			}
		},
		"dsl": func(p string, v *yaml.Node) {
			d.strList(p, v, func(ip, s string) {
				if err := checkEmail(s); err != nil {
					d.at(ip, "%v", err)
					return
				}
				c.Alerts.DSL = append(c.Alerts.DSL, s)
			})
		},
		"webhook": func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok && s != "" {
				c.Alerts.Webhook = s
				if err := checkWebhook(s); err != nil {
					d.at(p, "%v", err)
				}
			}
		},
	})
}

// checkEmail accepts bare addresses only: they are used as SMTP envelope
// addresses, where a display name has no place.
func checkEmail(s string) error {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return fmt.Errorf("%q is not an email address", s)
	}
	if a.Name != "" || a.Address != s {
		return fmt.Errorf("%q must be a bare email address like dsl@school.example, without a name or <>", s)
	}
	return nil
}

func checkWebhook(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q must be an http:// or https:// URL", s)
	}
	return nil
}

// checkDigest accepts "daily HH:MM" and "weekly Mon HH:MM".
func checkDigest(s string) error {
	f := strings.Fields(s)
	bad := fmt.Errorf("%q must be \"daily HH:MM\" or \"weekly Mon HH:MM\"", s)
	var hm string
	switch {
	case len(f) == 2 && f[0] == "daily":
		hm = f[1]
	case len(f) == 3 && f[0] == "weekly":
		ok := false
		for d := time.Sunday; d <= time.Saturday; d++ {
			ok = ok || strings.EqualFold(f[1], d.String()) || strings.EqualFold(f[1], d.String()[:3])
		}
		if !ok {
			return bad
		}
		hm = f[2]
	default:
		return bad
	}
	if _, err := time.Parse("15:04", hm); err != nil {
		return bad
	}
	return nil
}
