package inspect

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-net/gatehouse/inspect/tlshello"
)

// inspectTCP reassembles the start of both directions and runs the TCP
// classifiers over what has arrived so far.
func (e *Engine) inspectTCP(f *flow, dir int, p *pkt) {
	st := &f.st[dir]
	if p.tcp.SYN && !p.tcp.ACK && dir == dirC2S {
		f.synSeen = true
	}
	data := st.add(p.tcp.Seq, p.tcp.SYN, p.payload)
	if len(data) == 0 {
		if (p.tcp.FIN || p.tcp.RST) && f.encFirst == 1 {
			e.encryptedReplyAtClose(f)
		}
		return
	}
	f.tlsRecs.feed(dir, data)
	if st.buf < 0 && st.n == 0 {
		st.buf = e.bufs.get()
	}
	if st.buf >= 0 {
		b := e.bufs.slot(st.buf)
		st.n += int32(copy(b[st.n:], data))
	}
	cs, ss := e.view(f, dirC2S, dir, data), e.view(f, dirS2C, dir, data)
	e.classifyTCP(f, dir, cs, ss)
	if !f.done && f.tlsRecs.doh.watch {
		e.checkDoHShape(f)
	}
}

// view returns the reassembled start of direction d. Without a buffer
// (the pool ran dry) only a flow's first segment can be looked at.
func (e *Engine) view(f *flow, d, cur int, data []byte) []byte {
	st := &f.st[d]
	if st.buf >= 0 {
		return e.bufs.slot(st.buf)[:st.n]
	}
	if d == cur && st.seen == uint32(len(data)) {
		return data
	}
	return nil
}

func (e *Engine) classifyTCP(f *flow, dir int, cs, ss []byte) {
	if len(cs) > 0 && !f.helloDone {
		if cs[0] == 0x16 {
			var err error
			e.scratch, err = e.hello.ParseRecord(cs, e.scratch)
			switch {
			case errors.Is(err, tlshello.ErrShort):
				if int(f.st[dirC2S].n) >= streamBufSize || f.st[dirC2S].buf < 0 {
					f.helloDone = true
				}
			case err != nil:
				e.stats.Malformed++
				f.helloDone = true
			default:
				f.helloDone = true
				e.judgeHello(f, &e.hello, false)
				if f.done {
					return
				}
			}
		} else {
			f.helloDone = true
		}
	}
	if e.tcpSignatures(f, cs, ss) || f.done {
		return
	}
	if f.certCheck && len(ss) > 0 {
		e.checkServerCert(f, ss)
		if f.done {
			return
		}
	}
	if dir == dirS2C && len(ss) > 0 && len(cs) > 0 {
		if f.tlsSNI && e.checkFakeResumption(f) {
			return
		}
		e.checkTLSInTLS(f)
	}
}

