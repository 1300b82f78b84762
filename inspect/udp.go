package inspect

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/gatehouse-net/gatehouse/inspect/quic"
)

func (e *Engine) inspectUDP(f *flow, dir int, p *pkt) {
	b := p.payload
	if f.sport == 67 || f.sport == 68 || f.cport == 67 || f.cport == 68 {
		e.inspectDHCP(f, p)
		return
	}
	if f.sport == 53 {
		e.inspectDNS(f, dir, b)
		return
	}
	if len(b) == 0 {
		return
	}
	if dir == dirC2S && !f.helloDone && f.pkts[dirC2S] <= 2 {
		// Google QUIC before Q046 has a short public header.
		if sni, ok := quic.GoogleCHLO(b); ok {
			f.helloDone = true
			e.judgeName(f, strings.ToLower(string(sni)), "gquic CHLO")
			return
		}
	}
	if dir == dirC2S && !f.helloDone && quic.IsLongHeader(b) {
		e.inspectQUIC(f, b)
		if f.done {
			return
		}
	}
	if ev := wireGuard(f, dir, b); ev != "" {
		e.raise(f, ClassVPN, "wireguard", ev)
		return
	} else if dir == dirC2S && f.wgInit && len(b) == 148 && b[0] == 1 && f.pkts[dirS2C] == 0 {
		// Each retry is a fresh initiation; two unanswered make an attempt.
		e.expectAnswer(f, "", 2, ClassVPN, "wireguard", "WireGuard handshake initiations (type 1, 148 bytes)")
		return
	}
	if dir == dirC2S && len(b) >= 6 && string(b[:6]) == "TS\xf0\x9f\x92\xac" {
		e.raise(f, ClassVPN, "tailscale", "Tailscale disco packet (magic \"TS💬\")")
		return
	}
	if ev := zeroTier(f, dir, b); ev != "" {
		e.raise(f, ClassVPN, "zerotier", ev)
		return
	}
	if ev := teamViewerUDP(f, b); ev != "" {
		e.raise(f, ClassRemoteAccess, "teamviewer", ev)
		return
	}
	if softEtherNATT(b) {
		e.raise(f, ClassVPN, "softether", "SoftEther NAT-traversal reply "+quoteLine(b))
		return
	}
	if softEtherPack(b) {
		e.raise(f, ClassVPN, "softether", fmt.Sprintf("SoftEther PACK control message filling a %d-byte datagram", len(b)))
		return
	}
	if ev := ikeMessage(f, b); ev != "" {
		if dir == dirC2S && f.pkts[dirS2C] == 0 {
			// IKE_SA_INIT and friends are retransmitted until answered.
			e.expectAnswer(f, "", 1, ClassVPN, "ipsec", ev)
			return
		}
		e.raise(f, ClassVPN, "ipsec", ev)
		return
	}
	if ev := e.openVPNUDP(f, dir, b); ev != "" {
		e.raise(f, ClassVPN, "openvpn", ev)
		return
	}
	if dir == dirS2C && hasPrefix(b, dnscryptResolverMagic) {
		e.raise(f, ClassDoH, "dnscrypt", "DNSCrypt response (resolver magic \"r6fnvWj8\")")
		return
	}
	if ev := teredo(f, b); ev != "" {
		e.raise(f, ClassTunnel, "teredo", ev)
		return
	}
	if ev := l2tpControl(f, b); ev != "" {
		e.raise(f, ClassVPN, "l2tp", ev)
		return
	}
	if dir == dirC2S && !f.helloDone && len(b) > 25 && b[0] == 0x16 && b[1] == 0x01 && b[2] == 0x00 &&
		int(binary.BigEndian.Uint16(b[11:13])) <= len(b)-13 && b[13] == 1 {
		// DTLS 0.9 (version 0x0100, OpenSSL's DTLS1_BAD_VER) survives
		// only in Cisco AnyConnect and OpenConnect.
		e.raise(f, ClassVPN, "cisco-anyconnect", "DTLS 0.9 (Cisco pre-standard, version 0x0100) ClientHello")
		return
	}
	if dir == dirC2S && !f.helloDone && len(b) > 13 && b[0] == 0x16 && b[1] == 0xfe {
		e.inspectDTLS(f, b)
	}
	if ev := rdpUDP(f, dir, b); ev != "" {
		e.raise(f, ClassRemoteAccess, "rdp", ev)
		return
	}
	if !f.done && f.sport != 123 {
		e.udpEncrypted(f, dir, b)
	}
}

