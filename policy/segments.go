package policy

import "net/netip"

// UnknownDevices is what a segment does with a device nobody approved. The
// DHCP server acts on it when the device asks for a lease; the kernel acts
// on it for every packet, so that a device that gives itself an address is
// treated no better than one that asked.
type UnknownDevices string

// The modes, as segments[].unknown_devices names them. These are the one
// definition: the configuration parser, the DHCP and RADIUS servers and the
// alert pipeline's noise filter all take this type.
const (
	// UnknownAllow welcomes it: it gets a lease and the segment's defaults,
	// as any device does.
	UnknownAllow UnknownDevices = "allow"
	// UnknownAlert leases it and flags it (an unapproved-device finding);
	// it gets the segment's defaults while someone looks.
	UnknownAlert UnknownDevices = "alert"
	// UnknownQuarantine leases it into quarantine: it reaches nothing but
	// the router (DNS, DHCP, the portal page its web traffic is sent to)
	// until it is approved.
	UnknownQuarantine UnknownDevices = "quarantine"
	// UnknownDeny refuses it a lease, and the kernel forwards nothing from
	// it until it is approved.
	UnknownDeny UnknownDevices = "deny"
)

// Valid reports whether u is one of the modes, or "" (the segment's
// default).
func (u UnknownDevices) Valid() bool {
	switch u {
	case "", UnknownAllow, UnknownAlert, UnknownQuarantine, UnknownDeny:
		return true
	}
	return false
}

// Welcomes reports whether a device nobody approved is simply let on, with
// no finding: allow, or "" where a component was given no mode.
func (u UnknownDevices) Welcomes() bool { return u == "" || u == UnknownAllow }

// RequireApproval reports whether the kernel forwards only approved MACs on
// a segment in this mode.
func (u UnknownDevices) RequireApproval() bool {
	return u == UnknownQuarantine || u == UnknownDeny
}

// WithUnknownDevices returns s with the school's choice for unknown devices;
// an empty choice (the configuration gave none) keeps the default.
func (s SegmentSpec) WithUnknownDevices(u UnknownDevices) SegmentSpec {
	if u != "" {
		s.UnknownDevices = u
	}
	return s
}

// RequireApproval reports whether the segment forwards only approved MACs.
func (s SegmentSpec) RequireApproval() bool { return s.UnknownDevices.RequireApproval() }

// VisitorRateLimit is the built-in per-visitor cap: 10 Mbit/s each way.
const VisitorRateLimit = 10_000_000 / 8

// DefaultUnknownDevices is the mode of a segment the school did not give
// one: staff and pupil devices are expected to be approved, so a stranger
// there is flagged; BYOD and visitor segments welcome anyone (a visitor
// still meets the portal).
func DefaultUnknownDevices(segment string) UnknownDevices {
	if segment == "staff" || segment == "pupil" {
		return UnknownAlert
	}
	return UnknownAllow
}

// Defaults returns the built-in defaults of DESIGN.md for a segment: this is
// the one place they are written down, for the kernel, the DHCP server and
// the DNS guard alike. The four built-in names get their table's rules; any
// other name gets nothing but DNS and the router until the school writes
// rules for it. Unknown devices get DefaultUnknownDevices(name); a school
// that chose otherwise sets the spec's UnknownDevices (see WithUnknownDevices).
func Defaults(name, iface string, subnet netip.Prefix, gateway netip.Addr, portal bool) SegmentSpec {
	s := SegmentSpec{Name: name, Interface: iface, Subnet: subnet, Gateway: gateway, Portal: portal,
		UnknownDevices: DefaultUnknownDevices(name)}
	switch name {
	case "staff":
		s.Internet = true
		s.Servers = []string{"mis"}
	case "pupil":
		s.Internet = true
		s.Isolate = true
	case "byod":
		s.Internet = true
	case "visitor":
		s.Internet = true
		s.Isolate = true
		s.Portal = true
		s.RateLimit = VisitorRateLimit
	}
	// Pupils and guests are who the school's web filtering is for.
	s.BlockPrivateRelay = name == "pupil" || s.Portal
	return s
}

// SegmentsWith names the segments whose unknown devices get mode u, in the
// order the network lists them.
func (n Network) SegmentsWith(u UnknownDevices) []string {
	var out []string
	for _, s := range n.Segments {
		if s.UnknownDevices == u {
			out = append(out, s.Name)
		}
	}
	return out
}
