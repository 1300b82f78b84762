// Package tlshello parses the cleartext start of a TLS handshake: the
// ClientHello (SNI, ALPN, ECH/ESNI presence, the fields JA4 is built from) and,
// for TLS 1.2 and older, the server's certificate chain.
//
// It owns wire parsing only. It does not reassemble TCP streams, decide what a
// hello means, or keep any state between calls; the inspect package does that.
// Every parser here takes untrusted bytes, never panics and never reads past
// the slice it is given.
package tlshello

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"slices"
)

// Errors returned by the parsers. ErrShort means "not enough bytes yet": the
// caller may retry with more of the stream.
var (
	ErrShort     = errors.New("tlshello: truncated")
	ErrNotTLS    = errors.New("tlshello: not a TLS handshake record")
	ErrMalformed = errors.New("tlshello: malformed message")
)

// Extension numbers that the classifiers look at.
const (
	ExtServerName        = 0x0000
	ExtALPN              = 0x0010
	ExtSignatureAlgs     = 0x000d
	ExtSupportedVersions = 0x002b
	ExtECH               = 0xfe0d // draft-ietf-tls-esni-13 and later
	ExtESNI              = 0xffce // the older, withdrawn encrypted SNI
)

// ClientHello holds the fields of one ClientHello. Slices point into the
// caller's buffer or into the struct's own storage, which is reused by the
// next Parse call: copy what must outlive it.
type ClientHello struct {
	LegacyVersion uint16
	// Version is the highest non-GREASE supported_versions entry, or
	// LegacyVersion when the extension is absent.
	Version      uint16
	CipherSuites []uint16
	Extensions   []uint16 // in wire order, GREASE included
	SigAlgs      []uint16 // in wire order
	SNI          []byte   // first host_name entry, nil if absent
	ALPN         [][]byte // protocol names in wire order
	HasECH       bool
	HasESNI      bool
	// ECHOuter is true when the ECH extension is the "outer" variant (type
	// 0), the one a client sends on the wire; the inner variant (1) only
	// ever appears encrypted.
	ECHOuter bool
}

// IsGREASE reports whether v is one of the RFC 8701 reserved values that
// clients sprinkle into lists to keep servers tolerant.
func IsGREASE(v uint16) bool {
	return v&0x0f0f == 0x0a0a && v>>8 == v&0xff
}

// RecordHandshake extracts the first handshake message from the start of a
// TLS byte stream, joining handshake records as needed. It returns the
// message (type byte and 3-byte length included) or ErrShort when more
// stream bytes are needed. scratch is used when the message spans records;
// the returned slice may alias data or scratch.
func RecordHandshake(data []byte, scratch []byte) ([]byte, []byte, error) {
	if len(data) < 5 {
		return nil, scratch, ErrShort
	}
	if data[0] != 0x16 || data[1] != 0x03 || data[2] > 0x04 {
		return nil, scratch, ErrNotTLS
	}
	recLen := int(binary.BigEndian.Uint16(data[3:5]))
	if recLen == 0 || recLen > 1<<14+2048 {
		return nil, scratch, ErrNotTLS
	}
	if recLen < 4 {
		return nil, scratch, ErrMalformed // a handshake header split across records
	}
	if len(data) < 5+4 {
		return nil, scratch, ErrShort
	}
	// Fast path: the message fits in the first record.
	body := data[5:]
	if len(body) > recLen {
		body = body[:recLen]
	}
	need := 4 + (int(body[1])<<16 | int(body[2])<<8 | int(body[3]))
	if need > 1<<17 {
		return nil, scratch, ErrMalformed
	}
	if need <= recLen {
		if len(data) < 5+need {
			return nil, scratch, ErrShort
		}
		return data[5 : 5+need], scratch, nil
	}
	// The message continues in following handshake records.
	scratch = scratch[:0]
	for len(data) > 0 && len(scratch) < need {
		if len(data) < 5 {
			return nil, scratch, ErrShort
		}
		if data[0] != 0x16 {
			return nil, scratch, ErrMalformed
		}
		n := int(binary.BigEndian.Uint16(data[3:5]))
		if len(data) < 5+n {
			scratch = append(scratch, data[5:]...)
			if len(scratch) >= need {
				return scratch[:need], scratch, nil
			}
			return nil, scratch, ErrShort
		}
		scratch = append(scratch, data[5:5+n]...)
		data = data[5+n:]
	}
	if len(scratch) < need {
		return nil, scratch, ErrShort
	}
	return scratch[:need], scratch, nil
}

