package radius

// Framing checks and the Message-Authenticator (RFC 3579 3.2, RFC 5176 3.3)
// that layeh.com/radius neither requires nor computes.

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"slices"
	"sync"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/gatehouse-net/gatehouse/radius/eap"
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

// parsePacket is radius.Parse for a packet that frame has checked (pkt is
// exactly the packet, every attribute within it), in two allocations (four
// with more than smallPacketAttrs attributes) instead of two or three per
// attribute: the values share one copy of the packet's attributes (pkt
// may be the read loop's buffer), each capped so that an append to one
// copies it rather than overwriting the next.
func parsePacket(pkt, secret []byte) *radius.Packet {
	return parsePacketInto(pkt, secret, nil)
}

// parsePacketInto is parsePacket into sp when sp is not nil and the
// packet is small (sp's earlier contents are overwritten): the read loop's
// MAB and PAP answers reuse one (handle), so a request allocates nothing
// to be parsed.
func parsePacketInto(pkt, secret []byte, sp *smallPacket) *radius.Packet {
	n := countAttrs(pkt)
	if n <= smallPacketAttrs && len(pkt)-headerLen <= smallPacketData {
		// The usual request (MAB sends five attributes, PAP four):
		// the packet, its attribute list and their values in one
		// allocation. Not more room: unused room is octets the
		// collector paces by.
		if sp == nil {
			sp = &smallPacket{}
		}
		return fillPacket(&sp.p, pkt, secret, sp.ptrs[:n:n], sp.avps[:n], sp.data[:0])
	}
	return fillPacket(&radius.Packet{}, pkt, secret, make(radius.Attributes, n), make([]radius.AVP, n), nil)
}

// countAttrs is how many attributes pkt, checked by frame, has.
func countAttrs(pkt []byte) int {
	n := 0
	for i := headerLen; i < len(pkt); i += int(pkt[i+1]) {
		n++
	}
	return n
}

// fillPacket parses pkt, checked by frame and of len(ptrs) attributes,
// into p (overwritten), its attributes into avps and ptrs and their
// values into a copy of pkt's appended to data.
func fillPacket(p *radius.Packet, pkt, secret []byte, ptrs radius.Attributes, avps []radius.AVP, data []byte) *radius.Packet {
	*p = radius.Packet{Code: radius.Code(pkt[0]), Identifier: pkt[1], Secret: secret, Attributes: ptrs}
	copy(p.Authenticator[:], pkt[4:20])
	data = append(data, pkt[headerLen:]...)
	for i, k := 0, 0; i < len(data); k++ {
		l := int(data[i+1])
		avps[k] = radius.AVP{Type: radius.Type(data[i])}
		if l > 2 { // as radius.ParseAttributes: an empty value is nil
			avps[k].Attribute = radius.Attribute(data[i+2 : i+l : i+l])
		}
		ptrs[k] = &avps[k]
		i += l
	}
	return p
}

// maxUserPassword is the longest User-Password value (RFC 2865 5.2).
const maxUserPassword = 128

// decryptUserPassword is layeh.com/radius's UserPassword into buf, without
// allocating: the same checks (a value of 16 to 128 octets in whole
// blocks, a secret), the same result (the plaintext up to its first zero
// octet), as the length n of that plaintext in buf; ok is false where
// UserPassword returns an error.
func decryptUserPassword(buf *[maxUserPassword]byte, a, secret, reqAuth []byte) (n int, ok bool) {
	if len(a) < 16 || len(a) > maxUserPassword || len(a)%16 != 0 || len(secret) == 0 || len(reqAuth) != 16 {
		return 0, false
	}
	h := macPool.Get().(*macMD5)
	defer macPool.Put(h)
	for i := 0; i < len(a); i += 16 {
		h.inner.Reset()
		h.inner.Write(secret)
		if i == 0 {
			h.inner.Write(reqAuth)
		} else {
			h.inner.Write(a[i-16 : i])
		}
		b := h.inner.Sum(h.sum[:0])
		for j := range 16 {
			buf[i+j] = a[i+j] ^ b[j]
		}
	}
	clear(h.sum[:])
	n = len(a)
	for i, c := range buf[:len(a)] {
		if c == 0 {
			n = i
			break
		}
	}
	return n, true
}

// smallPacketAttrs is how many attributes a request parsed in one
// allocation may have (parsePacket).
const smallPacketAttrs = 6