// tcpSignatures matches the cleartext openings of protocols that run over
// TCP. It returns true when it raised a finding.
func (e *Engine) tcpSignatures(f *flow, cs, ss []byte) bool {
	switch {
	case hasPrefix(cs, "SSH-2.0-") || hasPrefix(cs, "SSH-1.99-") || hasPrefix(ss, "SSH-2.0-") || hasPrefix(ss, "SSH-1.99-"):
		banner := cs
		if !hasPrefix(cs, "SSH-") {
			banner = ss
		}
		e.raise(f, ClassSSH, "ssh", "banner "+quoteLine(banner))
		return true
	case len(cs) > 0 && (cs[0] == 'C' || cs[0] == 'G' || cs[0] == 'P') && e.sslVPN(f, cs):
		return true
	case hasPrefix(cs, "CONNECT ") && httpRequestLine(cs) && !f.server.IsLoopback() && len(ss) == 0:
		e.expectAnswer(f, Certain, 1, ClassProxy, "http-connect", "request "+quoteLine(cs))
		return true
	case hasPrefix(cs, "CONNECT ") && httpRequestLine(cs) && !f.server.IsLoopback():
		e.raise(f, ClassProxy, "http-connect", "request "+quoteLine(cs))
		return true
	case absoluteFormRequest(cs) && !f.server.IsLoopback():
		e.raise(f, ClassProxy, "http-proxy", "request "+quoteLine(cs))
		return true
	case softEtherRequest(cs):
		e.raise(f, ClassVPN, "softether", "request "+quoteLine(cs))
		return true
	case hasPrefix(cs, ultraSurfMagic):
		e.raise(f, ClassVPN, "ultrasurf", "first client payload starts with UltraSurf's magic cc1c30415ba43866")
		return true
	case hasPrefix(cs, "\x7f\x7fICA\x00") || hasPrefix(ss, "\x7f\x7fICA\x00"):
		e.raise(f, ClassRemoteAccess, "citrix", "ICA handshake")
		return true
	case hasPrefix(cs, "NXSH-") || hasPrefix(ss, "NXD-"):
		e.raise(f, ClassRemoteAccess, "nomachine", "NX banner "+quoteLine(ss))
		return true
	case rfbBanner(ss):
		e.raise(f, ClassRemoteAccess, "vnc", "RFB banner "+quoteLine(ss))
		return true
	case rdpConnectionRequest(cs):
		e.raise(f, ClassRemoteAccess, "rdp", "TPKT/X.224 connection request"+rdpCookie(cs))
		return true
	case len(cs) >= 2 && len(ss) >= 2 && cs[0] == 0x17 && cs[1] == 0x24 && ss[0] == 0x11 && ss[1] == 0x30:
		e.raise(f, ClassRemoteAccess, "teamviewer", "TeamViewer command framing 0x1724/0x1130")
		return true
	case radminFrame(cs) && radminFrame(ss):
		e.raise(f, ClassRemoteAccess, "radmin", "Radmin framing in both directions")
		return true
	}
	if ev := socksHandshake(cs, ss); ev != "" && !f.server.IsLoopback() {
		// A SOCKS listener on loopback is a local proxy client (the
		// browser's hop to ss-local, Tor's SocksPort); its remote hop, if
		// any, is a separate flow judged on its own.
		e.raise(f, ClassProxy, ev[:6], ev)
		return true
	}
	if ev := openVPNTCP(cs, ss, f.last); ev != "" {
		e.raise(f, ClassVPN, "openvpn", ev)
		return true
	}
	if len(ss) == 0 && !f.server.IsLoopback() {
		if ev := e.clientOnlyTCP(f, cs); ev {
			return true
		}
	}
	if len(cs) > 2 && len(ss) > 2 && hasPrefix(ss[2:], dnscryptResolverMagic) {
		e.raise(f, ClassDoH, "dnscrypt", "DNSCrypt response over TCP (resolver magic \"r6fnvWj8\")")
		return true
	}
	if tincID(cs) {
		e.raise(f, ClassVPN, "tinc", "tinc ID message "+quoteLine(cs))
		return true
	}
	if pptpStart(cs) {
		e.raise(f, ClassVPN, "pptp", "PPTP Start-Control-Connection-Request with magic cookie")
		return true
	}
	if f.encFirst == 0 && len(cs) > 0 {
		f.encFirst = -1
		// Only a flow seen from its SYN has its real first payload.
		if f.synSeen && fullyEncrypted(cs) {
			f.encFirst = 1
		}
	}
	if f.encFirst == 1 && len(ss) == 0 && !f.server.IsLoopback() {
		// obfs4, Shadowsocks and friends towards a server that never
		// answers: the client's random opening is all there is.
		e.expectAnswer(f, "", 1, ClassProxy, "encrypted-stream", fmt.Sprintf("first client payload of %d bytes is uniformly random with no protocol framing", len(cs)))
	}
	if ev := webSocketTunnel(cs, ss); ev != "" {
		e.raiseAs(f, Likely, ClassProxy, "websocket-tunnel", ev)
		return true
	}
	// The server's first turn is over when the client speaks again.
	turnEnd := len(ss) >= 128 && e.cur.src == f.client && e.cur.sport == f.cport && len(e.cur.payload) > 0
	if f.encFirst == 1 && (len(ss) >= 1024 || turnEnd) && !f.tlsSNI {
		// The client spoke first in what looks like random bytes and the
		// server answered with a kilobyte of the same (or less, when the
		// connection closes first: encryptedReplyAtClose): a
		// Shadowsocks-style fully encrypted proxy.
		f.encFirst = -1
		if fullyEncrypted(ss) {
			e.raiseAs(f, Likely, ClassProxy, "encrypted-stream", fmt.Sprintf("first client payload of %d bytes is uniformly random with no protocol framing", len(cs)))
			return true
		}
	}
	return false
}

