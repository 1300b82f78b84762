package inspect

import (
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/gatehouse-net/gatehouse/inspect/quic"
	"github.com/gatehouse-net/gatehouse/inspect/tlshello"
)

// Options configure an Engine. The zero value is usable for replaying
// captures: no local subnets (every unicast peer counts as "outside"), no
// DHCP servers (rogue-dhcp needs to know ours) and no device list.
type Options struct {
	// InsideSubnets are the school's own subnets. Traffic between two
	// inside addresses is not a bypass; tethering is only judged for
	// inside sources, which are directly attached.
	InsideSubnets []netip.Prefix
	// DHCPServerIPs and DHCPServerMACs identify our DHCP servers. A DHCP
	// OFFER or ACK from anything else is a rogue server. When both are
	// empty rogue-dhcp detection is off.
	DHCPServerIPs  []netip.Addr
	DHCPServerMACs []net.HardwareAddr
	// KnownDevice, when set, is asked about every new source MAC seen
	// sending from an inside address; false raises unapproved-device. An
	// error is no answer, not "unknown": it raises nothing, is counted
	// (Stats.KnownDeviceErrors) and the MAC is asked about again a minute
	// of packet time later.
	KnownDevice func(mac net.HardwareAddr) (bool, error)
	// TorRelay, when set, reports whether an address is a known Tor relay
	// (for example from a consensus file the operator provides).
	TorRelay func(netip.Addr) bool
	// Resolutions, when set, is where the engine looks up which names a
	// client resolved to which addresses (and records the DNS answers it
	// sees itself). The daemon shares one between its engines and feeds
	// it the DNS guard's answers. Nil gives the engine a private one fed
	// only from the wire, which is what replay uses.
	Resolutions *Resolutions
	// Sink receives findings. Nil drops them (still counted).
	Sink Sink
	// OnFlow, when set, is told of each flow (see FlowRecord), from the
	// goroutine that feeds the engine: it must not block.
	OnFlow func(FlowRecord)
	// OnPanic, when set, is told about a packet whose inspection panicked
	// (the panic value and the packet, to log for replay); the packet is
	// skipped and inspection goes on either way.
	OnPanic func(v any, packet []byte)
	// MaxFlows bounds the flow table; the least recently seen flow is
	// evicted when it is full. The table grows to it as flows arrive
	// (about 500 bytes a flow) and keeps what it grew to. Default 16384.
	MaxFlows int
	// Buffers, when set, is the TCP reassembly pool; the daemon's engines
	// share one. Nil gives the engine a private pool of MaxFlows/16
	// buffers (64 to 1024), which is what replay uses.
	Buffers *BufferPool
	// FlowIdle is how long a flow may stay silent before its slot is
	// reused. Default 2 minutes.
	FlowIdle time.Duration
	// InspectPackets and InspectBytes bound how much of a flow is looked
	// at before giving up on classifying it. Defaults 40 and 64 KiB.
	InspectPackets int
	InspectBytes   int
	// MinConfidence is the least confidence a finding of each class needs
	// to be reported (key: the class, or MinConfidenceDefault for the
	// rest); weaker ones are counted in Stats.BelowThreshold and dropped.
	// Nil reports everything. See CheckMinConfidence.
	MinConfidence map[string]Confidence
	// Signatures are the operator's data-file signatures (JA4, names,
	// addresses, port rules) on top of the built-in detectors; nil uses
	// the set shipped with the project (DefaultSignatures).
	Signatures *Signatures
	// RepeatWindow suppresses repeats: one finding per device, destination
	// address and port, and class within this time. Default 10 minutes.
	RepeatWindow time.Duration
}

// Stats are counters an operator can export.
type Stats struct {
	Packets     uint64
	Undecodable uint64
	Flows       uint64 // flows created
	Evicted     uint64 // flows evicted before going idle
	Findings    uint64
	Malformed   uint64 // payloads a parser rejected
	// KnownDeviceErrors counts KnownDevice lookups that failed (and so
	// raised nothing).
	KnownDeviceErrors uint64
	// Panics counts packets whose inspection panicked: the packet was
	// skipped (and handed to Options.OnPanic) and inspection went on.
	Panics uint64
	// Attempts counts findings raised from the client's side alone, and
	// BelowThreshold those dropped under Options.MinConfidence.
	Attempts       uint64
	BelowThreshold uint64
}

