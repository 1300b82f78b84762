package events

import (
	"net"
	"net/netip"
	"time"
)

// The payload types shared between components. Each is its own topic: a
// subscriber to LeaseGranted hears every granted lease, whoever granted it.
// Findings are not events: they go to a finding.Sink (alert/finding).

// LeaseGranted is a DHCP lease bound or renewed.
type LeaseGranted struct {
	Segment  string
	MAC      net.HardwareAddr
	IP       netip.Addr
	Hostname string
	Start    time.Time
	Expires  time.Time
}

// LeaseReleased is a DHCP lease given back by the client (DHCPRELEASE) or
// taken back by the server.
type LeaseReleased struct {
	Segment string
	MAC     net.HardwareAddr // nil for a declined address
	IP      netip.Addr
	At      time.Time
}

// Where a session was started.
const (
	SourcePortal = "portal" // a guest signed in at the captive portal
	SourceRADIUS = "radius" // RADIUS accounting
)

// SessionStarted is a device's session beginning: a guest admitted at the
// portal (Source "portal", with VoucherID and Until) or a Wi-Fi session in
// RADIUS accounting (Source "radius", with Username, AccessPoint, SSID).
type SessionStarted struct {
	Source      string
	At          time.Time
	MAC         net.HardwareAddr
	IP          netip.Addr
	VoucherID   int64     // portal
	Until       time.Time // portal: when the admission ends
	Reason      string    // portal: "redeemed", "returned"
	Username    string    // radius
	Person      string    // radius: the person the username or device belongs to, if known
	AccessPoint string    // radius
	SSID        string    // radius
	SessionID   string    // radius: Acct-Session-Id
}

// SessionEnded is a device's session ending, as SessionStarted names it.
type SessionEnded struct {
	Source    string
	At        time.Time
	MAC       net.HardwareAddr
	IP        netip.Addr
	VoucherID int64  // portal
	Reason    string // portal: "logout", "revoked", "expired"; radius: the terminate cause
	Username  string // radius
	SessionID string // radius
}

// PersonRevoked is a person's access ended (a leaver): their devices are
// refused everywhere.
type PersonRevoked struct {
	RevocationID int64
	PersonID     int64
	Reason       string
	Devices      []net.HardwareAddr
	At           time.Time
}

// DNSQuery is one lookup the DNS guard answered, as the query log records
// it.
type DNSQuery struct {
	Time    time.Time
	Client  netip.Addr
	MAC     net.HardwareAddr // nil when unknown
	Segment string
	Name    string
	Type    string
	Answer  string // the guard's summary: addresses, "cname TARGET", or an rcode
	Action  string // what the guard did: dnsguard.Action's values ("forwarded", "blocked", ...)
}

// ConfigReloaded is a configuration file applied by a reload.
type ConfigReloaded struct {
	Path    string
	Applied []string // sections applied at once
	Restart []string // sections that take effect at the next restart
	At      time.Time
}
