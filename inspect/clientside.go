package inspect

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/gatehouse-net/gatehouse/inspect/tlshello"
)

// clientOnlyTCP recognises the openings of tunnels and proxies from the
// client's bytes alone, for servers that accept the connection and then
// never answer (a blackholing middlebox, a dead proxy behind a load
// balancer). Each waits for the server (see attempt.go); the detectors of
// the full exchange confirm it when the server does answer.
func (e *Engine) clientOnlyTCP(f *flow, cs []byte) bool {
	if ev := openVPNTCPClient(cs); ev != "" {
		e.expectAnswer(f, "", 1, ClassVPN, "openvpn", ev)
		return true
	}
	if ev := socksGreeting(cs); ev != "" {
		e.expectAnswer(f, "", 1, ClassProxy, ev[:6], ev)
		return true
	}
	return false
}

// openVPNTCPClient matches a TCP stream that opens with one length-prefixed
// OpenVPN client hard reset (v2, or v3 for tls-crypt-v2) whose length is
// exactly what was sent, and a non-zero session ID.
func openVPNTCPClient(cs []byte) string {
	if len(cs) < 2+14 {
		return ""
	}
	l := int(binary.BigEndian.Uint16(cs))
	if l < 14 || l > 1400 || len(cs) != 2+l {
		return ""
	}
	op := cs[2] >> 3
	if cs[2]&7 != 0 || (op != 7 && op != 10) || binary.BigEndian.Uint64(cs[3:11]) == 0 {
		return ""
	}
	return fmt.Sprintf("OpenVPN client hard reset over tcp (opcode %d, %d bytes) with session %x", op, l, cs[3:11])
}

// socksGreeting matches a SOCKS5 greeting (version, method count, that
// many known methods, nothing else) or a SOCKS4/4a CONNECT request, as the
// whole of the client's first payload. The evidence starts with the
// protocol's name ("socks5" or "socks4").
func socksGreeting(cs []byte) string {
	switch {
	case len(cs) >= 3 && cs[0] == 5:
		n := int(cs[1])
		if n == 0 || n > 9 || len(cs) != 2+n {
			return ""
		}
		for _, m := range cs[2:] {
			if m > 9 && m < 0x80 || m == 0xff {
				return ""
			}
		}
		return fmt.Sprintf("socks5 greeting offering %d method(s)", n)
	case len(cs) >= 9 && cs[0] == 4 && cs[1] == 1 && cs[len(cs)-1] == 0 && len(cs) <= 300:
		return fmt.Sprintf("socks4 CONNECT request to port %d", binary.BigEndian.Uint16(cs[2:4]))
	}
	return ""
}

// udpEncrypted applies the fully-encrypted test to a UDP flow's first
// datagrams: the client's first two and the server's first must each look
// uniformly random, and the client's two must not share a header: framed
// protocols repeat something in their first bytes from one datagram to the
// next (RTP's version, payload type and SSRC, STUN's type and magic cookie,
// QUIC's version and connection ID, KCP's conversation ID, DTLS's record
// header, WireGuard's type), while a Shadowsocks-style datagram starts with
// a fresh random salt every time. f.encFirst collects what was seen as
// bits: 1 the client's first, 2 its second, 4 the server's first;
// -1 ends the test.
func (e *Engine) udpEncrypted(f *flow, dir int, b []byte) {
	if f.encFirst < 0 {
		return
	}
	switch {
	case dir == dirC2S && f.pkts[dirC2S] == 1:
		if !fullyEncrypted(b) {
			f.encFirst = -1
			return
		}
		copy(f.encHead[:], b)
		f.encFirst |= 1
		if e.randomHeadAgain(f, b) {
			// A relay that opens a flow per request (ss-tunnel, ss-redir)
			// sends one datagram per flow: the previous flow's first
			// datagram to the same server stands in for the second.
			f.encFirst |= 2
		}
	case dir == dirC2S && f.pkts[dirC2S] == 2 && f.encFirst&1 != 0:
		same := 0
		for i, c := range f.encHead {
			if b[i] == c {
				same++
			}
		}
		if same >= 2 || !fullyEncrypted(b) {
			f.encFirst = -1
			return
		}
		f.encFirst |= 2
	case dir == dirS2C && f.pkts[dirS2C] == 1:
		if !fullyEncrypted(b) {
			f.encFirst = -1
			return
		}
		f.encFirst |= 4
	case dir == dirC2S && f.encFirst == 3 && f.pkts[dirS2C] == 0 && fullyEncrypted(b):
		// Still nothing back: each further random datagram is a retry.
	default:
		if f.pkts[dirC2S] > 2 && f.pkts[dirS2C] > 1 {
			f.encFirst = -1 // the test is over for this flow
		}
		return
	}
	const what = "datagrams that are uniformly random from their first byte, with no header repeated between them"
	switch {
	case f.encFirst == 7:
		e.raiseAs(f, Likely, ClassProxy, "encrypted-datagrams", "client and server "+what)
	case f.encFirst == 3 && f.pkts[dirS2C] == 0:
		e.expectAnswer(f, "", 2, ClassProxy, "encrypted-datagrams", "client "+what)
	}
}

