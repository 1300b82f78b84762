// Package quic reads what a passive observer can read from QUIC: the long
// header, and the client's Initial packets, whose keys are derived from the
// connection ID alone (RFC 9001 section 5.2, RFC 9369 for QUIC v2), so the
// TLS ClientHello inside them (SNI, ALPN) can be recovered. It also finds the
// cleartext CHLO of Google QUIC (Q043..Q046).
//
// It owns decryption and frame walking only; it keeps no per-connection state
// except in a CryptoStream the caller owns, and it does not interpret the
// ClientHello (see package tlshello).
package quic

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"

	"golang.org/x/crypto/hkdf"
)

// Errors from the parsers.
var (
	ErrNotQUIC     = errors.New("quic: not a QUIC long-header packet")
	ErrUnsupported = errors.New("quic: version without known initial keys")
	ErrShort       = errors.New("quic: truncated packet")
	ErrDecrypt     = errors.New("quic: initial packet does not authenticate")
	ErrFrame       = errors.New("quic: malformed frame")
)

// Well-known version numbers.
const (
	Version1 = 0x00000001
	Version2 = 0x6b3343cf
)

var (
	saltV1      = []byte{0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a}
	saltV2      = []byte{0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9}
	saltDraft29 = []byte{0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97, 0x86, 0xf1, 0x9c, 0x61, 0x11, 0xe0, 0x43, 0x90, 0xa8, 0x99}
	saltDraft23 = []byte{0xc3, 0xee, 0xf7, 0x12, 0xc7, 0x2e, 0xbb, 0x5a, 0x11, 0xa7, 0xd2, 0x43, 0x2b, 0xb4, 0x63, 0x65, 0xbe, 0xf9, 0xf5, 0x02}
)

// Header is the invariant part of a long header plus the Initial fields.
type Header struct {
	Version uint32
	DCID    []byte
	SCID    []byte
	// Initial is true for an Initial packet of a version whose packet type
	// encoding is known.
	Initial bool
	Token   []byte
	// PNOffset is where the protected packet number starts; Length is the
	// length of packet number plus payload; End is where the packet ends
	// (coalesced packets follow).
	PNOffset int
	Length   int
	End      int
}

// IsLongHeader reports whether b starts like a QUIC long-header packet.
func IsLongHeader(b []byte) bool {
	return len(b) >= 7 && b[0]&0x80 != 0
}

// ParseHeader parses a long header. For versions with known Initial
// encoding it also parses the token and length.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if !IsLongHeader(b) {
		return h, ErrNotQUIC
	}
	h.Version = binary.BigEndian.Uint32(b[1:5])
	p := 5
	dl := int(b[p])
	p++
	if dl > 20 || len(b) < p+dl+1 {
		return h, ErrShort
	}
	h.DCID = b[p : p+dl]
	p += dl
	sl := int(b[p])
	p++
	if sl > 20 || len(b) < p+sl {
		return h, ErrShort
	}
	h.SCID = b[p : p+sl]
	p += sl
	if _, _, ok := versionParams(h.Version); !ok {
		return h, ErrUnsupported
	}
	typ := b[0] >> 4 & 3
	if h.Version == Version2 {
		h.Initial = typ == 1
	} else {
		h.Initial = typ == 0
	}
	if !h.Initial {
		return h, nil
	}
	tl, n := varint(b[p:])
	if n == 0 || uint64(len(b)-p-n) < tl {
		return h, ErrShort
	}
	p += n
	h.Token = b[p : p+int(tl)]
	p += int(tl)
	l, n := varint(b[p:])
	if n == 0 {
		return h, ErrShort
	}
	p += n
	h.PNOffset = p
	h.Length = int(l)
	if l > uint64(len(b)-p) {
		return h, ErrShort
	}
	h.End = p + int(l)
	return h, nil
}

func versionParams(v uint32) (salt []byte, labelPrefix string, ok bool) {
	switch {
	case v == Version1:
		return saltV1, "quic ", true
	case v == Version2:
		return saltV2, "quicv2 ", true
	case v >= 0xff00001d && v <= 0xff000020:
		return saltDraft29, "quic ", true
	case v >= 0xff000017 && v <= 0xff00001c:
		return saltDraft23, "quic ", true
	case v == 0xfaceb002: // mvfst's deployment of draft-27
		return saltDraft23, "quic ", true
	}
	return nil, "", false
}

// varint decodes a QUIC variable-length integer; n is 0 on truncation.
func varint(b []byte) (v uint64, n int) {
	if len(b) == 0 {
		return 0, 0
	}
	n = 1 << (b[0] >> 6)
	if len(b) < n {
		return 0, 0
	}
	v = uint64(b[0] & 0x3f)
	for i := 1; i < n; i++ {
		v = v<<8 | uint64(b[i])
	}
	return v, n
}

// Opener holds the client Initial keys of one connection.
type Opener struct {
	aead cipher.AEAD
	hp   cipher.Block
	iv   [12]byte
}

