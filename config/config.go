// Package config loads and validates Gatehouse's one YAML configuration file:
// the network layout of the school (site, interfaces, segments, subnets, DHCP
// ranges, named server subnets, DNS upstreams, RADIUS peers, inspection and
// alert delivery).
//
// It owns the file format, its defaults and every check that can be made from
// the file alone (Parse), plus the checks that need this machine (HostProblems:
// interfaces, database directory, secret files). It does not own people,
// devices, vouchers or rules (those live in the database, see package store),
// and it never changes the machine: it creates no directories and touches no
// interfaces.
//
// The file is decoded through yaml.Node rather than into structs so that every
// problem can name the file, the line and the YAML path of the field, and so
// that all problems are reported at once instead of the first one only.
//
// Relative paths in the file (database, admin.cert_file, admin.key_file,
// radius.clients[].secret_file) are taken relative to the directory of the
// configuration file, so a configuration and its secrets can be moved together.
package config

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"
)

// MaxFileSize bounds the configuration file. A router's network layout is a
// few kilobytes; the bound keeps a wrong path (a disk image, a log) or a YAML
// alias bomb from being read into memory.
const MaxFileSize = 1 << 20

// Config is a parsed and validated configuration file.
type Config struct {
	Path     string // file it came from
	Site     Site
	Database string
	Admin    Admin
	Uplink   Uplink
	Segments []Segment
	Servers  map[string]netip.Prefix
	DNS      DNS
	RADIUS   RADIUS
	Inspect  Inspect
	// DHCPRelay is the top-level "dhcp:" section.
	DHCPRelay DHCPRelay
	Portal    Portal
	Alerts    Alerts
	People    People

	// lines maps a YAML path ("segments[1].dhcp.range") to the line it was
	// found on, so that later checks (HostProblems, other packages through
	// Line) can point at the file.
	lines map[string]int
}

// Site names the school and the time zone its timetable is in.
type Site struct {
	Name     string
	Timezone string         // as written; "Local" when omitted
	Location *time.Location // Timezone loaded; never nil in a parsed Config
	// GuestSSID is the visitor Wi-Fi's name, printed on voucher slips;
	// optional.
	GuestSSID string
}

// Admin is the admin web server's listener and certificate.
type Admin struct {
	Listen string // host:port
	TLS    string // "auto" (self-signed pair made on first start) or "files"
	// CertFile and KeyFile are the certificate pair. For "files" they are
	// required and must exist; for "auto" they are where the self-signed pair
	// is kept, by default admin-cert.pem and admin-key.pem next to the database.
	CertFile, KeyFile string
}

// Uplink is the interface towards the internet.
type Uplink struct {
	Interface string // empty when the file names none
}

// Segment is one VLAN of the school network.
type Segment struct {
	Name      string
	VLAN      int // 1..4094; 0 when the file gives none
	Interface string
	Subnet    netip.Prefix // IPv4, canonical (no host bits)
	Gateway   netip.Addr   // the router's address on the segment
	DHCP      DHCP         // zero when the segment has no dhcp block
	Portal    bool         // visitors see nothing but the captive portal until a code is redeemed
	// UnknownDevices is what happens to a device nobody approved: alert,
	// quarantine, deny or allow. When the file gives none, staff and pupil
	// segments alert and the others allow (see DefaultUnknownDevices).
	UnknownDevices string
}

// The modes of segments[].unknown_devices.
const (
	UnknownAlert      = "alert"      // lease it and raise an unapproved-device finding
	UnknownQuarantine = "quarantine" // lease it into quarantine: nothing but the portal
	UnknownDeny       = "deny"       // no lease
	UnknownAllow      = "allow"      // every device is welcome
)

// DefaultUnknownDevices is the mode of a segment whose file gives none:
// DESIGN.md has staff and pupil devices approved, so strangers there are
// flagged; BYOD and visitor segments take anyone.
func DefaultUnknownDevices(segment string) string {
	if segment == "staff" || segment == "pupil" {
		return UnknownAlert
	}
	return UnknownAllow
}

// DHCP is a segment's DHCPv4 pool.
type DHCP struct {
	RangeStart, RangeEnd netip.Addr // inclusive, inside the subnet
	Lease                time.Duration
}

// Enabled reports whether the segment has a DHCP pool.
func (d DHCP) Enabled() bool { return d.RangeStart.IsValid() }

// DNS is where the forced school DNS forwards to.
type DNS struct {
	Upstream   []netip.AddrPort // port 53 when the file gives none
	SafeSearch bool
	// LogRetention is how long the per-client query log is kept.
	LogRetention time.Duration
}

// RADIUS is the RADIUS server's listeners and the peers allowed to use it.
type RADIUS struct {
	Auth, Accounting string // host:port listen addresses
	Clients          []RADIUSClient
}

// RADIUSClient is an access point or controller allowed to talk RADIUS to us.
type RADIUSClient struct {
	Name       string
	Address    netip.Prefix // a single address is stored as a /32 (or /128)
	SecretFile string       // file holding the shared secret; read by package radius
	CoAPort    int          // where CoA/Disconnect requests are sent
}

// Inspect lists the interfaces packet inspection captures on.
type Inspect struct {
	Interfaces []string
	// Retention is how long findings are kept.
	Retention time.Duration
}

// Portal is the captive portal's optional HTTPS and how long guests'
// records are kept. With Host, CertFile and KeyFile set, the portal and its
// RFC 8908 API are served over HTTPS at https://Host/; phones only trust a
// publicly trusted certificate for Host, and the school's resolver must
// answer Host with the visitor segment's gateway address.
type Portal struct {
	Host              string
	CertFile, KeyFile string
	// Retention is how long acceptance records and code attempts are kept.
	Retention time.Duration
}

// DHCPRelay is where relayed DHCP requests come from. A request whose relay
// address (giaddr) is set is served from the segment whose subnet holds
// giaddr, but only when it arrives from a trusted relay: otherwise any client
// could draw addresses from another segment's pool.
type DHCPRelay struct {
	Interfaces []string       // extra interfaces that only carry relayed traffic
	Trusted    []netip.Prefix // relays' source addresses
}

// Alerts is how the DSL is told about findings.
type Alerts struct {
	SMTP    SMTP
	DSL     []string // bare email addresses
	Webhook string   // http(s) URL, empty for none
}

// SMTP is the mail relay used for DSL notifications.
type SMTP struct {
	Server string // host:port
	From   string // bare email address
}

// Load reads the file at path and parses it.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: open %s: %w", path, err)
	}
	defer f.Close()
	// Read one byte more than allowed so Parse sees an oversized file as
	// such without all of it being read.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	return Parse(path, data)
}

// Segment returns the segment called name.
func (c *Config) Segment(name string) (Segment, bool) {
	for _, s := range c.Segments {
		if s.Name == name {
			return s, true
		}
	}
	return Segment{}, false
}

// Line returns the line of the file the field at the YAML path (for example
// "segments[1].subnet") was read from, or 0 when the file did not set it. Other
// packages use it to point their own complaints about the configuration at
// the right place.
func (c *Config) Line(field string) int {
	return c.lines[field]
}

// Problemf makes a Problem about field, located in this configuration's file.
func (c *Config) Problemf(field, format string, args ...any) Problem {
	return Problem{File: c.Path, Line: c.Line(field), Field: field, Msg: fmt.Sprintf(format, args...)}
}