// ParseRecord parses a ClientHello at the start of a TLS byte stream.
func (ch *ClientHello) ParseRecord(data []byte, scratch []byte) ([]byte, error) {
	msg, scratch, err := RecordHandshake(data, scratch)
	if err != nil {
		return scratch, err
	}
	return scratch, ch.Parse(msg)
}

// Parse parses a handshake message that must be a ClientHello (type 1),
// header included. QUIC carries the message without a record layer, so the
// QUIC path calls this directly.
func (ch *ClientHello) Parse(msg []byte) error {
	ch.reset()
	if len(msg) < 4 {
		return ErrShort
	}
	if msg[0] != 1 {
		return ErrNotTLS
	}
	n := int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3])
	if len(msg) < 4+n {
		return ErrShort
	}
	r := reader{b: msg[4 : 4+n]}
	ch.LegacyVersion = r.u16()
	ch.Version = ch.LegacyVersion
	r.skip(32) // random
	r.skip(int(r.u8()))
	cs := r.sub16()
	for cs.len() >= 2 {
		ch.CipherSuites = append(ch.CipherSuites, cs.u16())
	}
	r.skip(int(r.u8())) // compression methods
	if r.bad {
		return ErrMalformed
	}
	if r.len() == 0 {
		return nil // no extensions: an old client
	}
	exts := r.sub16()
	if r.bad {
		return ErrMalformed
	}
	for exts.len() >= 4 {
		typ := exts.u16()
		body := exts.sub16()
		if exts.bad {
			return ErrMalformed
		}
		ch.Extensions = append(ch.Extensions, typ)
		switch typ {
		case ExtServerName:
			list := body.sub16()
			for list.len() >= 3 {
				kind := list.u8()
				name := list.bytes16()
				if kind == 0 && ch.SNI == nil && !list.bad {
					ch.SNI = name
				}
			}
		case ExtALPN:
			list := body.sub16()
			for list.len() >= 1 {
				p := list.bytes8()
				if list.bad {
					break
				}
				ch.ALPN = append(ch.ALPN, p)
			}
		case ExtSignatureAlgs:
			list := body.sub16()
			for list.len() >= 2 {
				ch.SigAlgs = append(ch.SigAlgs, list.u16())
			}
		case ExtSupportedVersions:
			list := body.sub8()
			best := uint16(0)
			for list.len() >= 2 {
				v := list.u16()
				if !IsGREASE(v) && v > best && v < 0x0400 {
					best = v
				}
			}
			if best != 0 {
				ch.Version = best
			}
		case ExtECH:
			ch.HasECH = true
			ch.ECHOuter = body.len() > 0 && body.b[0] == 0
		case ExtESNI:
			ch.HasESNI = true
		}
	}
	if exts.len() != 0 {
		return ErrMalformed
	}
	return nil
}

func (ch *ClientHello) reset() {
	*ch = ClientHello{
		CipherSuites: ch.CipherSuites[:0],
		Extensions:   ch.Extensions[:0],
		SigAlgs:      ch.SigAlgs[:0],
		ALPN:         ch.ALPN[:0],
	}
}

// HasALPN reports whether proto is among the offered ALPN values.
func (ch *ClientHello) HasALPN(proto string) bool {
	for _, p := range ch.ALPN {
		if string(p) == proto {
			return true
		}
	}
	return false
}

// JA4 returns the JA4 fingerprint (FoxIO, BSD-3 spec) of the hello. quic
// selects the "q" transport prefix instead of "t".
func (ch *ClientHello) JA4(quic bool) string {
	var buf [JA4Len]byte
	return string(ch.AppendJA4(buf[:0], quic))
}

// JA4Len is the length of a JA4 fingerprint.
const JA4Len = 36

// ja4MaxList bounds the cipher and extension lists hashed on the stack;
// a hello with more (none seen in the wild) takes the heap.
const ja4MaxList = 256

