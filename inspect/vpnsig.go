package inspect

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
)

// ZeroTier packets start with a cleartext header: an 8-byte packet ID,
// the 40-bit ZeroTier addresses of destination and source, a
// flags/cipher/hops byte and an 8-byte MAC; the verb follows, encrypted
// except in HELLO, which is sent with the "Poly1305, no encryption" suite
// so that a peer that does not know the sender yet can read its identity.
const (
	ztIdxDest     = 8
	ztIdxSource   = 13
	ztIdxFlags    = 18
	ztIdxVerb     = 27
	ztIdxPayload  = 28
	ztMinPacket   = 28
	ztPort        = 9993
	ztVerbHello   = 1
	ztFragmentInd = 0xff // first byte of a reserved address marks a fragment
)

// ztAddress reports a usable 40-bit ZeroTier address: not zero and not in
// the reserved 0xff prefix.
func ztAddress(b []byte) bool {
	return b[0] != 0xff && !bytes.Equal(b[:5], []byte{0, 0, 0, 0, 0})
}

// zeroTierHello recognises a ZeroTier HELLO: the verb in clear under cipher
// suite 0, a plausible protocol version, and the sender's identity, whose
// first five bytes are its address, repeating the header's source address.
func zeroTierHello(b []byte) bool {
	// Payload: protocol version, major, minor, revision (2), timestamp (8),
	// then the identity: address (5), type (1), public key.
	const idIdx = ztIdxPayload + 1 + 1 + 1 + 2 + 8
	if len(b) < idIdx+5+1+64 {
		return false
	}
	flags := b[ztIdxFlags]
	if flags&0x38 != 0 || b[ztIdxVerb]&0x1f != ztVerbHello {
		return false
	}
	if v := b[ztIdxPayload]; v < 4 || v > 30 {
		return false
	}
	src := b[ztIdxSource : ztIdxSource+5]
	if !ztAddress(src) || !ztAddress(b[ztIdxDest:]) || !bytes.Equal(b[idIdx:idIdx+5], src) {
		return false
	}
	return b[idIdx+5] <= 1 // identity type: 0 Curve25519, 1 P-384
}

// zeroTier recognises ZeroTier on a UDP flow: a HELLO on any port, or on
// its port a first packet from each side whose 40-bit addresses answer each
// other (the reply's destination is the request's source and back).
func zeroTier(f *flow, dir int, b []byte) string {
	if len(b) < ztMinPacket || b[ztIdxSource] == ztFragmentInd {
		return ""
	}
	if dir == dirC2S && f.pkts[dirC2S] <= 3 && zeroTierHello(b) {
		return fmt.Sprintf("ZeroTier HELLO from node %x carrying its own identity", b[ztIdxSource:ztIdxSource+5])
	}
	if f.sport != ztPort && f.cport != ztPort {
		return ""
	}
	flags := b[ztIdxFlags]
	if cipher := flags >> 3 & 7; cipher != 0 && cipher != 1 && cipher != 3 {
		return ""
	}
	dst, src := b[ztIdxDest:ztIdxDest+5], b[ztIdxSource:ztIdxSource+5]
	if !ztAddress(dst) || !ztAddress(src) || bytes.Equal(dst, src) {
		return ""
	}
	switch {
	case dir == dirC2S && !f.ztSeen && f.pkts[dirC2S] <= 3:
		copy(f.ztAddrs[:], b[ztIdxDest:ztIdxSource+5])
		f.ztSeen = true
	case dir == dirS2C && f.ztSeen && f.pkts[dirS2C] <= 3:
		if bytes.Equal(dst, f.ztAddrs[5:]) && bytes.Equal(src, f.ztAddrs[:5]) {
			return fmt.Sprintf("ZeroTier packets between nodes %x and %x in both directions on UDP %d", src, dst, ztPort)
		}
	}
	return ""
}

// teamViewerUDP recognises TeamViewer's UDP framing: a sequence byte that
// starts at zero and the command magic 0x17 0x24 at offset 11. Two such
// datagrams on TeamViewer's port, or four on any other, make a session.
func teamViewerUDP(f *flow, b []byte) string {
	if len(b) <= 13 || b[0] != 0 || b[11] != 0x17 || b[12] != 0x24 {
		return ""
	}
	if f.tvUDP < 255 {
		f.tvUDP++
	}
	onPort := f.sport == 5938 || f.cport == 5938
	if onPort && f.tvUDP >= 2 || f.tvUDP >= 4 {
		return fmt.Sprintf("%d TeamViewer UDP datagrams with command magic 0x1724", f.tvUDP)
	}
	return ""
}

// softEtherRequest matches the cleartext opening of a SoftEther session:
// the HTTP POST of its watermark to /vpnsvc/connect.cgi, or of a PACK to
// /vpnsvc/vpn.cgi. Normally this travels inside TLS; it is seen when the
// server allows plain connections or a middlebox has opened the TLS.
func softEtherRequest(cs []byte) bool {
	return (hasPrefix(cs, "POST /vpnsvc/connect.cgi ") || hasPrefix(cs, "POST /vpnsvc/vpn.cgi ")) && httpRequestLine(cs)
}

// softEtherNATT matches the reply of SoftEther's NAT-traversal servers,
// which tell a VPN server its public endpoint as "IP=<address>,PORT=<n>".
func softEtherNATT(b []byte) bool {
	if len(b) < 16 || len(b) > 64 || !hasPrefix(b, "IP=") {
		return false
	}
	ip, port, ok := bytes.Cut(b[3:], []byte(",PORT="))
	if !ok {
		return false
	}
	if _, err := netip.ParseAddr(string(ip)); err != nil {
		return false
	}
	port = bytes.TrimRight(port, "\x00\r\n")
	n, err := strconv.Atoi(string(port))
	return err == nil && n > 0 && n < 65536
}

// softEtherPack reports a datagram that is exactly one SoftEther PACK (the
// serialisation of its control messages: a count of elements, each a name,
// a value type, a count of values and the values) with at least two
// elements and identifier names. Nothing else parses this way to the byte.
func softEtherPack(b []byte) bool {
	if len(b) < 32 {
		return false
	}
	u32 := func() (uint32, bool) {
		if len(b) < 4 {
			return 0, false
		}
		v := binary.BigEndian.Uint32(b)
		b = b[4:]
		return v, true
	}
	n, ok := u32()
	if !ok || n < 2 || n > 64 {
		return false
	}
	for range n {
		l, ok := u32() // name length plus one
		if !ok || l < 2 || l > 64 || int(l-1) > len(b) {
			return false
		}
		for _, c := range b[:l-1] {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
				return false
			}
		}
		b = b[l-1:]
		typ, ok1 := u32()
		count, ok2 := u32()
		if !ok1 || !ok2 || typ > 4 || count == 0 || count > 256 {
			return false
		}
		for range count {
			switch typ {
			case 0: // int
				if _, ok := u32(); !ok {
					return false
				}
			case 4: // int64
				if len(b) < 8 {
					return false
				}
				b = b[8:]
			default: // data, string, unicode string: length-prefixed
				sz, ok := u32()
				if !ok || int(sz) > len(b) {
					return false
				}
				b = b[sz:]
			}
		}
	}
	return len(b) == 0
}

// ultraSurfMagic starts the first client payload of an UltraSurf tunnel.
const ultraSurfMagic = "\xcc\x1c\x30\x41\x5b\xa4\x38\x66"
