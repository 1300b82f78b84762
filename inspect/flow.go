package inspect

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/google/gopacket/layers"
)

// flowPacket finds or creates the packet's flow, counts it and, while the
// flow is still being inspected, runs the classifiers. The lookup and the
// counting are the established-flow path and must not allocate.
func (e *Engine) flowPacket(p *pkt) {
	k := makeKey(p.src, p.sport, p.dst, p.dport, uint8(p.proto))
	i, ok := e.flows.get(k)
	if ok && p.ts.Sub(e.flows.at(i).last) > e.opt.FlowIdle {
		// The slot outlived its idle time: this packet starts afresh.
		e.release(i)
		ok = false
	}
	if ok {
		e.flows.touch(i)
	} else {
		i = e.newFlow(k, p)
	}
	f := e.flows.at(i)
	dir := dirS2C
	if p.src == f.client && p.sport == f.cport {
		dir = dirC2S
		if p.hasMAC && !f.hasMAC {
			f.clientMAC, f.hasMAC = p.srcMAC, true
		}
	}
	f.last = p.ts
	f.pkts[dir]++
	f.bytes[dir] += uint32(len(p.payload))
	if f.done {
		return
	}
	if f.attempt {
		if e.attemptPacket(f, dir, p); f.done {
			return
		}
	}
	if p.proto == layers.IPProtocolTCP && len(p.payload) == 0 {
		e.synAttempt(f, dir, p)
	}
	switch p.proto {
	case layers.IPProtocolTCP:
		e.inspectTCP(f, dir, p)
	case layers.IPProtocolUDP:
		e.inspectUDP(f, dir, p)
	case layers.IPProtocolICMPv4, layers.IPProtocolICMPv6:
		e.inspectICMP(f, dir, p)
	default:
		e.inspectIPTunnel(f, p)
	}
	// A UDP DNS flow (between resolvers, or a tool reusing its port)
	// carries every query of a tunnel, so it is watched as long as it lives.
	dnsFlow := p.proto == layers.IPProtocolUDP && f.sport == 53
	maxPkts, maxBytes := e.opt.InspectPackets, e.opt.InspectBytes
	if f.tlsRecs.doh.watch {
		maxPkts, maxBytes = maxPkts*dohInspectFactor, maxBytes*dohInspectFactor
	}
	if !f.done && !dnsFlow && (int(f.pkts[0]+f.pkts[1]) >= maxPkts ||
		int(f.bytes[0]+f.bytes[1]) >= maxBytes) {
		e.giveUp(f)
	}
}

// giveUp stops inspecting a flow no classifier recognised. One last piece
// of evidence is left: the name the client looked up to find the server.
// A protocol nothing here knows, spoken to an address the client was
// given for a VPN or remote-access service's name, is that service's
// tunnel. Flows that named their server in a TLS or QUIC hello were judged
// by that name instead.
func (e *Engine) giveUp(f *flow) {
	if f.attempt {
		if e.flushAttempt(f); f.done {
			return
		}
	}
	if !f.sniSeen && (f.proto == uint8(layers.IPProtocolTCP) || f.proto == uint8(layers.IPProtocolUDP)) {
		if name, ok := e.res.nameOf(f.client, f.server, f.last); ok {
			what := fmt.Sprintf("%d packets of an unrecognised protocol to an address the client resolved from %s", f.pkts[0]+f.pkts[1], name)
			if p, ok := lookupSuffix(vpnNames, name); ok {
				e.raiseAs(f, Likely, ClassVPN, p, what+", a VPN service name")
				return
			}
			if p, ok := lookupSuffix(remoteAccessNames, name); ok {
				e.raiseAs(f, Likely, ClassRemoteAccess, p, what+", a remote-access service name")
				return
			}
		}
	}
	e.finish(f)
}

// newFlow makes room if needed and sets up a flow for p, deciding which end
// is the client.
func (e *Engine) newFlow(k flowKey, p *pkt) int32 {
	// Reclaim a few idle flows from the cold end, then evict if still full.
	for n := 0; n < 4; n++ {
		o := e.flows.oldest()
		if o < 0 || p.ts.Sub(e.flows.at(o).last) <= e.opt.FlowIdle {
			break
		}
		e.release(o)
	}
	if e.flows.full() {
		e.stats.Evicted++
		e.release(e.flows.oldest())
	}
	e.stats.Flows++
	i := e.flows.add(k)
	f := e.flows.at(i)
	f.proto = uint8(p.proto)
	f.first = p.ts
	f.last = p.ts
	if e.srcIsClient(p) {
		f.client, f.cport, f.server, f.sport = p.src, p.sport, p.dst, p.dport
	} else {
		f.client, f.cport, f.server, f.sport = p.dst, p.dport, p.src, p.sport
	}
	return i
}

