package alert

import (
	"bytes"
	"net"
	"net/netip"

	"github.com/gatehouse-net/gatehouse/alert/finding"
	"github.com/gatehouse-net/gatehouse/policy"
)

// Noise decides which findings are not findings at all: the router's own
// addresses and MACs (its interfaces, its gateways), and unapproved-device
// on a segment whose unknown_devices welcomes strangers. Its Ignore is the
// findingstore's Options.Ignore, so noise is never stored.
type Noise struct {
	OwnIPs  []netip.Addr
	OwnMACs []net.HardwareAddr
	// UnknownDevices maps a segment to its unknown_devices mode. A segment
	// missing from the map is treated as "alert" (better one finding too
	// many than a stranger nobody hears of).
	UnknownDevices map[string]policy.UnknownDevices
}

// Ignore returns why f is noise, or "" when it is a finding.
func (n *Noise) Ignore(f finding.Finding) string {
	if f.SrcIP.IsValid() {
		a := f.SrcIP.Unmap()
		for _, o := range n.OwnIPs {
			if o.Unmap() == a {
				return "the router's own address"
			}
		}
	}
	for _, m := range n.OwnMACs {
		if len(f.SrcMAC) > 0 && bytes.Equal(m, f.SrcMAC) {
			return "the router's own MAC"
		}
	}
	if f.Class == finding.ClassUnapprovedDevice && f.Segment != "" {
		if mode, ok := n.UnknownDevices[f.Segment]; ok && mode == policy.UnknownAllow {
			return "unknown devices are allowed on " + f.Segment
		}
	}
	return ""
}