// NewClientOpener derives the client's Initial keys from the Destination
// Connection ID the client chose, for the given version.
func NewClientOpener(version uint32, dcid []byte) (*Opener, error) {
	salt, prefix, ok := versionParams(version)
	if !ok {
		return nil, ErrUnsupported
	}
	key, iv, hpKey := clientKeys(salt, prefix, dcid)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	hp, err := aes.NewCipher(hpKey)
	if err != nil {
		return nil, err
	}
	o := &Opener{aead: aead, hp: hp}
	copy(o.iv[:], iv)
	return o, nil
}

// clientKeys derives the client's Initial AEAD key, IV and header
// protection key (RFC 9001 section 5.2).
func clientKeys(salt []byte, prefix string, dcid []byte) (key, iv, hp []byte) {
	initial := hkdf.Extract(sha256.New, dcid, salt)
	client := expandLabel(initial, "client in", 32)
	return expandLabel(client, prefix+"key", 16), expandLabel(client, prefix+"iv", 12), expandLabel(client, prefix+"hp", 16)
}

func expandLabel(secret []byte, label string, length int) []byte {
	full := "tls13 " + label
	info := make([]byte, 0, 4+len(full))
	info = append(info, byte(length>>8), byte(length), byte(len(full)))
	info = append(info, full...)
	info = append(info, 0)
	out := make([]byte, length)
	if _, err := io.ReadFull(hkdf.Expand(sha256.New, secret, info), out); err != nil {
		// HKDF-Expand only fails when asked for more than 255 hash
		// lengths, which the fixed lengths above never do.
		panic("quic: hkdf expand: " + err.Error())
	}
	return out
}

// Open removes header protection and decrypts one Initial packet whose
// header h was parsed from pkt. The plaintext is written to dst (which may be
// nil) and returned. pkt is not modified.
func (o *Opener) Open(dst, pkt []byte, h Header) ([]byte, error) {
	if h.PNOffset+4+16 > len(pkt) || h.End > len(pkt) || h.End < h.PNOffset+4 {
		return nil, ErrShort
	}
	var mask [16]byte
	o.hp.Encrypt(mask[:], pkt[h.PNOffset+4:h.PNOffset+4+16])
	first := pkt[0] ^ mask[0]&0x0f
	pnLen := int(first&3) + 1
	if h.PNOffset+pnLen > h.End {
		return nil, ErrShort
	}
	// The header with protection removed is the AEAD's associated data.
	hdr := make([]byte, h.PNOffset+pnLen)
	copy(hdr, pkt[:h.PNOffset+pnLen])
	hdr[0] = first
	var pn uint64
	for i := 0; i < pnLen; i++ {
		hdr[h.PNOffset+i] ^= mask[1+i]
		pn = pn<<8 | uint64(hdr[h.PNOffset+i])
	}
	var nonce [12]byte
	copy(nonce[:], o.iv[:])
	for i := 0; i < 8; i++ {
		nonce[11-i] ^= byte(pn >> (8 * i))
	}
	out, err := o.aead.Open(dst[:0], nonce[:], pkt[h.PNOffset+pnLen:h.End], hdr)
	if err != nil {
		return nil, ErrDecrypt
	}
	return out, nil
}

// CryptoFrames calls fn for every CRYPTO frame in a decrypted Initial
// payload. It understands the frames allowed in Initial packets and stops
// with ErrFrame at anything else.
func CryptoFrames(payload []byte, fn func(offset uint64, data []byte)) error {
	b := payload
	for len(b) > 0 {
		typ := b[0]
		switch {
		case typ == 0x00 || typ == 0x01: // PADDING, PING
			b = b[1:]
		case typ == 0x02 || typ == 0x03: // ACK
			b = b[1:]
			var ok bool
			for i := 0; i < 4; i++ { // largest, delay, range count, first range
				var v uint64
				if v, b, ok = take(b); !ok {
					return ErrFrame
				}
				if i == 2 {
					for j := uint64(0); j < v*2; j++ {
						if _, b, ok = take(b); !ok {
							return ErrFrame
						}
					}
				}
			}
			if typ == 0x03 {
				for i := 0; i < 3; i++ {
					if _, b, ok = take(b); !ok {
						return ErrFrame
					}
				}
			}
		case typ == 0x06: // CRYPTO
			b = b[1:]
			off, rest, ok := take(b)
			if !ok {
				return ErrFrame
			}
			l, rest, ok := take(rest)
			if !ok || l > uint64(len(rest)) {
				return ErrFrame
			}
			fn(off, rest[:l])
			b = rest[l:]
		case typ == 0x1c || typ == 0x1d: // CONNECTION_CLOSE ends the packet
			return nil
		default:
			return ErrFrame
		}
	}
	return nil
}

func take(b []byte) (uint64, []byte, bool) {
	v, n := varint(b)
	if n == 0 {
		return 0, nil, false
	}
	return v, b[n:], true
}