// smallPacketData is how many octets of attributes it holds: a MAB
// request of five attributes (bench/radius.sh's) has about 90; a request
// with more attributes than smallPacketAttrs is not small anyway. More
// room is octets the collector paces by on every request.
const smallPacketData = 128

type smallPacket struct {
	p    radius.Packet
	avps [smallPacketAttrs]radius.AVP
	ptrs [smallPacketAttrs]*radius.AVP
	data [smallPacketData]byte
}

// eapPacketAttrs is how many attributes an EAP request parsed into a
// pooled eapPacket may have: hostapd sends about a dozen per round.
const eapPacketAttrs = 32

// eapPacket is smallPacket for the read loop's EAP rounds (handle): room
// for any request's attributes, reused, where parsePacket made four
// allocations and a copy of the whole request every round of every login.
type eapPacket struct {
	p    radius.Packet
	avps [eapPacketAttrs]radius.AVP
	ptrs [eapPacketAttrs]*radius.AVP
	data [maxPacket - headerLen]byte
}

var eapPackets = sync.Pool{New: func() any { return new(eapPacket) }}

// parseEAPPacketInto is parsePacket into ep (its earlier contents
// overwritten), or a new packet when pkt has more than eapPacketAttrs
// attributes. pkt has passed frame.
func parseEAPPacketInto(pkt, secret []byte, ep *eapPacket) *radius.Packet {
	n := countAttrs(pkt)
	if n > eapPacketAttrs {
		return parsePacket(pkt, secret)
	}
	return fillPacket(&ep.p, pkt, secret, ep.ptrs[:n:n], ep.avps[:n], ep.data[:0])
}

// smallPackets are smallPackets for requests whose parsed form nothing
// keeps once they are decided (handle says which).
var smallPackets = sync.Pool{New: func() any { return new(smallPacket) }}

// macMD5 is an HMAC-MD5 and a plain MD5 without allocation: crypto/hmac
// allocates its two digests, their pads and each Sum (nine allocations
// per Message-Authenticator), and a request checks one and signs another.
// Pooled; one goroutine uses one at a time.
//
// It also keeps, for the last secret it signed with, the digest states
// after the ipad and opad blocks (RFC 2104), so that the next HMAC with
// the same secret starts from them rather than hashing those two blocks
// again: an installation has a handful of clients, so a pooled struct
// nearly always meets the secret it saw last, and the two blocks were a
// third of the MD5 work of a MAB answer (BenchmarkInlineMAB).
type macMD5 struct {
	inner, outer hash.Hash
	pad          [md5.BlockSize]byte
	key          [md5.Size]byte // a secret longer than a block, hashed (RFC 2104)
	sum          [md5.Size]byte
	mac          [md5.Size]byte
	zero         [16]byte // the Message-Authenticator's place, as it is signed

	keyedFor   []byte // the secret innerKeyed and outerKeyed are for; nil: none
	innerKeyed []byte // inner's marshaled state after the ipad block
	outerKeyed []byte // outer's marshaled state after the opad block
}

// keyed sets h.inner and h.outer to their states after secret's ipad
// and opad blocks, computing those only when secret is not the one they
// were last computed for.
func (h *macMD5) keyed(secret []byte) {
	if h.keyedFor == nil || !bytes.Equal(h.keyedFor, secret) {
		var err error
		h.keyPad(secret, 0x36)
		h.inner.Reset()
		h.inner.Write(h.pad[:])
		if h.innerKeyed, err = h.inner.(encoding.BinaryAppender).AppendBinary(h.innerKeyed[:0]); err != nil {
			panic(fmt.Sprintf("radius: md5 state: %v", err)) // crypto/md5 never fails here
		}
		h.keyPad(secret, 0x5c)
		h.outer.Reset()
		h.outer.Write(h.pad[:])
		if h.outerKeyed, err = h.outer.(encoding.BinaryAppender).AppendBinary(h.outerKeyed[:0]); err != nil {
			panic(fmt.Sprintf("radius: md5 state: %v", err))
		}
		clear(h.pad[:])
		h.keyedFor = append(h.keyedFor[:0], secret...)
		return
	}
	if err := h.inner.(encoding.BinaryUnmarshaler).UnmarshalBinary(h.innerKeyed); err != nil {
		panic(fmt.Sprintf("radius: md5 state: %v", err))
	}
	if err := h.outer.(encoding.BinaryUnmarshaler).UnmarshalBinary(h.outerKeyed); err != nil {
		panic(fmt.Sprintf("radius: md5 state: %v", err))
	}
}

