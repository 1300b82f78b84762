package config

// Decoding of the configuration file's alerts section.

import (
	"fmt"
	"net/mail"
	"net/url"

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
			})
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