func hasPrefix(b []byte, s string) bool {
	return len(b) >= len(s) && string(b[:len(s)]) == s
}

// quoteLine returns the first line of b, bounded, for evidence.
func quoteLine(b []byte) string {
	if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
		b = b[:i]
	}
	if len(b) > 80 {
		b = b[:80]
	}
	return fmt.Sprintf("%q", b)
}

func httpRequestLine(b []byte) bool {
	i := bytes.Index(b, []byte("\r\n"))
	if i < 0 {
		i = bytes.IndexByte(b, '\n')
	}
	if i < 0 || i > 2048 {
		return false
	}
	line := b[:i]
	return bytes.HasSuffix(line, []byte(" HTTP/1.1")) || bytes.HasSuffix(line, []byte(" HTTP/1.0"))
}

// absoluteFormRequest matches a request line with a full URL, which only a
// forward proxy is sent ("GET http://host/ HTTP/1.1").
func absoluteFormRequest(b []byte) bool {
	sp := bytes.IndexByte(b, ' ')
	if sp < 3 || sp > 8 {
		return false
	}
	for _, c := range b[:sp] {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	rest := b[sp+1:]
	if !hasPrefix(rest, "http://") && !hasPrefix(rest, "https://") {
		return false
	}
	return httpRequestLine(b)
}

func rfbBanner(b []byte) bool {
	return len(b) >= 12 && hasPrefix(b, "RFB 00") && b[7] == '.' && b[11] == '\n'
}

// rdpConnectionRequest matches TPKT version 3 carrying an X.224 Connection
// Request, the first packet of every RDP session.
func rdpConnectionRequest(b []byte) bool {
	if len(b) < 11 || b[0] != 3 || b[1] != 0 {
		return false
	}
	l := int(binary.BigEndian.Uint16(b[2:4]))
	return l >= 11 && l <= len(b) && int(b[4]) == l-5 && b[5] == 0xe0
}

func rdpCookie(b []byte) string {
	if i := bytes.Index(b, []byte("Cookie: ")); i >= 0 {
		return ", " + quoteLine(b[i:])
	}
	return ""
}

// radminFrame matches Radmin's framing: a 01000000 marker and a length byte
// that counts what follows the 9-byte header.
func radminFrame(b []byte) bool {
	return len(b) >= 10 && b[0] == 1 && b[1] == 0 && b[2] == 0 && b[3] == 0 && len(b) == 9+int(b[4])
}

// socksHandshake recognises a SOCKS4/4a or SOCKS5 greeting answered by the
// server in kind. It returns evidence starting with "socks4" or "socks5".
func socksHandshake(cs, ss []byte) string {
	if len(cs) < 3 || len(ss) < 2 {
		return ""
	}
	switch cs[0] {
	case 5:
		n := int(cs[1])
		if n == 0 || n > 16 || len(cs) < 2+n {
			return ""
		}
		for _, m := range cs[2 : 2+n] {
			if m > 9 && m < 0x80 || m == 0xff {
				return ""
			}
		}
		if ss[0] != 5 || !(ss[1] <= 3 || ss[1] == 0xff) || ss[1] == 0xff {
			return ""
		}
		ev := "socks5 greeting and method selection"
		if req := cs[2+n:]; len(req) >= 7 && req[0] == 5 && req[1] >= 1 && req[1] <= 3 && req[2] == 0 {
			ev += ", request " + socks5Target(req)
		}
		return ev
	case 4:
		if len(cs) < 9 || (cs[1] != 1 && cs[1] != 2) || cs[len(cs)-1] != 0 {
			return ""
		}
		if ss[0] != 0 || ss[1] < 0x5a || ss[1] > 0x5d || len(ss) < 8 {
			return ""
		}
		return fmt.Sprintf("socks4 request to port %d answered 0x%02x", binary.BigEndian.Uint16(cs[2:4]), ss[1])
	}
	return ""
}

func socks5Target(req []byte) string {
	port := func(b []byte) uint16 {
		if len(b) < 2 {
			return 0
		}
		return binary.BigEndian.Uint16(b)
	}
	switch req[3] {
	case 1:
		if len(req) >= 10 {
			return fmt.Sprintf("%d.%d.%d.%d:%d", req[4], req[5], req[6], req[7], port(req[8:]))
		}
	case 3:
		n := int(req[4])
		if len(req) >= 5+n+2 {
			return fmt.Sprintf("%q:%d", req[5:5+n], port(req[5+n:]))
		}
	case 4:
		return "an IPv6 address"
	}
	return "(truncated)"
}

// openVPNTCP recognises the OpenVPN reset exchange over TCP: a 2-byte length,
// a P_CONTROL_HARD_RESET_CLIENT (v2/v3) from the client, and the server's
// P_CONTROL_HARD_RESET_SERVER_V2 that acknowledges the client's session ID.
func openVPNTCP(cs, ss []byte, now time.Time) string {
	if len(cs) < 2+1+8+5 || len(ss) < 2+1+8+5 {
		return ""
	}
	cl := int(binary.BigEndian.Uint16(cs))
	sl := int(binary.BigEndian.Uint16(ss))
	if cl < 14 || cl > 1500 || sl < 14 || sl > 1500 || len(ss) < 2+sl {
		return ""
	}
	return openVPNReset(cs[2:min(len(cs), 2+cl)], ss[2:2+sl], "tcp", now)
}

// openVPNReset checks one client reset and one server reset packet (without
// the TCP length prefix).
func openVPNReset(c, s []byte, proto string, now time.Time) string {
	if len(c) < 9 || len(s) < 9 {
		return ""
	}
	cop, sop := c[0]>>3, s[0]>>3
	if c[0]&7 != 0 || s[0]&7 != 0 || (cop != 7 && cop != 10) || sop != 8 {
		return ""
	}
	sid := c[1:9]
	if bytes.Equal(sid, make([]byte, 8)) {
		return ""
	}
	if !bytes.Contains(s[9:], sid) {
		// Under tls-crypt the acknowledgement is encrypted; what stays in
		// clear after the server's session ID is its packet ID and its
		// clock (net_time), which must read as now.
		if len(s) >= 17+32 && !bytes.Equal(s[1:9], sid) {
			if t := int64(binary.BigEndian.Uint32(s[13:17])); now.IsZero() || abs64(t-now.Unix()) <= 86400 {
				return fmt.Sprintf("OpenVPN hard reset over %s answered by the server's reset, tls-crypt wrapped (net_time in clear), client session %x", proto, sid)
			}
		}
		return ""
	}
	return fmt.Sprintf("OpenVPN hard reset over %s, server acknowledged client session %x", proto, sid)
}

// pptpStart matches the PPTP control message header of a
// Start-Control-Connection-Request.
func pptpStart(b []byte) bool {
	return len(b) >= 16 && binary.BigEndian.Uint16(b[0:2]) == 156 &&
		binary.BigEndian.Uint16(b[2:4]) == 1 &&
		binary.BigEndian.Uint32(b[4:8]) == 0x1a2b3c4d &&
		binary.BigEndian.Uint16(b[8:10]) == 1
}

// tincID matches tinc's first meta-protocol line: "0 <node name> 17" (1.0)
// or "0 <node name> 17.<minor>" (1.1).
func tincID(b []byte) bool {
	// Every ID message starts "0 " (request 0, ID); most payloads are
	// turned away here, before any splitting.
	if len(b) < 6 || b[0] != '0' || b[1] != ' ' {
		return false
	}
	line := b
	i := bytes.IndexByte(b, '\n')
	if i < 0 || i > 128 {
		return false
	}
	line = b[:i]
	f := bytes.Fields(line)
	// tinc 1.1 sends "17.<minor>", tinc 1.0 the bare major "17".
	if len(f) != 3 || string(f[0]) != "0" || !(string(f[2]) == "17" || bytes.HasPrefix(f[2], []byte("17."))) {
		return false
	}
	for _, c := range f[1] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
