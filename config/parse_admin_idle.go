package config

// Decoding of admin.idle_timeout and the advice check-config prints about
// settings that work but that a person will notice.

import (
	"time"

	"gopkg.in/yaml.v3"
)

// idleRoles are the roles admin.idle_timeout takes (the store's roles; the
// config package imports no feature package).
var idleRoles = []string{"reception", "network", "dsl"}

// MaxIdleTimeout is the longest admin.idle_timeout: a kiosk's school day.
const MaxIdleTimeout = 16 * time.Hour

// adminIdle reads admin.idle_timeout, a map of role to duration:
//
//	idle_timeout:
//	  reception: 9h
func (d *decoder) adminIdle(c *Config, path string, v *yaml.Node) {
	fields := map[string]fieldFunc{}
	for _, role := range idleRoles {
		fields[role] = func(p string, v *yaml.Node) {
			dur := time.Duration(0)
			d.duration(p, v, &dur, time.Minute, "an idle timeout", "30m or 9h")
			if dur > MaxIdleTimeout {
				d.at(p, "an idle timeout of %s is longer than the maximum of %s", dur, MaxIdleTimeout)
				return
			}
			if dur > 0 {
				if c.Admin.IdleTimeout == nil {
					c.Admin.IdleTimeout = map[string]time.Duration{}
				}
				c.Admin.IdleTimeout[role] = dur
			}
		}
	}
	d.mapping(v, path, fields)
}

// Advice lists settings that are valid but that people will notice: a
// visitor slip with no network name on it. check-config prints them as
// warnings; run starts regardless.
func (c *Config) Advice() []Problem {
	var ps []Problem
	if c.Site.GuestSSID == "" {
		ps = append(ps, c.Problemf("site.guest_ssid", "not set: visitor slips cannot say which Wi-Fi network to join (and carry no join QR code)"))
	}
	return ps
}