// sslVPNRequest matches the cleartext openings of SSL VPNs, seen when a
// gateway is reached without TLS or a middlebox has opened the TLS:
// AnyConnect/OpenConnect's tunnel CONNECT and its X-CSTP- headers,
// FortiGate's /remote/ pages and Pulse/Ivanti's /dana-na/.
func sslVPNRequest(cs []byte) (detail, ev string) {
	if !httpRequestLine(cs) {
		return "", ""
	}
	head := cs[:min(len(cs), 2048)]
	switch {
	case hasPrefix(cs, "CONNECT /CSCOSSLC/tunnel "), bytes.Contains(head, []byte("\r\nX-CSTP-")):
		return "cisco-anyconnect", "AnyConnect tunnel request " + quoteLine(cs)
	case hasPrefix(cs, "GET /remote/sslvpn-tunnel"), hasPrefix(cs, "POST /remote/logincheck"), hasPrefix(cs, "GET /remote/login"):
		return "fortinet-sslvpn", "FortiGate SSL-VPN request " + quoteLine(cs)
	case hasPrefix(cs, "GET /dana-na/"), hasPrefix(cs, "POST /dana-na/"):
		return "pulse-sslvpn", "Pulse/Ivanti SSL-VPN request " + quoteLine(cs)
	}
	return "", ""
}

// dtlsVPNHello recognises the DTLS ClientHello of an SSL VPN's data
// channel: AnyConnect-style clients resume, in their very first datagram,
// a session they were handed inside the TLS control connection (a 32-byte
// session ID with no cookie yet), or offer only pre-shared-key suites
// (OpenConnect's PSK-NEGOTIATE). WebRTC's DTLS does neither.
func dtlsVPNHello(f *flow, h *tlshello.ClientHello, sidLen, cookieLen int) string {
	if f.pkts[dirC2S] > 2 {
		return ""
	}
	psk := len(h.CipherSuites) > 0
	for _, c := range h.CipherSuites {
		if tlshello.IsGREASE(c) || c == 0x00ff {
			continue
		}
		if !(c >= 0x008c && c <= 0x0095 || c >= 0x00a8 && c <= 0x00ab || c >= 0x00ae && c <= 0x00b3 ||
			c >= 0xc0a4 && c <= 0xc0ab || c >= 0xccab && c <= 0xccae || c >= 0xd001 && c <= 0xd005) {
			psk = false
			break
		}
	}
	switch {
	case psk:
		return "DTLS ClientHello offering only pre-shared-key suites, as an SSL VPN's data channel does"
	case sidLen == 32 && cookieLen == 0 && len(h.SNI) == 0:
		return "DTLS ClientHello resuming, in its first datagram and without a name, a session negotiated elsewhere (an SSL VPN's data channel)"
	}
	return ""
}

// sslVPN raises an SSL-VPN request seen in clear.
func (e *Engine) sslVPN(f *flow, cs []byte) bool {
	detail, ev := sslVPNRequest(cs)
	if detail == "" {
		return false
	}
	e.raise(f, ClassVPN, detail, ev)
	return true
}

// encryptedReplyAtClose judges a fully-encrypted-looking client opening
// whose server answered with less than the kilobyte the stream test waits
// for before the connection closed (a short request through a Shadowsocks
// relay): the whole answer must look random too, and be at least as long
// as the test's floor.
func (e *Engine) encryptedReplyAtClose(f *flow) {
	ss := e.view(f, dirS2C, dirC2S, nil)
	if len(ss) < 48 || f.tlsSNI {
		return
	}
	f.encFirst = -1
	if fullyEncrypted(ss) {
		e.raiseAs(f, Likely, ClassProxy, "encrypted-stream", fmt.Sprintf("first client payload is uniformly random with no protocol framing, and so is the server's whole %d-byte answer before the connection closed", len(ss)))
	}
}

// udpHead is the start of the last random-looking first datagram a client
// sent to one server port.
type udpHead struct {
	head [8]byte
	at   time.Time
}

// maxUDPHeads bounds the table keyed by client, server and port.
const maxUDPHeads = 4096

