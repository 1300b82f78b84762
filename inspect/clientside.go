package inspect

import (
	"encoding/binary"
	"fmt"
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