// Engine decodes packets, tracks flows and runs the classifiers. It is not
// safe for concurrent use: one goroutine feeds it packets (and reads
// Stats); capture on several interfaces uses one engine per interface.
type Engine struct {
	opt Options

	// Preallocated decoding layers, shared by the per-link-type parsers.
	eth     layers.Ethernet
	dot1q   layers.Dot1Q
	sll     layers.LinuxSLL
	loop    layers.Loopback
	ip4     outerIPv4
	ip6     outerIPv6
	tcp     layers.TCP
	udp     layers.UDP
	icmp4   layers.ICMPv4
	icmp6   layers.ICMPv6
	decoded []gopacket.LayerType
	parsers map[layers.LinkType]*gopacket.DecodingLayerParser
	pEth    *gopacket.DecodingLayerParser
	pIP4    *gopacket.DecodingLayerParser
	pIP6    *gopacket.DecodingLayerParser

	flows *flowTable
	bufs  *BufferPool

	// Scratch for the DPI path; reused so that the common cases do not
	// allocate either.
	hello   tlshello.ClientHello
	server  tlshello.ServerFlight
	scratch []byte
	qbuf    []byte
	crypto  *quic.CryptoStream
	// cryptoOwner is the flow whose QUIC CRYPTO stream crypto holds, and
	// quicDCID the DCID its Initial keys derive from.
	cryptoOwner flowKey
	quicDCID    []byte
	dns         layers.DNS
	// guardFlow is the one-query flow GuardQuery judges, reused.
	guardFlow flow

	dnsTun  *dnsTunnelTracker
	res     *Resolutions
	ownRes  bool // res is private: Reset clears it
	devices *deviceTracker
	once    *onceSet
	recent  map[repeatKey]time.Time     // last finding per device/destination/class
	pending map[flowKey]*pendingAttempt // client-side recognitions waiting for the server
	// sigs is swapped whole by SetSignatures (a reload) while the
	// capture goroutine reads it, once per handshake.
	sigs atomic.Pointer[Signatures]
	// learnedDoH are server names whose traffic had the DoH shape.
	learnedDoH map[string]struct{}
	// udpHeads: see randomHeadAgain.
	udpHeads map[repeatKey]udpHead

	leaf  leafCert // the server certificate being read, reused
	cur   pkt      // the packet being handled
	file  string   // replay file name put into findings
	stats Stats
}

// SetSignatures replaces the signatures the engine applies, from the next
// handshake on; it is safe to call while the engine runs. nil means none.
func (e *Engine) SetSignatures(s *Signatures) {
	e.sigs.Store(s)
}

// Signatures returns the set the engine applies now.
func (e *Engine) Signatures() *Signatures { return e.sigs.Load() }

// NewEngine returns an engine configured by opt.
func NewEngine(opt Options) *Engine {
	if opt.MaxFlows <= 0 {
		opt.MaxFlows = 16384
	}
	if opt.FlowIdle <= 0 {
		opt.FlowIdle = 2 * time.Minute
	}
	if opt.InspectPackets <= 0 {
		opt.InspectPackets = 40
	}
	if opt.InspectBytes <= 0 {
		opt.InspectBytes = 64 << 10
	}
	if opt.RepeatWindow <= 0 {
		opt.RepeatWindow = 10 * time.Minute
	}
	e := &Engine{
		opt:      opt,
		recent:   make(map[repeatKey]time.Time),
		pending:  make(map[flowKey]*pendingAttempt),
		udpHeads: make(map[repeatKey]udpHead),
		decoded:  make([]gopacket.LayerType, 0, 16),
		flows:    newFlowTable(opt.MaxFlows, opt.FlowIdle),
		bufs:     opt.Buffers,
		crypto:   new(quic.CryptoStream),
		scratch:  make([]byte, 0, 16<<10),
		qbuf:     make([]byte, 0, 2048),
		dnsTun:   newDNSTunnelTracker(4096),
		res:      opt.Resolutions,
		devices:  newDeviceTracker(4096),
		once:     newOnceSet(8192),
	}
	sigs := opt.Signatures
	if sigs == nil {
		// The shipped file is checked by the tests; should it ever fail
		// to parse, the built-in detectors still run.
		sigs, _ = DefaultSignatures()
	}
	e.sigs.Store(sigs)
	if e.bufs == nil {
		e.bufs = NewBufferPool(min(max(opt.MaxFlows/16, 64), 1024))
	}
	if e.res == nil {
		e.res = NewResolutions(ResolutionsConfig{})
		e.ownRes = true
	}
	transport := []gopacket.DecodingLayer{&e.ip4, &e.ip6, &e.tcp, &e.udp, &e.icmp4, &e.icmp6}
	mk := func(first gopacket.LayerType, link ...gopacket.DecodingLayer) *gopacket.DecodingLayerParser {
		p := gopacket.NewDecodingLayerParser(first, append(link, transport...)...)
		p.IgnoreUnsupported = true
		return p
	}
	e.pEth = mk(layers.LayerTypeEthernet, &e.eth, &e.dot1q)
	e.pIP4 = mk(layers.LayerTypeIPv4)
	e.pIP6 = mk(layers.LayerTypeIPv6)
	e.parsers = map[layers.LinkType]*gopacket.DecodingLayerParser{
		layers.LinkTypeEthernet: e.pEth,
		layers.LinkTypeLinuxSLL: mk(layers.LayerTypeLinuxSLL, &e.sll, &e.dot1q),
		layers.LinkTypeNull:     mk(layers.LayerTypeLoopback, &e.loop),
		layers.LinkTypeLoop:     mk(layers.LayerTypeLoopback, &e.loop),
		layers.LinkTypeRaw:      e.pIP4,
		layers.LinkTypeIPv4:     e.pIP4,
		layers.LinkTypeIPv6:     e.pIP6,
		12:                      e.pIP4, // LINKTYPE_RAW as some systems write it
	}
	return e
}