// inspectQUIC decrypts the client's Initial packets (several may be
// coalesced in one datagram, and the ClientHello may span datagrams) and
// judges the ClientHello inside; for Google QUIC it reads the cleartext CHLO.
func (e *Engine) inspectQUIC(f *flow, b []byte) {
	if e.cryptoOwner != f.key {
		e.crypto.Reset()
		e.cryptoOwner = f.key
		e.quicDCID = e.quicDCID[:0]
	}
	for len(b) > 0 {
		h, err := quic.ParseHeader(b)
		if err != nil {
			if !errors.Is(err, quic.ErrUnsupported) && !errors.Is(err, quic.ErrNotQUIC) {
				e.stats.Malformed++
			}
			f.helloDone = !errors.Is(err, quic.ErrNotQUIC) || f.pkts[dirC2S] > 3
			return
		}
		if !h.Initial {
			return
		}
		if len(e.quicDCID) == 0 {
			// Every client Initial is protected with keys from the
			// first DCID, even after the client switches DCID.
			e.quicDCID = append(e.quicDCID, h.DCID...)
		}
		op, err := quic.NewClientOpener(h.Version, e.quicDCID)
		if err != nil {
			f.helloDone = true
			return
		}
		plain, err := op.Open(e.qbuf, b, h)
		if err != nil {
			e.stats.Malformed++
			f.helloDone = true
			return
		}
		if err := quic.CryptoFrames(plain, e.crypto.Add); err != nil {
			e.stats.Malformed++
		}
		b = b[h.End:]
	}
	pre := e.crypto.Prefix()
	if !quic.HandshakeComplete(pre) {
		if f.pkts[dirC2S] > 4 {
			f.helloDone = true
		}
		return
	}
	f.helloDone = true
	if err := e.hello.Parse(pre); err != nil {
		e.stats.Malformed++
		return
	}
	e.judgeHello(f, &e.hello, true)
}

// inspectDTLS parses a DTLS ClientHello (AnyConnect and friends) for its SNI.
func (e *Engine) inspectDTLS(f *flow, b []byte) {
	f.helloDone = true
	// DTLS record header is 13 bytes, the handshake header 12; rebuild a
	// TLS-style handshake message for the ClientHello parser.
	if len(b) < 13+12 || b[13] != 1 {
		return
	}
	body := b[13+12:]
	n := int(b[13+1])<<16 | int(b[13+2])<<8 | int(b[13+3])
	if n > len(body) {
		return
	}
	body = body[:n]
	// A DTLS ClientHello has a cookie after the session ID; drop it.
	if len(body) < 2+32+1 {
		return
	}
	sidEnd := 2 + 32 + 1 + int(body[34])
	if len(body) < sidEnd+1 || len(body) < sidEnd+1+int(body[sidEnd]) {
		return
	}
	msg := make([]byte, 0, 4+len(body))
	inner := append(append([]byte(nil), body[:sidEnd]...), body[sidEnd+1+int(body[sidEnd]):]...)
	msg = append(msg, 1, byte(len(inner)>>16), byte(len(inner)>>8), byte(len(inner)))
	msg = append(msg, inner...)
	if err := e.hello.Parse(msg); err != nil {
		e.stats.Malformed++
		return
	}
	if ev := dtlsVPNHello(f, &e.hello, int(body[34]), int(body[sidEnd])); ev != "" {
		e.raiseAs(f, Likely, ClassVPN, "dtls-vpn", ev)
		return
	}
	e.judgeHello(f, &e.hello, false)
}

