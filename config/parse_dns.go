package config

// Decoding of the configuration file's dns section and retention periods.

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

func (d *decoder) dns(c *Config, path string, v *yaml.Node) {
	d.mapping(v, path, map[string]fieldFunc{
		"upstream": func(p string, v *yaml.Node) {
			d.strList(p, v, func(ip, s string) {
				ap, err := parseUpstream(s)
				if err != nil {
					d.at(ip, "%v", err)
					return
				}
				c.DNS.Upstream = append(c.DNS.Upstream, ap)
			})
		},
		"safesearch":    func(p string, v *yaml.Node) { c.DNS.SafeSearch = d.boolean(p, v, true) },
		"log_retention": func(p string, v *yaml.Node) { d.retention(p, v, &c.DNS.LogRetention) },
		"client_qps": func(p string, v *yaml.Node) {
			if n, ok := d.integer(p, v); ok {
				if n < 1 || n > 10_000_000 {
					d.at(p, "%d queries a second per client: want 1 to 10000000", n)
					return
				}
				c.DNS.ClientQPS = n
			}
		},
	})
}

// retention reads a period like 30d or 720h into dst.
func (d *decoder) retention(p string, v *yaml.Node, dst *time.Duration) {
	s, ok := d.str(p, v)
	if !ok || s == "" {
		return
	}
	r, err := parseRetention(s)
	if err != nil {
		d.at(p, "%v", err)
		return
	}
	*dst = r
}

// parseRetention takes whole days ("90d") or a Go duration ("720h"); a
// network manager thinks of retention in days.
func parseRetention(s string) (time.Duration, error) {
	var r time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%q is not a number of days; write it like 30d", s)
		}
		r = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if r, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%q is not a period; write it like 30d or 720h", s)
		}
	}
	if r < MinRetention {
		return 0, fmt.Errorf("retention %s is shorter than a day", s)
	}
	return r, nil
}
