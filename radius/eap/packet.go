package eap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
)

// EAP codes (RFC 3748 4).
const (
	CodeRequest  = 1
	CodeResponse = 2
	CodeSuccess  = 3
	CodeFailure  = 4
)

// EAP method types.
const (
	TypeIdentity     = 1
	TypeNotification = 2
	TypeNak          = 3
	TypeMD5          = 4
	TypeTLS          = 13
	TypeTTLS         = 21
	TypePEAP         = 25
	TypeMSCHAPv2     = 26
	TypeExtensions   = 33 // PEAP's TLV packets
)

// maxEAP bounds a reassembled EAP packet: RADIUS carries at most 4096
// octets, and EAP's length field says 16 bits.
const maxEAP = 4096

// Packet is one EAP packet. Type and Data are empty for Success and
// Failure.
type Packet struct {
	Code byte
	ID   byte
	Type byte
	Data []byte
}

// Framing errors.
var (
	ErrShort     = errors.New("eap: shorter than its header")
	ErrBadLength = errors.New("eap: length field disagrees with the message")
	ErrNoType    = errors.New("eap: request or response without a type")
)

// Parse parses an EAP packet. Octets after the length field are an error:
// RFC 3579 3.1 joins EAP-Message attributes into exactly one packet.
func Parse(b []byte) (Packet, error) {
	if len(b) < 4 {
		return Packet{}, ErrShort
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n < 4 || n != len(b) {
		return Packet{}, ErrBadLength
	}
	p := Packet{Code: b[0], ID: b[1]}
	switch p.Code {
	case CodeRequest, CodeResponse:
		if n < 5 {
			return Packet{}, ErrNoType
		}
		p.Type = b[4]
		p.Data = b[5:n]
	case CodeSuccess, CodeFailure:
		if n != 4 {
			return Packet{}, ErrBadLength
		}
	default:
		return Packet{}, fmt.Errorf("eap: unknown code %d", p.Code)
	}
	return p, nil
}

// eapHeader is the length of a request's or response's header: code,
// identifier, length and type.
const eapHeader = 5

// Marshal encodes p.
func (p Packet) Marshal() []byte {
	if p.Code == CodeSuccess || p.Code == CodeFailure {
		return []byte{p.Code, p.ID, 0, 4}
	}
	b := make([]byte, 5+len(p.Data))
	b[0], b[1] = p.Code, p.ID
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	b[4] = p.Type
	copy(b[5:], p.Data)
	return b
}

// SplitMessage yields an EAP packet cut into EAP-Message attribute values
// of at most 253 octets (RFC 3579 3.1), each a slice of b. An iterator, so
// that a reply is split with no slice of parts (one per EAP round).
func SplitMessage(b []byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for len(b) > 253 {
			if !yield(b[:253]) {
				return
			}
			b = b[253:]
		}
		yield(b)
	}
}