// judgeName applies the name lists to a server name seen outside a parsed
// ClientHello (Google QUIC).
func (e *Engine) judgeName(f *flow, name, what string) {
	f.sniSeen = name != ""
	ev := what + " sni=" + name
	if p, ok := lookupSuffix(dohNames, name); ok {
		e.raiseAs(f, Likely, ClassDoH, "doh:"+p, ev)
	} else if p, ok := lookupSuffix(vpnNames, name); ok {
		e.raiseAs(f, Likely, ClassVPN, p, ev)
	} else if p, ok := lookupSuffix(remoteAccessNames, name); ok {
		e.raiseAs(f, Likely, ClassRemoteAccess, p, ev)
	}
}

// wireGuard recognises WireGuard by message type and exact sizes:
// handshake initiation 148 bytes, response 92, cookie reply 64, transport
// data 32+16n with a counter that counts up. Cloudflare WARP reuses the
// three reserved bytes (and the top bits of the type byte) for a client ID,
// so those are not required to be zero.
func wireGuard(f *flow, dir int, b []byte) string {
	if len(b) < 32 {
		return ""
	}
	typ := b[0] & 0x0f
	reservedZero := b[1] == 0 && b[2] == 0 && b[3] == 0 && b[0]&0xf0 == 0
	switch {
	case typ == 1 && len(b) == 148 && dir == dirC2S:
		f.wgInit = true // wait for the response before deciding
		f.wgIndex[dirC2S] = binary.LittleEndian.Uint32(b[4:8])
		return ""
	case typ == 2 && len(b) == 92 && dir == dirS2C && f.wgInit &&
		binary.LittleEndian.Uint32(b[8:12]) == f.wgIndex[dirC2S]:
		return "WireGuard handshake initiation (148 bytes) answered by a response (92 bytes) naming the initiator's index"
	case typ == 4 && (len(b)-32)%16 == 0 && (reservedZero || b[0]&0xf0 == 0xc0):
		// Each direction has its own receiver index and counter.
		idx := binary.LittleEndian.Uint32(b[4:8])
		ctr := binary.LittleEndian.Uint64(b[8:16])
		if f.wgRun[dir] > 0 && idx == f.wgIndex[dir] && ctr > f.wgCounter[dir] && ctr-f.wgCounter[dir] <= 8 {
			f.wgRun[dir]++
		} else {
			f.wgRun[dir] = 1
			f.wgIndex[dir] = idx
		}
		f.wgCounter[dir] = ctr
		if f.wgRun[dirC2S]+f.wgRun[dirS2C] >= 5 && f.wgRun[dir] >= 3 {
			return fmt.Sprintf("WireGuard transport data: receiver index %08x with its counter counting up to %d in 32+16n-byte packets", idx, ctr)
		}
	}
	return ""
}

// ikeMessage recognises an ISAKMP/IKE header (IKEv1 or IKEv2) on UDP 500,
// or on 4500 after the non-ESP marker, checking the header's own length
// and version fields against the datagram.
func ikeMessage(f *flow, b []byte) string {
	if f.sport != 500 && f.sport != 4500 && f.cport != 500 && f.cport != 4500 {
		return ""
	}
	natt := ""
	if len(b) >= 4 && binary.BigEndian.Uint32(b) == 0 {
		b = b[4:]
		natt = " (NAT-T)"
	}
	if len(b) < 28 {
		return ""
	}
	ver := b[17]
	exch := b[18]
	l := binary.BigEndian.Uint32(b[24:28])
	if int(l) != len(b) || bytes.Equal(b[:8], make([]byte, 8)) {
		return ""
	}
	switch {
	case ver == 0x20 && exch >= 34 && exch <= 43:
		return fmt.Sprintf("IKEv2 message, exchange type %d%s", exch, natt)
	case ver == 0x10 && (exch >= 1 && exch <= 5 || exch == 32):
		return fmt.Sprintf("IKEv1 (ISAKMP) message, exchange type %d%s", exch, natt)
	}
	return ""
}

