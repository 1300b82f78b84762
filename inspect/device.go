package inspect

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"
)

// deviceTracker keeps per-MAC observations of directly attached devices.
type deviceTracker struct {
	max  int
	macs map[[6]byte]*devState
}

type devState struct {
	checked  bool      // KnownDevice answered
	retryAt  time.Time // after a failed KnownDevice, when to ask again
	hopped   uint32
	families uint8 // bit per initial TTL family seen undecremented: 64, 128, 255
	reported bool
}

func newDeviceTracker(max int) *deviceTracker {
	return &deviceTracker{max: max, macs: make(map[[6]byte]*devState)}
}

// tetherHops is how many packets with a TTL one below an OS default a
// device must send before it is called a hotspot: one could be a VM.
const tetherHops = 8

// devicePacket judges the sending device of a packet from one of our own
// subnets: is it known, and does it forward for others?
func (e *Engine) devicePacket(p *pkt) {
	if !p.hasMAC || len(e.opt.InsideSubnets) == 0 || !e.inside(p.src) {
		return
	}
	st := e.devices.macs[p.srcMAC]
	if st == nil {
		if len(e.devices.macs) >= e.devices.max {
			clear(e.devices.macs)
		}
		st = &devState{}
		e.devices.macs[p.srcMAC] = st
	}
	if !st.checked && !p.ts.Before(st.retryAt) {
		e.checkKnown(p, st)
	}
	if st.reported {
		return
	}
	switch p.ttl {
	case 64:
		st.families |= 1
	case 128:
		st.families |= 2
	case 255:
		st.families |= 4
	case 63, 127, 254:
		st.hopped++
	}
	switch {
	case st.hopped >= tetherHops:
		st.reported = true
		e.emitDevice(p, ClassTethering, "ttl", fmt.Sprintf("%d packets with TTL %d, one below an OS default, from a directly attached device", st.hopped, p.ttl))
	case st.families&3 == 3:
		st.reported = true
		e.emitDevice(p, ClassTethering, "os-mix", "packets with initial TTLs of both 64 and 128 behind one MAC address")
	}
}

// knownRetry is how long after a failed KnownDevice lookup the MAC is asked
// about again: soon enough that a store that recovers is heard, seldom
// enough that a broken one is not asked once per packet.
const knownRetry = time.Minute

// checkKnown asks KnownDevice about a new MAC. Only an answer raises a
// finding: a lookup that failed says nothing about the device.
func (e *Engine) checkKnown(p *pkt, st *devState) {
	if e.opt.KnownDevice == nil {
		st.checked = true
		return
	}
	known, err := e.opt.KnownDevice(net.HardwareAddr(p.srcMAC[:]))
	if err != nil {
		e.stats.KnownDeviceErrors++
		st.retryAt = p.ts.Add(knownRetry)
		return
	}
	st.checked = true
	if !known {
		e.emitDevice(p, ClassUnapprovedDevice, "unknown-mac", "traffic from a device that never asked our DHCP server for an address")
	}
}

func (e *Engine) emitDevice(p *pkt, class, detail, evidence string) {
	e.emit(Finding{
		Time:     p.ts,
		SrcIP:    p.src,
		SrcMAC:   net.HardwareAddr(append([]byte(nil), p.srcMAC[:]...)),
		DstIP:    p.dst,
		DstPort:  p.dport,
		Proto:    protoName(uint8(p.proto)),
		Class:    class,
		Detail:   detail,
		Evidence: evidence,
	})
}

// inspectDHCP raises rogue-dhcp for an OFFER or ACK from a server that is
// not ours. It judges every reply, not only the first of a flow, because
// DHCP replies all share the 67->68 port pair.
func (e *Engine) inspectDHCP(f *flow, p *pkt) {
	if len(e.opt.DHCPServerIPs) == 0 && len(e.opt.DHCPServerMACs) == 0 {
		e.finish(f)
		return
	}
	b := p.payload
	if p.sport != 67 || len(b) < 240 || b[0] != 2 || binary.BigEndian.Uint32(b[236:240]) != 0x63825363 {
		return
	}
	msgType, serverID := byte(0), netip.Addr{}
	for o := b[240:]; len(o) > 0; {
		code := o[0]
		if code == 0 {
			o = o[1:]
			continue
		}
		if code == 255 || len(o) < 2 || len(o) < 2+int(o[1]) {
			break
		}
		v := o[2 : 2+int(o[1])]
		switch code {
		case 53:
			if len(v) == 1 {
				msgType = v[0]
			}
		case 54:
			if len(v) == 4 {
				serverID = netip.AddrFrom4([4]byte(v))
			}
		}
		o = o[2+int(o[1]):]
	}
	if msgType != 2 && msgType != 5 {
		return
	}
	if e.ourDHCPServer(p, serverID) {
		return
	}
	key := "dhcp:" + p.src.String() + string(p.srcMAC[:])
	if !e.once.add(key) {
		return
	}
	kind := "OFFER"
	if msgType == 5 {
		kind = "ACK"
	}
	ev := fmt.Sprintf("DHCP %s from server %s", kind, p.src)
	if serverID.IsValid() {
		ev += " (server identifier " + serverID.String() + ")"
	}
	if p.hasMAC {
		ev += " mac " + net.HardwareAddr(p.srcMAC[:]).String()
	}
	e.emitDevice(p, ClassRogueDHCP, "dhcp-server", ev+", not a configured Gatehouse server")
}

func (e *Engine) ourDHCPServer(p *pkt, serverID netip.Addr) bool {
	if p.hasMAC {
		for _, m := range e.opt.DHCPServerMACs {
			if slices.Equal([]byte(m), p.srcMAC[:]) {
				return true
			}
		}
	}
	for _, a := range e.opt.DHCPServerIPs {
		if a.Unmap() == p.src.Unmap() || serverID.IsValid() && a.Unmap() == serverID {
			return true
		}
	}
	return false
}

// onceSet remembers keys already reported, bounded in size.
type onceSet struct {
	max  int
	seen map[string]struct{}
}

func newOnceSet(max int) *onceSet { return &onceSet{max: max, seen: make(map[string]struct{})} }

// add returns true the first time key is seen.
func (s *onceSet) add(key string) bool {
	if _, ok := s.seen[key]; ok {
		return false
	}
	if len(s.seen) >= s.max {
		clear(s.seen)
	}
	s.seen[key] = struct{}{}
	return true
}
