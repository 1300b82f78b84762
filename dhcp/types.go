// Package dhcp is Gatehouse's DHCPv4 server: one listener per segment bound
// to that segment's interface, address pools with durable leases, relay
// support, option 114 (RFC 8910) on portal segments, and the device
// inventory each exchange feeds (host name, vendor class, parameter-request
// fingerprint, OS guess, OUI manufacturer, randomised-MAC flag, approval).
//
// It owns the DHCP wire exchange and the in-memory pool state. It does not
// own SQL (a LeaseStore, implemented over package store, persists leases and
// devices), firewall rules (quarantine goes through an Enforcer, which is
// package policy's, as is what each segment does with unknown devices), the
// configuration file (the daemon fills each Segment from it), or what
// findings mean (they go out on the event hub).
package dhcp

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/gatehouse-net/gatehouse/alert/finding"
	"github.com/gatehouse-net/gatehouse/policy"
)

// LeaseState is where a lease stands.
type LeaseState string

// Lease states. An expired lease keeps StateBound with Expires in the past:
// expiry is a fact of time, not a write.
const (
	StateBound    LeaseState = "bound"
	StateReleased LeaseState = "released"
	// StateDeclined marks an address a client reported in use by someone
	// else (DHCPDECLINE); it is held back until Expires and has no MAC.
	StateDeclined LeaseState = "declined"
)

// Lease is one address binding on one segment.
type Lease struct {
	Segment   string
	IP        netip.Addr
	MAC       net.HardwareAddr // nil for a declined address
	ClientID  []byte           // option 61 as sent, if any
	Hostname  string           // option 12
	State     LeaseState
	Start     time.Time
	Expires   time.Time
	Relay     netip.Addr // giaddr of the relay that forwarded it; invalid when direct
	RelayInfo []byte     // option 82 as the relay sent it
}

// Active reports whether the lease holds its address at now.
func (l Lease) Active(now time.Time) bool {
	return l.State == StateBound && now.Before(l.Expires)
}

// Device is what one DHCP exchange taught us about a device.
type Device struct {
	MAC          net.HardwareAddr
	FirstSeen    time.Time
	LastSeen     time.Time
	Segment      string
	IP           netip.Addr // invalid when no address was leased (deny, inform without ciaddr)
	Hostname     string     // option 12
	VendorClass  string     // option 60
	Fingerprint  string     // option 55 codes in the client's order, comma separated
	OS           string     // guess from the fingerprint; "" when unknown
	Manufacturer string     // from the OUI registry; "" when unknown or randomised
	Randomised   bool       // locally administered MAC
}

// DeviceStatus is what the network manager decided about a MAC.
type DeviceStatus struct {
	Known    bool // a device record exists
	Approved bool
	Blocked  bool // no lease on any segment
}

// Reservation pins an address on a segment to one MAC.
type Reservation struct {
	Segment string
	MAC     net.HardwareAddr
	IP      netip.Addr
}

// LeaseStore persists leases and device sightings. Implementations must make
// SaveBatch atomic and durable: the server acknowledges a lease only after
// SaveBatch returned nil for it.
type LeaseStore interface {
	// LoadLeases returns every remembered binding, active or not.
	LoadLeases(ctx context.Context) ([]Lease, error)
	// LoadReservations returns every static reservation.
	LoadReservations(ctx context.Context) ([]Reservation, error)
	// SaveBatch writes lease changes and device sightings in one
	// transaction. A lease replaces any earlier lease for the same segment
	// and IP, and any earlier lease of the same MAC on the same segment.
	// A device keeps its first FirstSeen and any approval already recorded.
	// The slices are the committer's and reused once SaveBatch returns:
	// an implementation copies what it keeps.
	SaveBatch(ctx context.Context, leases []Lease, devices []Device) error
	// DeviceStatus reports approval and blocking for a MAC.
	DeviceStatus(ctx context.Context, mac net.HardwareAddr) (DeviceStatus, error)
}

// DevicePurger is implemented by a LeaseStore that can forget devices that
// never completed a lease (made-up MACs); the server calls it hourly.
type DevicePurger interface {
	PurgeUnleasedDevices(ctx context.Context, before time.Time) (int64, error)
}

// StaleDevicePurger is implemented by a LeaseStore that can forget every
// device last seen before a cut-off (leased or not, keeping reserved and
// blocked ones); the server calls it hourly with DeviceRetention.
type StaleDevicePurger interface {
	PurgeStaleDevices(ctx context.Context, before, now time.Time) (int64, error)
}

// DefaultDeviceRetention is how long any device is remembered after it was
// last seen: a school year and a bit, so a device back after the summer
// holiday is still known.
const DefaultDeviceRetention = 400 * 24 * time.Hour

// DefaultUnleasedRetention is how long a device that never completed a
// lease is remembered.
const DefaultUnleasedRetention = 7 * 24 * time.Hour

// Enforcer puts a device into the quarantine set (reaches nothing but the
// portal): *policy.Enforcer, as it is.
type Enforcer interface {
	Quarantine(ctx context.Context, d policy.Device) error
}

// Binder keeps the kernel's MAC-to-address bindings (package policy): the
// server binds each lease before it acknowledges it and unbinds it when the
// client gives it up, so that on a binding segment only the pairs the server
// handed out are forwarded. A zero until binds for good (a reservation).
// BindMany binds a group commit's leases in one go and returns one error
// per binding, each as Bind would have. *policy.Enforcer is one as it is.
type Binder interface {
	Bind(ctx context.Context, d policy.Device, until time.Time) error
	BindMany(ctx context.Context, bs []policy.Binding) []error
	Unbind(ctx context.Context, d policy.Device) error
}

// Finding classes this package raises, offered to Config.Findings as a
// finding.Finding (Source finding.SourceDHCP), the one finding type every
// source shares. Leases go out as events.LeaseGranted and
// events.LeaseReleased.
const (
	FindingUnapprovedDevice = finding.ClassUnapprovedDevice
	FindingPoolExhausted    = finding.ClassPoolExhausted
	// FindingNewDeviceFlood: more never-seen MACs asked for an address in a
	// minute than the segment allows (made-up MACs emptying the pool).
	FindingNewDeviceFlood = "new-device-flood"
)