// srcIsClient decides who opened the conversation when the capture may
// have started in the middle of it.
func (e *Engine) srcIsClient(p *pkt) bool {
	if si, di := e.inside(p.src), e.inside(p.dst); si != di {
		return si
	}
	if p.tcp != nil && p.tcp.SYN {
		return !p.tcp.ACK
	}
	switch p.proto {
	case layers.IPProtocolICMPv4:
		return p.icmpType != layers.ICMPv4TypeEchoReply
	case layers.IPProtocolICMPv6:
		return p.icmpType != layers.ICMPv6TypeEchoReply
	}
	sw, dw := servicePort(p.sport), servicePort(p.dport)
	if sw != dw {
		return dw
	}
	return true
}

// servicePort reports ports that servers listen on: the well-known range
// and the registered ports of the protocols classified here.
func servicePort(port uint16) bool {
	if port < 1024 {
		return true
	}
	switch port {
	case 1080, 1194, 1701, 1723, 3128, 3389, 4500, 4899, 5060, 5900, 5938, 7070, 8080, 8443, 9001, 9030, 9993, 41641, 51820:
		return true
	}
	return false
}

func (e *Engine) finish(f *flow) {
	f.done = true
	for d := range f.st {
		e.bufs.put(f.st[d].buf)
		f.st[d].buf = -1
	}
}

func (e *Engine) release(i int32) {
	if f := e.flows.at(i); f.attempt && !f.done {
		e.flushAttempt(f)
	}
	f := e.flows.at(i)
	e.finish(f)
	e.flowRecord(f, true)
	e.flows.remove(i)
}

// raise reports a finding for f from a parsed handshake (confidence
// Certain); raiseAs says how sure it is. Either stops inspecting the flow.
func (e *Engine) raise(f *flow, class, detail, evidence string) {
	e.raiseAs(f, Certain, class, detail, evidence)
}

// raiseAs reports a finding for f and stops inspecting it. Bypass classes
// only count when the far end is outside the school.
func (e *Engine) raiseAs(f *flow, conf Confidence, class, detail, evidence string) {
	e.dropAttempt(f)
	if !f.done && !(f.proto == uint8(layers.IPProtocolUDP) && f.sport == 53) {
		// A DNS flow stays watched: later answers on it are still
		// evidence for other flows, and later queries for a tunnel.
		e.finish(f)
	}
	if f.class != "" {
		return
	}
	if !e.outside(f.server) && class != ClassTunnel {
		return
	}
	f.class = class
	e.flowRecord(f, false) // classified: on the flow log at once, not only when it ends
	if e.repeated(repeatKey{f.client, f.server, f.sport, class}, f.last) {
		return
	}
	var mac net.HardwareAddr
	if f.hasMAC {
		mac = net.HardwareAddr(append([]byte(nil), f.clientMAC[:]...))
	}
	e.emit(Finding{
		Time:       f.last,
		SrcIP:      f.client,
		SrcMAC:     mac,
		DstIP:      f.server,
		DstPort:    f.sport,
		Proto:      protoName(f.proto),
		Class:      class,
		Detail:     detail,
		Evidence:   evidence,
		Confidence: conf,
	})
}

func protoName(p uint8) string {
	switch layers.IPProtocol(p) {
	case layers.IPProtocolTCP:
		return "tcp"
	case layers.IPProtocolUDP:
		return "udp"
	case layers.IPProtocolICMPv4:
		return "icmp"
	case layers.IPProtocolICMPv6:
		return "icmpv6"
	case layers.IPProtocolESP:
		return "esp"
	case layers.IPProtocolAH:
		return "ah"
	case layers.IPProtocolGRE:
		return "gre"
	case layers.IPProtocolIPv6:
		return "ipv6-in-ip"
	case layers.IPProtocolIPv4:
		return "ipv4-in-ip"
	}
	return strings.ToLower(layers.IPProtocol(p).String())
}

// repeatKey identifies findings that are the same thing seen again: one
// device reaching one service in one way.
type repeatKey struct {
	client, server netip.Addr
	port           uint16
	class          string
}

// repeated reports whether an identical finding was raised within the
// repeat window, and records this one.
func (e *Engine) repeated(k repeatKey, now time.Time) bool {
	if last, ok := e.recent[k]; ok && now.Sub(last) < e.opt.RepeatWindow && now.Sub(last) >= 0 {
		return true
	}
	if len(e.recent) >= 8192 {
		clear(e.recent)
	}
	e.recent[k] = now
	return false
}
