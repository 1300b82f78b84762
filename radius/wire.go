package radius

// Framing checks and the Message-Authenticator (RFC 3579 3.2, RFC 5176 3.3)
// that layeh.com/radius neither requires nor computes.

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"

	"layeh.com/radius"
)

const (
	headerLen  = 20
	maxPacket  = radius.MaxPacketLength
	typeMsgAut = 80 // Message-Authenticator
	msgAutLen  = 18 // type, length and 16 octets of HMAC-MD5
)

// Framing errors, each a drop reason in the metrics.
var (
	errShort     = errors.New("shorter than a RADIUS header")
	errOversize  = errors.New("longer than 4096 octets")
	errBadLength = errors.New("length field disagrees with the datagram")
	errBadAttr   = errors.New("attribute overflows the packet")
	errMultiMA   = errors.New("more than one Message-Authenticator")
	errBadMALen  = errors.New("Message-Authenticator is not 16 octets")
)

// frame checks a datagram's framing and returns the packet it holds
// (octets beyond the length field are padding, RFC 2865 3) and the offset of
// its Message-Authenticator value, or -1 when it has none.
func frame(b []byte) (pkt []byte, maOff int, err error) {
	if len(b) < headerLen {
		return nil, -1, errShort
	}
	if len(b) > maxPacket {
		return nil, -1, errOversize
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n < headerLen || n > len(b) {
		return nil, -1, errBadLength
	}
	pkt = b[:n]
	maOff = -1
	for i := headerLen; i < n; {
		if n-i < 2 {
			return nil, -1, errBadAttr
		}
		l := int(pkt[i+1])
		if l < 2 || i+l > n {
			return nil, -1, errBadAttr
		}
		if pkt[i] == typeMsgAut {
			if maOff >= 0 {
				return nil, -1, errMultiMA
			}
			if l != msgAutLen {
				return nil, -1, errBadMALen
			}
			maOff = i + 2
		}
		i += l
	}
	return pkt, maOff, nil
}

// messageAuthenticator computes HMAC-MD5(secret, packet) with the
// Message-Authenticator value at off taken as zero and the authenticator
// field replaced by auth when auth is not nil (a response is signed over the
// request's authenticator, a CoA request over zeros).
func messageAuthenticator(pkt []byte, off int, secret []byte, auth []byte) []byte {
	h := hmac.New(md5.New, secret)
	var zero [16]byte
	h.Write(pkt[:4])
	if auth != nil {
		h.Write(auth)
	} else {
		h.Write(pkt[4:20])
	}
	h.Write(pkt[20:off])
	h.Write(zero[:])
	h.Write(pkt[off+16:])
	return h.Sum(nil)
}

// validMA reports whether the Message-Authenticator at off is right for
// secret; auth as for messageAuthenticator.
func validMA(pkt []byte, off int, secret []byte, auth []byte) bool {
	return hmac.Equal(messageAuthenticator(pkt, off, secret, auth), pkt[off:off+16])
}

// encodeResponse encodes resp to a request of code reqCode. Every
// response carries a Message-Authenticator first except an
// Accounting-Response to an Accounting-Request: RFC 2866 has none, and
// FreeRADIUS would check it over a zero authenticator, unlike the others.
func encodeResponse(resp *radius.Packet, reqCode radius.Code, reqAuth [16]byte, secret []byte) ([]byte, error) {
	if resp.Code == radius.CodeAccountingResponse && reqCode == radius.CodeAccountingRequest {
		q := *resp
		q.Authenticator = reqAuth
		return q.Encode()
	}
	return encodeReply(resp, reqAuth, secret)
}

// encodeReply encodes resp, a response to a request with authenticator
// reqAuth, with Message-Authenticator as its first attribute (BlastRADIUS:
// an attacker who can splice a forged prefix cannot also forge the HMAC) and
// the Response Authenticator over it.
func encodeReply(resp *radius.Packet, reqAuth [16]byte, secret []byte) ([]byte, error) {
	attrs := make(radius.Attributes, 0, len(resp.Attributes)+1)
	attrs = append(attrs, &radius.AVP{Type: typeMsgAut, Attribute: make(radius.Attribute, 16)})
	for _, a := range resp.Attributes {
		if a.Type != typeMsgAut {
			attrs = append(attrs, a)
		}
	}
	q := *resp
	q.Attributes = attrs
	q.Authenticator = reqAuth
	b, err := q.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encoding %v: %w", resp.Code, err)
	}
	copy(b[headerLen+2:], messageAuthenticator(b, headerLen+2, secret, nil))
	h := md5.New()
	h.Write(b[:4])
	h.Write(reqAuth[:])
	h.Write(b[headerLen:])
	h.Write(secret)
	copy(b[4:20], h.Sum(nil))
	return b, nil
}

// encodeCoARequest encodes a Disconnect-Request or CoA-Request: the
// Message-Authenticator is computed with a zero authenticator field, then
// the Request Authenticator is MD5 over the packet with a zero field and the
// secret (RFC 5176 2.3, 3.3).
func encodeCoARequest(req *radius.Packet, secret []byte) ([]byte, error) {
	q := *req
	q.Attributes = append(radius.Attributes{{Type: typeMsgAut, Attribute: make(radius.Attribute, 16)}}, req.Attributes...)
	q.Authenticator = [16]byte{}
	b, err := q.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encoding %v: %w", req.Code, err)
	}
	copy(b[headerLen+2:], messageAuthenticator(b, headerLen+2, secret, nil))
	h := md5.New()
	h.Write(b)
	h.Write(secret)
	copy(b[4:20], h.Sum(nil))
	return b, nil
}
