package dhcp

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts what the server did and what it refused. Every dropped
// packet lands in exactly one of the drop counters.
type Metrics struct {
	Received        atomic.Uint64 // datagrams read
	Malformed       atomic.Uint64 // dropped: not a parseable BOOTREQUEST with a message type
	Oversized       atomic.Uint64 // dropped: larger than an Ethernet frame can carry
	Unsupported     atomic.Uint64 // dropped: message type a server does not answer
	WrongSegment    atomic.Uint64 // dropped: relayed to a subnet we do not serve, or relay traffic where none is allowed
	RelayUntrusted  atomic.Uint64 // dropped: giaddr set by a source that is not a trusted relay
	Overload        atomic.Uint64 // dropped: too many exchanges in flight
	Ignored         atomic.Uint64 // no answer by the RFC (another server chosen, unknown INIT-REBOOT client)
	Offers          atomic.Uint64
	Acks            atomic.Uint64
	Naks            atomic.Uint64
	Releases        atomic.Uint64
	Declines        atomic.Uint64
	Informs         atomic.Uint64
	PoolExhausted   atomic.Uint64 // discovers left unanswered for want of an address
	Denied          atomic.Uint64 // unapproved devices refused on a deny segment
	Blocked         atomic.Uint64 // blocked devices refused
	Quarantined     atomic.Uint64 // leases that went into the quarantine set
	QuarantineError atomic.Uint64 // leases withheld because quarantine failed
	CommitBatches   atomic.Uint64
	CommitErrors    atomic.Uint64
	LeasesCommitted atomic.Uint64
	RecordsDropped  atomic.Uint64 // device sightings dropped because the commit queue was full
	StoreErrors     atomic.Uint64 // device status lookups that failed
	SendErrors      atomic.Uint64
	RateLimited     atomic.Uint64 // dropped: over the interface's packet rate
	SpoofedMAC      atomic.Uint64 // dropped: chaddr is not the frame's Ethernet source
	RelayOnSegment  atomic.Uint64 // dropped: relayed message on a segment interface
	NewMACLimited   atomic.Uint64 // discovers from never-seen MACs over the segment's per-minute cap
	ForgedRelease   atomic.Uint64 // RELEASE/DECLINE not from the lease holder (address, MAC or timing)
	Panics          atomic.Uint64 // packets whose handling panicked (dropped, server kept running)
	BindErrors      atomic.Uint64 // leases withheld because the kernel binding failed
}

func (m *Metrics) inc(c *atomic.Uint64)           { c.Add(1) }
func (m *Metrics) add(c *atomic.Uint64, n uint64) { c.Add(n) }

// counters names every counter for export.
func (m *Metrics) counters() []struct {
	name, help string
	v          *atomic.Uint64
} {
	return []struct {
		name, help string
		v          *atomic.Uint64
	}{
		{"received", "DHCP datagrams read.", &m.Received},
		{"dropped_malformed", "Datagrams dropped as malformed.", &m.Malformed},
		{"dropped_oversized", "Datagrams dropped as oversized.", &m.Oversized},
		{"dropped_unsupported", "Messages dropped for an unsupported type.", &m.Unsupported},
		{"dropped_wrong_segment", "Relayed messages for no served segment.", &m.WrongSegment},
		{"dropped_relay_untrusted", "Relayed messages from untrusted sources.", &m.RelayUntrusted},
		{"dropped_overload", "Messages dropped with too many exchanges in flight.", &m.Overload},
		{"ignored", "Messages left unanswered as RFC 2131 asks.", &m.Ignored},
		{"offers", "DHCPOFFERs sent.", &m.Offers},
		{"acks", "DHCPACKs sent.", &m.Acks},
		{"naks", "DHCPNAKs sent.", &m.Naks},
		{"releases", "DHCPRELEASEs honoured.", &m.Releases},
		{"declines", "DHCPDECLINEs honoured.", &m.Declines},
		{"informs", "DHCPINFORMs answered.", &m.Informs},
		{"pool_exhausted", "Discovers unanswered because the pool was full.", &m.PoolExhausted},
		{"denied", "Unapproved devices refused.", &m.Denied},
		{"blocked", "Blocked devices refused.", &m.Blocked},
		{"quarantined", "Leases placed in quarantine.", &m.Quarantined},
		{"quarantine_errors", "Leases withheld because quarantine failed.", &m.QuarantineError},
		{"commit_batches", "Lease store transactions.", &m.CommitBatches},
		{"commit_errors", "Lease store transactions that failed.", &m.CommitErrors},
		{"leases_committed", "Lease writes committed.", &m.LeasesCommitted},
		{"records_dropped", "Device sightings dropped with a full commit queue.", &m.RecordsDropped},
		{"store_errors", "Device status lookups that failed.", &m.StoreErrors},
		{"send_errors", "Replies that could not be sent.", &m.SendErrors},
		{"dropped_rate_limited", "Datagrams dropped over an interface's packet rate.", &m.RateLimited},
		{"dropped_spoofed_mac", "Requests whose chaddr is not the frame's Ethernet source.", &m.SpoofedMAC},
		{"dropped_relay_on_segment", "Relayed messages arriving on a segment interface instead of a relay interface.", &m.RelayOnSegment},
		{"dropped_new_mac_limited", "Discovers from never-seen MACs over the segment's per-minute cap.", &m.NewMACLimited},
		{"dropped_forged_release", "RELEASEs and DECLINEs not from the lease holder.", &m.ForgedRelease},
		{"bind_errors", "Leases withheld because the kernel's MAC-address binding failed.", &m.BindErrors},
		{"handler_panics", "Packets whose handling panicked; the packet was dropped and the server kept running.", &m.Panics},
	}
}

// Snapshot returns every counter by its exported name.
func (m *Metrics) Snapshot() map[string]uint64 {
	out := map[string]uint64{}
	for _, c := range m.counters() {
		out[c.name] = c.v.Load()
	}
	return out
}

// Collector exports Metrics as gatehouse_dhcp_* counters.
type Collector struct {
	m     *Metrics
	descs map[string]*prometheus.Desc
}

// NewCollector returns a Prometheus collector for m.
func NewCollector(m *Metrics) *Collector {
	c := &Collector{m: m, descs: map[string]*prometheus.Desc{}}
	for _, x := range m.counters() {
		c.descs[x.name] = prometheus.NewDesc("gatehouse_dhcp_"+x.name+"_total", x.help, nil, nil)
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, x := range c.m.counters() {
		ch <- prometheus.MustNewConstMetric(c.descs[x.name], prometheus.CounterValue, float64(x.v.Load()))
	}
}