// openVPNUDP recognises the OpenVPN reset exchange over UDP: the client's
// first packet is a hard reset with a session ID, and the server's reset
// acknowledges that session ID.
func (e *Engine) openVPNUDP(f *flow, dir int, b []byte) string {
	if len(b) < 14 {
		return ""
	}
	if dir == dirC2S && f.pkts[dirC2S] <= 2 && !f.ovpnSeen {
		op := b[0] >> 3
		if b[0]&7 == 0 && (op == 7 || op == 10) && len(b) <= 1400 && !bytes.Equal(b[1:9], make([]byte, 8)) {
			copy(f.ovpnSID[:], b[1:9])
			f.ovpnSeen = true
			e.expectAnswer(f, "", 2, ClassVPN, "openvpn", fmt.Sprintf("OpenVPN client hard reset (opcode %d) with session %x", op, b[1:9]))
		}
		return ""
	}
	if dir == dirC2S && f.ovpnSeen && f.pkts[dirS2C] == 0 && b[0]&7 == 0 && (b[0]>>3 == 7 || b[0]>>3 == 10) &&
		bytes.Equal(b[1:9], f.ovpnSID[:]) {
		// The client resends its reset (same session ID) until answered.
		e.expectAnswer(f, "", 2, ClassVPN, "openvpn", "")
		return ""
	}
	if dir == dirS2C && f.ovpnSeen {
		c := append([]byte{7 << 3}, f.ovpnSID[:]...)
		return openVPNReset(c, b, "udp", f.last)
	}
	return ""
}

// l2tpControl recognises an L2TPv2 control message header with a length
// field that matches the datagram.
func l2tpControl(f *flow, b []byte) string {
	if f.sport != 1701 && f.cport != 1701 {
		return ""
	}
	if len(b) < 12 {
		return ""
	}
	flags := binary.BigEndian.Uint16(b)
	if flags&0xc80f != 0xc802 { // T, L, S set; version 2
		return ""
	}
	if int(binary.BigEndian.Uint16(b[2:4])) != len(b) {
		return ""
	}
	return "L2TPv2 control message"
}

// rdpUDP recognises the MS-RDPEUDP handshake: the client's SYN datagram has
// snSourceAck -1, the SYN flag and its initial sequence number; the
// server's SYN+ACK acknowledges exactly that sequence number.
func rdpUDP(f *flow, dir int, b []byte) string {
	if len(b) < 12 {
		return ""
	}
	flags := binary.BigEndian.Uint16(b[6:8])
	if dir == dirC2S && f.pkts[dirC2S] <= 2 && binary.BigEndian.Uint32(b) == 0xffffffff && flags&0x0001 != 0 {
		f.wgIndex[dirC2S] = binary.BigEndian.Uint32(b[8:12]) // scratch: client's initial sequence number
		f.wgInit = true
		return ""
	}
	if dir == dirS2C && f.wgInit && flags&0x0005 == 0x0005 && binary.BigEndian.Uint32(b) == f.wgIndex[dirC2S] {
		return "RDP-UDP SYN answered by SYN+ACK acknowledging the client's initial sequence number"
	}
	return ""
}

// dnscryptResolverMagic starts every DNSCrypt v2 response.
const dnscryptResolverMagic = "r6fnvWj8"

// teredo recognises IPv6 carried in UDP to or from the Teredo port, after
// the optional authentication and origin indication headers.
func teredo(f *flow, b []byte) string {
	if f.sport != 3544 && f.cport != 3544 {
		return ""
	}
	if len(b) >= 13 && b[0] == 0 && b[1] == 1 { // authentication header
		n := 4 + int(b[2]) + int(b[3]) + 8 + 1
		if n > len(b) {
			return ""
		}
		b = b[n:]
	}
	if len(b) >= 8 && b[0] == 0 && b[1] == 0 { // origin indication
		b = b[8:]
	}
	if len(b) >= 40 && b[0]>>4 == 6 && int(binary.BigEndian.Uint16(b[4:6])) == len(b)-40 {
		return "IPv6 packets in UDP on the Teredo port"
	}
	return ""
}