// randomHeadAgain records b as f's client's first datagram to the server
// and reports whether an earlier flow's first datagram to the same server
// and port, within the flow idle time, also looked random and shared at
// most one of its first eight bytes with b.
func (e *Engine) randomHeadAgain(f *flow, b []byte) bool {
	k := repeatKey{f.client, f.server, f.sport, ""}
	prev, ok := e.udpHeads[k]
	if len(e.udpHeads) >= maxUDPHeads {
		clear(e.udpHeads)
	}
	var h udpHead
	copy(h.head[:], b)
	h.at = f.last
	e.udpHeads[k] = h
	if !ok || f.last.Sub(prev.at) > e.opt.FlowIdle {
		return false
	}
	same := 0
	for i, c := range prev.head {
		if b[i] == c {
			same++
		}
	}
	return same < 2
}

// webSocketTunnel recognises a fully encrypted proxy carried in WebSocket
// frames over plain HTTP (v2ray's VMess or VLESS over ws, and the like):
// after an Upgrade to websocket and the server's 101, the first binary
// frame each way carries, once the client's mask is taken off, uniformly
// random bytes. Web applications send text frames (JSON) or framed binary
// protocols, which the fully-encrypted test exempts.
func webSocketTunnel(cs, ss []byte) string {
	if !hasPrefix(cs, "GET ") || !hasPrefix(ss, "HTTP/1.1 101") {
		return ""
	}
	ch := bytes.Index(cs, []byte("\r\n\r\n"))
	sh := bytes.Index(ss, []byte("\r\n\r\n"))
	if ch < 0 || sh < 0 || !bytes.Contains(bytes.ToLower(cs[:ch]), []byte("\r\nupgrade: websocket")) {
		return ""
	}
	cb, sb := cs[ch+4:], ss[sh+4:]
	cp, ok1 := wsBinaryPayload(cb)
	sp, ok2 := wsBinaryPayload(sb)
	if ok1 && ok2 && fullyEncrypted(cp) && fullyEncrypted(sp) {
		return fmt.Sprintf("WebSocket whose first binary frames carry uniformly random bytes both ways (client %d, server %d bytes)", len(cp), len(sp))
	}
	// An upgrade used only as a disguise (simple-obfs's obfs=http and its
	// kin): what follows the handshake is not WebSocket framing at all,
	// but random bytes, both ways. Every real endpoint frames (and every
	// client masks) from the first byte after the headers.
	if len(cb) >= wsDisguiseMin && len(sb) >= wsDisguiseMin && !wsFrameStart(cb, true) && !wsFrameStart(sb, false) &&
		fullyEncrypted(cb) && fullyEncrypted(sb) {
		return fmt.Sprintf("WebSocket upgrade followed, both ways, by uniformly random bytes that are not WebSocket frames (client %d, server %d bytes): a proxy disguised as a WebSocket", len(cb), len(sb))
	}
	return ""
}

// wsDisguiseMin is how many bytes after each side's headers the disguised
// WebSocket test wants before judging.
const wsDisguiseMin = 32

// wsFrameStart reports whether b starts with a plausible WebSocket frame
// header (RFC 6455 section 5.2): a defined opcode, no reserved bit but
// RSV1 (permessage-deflate), and the mask bit set exactly on a client's
// frames.
func wsFrameStart(b []byte, client bool) bool {
	if len(b) < 2 || b[0]&0x30 != 0 {
		return false
	}
	switch b[0] & 0x0f {
	case 0, 1, 2, 8, 9, 10:
	default:
		return false
	}
	return (b[1]&0x80 != 0) == client
}

// wsBinaryPayload returns the (unmasked) payload of a binary WebSocket
// frame at the start of b, as far as it has arrived.
func wsBinaryPayload(b []byte) ([]byte, bool) {
	if len(b) < 2 || b[0]&0x0f != 2 {
		return nil, false
	}
	n := int(b[1] & 0x7f)
	i := 2
	switch n {
	case 126:
		if len(b) < 4 {
			return nil, false
		}
		n, i = int(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return nil, false
		}
		n, i = int(min(binary.BigEndian.Uint64(b[2:]), 1<<20)), 10
	}
	var mask []byte
	if b[1]&0x80 != 0 {
		if len(b) < i+4 {
			return nil, false
		}
		mask, i = b[i:i+4], i+4
	}
	p := b[i:min(len(b), i+n, i+2048)]
	if mask != nil {
		q := make([]byte, len(p))
		for j := range p {
			q[j] = p[j] ^ mask[j&3]
		}
		p = q
	}
	return p, true
}
