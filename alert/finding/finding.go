// Package finding is the one type every source of findings produces: the
// inspection engines, the DHCP server, the captive portal, the DNS guard and
// the RADIUS server. It is a leaf: it imports nothing of Gatehouse, so any
// source may build a Finding and offer it to the Sink it was given without
// importing package alert's internals.
//
// It owns the shape of a finding and the names of its sources and classes.
// It does not store findings, attribute them or decide who is told (package
// alert does).
package finding

import (
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Sources: which component saw it.
const (
	SourceInspect  = "inspect"
	SourceDHCP     = "dhcp"
	SourcePortal   = "portal"
	SourceDNSGuard = "dnsguard"
	SourceRADIUS   = "radius"
	// SourceGatehouse is Gatehouse watching itself (internal/recordwatch).
	SourceGatehouse = "gatehouse"
)

// Classes. The inspection classes keep inspect's names (inspect.Class*), so
// a stored finding reads the same whichever side converted it.
const (
	ClassVPN              = "vpn"
	ClassTor              = "tor"
	ClassProxy            = "proxy"
	ClassDoH              = "doh"
	ClassDoT              = "dot"
	ClassDoQ              = "doq"
	ClassECH              = "ech"
	ClassSSH              = "ssh"
	ClassRemoteAccess     = "remote-access"
	ClassTunnel           = "tunnel"
	ClassTethering        = "tethering"
	ClassUnapprovedDevice = "unapproved-device"
	ClassRogueDHCP        = "rogue-dhcp"
	ClassPoolExhausted    = "pool-exhausted"  // dhcp: a segment ran out of addresses
	ClassCodeGuessing     = "code-guessing"   // portal: the brute-force breaker tripped
	ClassBlockedLookup    = "blocked-lookup"  // DNS guard: a listed DoH/VPN name was asked for
	ClassRecordsDropped   = "records-dropped" // gatehouse: records were lost (full queue, failed writes)
	ClassDiskLow          = "disk-low"        // gatehouse: the database's disk is nearly full
)

// Classes lists every class in a stable order.
var Classes = []string{
	ClassVPN, ClassTor, ClassProxy, ClassDoH, ClassDoT, ClassDoQ, ClassECH,
	ClassSSH, ClassRemoteAccess, ClassTunnel, ClassTethering,
	ClassUnapprovedDevice, ClassRogueDHCP, ClassPoolExhausted, ClassCodeGuessing, ClassBlockedLookup,
	ClassRecordsDropped, ClassDiskLow,
}

// Details of unapproved-device, so the label says what was seen.
const (
	// DetailNeverLeased: traffic from a MAC our DHCP server never gave an
	// address to (it set its own).
	DetailNeverLeased = "unknown-mac"
	// DetailNotApproved: the device asked for an address (DHCP) or to join
	// (RADIUS MAB) and nobody has approved it.
	DetailNotApproved = "not-approved"
)

// NotApproved is the unapproved-device finding of a device that asked to
// join (a DHCP request, a RADIUS MAB request) and that nobody approved, on
// a segment whose unknown_devices asks to hear of it: DHCP raises it with
// SourceDHCP; RADIUS builds its own with SourceRADIUS.
func NotApproved(source string, at time.Time, segment string, mac net.HardwareAddr, ip netip.Addr, evidence string) Finding {
	return Finding{Time: at, Source: source, Class: ClassUnapprovedDevice, Segment: segment,
		SrcMAC: append(net.HardwareAddr(nil), mac...), SrcIP: ip, Detail: DetailNotApproved, Evidence: evidence}
}

// Finding is one observation of a bypass attempt or a device problem.
// Src is the device on our side (for rogue-dhcp the rogue server; empty for
// site-wide findings such as pool-exhausted), Dst the far end.
type Finding struct {
	Time     time.Time
	Source   string // Source*
	Class    string // Class*
	Segment  string // "" when the source could not tell
	SrcIP    netip.Addr
	SrcMAC   net.HardwareAddr
	DstIP    netip.Addr
	DstPort  uint16
	Proto    string
	Detail   string // a short machine word: "openvpn", "not-approved", the SNI
	Evidence string // what was seen, for the technical part of the alert
	// Confidence is how sure the source was: the inspect engine's
	// "certain", "likely" or "attempt" (the server never answered); ""
	// from sources that do not grade.
	Confidence string
}

// Valid reports whether f has what every finding needs: a time, a source
// and a class.
func (f Finding) Valid() error {
	if f.Time.IsZero() || f.Class == "" || f.Source == "" {
		return fmt.Errorf("finding: needs a time, a source and a class (got %v, %q, %q)", f.Time, f.Source, f.Class)
	}
	return nil
}

// String renders the finding as one readable line.
func (f Finding) String() string {
	mac := "-"
	if len(f.SrcMAC) > 0 {
		mac = f.SrcMAC.String()
	}
	dst := "-"
	if f.DstIP.IsValid() {
		dst = netip.AddrPortFrom(f.DstIP, f.DstPort).String()
	}
	return fmt.Sprintf("%s %s/%s segment=%s src=%s mac=%s dst=%s proto=%s detail=%s evidence=%q",
		f.Time.UTC().Format(time.RFC3339Nano), f.Source, f.Class, f.Segment, f.SrcIP, mac, dst, f.Proto, f.Detail, f.Evidence)
}

// Sink takes findings from a source and must not lose them. The daemon
// builds one sink, the finding store's, and hands it to every source (DHCP,
// RADIUS, the portal, the DNS query log, inspection) as its
// Options.Findings: it is the only way a finding leaves its source. That
// sink stores every finding that is not noise or over its device's budget,
// writing at once rather than dropping when its queue is full. Findings do
// not go on the event hub, which drops (counted) for a subscriber that falls
// behind: right for observers, wrong for what the DSL must be told.
// Offer may block briefly (a direct database write) under a flood.
type Sink interface {
	Offer(Finding)
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(Finding)

// Offer calls fn(f).
func (fn SinkFunc) Offer(f Finding) { fn(f) }

// Discard is the Sink of a source built without one (a benchmark, a test
// that does not look at findings): it drops every finding. The daemon never
// uses it.
type Discard struct{}

// Offer drops f.
func (Discard) Offer(Finding) {}
