package config

// Decoding of the configuration file's radius section.

import (
	"net/netip"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

func (d *decoder) radius(c *Config, path string, v *yaml.Node) {
	listen := func(dst *string) fieldFunc {
		return func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok && s != "" {
				*dst = s
				if err := checkHostPort(s); err != nil {
					d.at(p, "%v", err)
				}
			}
		}
	}
	dir := filepath.Dir(d.file)
	c.RADIUS.InterimInterval = DefaultInterimInterval
	d.mapping(v, path, map[string]fieldFunc{
		"interim_interval": func(p string, v *yaml.Node) {
			d.duration(p, v, &c.RADIUS.InterimInterval, MinInterimInterval, "interim interval", "10m or 1h")
		},
		"store_nt_hash": func(p string, v *yaml.Node) {
			c.RADIUS.StoreNTHash = d.boolean(p, v, false)
		},
		"eap":        func(p string, v *yaml.Node) { d.radiusEAP(c, p, v) },
		"auth":       listen(&c.RADIUS.Auth),
		"accounting": listen(&c.RADIUS.Accounting),
		"clients": func(p string, v *yaml.Node) {
			d.list(p, v, func(_ int, ip string, item *yaml.Node) {
				if isNull(resolve(item)) {
					d.at(ip, "empty entry; a RADIUS client needs name, address and secret_file")
					return
				}
				rc := d.radiusClient(ip, item)
				rc.SecretFile = relTo(dir, rc.SecretFile)
				c.RADIUS.Clients = append(c.RADIUS.Clients, rc)
			})
		},
	})
}

func (d *decoder) radiusClient(path string, v *yaml.Node) RADIUSClient {
	rc := RADIUSClient{CoAPort: DefaultCoAPort, RequireMessageAuthenticator: true}
	d.mapping(v, path, map[string]fieldFunc{
		"name": func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok && s != "" {
				rc.Name = s
				if err := checkName(s); err != nil {
					d.at(p, "%v", err)
				}
			}
		},
		"address": func(p string, v *yaml.Node) {
			s, ok := d.str(p, v)
			if !ok || s == "" {
				return
			}
			// A single access point is naturally written as its address.
			if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
				rc.Address = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
				return
			}
			pfx, err := parsePrefix(s, false)
			if err != nil {
				d.at(p, "%v", err)
				return
			}
			rc.Address = pfx
		},
		"secret_file": func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok {
				rc.SecretFile = s
			}
		},
		"segment": func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok {
				rc.Segment = s
			}
		},
		"require_message_authenticator": func(p string, v *yaml.Node) {
			rc.RequireMessageAuthenticator = d.boolean(p, v, true)
		},
		"coa_port": func(p string, v *yaml.Node) {
			if port, ok := d.integer(p, v); ok {
				if port < 1 || port > 65535 {
					d.at(p, "port %d is out of range 1..65535", port)
				} else {
					rc.CoAPort = port
				}
			}
		},
	})
	if r := resolve(v); r == nil || r.Kind != yaml.MappingNode {
		return rc
	}
	for _, r := range []struct {
		field string
		set   bool
	}{{"name", rc.Name != ""}, {"address", rc.Address.IsValid()}, {"secret_file", rc.SecretFile != ""}} {
		f := join(path, r.field)
		if !r.set {
			d.missing(f, path, "every RADIUS client needs name, address and secret_file")
		}
	}
	return rc
}
