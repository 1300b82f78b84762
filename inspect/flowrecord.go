package inspect

import (
	"net"
	"net/netip"
	"time"
)

// FlowRecord summarises one flow for whoever keeps a flow log (the daemon
// keeps a bounded one for the DSL's timeline). The engine reports a flow at
// most twice: when it is classified (Ended false, counts so far), and when
// its slot is released (idle, evicted or Reset; Ended true, final counts). Start and the 5-tuple identify the flow across
// both reports.
type FlowRecord struct {
	Start, Last time.Time // first and last packet seen
	Ended       bool
	ClientMAC   net.HardwareAddr // nil when the client's frames were not seen
	Client      netip.Addr
	ClientPort  uint16
	Server      netip.Addr
	ServerPort  uint16
	Proto       string // "tcp", "udp", "icmp", ...
	// Name is the name the client resolved the server's address from,
	// when the engine saw or was told of the lookup.
	Name  string
	Class string // the finding class the flow raised, if any
	// BytesOut are the client's payload bytes, BytesIn the server's.
	BytesOut, BytesIn     uint64
	PacketsOut, PacketsIn uint64
}

// flowRecord hands f to Options.OnFlow.
func (e *Engine) flowRecord(f *flow, ended bool) {
	if e.opt.OnFlow == nil || !f.client.IsValid() {
		return
	}
	r := FlowRecord{Start: f.first, Last: f.last, Ended: ended, Client: f.client, ClientPort: f.cport, Server: f.server,
		ServerPort: f.sport, Proto: protoName(f.proto), Class: f.class,
		BytesOut: uint64(f.bytes[dirC2S]), BytesIn: uint64(f.bytes[dirS2C]),
		PacketsOut: uint64(f.pkts[dirC2S]), PacketsIn: uint64(f.pkts[dirS2C])}
	if f.hasMAC {
		r.ClientMAC = append(net.HardwareAddr(nil), f.clientMAC[:]...)
	}
	if e.res != nil {
		if n, ok := e.res.nameOf(f.client, f.server, f.last); ok {
			r.Name = n
		}
	}
	e.opt.OnFlow(r)
}
