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
//
// It does not own what a segment does by default. Package policy holds every
// segment default (what staff, pupil, byod and visitor may reach, which of
// them flag, quarantine or refuse unknown devices, where Private Relay is
// blocked) in one place, so that the kernel, the DHCP server and the DNS
// guard cannot disagree. This package only knows the names it validates:
// segments[].unknown_devices is checked against its four modes and left
// empty when the file gives none, meaning "the segment's default".
package config

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/gatehouse-net/gatehouse/policy"
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
	// Hostnames are the names the admin page may be reached by (its Host
	// header), besides "localhost" and IP addresses; a request naming
	// another host is refused, which stops DNS rebinding. Optional.
	Hostnames []string
	// MetricsFrom are addresses allowed to scrape /metrics without a token.
	// Optional; empty means /metrics needs the network role.
	MetricsFrom []netip.Prefix
	// IdleTimeout is, per role, how long a signed-in browser may make no
	// request before it must sign in again (a reception kiosk stays signed
	// in through opening hours). Optional; nil or a missing role: the
	// admin page's default (30 minutes).
	IdleTimeout map[string]time.Duration
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
	// UnknownDevices is what happens to a device nobody approved, as the
	// file gives it: alert, quarantine, deny or allow; empty when the file
	// gives none, which means the segment's default (see policy.Defaults:
	// the modes and defaults live there, not here).
	UnknownDevices policy.UnknownDevices
	// SSIDs are the Wi-Fi networks that put a device on this segment: a
	// RADIUS request names its SSID in Called-Station-Id. Unique across
	// segments; optional.
	SSIDs []string
	// MACIPBinding forwards only the MAC and address pairs the router
	// handed out (DHCP leases, reservations) or admitted: a copied or
	// static address gets nothing through. On unless the file says
	// mac_ip_binding: false.
	MACIPBinding bool
}

// DHCP is a segment's DHCPv4 pool.
type DHCP struct {
	RangeStart, RangeEnd netip.Addr // inclusive, inside the subnet
	Lease                time.Duration
	// RapidCommit allows two-message exchanges (RFC 4039); off by default.
	RapidCommit bool
	// NewDevicesPerMinute caps the never-seen devices offered an address per
	// minute; 0 means the server's default.
	NewDevicesPerMinute int
}

// Enabled reports whether the segment has a DHCP pool.
func (d DHCP) Enabled() bool { return d.RangeStart.IsValid() }

// DNS is where the forced school DNS forwards to.
type DNS struct {
	Upstream   []netip.AddrPort // port 53 when the file gives none
	SafeSearch bool
	// LogRetention is how long the per-client query log is kept.
	LogRetention time.Duration
	// ClientQPS (dns.client_qps) is each client's sustained query rate at
	// the DNS guard, twice as many in a burst; 0 is the guard's default
	// (50/s). A load test from one address raises it.
	ClientQPS int
}

// RADIUS is the RADIUS server's listeners and the peers allowed to use it.
type RADIUS struct {
	Auth, Accounting string // host:port listen addresses
	Clients          []RADIUSClient
	// InterimInterval is the Acct-Interim-Interval sent in every
	// Access-Accept: how often access points report a session's counters.
	InterimInterval time.Duration
	// StoreNTHash (radius.store_nt_hash) keeps every Wi-Fi password also
	// as an NT hash, sealed with the site key, which MSCHAPv2 (PEAP,
	// TTLS-MSCHAPv2) needs; false (the default) stores none and removes
	// any left over at start. The daemon also turns it on when an enabled
	// EAP method needs MSCHAPv2.
	StoreNTHash bool
	// EAP is WPA-Enterprise's certificates and onboarding (parse_eap.go).
	EAP EAP
}

// DefaultInterimInterval is radius.interim_interval when the file gives none.
const DefaultInterimInterval = 10 * time.Minute

// MinInterimInterval is the shortest interval RFC 2869 lets a server ask for.
const MinInterimInterval = time.Minute

