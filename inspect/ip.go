package inspect

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/google/gopacket/layers"
)

// inspectIPTunnel classifies IP protocols that are tunnels by definition.
func (e *Engine) inspectIPTunnel(f *flow, p *pkt) {
	switch p.proto {
	case layers.IPProtocolESP:
		e.raise(f, ClassVPN, "ipsec", "IPsec ESP packets (IP protocol 50)")
	case layers.IPProtocolAH:
		e.raise(f, ClassVPN, "ipsec", "IPsec AH packets (IP protocol 51)")
	case layers.IPProtocolGRE:
		if len(p.payload) >= 4 && p.payload[1]&7 == 1 && p.payload[2] == 0x88 && p.payload[3] == 0x0b {
			e.raise(f, ClassVPN, "pptp", "enhanced GRE (version 1) carrying PPP, the PPTP data channel")
		} else {
			e.raise(f, ClassTunnel, "gre", "GRE-encapsulated packets (IP protocol 47)")
		}
	case layers.IPProtocolIPv6:
		if len(p.payload) >= 40 && p.payload[0]>>4 == 6 {
			if p.src.Is4() {
				e.raise(f, ClassTunnel, "6in4", "IPv6 packets inside IPv4 (protocol 41)")
			} else {
				e.raise(f, ClassTunnel, "6in6", "IPv6 packets inside IPv6 (next header 41)")
			}
		} else {
			e.finish(f)
		}
	case layers.IPProtocolIPv4:
		if len(p.payload) >= 20 && p.payload[0]>>4 == 4 {
			if p.src.Is4() {
				e.raise(f, ClassTunnel, "ipip", "IPv4 packets inside IPv4 (protocol 4)")
			} else {
				e.raise(f, ClassTunnel, "4in6", "IPv4 packets inside IPv6 (next header 4)")
			}
		} else {
			e.finish(f)
		}
	case layers.IPProtocolEtherIP, 115:
		e.raise(f, ClassTunnel, "l2-tunnel", fmt.Sprintf("layer-2 tunnel packets (IP protocol %d)", p.proto))
	default:
		e.finish(f)
	}
}

// inspectICMP flags echo traffic that carries data: ping sends a fixed
// pattern (incrementing bytes, the alphabet, zeros), a tunnel sends
// high-entropy payloads of varying size.
func (e *Engine) inspectICMP(f *flow, dir int, p *pkt) {
	echo := p.proto == layers.IPProtocolICMPv4 && (p.icmpType == 8 || p.icmpType == 0) ||
		p.proto == layers.IPProtocolICMPv6 && (p.icmpType == 128 || p.icmpType == 129)
	if !echo {
		e.finish(f)
		return
	}
	b := p.payload
	if p.proto == layers.IPProtocolICMPv6 && len(b) >= 4 {
		b = b[4:] // gopacket leaves id and sequence in the ICMPv6 payload
	}
	if dir == dirC2S {
		if ev := icmpCarrier(b); ev != "" {
			e.raise(f, ClassTunnel, "icmp-tunnel", ev)
			return
		}
	}
	if len(b) >= 64 && !pingPattern(b) && entropy(b) >= 5.0 {
		f.icmpOdd++
	}
	if f.icmpOdd >= 3 {
		e.raiseAs(f, Likely, ClassTunnel, "icmp-tunnel", fmt.Sprintf("%d echo packets with high-entropy payloads (last %d bytes, %.1f bits/byte)", f.icmpOdd, len(b), entropy(b)))
	}
}

// pingPattern reports the fill patterns ping implementations use, after an
// optional timestamp at the start.
func pingPattern(b []byte) bool {
	const skip = 16 // Linux ping puts a struct timeval first
	if len(b) <= skip {
		return true
	}
	t := b[skip:]
	inc, same, alpha := true, true, true
	for i := 1; i < len(t); i++ {
		if t[i] != t[i-1]+1 {
			inc = false
		}
		if t[i] != t[0] {
			same = false
		}
	}
	for i, c := range b {
		if c != 'a'+byte(i%23) {
			alpha = false
			break
		}
	}
	return inc || same || alpha
}

// icmpCarrier recognises an echo request that carries a tunnel's framing
// rather than a ping pattern: ptunnel's and ptunnel-ng's magic numbers at
// the start, or another protocol's opening (an HTTP request line, an SSH
// banner, a TLS ClientHello record) within the first bytes, where a ping
// has its fill pattern.
func icmpCarrier(b []byte) string {
	if len(b) >= 28 {
		switch binary.BigEndian.Uint32(b) {
		case 0xd5200880:
			return "echo request with ptunnel's magic d5200880 and its header"
		case 0xdeadc0de:
			return "echo request with ptunnel-ng's magic deadc0de and its header"
		}
	}
	head := b[:min(len(b), 64)]
	for _, m := range []string{"GET /", "POST /", "CONNECT ", "SSH-2.0-", "\x16\x03\x01"} {
		if i := bytes.Index(head, []byte(m)); i >= 0 && i+len(m) < len(b) {
			return fmt.Sprintf("echo request carrying %q at byte %d, another protocol inside ping", m, i)
		}
	}
	return ""
}
