package config

// Decoding of the configuration file's inspect section.

import (
	"gopkg.in/yaml.v3"
)

func (d *decoder) inspect(c *Config, path string, v *yaml.Node) {
	d.mapping(v, path, map[string]fieldFunc{
		"interfaces": func(p string, v *yaml.Node) {
			seen := map[string]string{}
			d.strList(p, v, func(ip, s string) {
				if s == "" {
					d.at(ip, "interface name is empty")
					return
				}
				if err := checkInterfaceName(s); err != nil {
					d.at(ip, "%v", err)
					return
				}
				if prev, dup := seen[s]; dup {
					d.at(ip, "interface %q is already listed at %s", s, prev)
					return
				}
				seen[s] = ip
				c.Inspect.Interfaces = append(c.Inspect.Interfaces, s)
			})
		},
		"retention": func(p string, v *yaml.Node) { d.retention(p, v, &c.Inspect.Retention) },
		// flow_retention: how long the flow log behind alert timelines is kept.
		"flow_retention": func(p string, v *yaml.Node) { d.retention(p, v, &c.Inspect.FlowRetention) },
		// min_confidence: {default: attempt, vpn: likely}: per finding
		// class (or "default"), the least confidence that is reported. The
		// class names are checked by the daemon against inspection's own.
		"min_confidence": func(p string, v *yaml.Node) {
			for _, kv := range d.pairs(v, p, 0) {
				kp := p + "." + kv.key.Value
				s, ok := d.str(kp, kv.value)
				if !ok {
					continue
				}
				if s != "attempt" && s != "likely" && s != "certain" {
					d.at(kp, "%q must be attempt, likely or certain", s)
					continue
				}
				if c.Inspect.MinConfidence == nil {
					c.Inspect.MinConfidence = map[string]string{}
				}
				c.Inspect.MinConfidence[kv.key.Value] = s
			}
		},
		// signatures: a signatures file used instead of the shipped one.
		"signatures": func(p string, v *yaml.Node) {
			if s, ok := d.str(p, v); ok {
				c.Inspect.Signatures = s
			}
		},
		// Memory: the ring is resident for every interface, the table
		// grows to its bound under a scan.
		"capture_ring_kib": func(p string, v *yaml.Node) {
			if n, ok := d.integer(p, v); ok {
				if n < MinCaptureRingKiB || n > MaxCaptureRingKiB {
					d.at(p, "must be %d to %d (KiB per interface), not %d", MinCaptureRingKiB, MaxCaptureRingKiB, n)
					return
				}
				c.Inspect.CaptureRingKiB = n
			}
		},
		"max_flows": func(p string, v *yaml.Node) {
			if n, ok := d.integer(p, v); ok {
				if n < MinInspectFlows || n > MaxInspectFlows {
					d.at(p, "must be %d to %d (flows per interface), not %d", MinInspectFlows, MaxInspectFlows, n)
					return
				}
				c.Inspect.MaxFlows = n
			}
		},
	})
}