// Reset forgets every flow and per-host observation, keeping the
// allocations.
func (e *Engine) Reset() {
	for e.flows.head >= 0 {
		e.release(e.flows.head)
	}
	clear(e.dnsTun.doms)
	clear(e.devices.macs)
	clear(e.once.seen)
	clear(e.recent)
	clear(e.pending)
	clear(e.learnedDoH)
	clear(e.udpHeads)
	if e.ownRes {
		e.res.reset()
	}
	e.cryptoOwner = flowKey{}
}

// NoteResolution records that client looked up name at time at and was
// given addrs. Unlike the rest of the engine it may be called from any
// goroutine: it only touches the engine's Resolutions, which locks.
func (e *Engine) NoteResolution(client netip.Addr, name string, addrs []netip.Addr, at time.Time) {
	e.res.Note(client, name, addrs, at)
}

// Stats returns the counters so far.
func (e *Engine) Stats() Stats { return e.stats }

// outerIPv4 stops decoding at IP-in-IP, 6in4, GRE, ESP and AH so that the
// outer addresses are kept (the parser has one IPv4 and one IPv6 layer) and
// the tunnel itself is what gets classified.
type outerIPv4 struct{ layers.IPv4 }

func (ip *outerIPv4) NextLayerType() gopacket.LayerType {
	if tunnelProto(ip.Protocol) {
		return gopacket.LayerTypeZero
	}
	return ip.IPv4.NextLayerType()
}

type outerIPv6 struct{ layers.IPv6 }

func (ip *outerIPv6) NextLayerType() gopacket.LayerType {
	if tunnelProto(ip.NextHeader) {
		return gopacket.LayerTypeZero
	}
	return ip.IPv6.NextLayerType()
}

func tunnelProto(p layers.IPProtocol) bool {
	switch p {
	case layers.IPProtocolIPv4, layers.IPProtocolIPv6, layers.IPProtocolGRE,
		layers.IPProtocolESP, layers.IPProtocolAH, layers.IPProtocolEtherIP, 115 /* L2TPv3 */ :
		return true
	}
	return false
}

// pkt is the decoded view of the current packet.
type pkt struct {
	ts       time.Time
	srcMAC   [6]byte
	hasMAC   bool
	src, dst netip.Addr
	ttl      uint8
	proto    layers.IPProtocol
	sport    uint16
	dport    uint16
	tcp      *layers.TCP
	l4       bool // a TCP or UDP header was decoded
	payload  []byte
	icmpType uint8
}

// HandlePacket inspects one Ethernet frame.
func (e *Engine) HandlePacket(data []byte, ci gopacket.CaptureInfo) {
	e.handle(e.pEth, data, ci)
}

// HandlePacketLink inspects one packet of the given link type (as found in
// a capture file's header). Unsupported link types are counted and skipped.
func (e *Engine) HandlePacketLink(lt layers.LinkType, data []byte, ci gopacket.CaptureInfo) {
	p, ok := e.parsers[lt]
	if !ok {
		e.stats.Packets++
		e.stats.Undecodable++
		return
	}
	e.handle(p, data, ci)
}