var macPool = sync.Pool{New: func() any { return &macMD5{inner: md5.New(), outer: md5.New()} }}

// keyPad fills h.pad with secret (hashed when longer than a block)
// XOR x, as RFC 2104's ipad/opad.
func (h *macMD5) keyPad(secret []byte, x byte) {
	key := secret
	if len(key) > md5.BlockSize {
		h.outer.Reset()
		h.outer.Write(key)
		key = h.outer.Sum(h.key[:0])
	}
	for i := range h.pad {
		h.pad[i] = x
	}
	for i, k := range key {
		h.pad[i] ^= k
	}
}

// messageAuthenticatorTo writes HMAC-MD5(secret, packet) into out (16
// octets), with the Message-Authenticator value at off taken as zero and
// the authenticator field replaced by auth when auth is not nil (a
// response is signed over the request's authenticator, a CoA request over
// zeros).
func messageAuthenticatorTo(out, pkt []byte, off int, secret, auth []byte) {
	// Every buffer handed to the digests is the pooled struct's: a stack
	// array passed through hash.Hash's methods escapes to the heap.
	h := macPool.Get().(*macMD5)
	defer macPool.Put(h)
	h.keyed(secret)
	h.inner.Write(pkt[:4])
	if auth != nil {
		h.inner.Write(auth)
	} else {
		h.inner.Write(pkt[4:20])
	}
	h.inner.Write(pkt[20:off])
	h.inner.Write(h.zero[:])
	h.inner.Write(pkt[off+16:])
	inner := h.inner.Sum(h.sum[:0])
	h.outer.Write(inner)
	copy(out, h.outer.Sum(h.mac[:0]))
}

// messageAuthenticator is messageAuthenticatorTo into a new slice.
func messageAuthenticator(pkt []byte, off int, secret []byte, auth []byte) []byte {
	out := make([]byte, md5.Size)
	messageAuthenticatorTo(out, pkt, off, secret, auth)
	return out
}

// validMA reports whether the Message-Authenticator at off is right for
// secret; auth as for messageAuthenticator.
func validMA(pkt []byte, off int, secret []byte, auth []byte) bool {
	var want [md5.Size]byte
	messageAuthenticatorTo(want[:], pkt, off, secret, auth)
	return hmac.Equal(want[:], pkt[off:off+16])
}

// encodeResponse encodes resp to a request of code reqCode, with proxy
// (the request's Proxy-State attributes, proxyStates) after resp's own.
// Every response carries a Message-Authenticator first except an
// Accounting-Response to an Accounting-Request: RFC 2866 has none, and
// FreeRADIUS would check it over a zero authenticator, unlike the others.
func encodeResponse(resp *radius.Packet, reqCode radius.Code, reqAuth [16]byte, secret []byte, proxy radius.Attributes) ([]byte, error) {
	if resp.Code == radius.CodeAccountingResponse && reqCode == radius.CodeAccountingRequest {
		q := *resp
		q.Authenticator = reqAuth
		if len(proxy) > 0 {
			q.Attributes = append(slices.Clip(resp.Attributes), proxy...)
		}
		return q.Encode()
	}
	return encodeReply(resp, reqAuth, secret, proxy)
}

// typeProxyState is Proxy-State (RFC 2865 section 5.33).
const typeProxyState = 33

// proxyStates returns pkt's Proxy-State attributes in their order, nil
// (and no allocation) when it has none; pkt has passed frame. A proxy
// adds Proxy-State to what it forwards, and RFC 2865 section 5.33 says the
// server MUST copy it, unmodified and in order, into its reply: a proxy in
// front of Gatehouse (a roaming federation's, or NPS forwarding to it) may
// match or route replies by it. The values point into pkt.
func proxyStates(pkt []byte) radius.Attributes {
	var out radius.Attributes
	for i := headerLen; i+2 <= len(pkt); i += int(pkt[i+1]) {
		if pkt[i] == typeProxyState {
			l := int(pkt[i+1])
			out = append(out, &radius.AVP{Type: typeProxyState, Attribute: radius.Attribute(pkt[i+2 : i+l : i+l])})
		}
	}
	return out
}

