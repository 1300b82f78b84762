package inspect

import (
	"net"
	"net/netip"
	"time"

	"github.com/google/gopacket/layers"
)

// GuardQuery is one UDP query the router's own DNS guard read, as the guard
// parsed it. The capture leaves the datagrams of these queries out
// (CaptureConfig.OwnDNSClients) and the guard hands each one over instead
// (Site.NoteQuery), so inspection judges it without parsing it again.
type GuardQuery struct {
	Time   time.Time
	Client netip.Addr
	// MAC is the client's, from the DHCP leases: nil when unknown.
	MAC net.HardwareAddr
	// ClientPort is the port the query came from, Server the guard's
	// address it came to (on port 53, as every query the guard reads
	// was sent).
	ClientPort uint16
	Server     netip.Addr
	// Name is the question's name in lower case without the trailing
	// dot, Type its type.
	Name string
	Type uint16
}

// GuardQuery applies the DNS query checks (inspectDNS) to q as if its
// datagram had been captured: a flow of one query from the client to the
// guard, judged with the engine's tunnel tracker, repeat window and
// thresholds. Like the rest of the engine it is not safe for concurrent
// use.
func (e *Engine) GuardQuery(q GuardQuery) {
	// A bug one query reaches must not stop inspection (or the guard that
	// handed it over).
	defer func() {
		if v := recover(); v != nil {
			e.stats.Panics++
		}
	}()
	e.stats.Packets++
	client, server := q.Client.Unmap(), q.Server.Unmap()
	// Port 53 also keeps the flow a DNS flow: raiseAs leaves it (and its
	// zero stream buffers) alone rather than finishing it.
	f := &e.guardFlow
	*f = flow{client: client, server: server, cport: q.ClientPort, sport: 53, proto: uint8(layers.IPProtocolUDP),
		first: q.Time, last: q.Time, pkts: [2]uint32{1, 0}}
	if len(q.MAC) == 6 {
		f.clientMAC, f.hasMAC = [6]byte(q.MAC), true
	}
	f.key = makeKey(client, q.ClientPort, server, 53, f.proto)
	e.dnsQuery(f, q.Name, layers.DNSType(q.Type))
}