// AppendJA4 appends the JA4 fingerprint to dst. It allocates nothing for
// hellos of up to ja4MaxList ciphers and extensions, since a fingerprint
// is taken of every handshake the engine sees.
func (ch *ClientHello) AppendJA4(dst []byte, quic bool) []byte {
	if quic {
		dst = append(dst, 'q')
	} else {
		dst = append(dst, 't')
	}
	dst = append(dst, ja4Version(ch.Version)...)
	if ch.SNI != nil {
		dst = append(dst, 'd')
	} else {
		dst = append(dst, 'i')
	}
	var cbuf, ebuf [ja4MaxList]uint16
	ciphers, exts := cbuf[:0], ebuf[:0]
	for _, c := range ch.CipherSuites {
		if !IsGREASE(c) {
			ciphers = append(ciphers, c)
		}
	}
	extCount := 0
	for _, e := range ch.Extensions {
		if IsGREASE(e) {
			continue
		}
		extCount++
		if e != ExtServerName && e != ExtALPN {
			exts = append(exts, e)
		}
	}
	dst = appendTwoDigits(dst, len(ciphers))
	dst = appendTwoDigits(dst, extCount)
	dst = appendJA4ALPN(dst, ch.ALPN)
	dst = append(dst, '_')
	slices.Sort(ciphers)
	var hbuf [ja4MaxList * 5 * 2]byte
	h := appendHexList(hbuf[:0], ciphers)
	dst = appendHash12(dst, h)
	dst = append(dst, '_')
	if len(exts) == 0 {
		return append(dst, "000000000000"...)
	}
	slices.Sort(exts)
	h = appendHexList(hbuf[:0], exts)
	if len(ch.SigAlgs) > 0 {
		h = append(h, '_')
		h = appendHexList(h, ch.SigAlgs)
	}
	return appendHash12(dst, h)
}

func ja4Version(v uint16) string {
	switch v {
	case 0x0304:
		return "13"
	case 0x0303:
		return "12"
	case 0x0302:
		return "11"
	case 0x0301:
		return "10"
	case 0x0300:
		return "s3"
	case 0x0002:
		return "s2"
	case 0xfeff:
		return "d1"
	case 0xfefd:
		return "d2"
	case 0xfefc:
		return "d3"
	}
	return "00"
}

func appendTwoDigits(dst []byte, n int) []byte {
	n = min(n, 99)
	return append(dst, byte('0'+n/10), byte('0'+n%10))
}

func appendJA4ALPN(dst []byte, alpn [][]byte) []byte {
	if len(alpn) == 0 || len(alpn[0]) == 0 {
		return append(dst, "00"...)
	}
	p := alpn[0]
	first, last := p[0], p[len(p)-1]
	if isAlnum(first) && isAlnum(last) {
		return append(dst, first, last)
	}
	// The first hex digit of the first byte and the last of the last.
	const digits = "0123456789abcdef"
	return append(dst, digits[first>>4], digits[last&15])
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// appendHexList appends v as comma-separated four-digit hex.
func appendHexList(dst []byte, v []uint16) []byte {
	const digits = "0123456789abcdef"
	for i, x := range v {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, digits[x>>12], digits[x>>8&15], digits[x>>4&15], digits[x&15])
	}
	return dst
}

// appendHash12 appends the first 12 hex digits of the SHA-256 of s, or
// twelve zeros for an empty s.
func appendHash12(dst, s []byte) []byte {
	if len(s) == 0 {
		return append(dst, "000000000000"...)
	}
	sum := sha256.Sum256(s)
	return hex.AppendEncode(dst, sum[:6])
}

// reader is a bounds-checked cursor; after the first short read it returns
// zeros and sets bad, so callers check once at the end.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) len() int { return len(r.b) }

func (r *reader) u8() byte {
	if len(r.b) < 1 {
		r.bad = true
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u16() uint16 {
	if len(r.b) < 2 {
		r.bad = true
		r.b = nil
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v
}

func (r *reader) skip(n int) {
	if n > len(r.b) {
		r.bad = true
		r.b = nil
		return
	}
	r.b = r.b[n:]
}

func (r *reader) take(n int) []byte {
	if n > len(r.b) {
		r.bad = true
		r.b = nil
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes8() []byte  { return r.take(int(r.u8())) }
func (r *reader) bytes16() []byte { return r.take(int(r.u16())) }

func (r *reader) sub8() reader {
	v := r.bytes8()
	return reader{b: v, bad: r.bad}
}

func (r *reader) sub16() reader {
	v := r.bytes16()
	return reader{b: v, bad: r.bad}
}