// encodeReply encodes resp, a response to a request with authenticator
// reqAuth, with Message-Authenticator as its first attribute (BlastRADIUS:
// an attacker who can splice a forged prefix cannot also forge the HMAC) and
// the Response Authenticator over it. It writes the packet itself, into
// one allocation, rather than through a copied attribute list and
// layeh.com/radius's MarshalBinary; attributes are encoded as that does
// (a type outside 0-255 is left out, a value over 253 octets is an error).
//
// proxy, the request's Proxy-State attributes (proxyStates), follow resp's.
func encodeReply(resp *radius.Packet, reqAuth [16]byte, secret []byte, proxy radius.Attributes) ([]byte, error) {
	attrs := resp.Attributes
	if len(proxy) > 0 {
		attrs = append(slices.Clip(attrs), proxy...)
	}
	n := headerLen + msgAutLen
	for _, a := range attrs {
		if a.Type == typeMsgAut || a.Type < 0 || a.Type > 255 {
			continue
		}
		if len(a.Attribute) > 253 {
			return nil, fmt.Errorf("encoding %v: attribute %d too large", resp.Code, a.Type)
		}
		n += 2 + len(a.Attribute)
	}
	if n > maxPacket {
		return nil, fmt.Errorf("encoding %v: packet is too large", resp.Code)
	}
	b := make([]byte, n)
	b[0], b[1] = byte(resp.Code), resp.Identifier
	binary.BigEndian.PutUint16(b[2:4], uint16(n))
	copy(b[4:20], reqAuth[:])
	b[headerLen], b[headerLen+1] = typeMsgAut, msgAutLen
	i := headerLen + msgAutLen
	for _, a := range attrs {
		if a.Type == typeMsgAut || a.Type < 0 || a.Type > 255 {
			continue
		}
		b[i], b[i+1] = byte(a.Type), byte(2+len(a.Attribute))
		i += 2 + copy(b[i+2:], a.Attribute)
	}
	signReply(b, secret)
	return b, nil
}

// signReply fills in the Message-Authenticator (the first attribute) and
// then the Response Authenticator of b, an encoded response whose
// authenticator field holds the request's authenticator.
func signReply(b, secret []byte) {
	// Signed over the request's authenticator, which b holds now.
	messageAuthenticatorTo(b[headerLen+2:headerLen+2+16], b, headerLen+2, secret, nil)
	h := macPool.Get().(*macMD5)
	h.inner.Reset()
	h.inner.Write(b) // code, identifier, length, the request's authenticator, attributes
	h.inner.Write(secret)
	h.inner.Sum(b[4:4])
	macPool.Put(h)
}

// encodeChallenge encodes the Access-Challenge of an EAP round, as
// encodeReply encodes the packet eapAccess used to build for it
// (Message-Authenticator first, msg as EAP-Message attributes of at most
// 253 octets, then State), straight from the round's EAP message and
// State: one allocation, where building the radius.Packet first took one
// per attribute and more for the list, the State's copy and the packet
// (about a dozen per round for a server flight, in every round of every
// login).
func encodeChallenge(id byte, reqAuth [16]byte, msg, state, secret []byte, proxy radius.Attributes) ([]byte, error) {
	if len(state) > 253 {
		return nil, errors.New("encoding Access-Challenge: State too long")
	}
	n := headerLen + msgAutLen + 2 + len(state)
	for part := range eap.SplitMessage(msg) {
		n += 2 + len(part)
	}
	for _, a := range proxy {
		n += 2 + len(a.Attribute)
	}
	if n > maxPacket {
		return nil, fmt.Errorf("encoding %v: packet is too large", radius.CodeAccessChallenge)
	}
	b := make([]byte, n)
	b[0], b[1] = byte(radius.CodeAccessChallenge), id
	binary.BigEndian.PutUint16(b[2:4], uint16(n))
	copy(b[4:20], reqAuth[:])
	b[headerLen], b[headerLen+1] = typeMsgAut, msgAutLen
	i := headerLen + msgAutLen
	for part := range eap.SplitMessage(msg) {
		b[i], b[i+1] = typeEAPMessage, byte(2+len(part))
		i += 2 + copy(b[i+2:], part)
	}
	b[i], b[i+1] = byte(rfc2865.State_Type), byte(2+len(state))
	i += 2 + copy(b[i+2:], state)
	for _, a := range proxy {
		b[i], b[i+1] = byte(a.Type), byte(2+len(a.Attribute))
		i += 2 + copy(b[i+2:], a.Attribute)
	}
	signReply(b, secret)
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