func (e *Engine) handle(parser *gopacket.DecodingLayerParser, data []byte, ci gopacket.CaptureInfo) {
	// A bug one packet reaches must not stop inspection (or the daemon).
	defer func() {
		if v := recover(); v != nil {
			e.stats.Panics++
			if e.opt.OnPanic != nil {
				e.opt.OnPanic(v, append([]byte(nil), data...))
			}
		}
	}()
	e.stats.Packets++
	if (parser == e.pIP4 || parser == e.pIP6) && len(data) > 0 {
		// Raw IP links carry both families; the version nibble decides.
		if data[0]>>4 == 6 {
			parser = e.pIP6
		} else {
			parser = e.pIP4
		}
	}
	if err := parser.DecodeLayers(data, &e.decoded); err != nil && len(e.decoded) == 0 {
		e.stats.Undecodable++
		return
	}
	// The packet view lives in the engine so that handing it to the
	// classifiers by pointer never moves it to the heap.
	p := &e.cur
	*p = pkt{ts: ci.Timestamp}
	haveIP := false
	for _, t := range e.decoded {
		switch t {
		case layers.LayerTypeEthernet:
			if len(e.eth.SrcMAC) == 6 {
				copy(p.srcMAC[:], e.eth.SrcMAC)
				p.hasMAC = true
			}
		case layers.LayerTypeLinuxSLL:
			if e.sll.AddrLen == 6 && len(e.sll.Addr) >= 6 && e.sll.PacketType == layers.LinuxSLLPacketTypeOutgoing {
				copy(p.srcMAC[:], e.sll.Addr)
				p.hasMAC = true
			}
		case layers.LayerTypeIPv4:
			if haveIP {
				continue // only the outer header matters
			}
			haveIP = true
			p.src, _ = netip.AddrFromSlice(e.ip4.SrcIP.To4())
			p.dst, _ = netip.AddrFromSlice(e.ip4.DstIP.To4())
			p.ttl = e.ip4.TTL
			p.proto = e.ip4.Protocol
			p.payload = e.ip4.Payload
		case layers.LayerTypeIPv6:
			if haveIP {
				continue
			}
			haveIP = true
			p.src = addr16(e.ip6.SrcIP)
			p.dst = addr16(e.ip6.DstIP)
			p.ttl = e.ip6.HopLimit
			p.proto = e.ip6.NextHeader
			if e.ip6.NextHeader == layers.IPProtocolIPv6HopByHop {
				p.proto = e.ip6.HopByHop.NextHeader
			}
			p.payload = e.ip6.Payload
		case layers.LayerTypeTCP:
			p.sport, p.dport = uint16(e.tcp.SrcPort), uint16(e.tcp.DstPort)
			p.tcp = &e.tcp
			p.payload = e.tcp.Payload
			p.l4 = true
		case layers.LayerTypeUDP:
			p.sport, p.dport = uint16(e.udp.SrcPort), uint16(e.udp.DstPort)
			p.payload = e.udp.Payload
			p.l4 = true
		case layers.LayerTypeICMPv4:
			p.icmpType = e.icmp4.TypeCode.Type()
			p.sport = e.icmp4.Id
			p.payload = e.icmp4.Payload
		case layers.LayerTypeICMPv6:
			p.icmpType = e.icmp6.TypeCode.Type()
			p.payload = e.icmp6.Payload
		}
	}
	if !haveIP || !p.src.IsValid() || !p.dst.IsValid() {
		return
	}
	if !p.l4 && (p.proto == layers.IPProtocolTCP || p.proto == layers.IPProtocolUDP) {
		// A fragment or a truncated transport header: nothing to key a
		// flow on.
		e.stats.Undecodable++
		return
	}
	e.devicePacket(p)
	e.flowPacket(p)
}

func addr16(ip net.IP) netip.Addr {
	if len(ip) != 16 {
		return netip.Addr{}
	}
	return netip.AddrFrom16([16]byte(ip))
}

// inside reports whether a belongs to the school's own subnets.
func (e *Engine) inside(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range e.opt.InsideSubnets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// outside reports whether a is a unicast peer beyond the school: what a
// bypass connects to. Without configured subnets every routable unicast
// address counts, so that captures replay with no configuration.
func (e *Engine) outside(a netip.Addr) bool {
	a = a.Unmap()
	if a.IsLoopback() {
		// Only in captures taken on an end host: a live segment never
		// carries loopback. There it stands for a server that happened
		// to run on the same machine, so it is judged like any other;
		// handshakes with a local proxy client are excluded where they
		// are matched.
		return len(e.opt.InsideSubnets) == 0
	}
	if a.IsMulticast() || a.IsLinkLocalUnicast() || a.IsUnspecified() ||
		a.IsLinkLocalMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return false
	}
	if a.Is4() && a.As4()[3] == 255 {
		return false // a subnet broadcast, as good as we can tell without masks
	}
	return !e.inside(a)
}

// emit sends a finding for the flow's client side.
func (e *Engine) emit(f Finding) {
	if f.Time.IsZero() {
		f.Time = time.Now()
	}
	f.File = e.file
	if !e.wanted(f.Class, f.Confidence) {
		e.stats.BelowThreshold++
		return
	}
	e.stats.Findings++
	if f.Confidence == Attempt {
		e.stats.Attempts++
	}
	if e.opt.Sink != nil {
		e.opt.Sink.HandleFinding(f)
	}
}