// RADIUSClient is an access point or controller allowed to talk RADIUS to us.
type RADIUSClient struct {
	Name       string
	Address    netip.Prefix // a single address is stored as a /32 (or /128)
	SecretFile string       // file holding the shared secret; read by package radius
	CoAPort    int          // where CoA/Disconnect requests are sent
	// RequireMessageAuthenticator drops every Access-Request without a
	// valid Message-Authenticator (CVE-2024-3596, BlastRADIUS). True unless
	// the file sets require_message_authenticator: false for an old access
	// point that cannot send one.
	RequireMessageAuthenticator bool
	// Segment (radius.clients[].segment) is where this client's logins go
	// when they name no SSID a segment serves: an 802.1X switch port sends
	// no SSID at all. "" sends such logins nowhere (rejected).
	Segment string
}

// Inspect lists the interfaces packet inspection captures on.
type Inspect struct {
	Interfaces []string
	// Retention is how long findings are kept.
	Retention time.Duration
	// FlowRetention is how long the flow log (the alert timeline's flows)
	// is kept; 0 means store.DefaultFlowRetention.
	FlowRetention time.Duration
	// MinConfidence maps a finding class (or "default") to the least
	// confidence reported: "attempt", "likely" or "certain". Empty
	// reports everything.
	MinConfidence map[string]string
	// Signatures is the path of a signatures file used instead of the one
	// shipped with inspection; "" uses the shipped one.
	Signatures string
	// CaptureRingKiB sizes each interface's capture ring (0: inspection's
	// default, 256 KiB); it is resident memory for every interface.
	CaptureRingKiB int
	// MaxFlows bounds each interface's flow table (0: inspection's
	// default, 16384 flows, about 8 MiB at most).
	MaxFlows int
}

// Bounds of the inspect section's sizes.
const (
	MinCaptureRingKiB = 64
	MaxCaptureRingKiB = 256 << 10
	MinInspectFlows   = 256
	MaxInspectFlows   = 1 << 20
)

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
	// DeviceRetention is how long a device's record is kept after it was
	// last seen ("dhcp.device_retention"); 0 means the DHCP server's
	// default (400 days).
	DeviceRetention time.Duration
	// PacketsPerSecond bounds the DHCP requests each interface's socket
	// takes ("dhcp.packets_per_second"); 0 means the DHCP server's default
	// (200). A relay interface carrying many switches' clients may need
	// more.
	PacketsPerSecond int
}

// Alerts is how the DSL is told about findings.
type Alerts struct {
	SMTP    SMTP
	DSL     []string // bare email addresses
	Webhook string   // http(s) URL, empty for none
	// WebhookSecretFile holds the HMAC-SHA256 key the webhook's body is
	// signed with; "" signs with an empty key (the receiver should insist
	// on one).
	WebhookSecretFile string
	Syslog            Syslog
	// Digest is when the digest of medium and low alerts goes out:
	// "daily HH:MM" or "weekly Mon HH:MM", local time; "" means weekly
	// Monday 07:30.
	Digest string
	// Severity overrides a class's default severity (high, medium, low).
	Severity map[string]string
	// Retention is how long closed alerts and their notes are kept; 0
	// means DefaultAlertRetention.
	Retention time.Duration
	// Link is the admin page's address as the DSL's mail client reaches
	// it, for the link in each email ("https://gatehouse.school.example");
	// "" means https:// and admin.listen.
	Link string
}

// DefaultAlertRetention keeps a safeguarding case for a school year and a
// term after it closes.
const DefaultAlertRetention = 500 * 24 * time.Hour

// Syslog is the SIEM the alerts are also sent to (RFC 5424 over TCP).
type Syslog struct {
	Server string // host:port; "" for none
	TLS    bool   // RFC 5425
	CAFile string // PEM roots for TLS; "" means the system's
}

// SMTP is the mail relay used for DSL notifications.
type SMTP struct {
	Server       string // host:port
	From         string // bare email address
	StartTLS     string // auto (default), always or never
	CAFile       string // PEM roots the relay's certificate is checked against; "" means the system's
	Username     string // "" sends without AUTH
	PasswordFile string
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
