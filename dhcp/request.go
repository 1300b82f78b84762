package dhcp

import (
	"bytes"
	"net"
	"net/netip"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// request is the part of a BOOTREQUEST the handler reads, parsed in
// place: the option values are slices of the datagram (copies only where
// an option is repeated and its parts are joined). The library's parser
// (dhcpv4.FromBytes) built a message, an options map and a slice per
// option for every datagram, most of the handler's allocations; this one
// makes none. It accepts and rejects what dhcpv4.FromBytes does and reads
// each field as its accessors do (FuzzParseRequest checks both).
//
// Its slices belong to the datagram's buffer, which goes back to the pool
// once the handler returns: whatever outlives the handler takes a clone.
type request struct {
	op     dhcpv4.OpcodeType
	htype  byte
	hlen   byte // at most 16, as the library caps it
	xid    [4]byte
	flags  uint16
	ciaddr [4]byte
	giaddr [4]byte
	chaddr [16]byte
	mt     dhcpv4.MessageType
	// Option values; nil when absent or empty (the library's Get).
	requested, serverID, clientID, hostname, vendor, prl, relayInfo []byte
	rapid                                                           bool // option 80 present, even empty (Has)
}

// parseRequest parses b into r, reporting false where dhcpv4.FromBytes
// returns an error: shorter than the fixed header and cookie, a wrong
// magic cookie, an option running past the end, or no End option.
func parseRequest(b []byte, r *request) bool {
	*r = request{}
	if len(b) < headerLen || !bytes.Equal(b[offCookie:headerLen], []byte{99, 130, 83, 99}) {
		return false
	}
	r.op, r.htype, r.hlen = dhcpv4.OpcodeType(b[0]), b[1], min(b[2], 16)
	copy(r.xid[:], b[4:8])
	r.flags = uint16(b[10])<<8 | uint16(b[11])
	copy(r.ciaddr[:], b[offCiaddr:offCiaddr+4])
	copy(r.giaddr[:], b[offGiaddr:offGiaddr+4])
	copy(r.chaddr[:], b[offChaddr:offChaddr+16])
	if len(b) == headerLen {
		return true // no options at all: the library does not ask for End then
	}
	var mt []byte
	mtSeen := false
	for i := headerLen; ; {
		if i >= len(b) {
			return false // no End option
		}
		code, v, next, ok := nextOption(b, i)
		if !ok {
			return false
		}
		i = next
		switch code {
		case 0:
			continue
		case 255:
			if mtSeen {
				r.mt = dhcpv4.MessageTypeNone
				if len(mt) == 1 {
					r.mt = dhcpv4.MessageType(mt[0])
				}
			}
			return true
		}
		n := len(v)
		var dst *[]byte
		switch code { // RFC 2132 option codes
		case 53: // DHCP message type
			mtSeen, dst = true, &mt
		case 50: // requested IP address
			dst = &r.requested
		case 54: // server identifier
			dst = &r.serverID
		case 61: // client identifier
			dst = &r.clientID
		case 12: // host name
			dst = &r.hostname
		case 60: // vendor class identifier
			dst = &r.vendor
		case 55: // parameter request list
			dst = &r.prl
		case 82: // relay agent information (RFC 3046)
			dst = &r.relayInfo
		case 80: // rapid commit (RFC 4039)
			r.rapid = true
			continue
		default:
			continue
		}
		switch {
		case n == 0:
		case *dst == nil:
			*dst = v
		default:
			// RFC 3396: the parts of a repeated option are joined (a new
			// slice: the datagram is not written to).
			*dst = append((*dst)[:len(*dst):len(*dst)], v...)
		}
	}
}

// mac is the client's hardware address (chaddr, hlen long).
func (r *request) mac() net.HardwareAddr { return r.chaddr[:r.hlen:r.hlen] }

// ip4 reads an option holding one IPv4 address, as dhcpv4.GetIP and
// addr4 together do: invalid unless exactly four bytes, not 0.0.0.0.
func ip4(v []byte) netip.Addr {
	if len(v) != 4 {
		return netip.Addr{}
	}
	a := netip.AddrFrom4([4]byte(v))
	if a.IsUnspecified() {
		return netip.Addr{}
	}
	return a
}

func (r *request) requestedIP() netip.Addr      { return ip4(r.requested) }
func (r *request) serverIdentifier() netip.Addr { return ip4(r.serverID) }
func (r *request) clientIP() netip.Addr         { return ip4(r.ciaddr[:]) }
func (r *request) gatewayIP() netip.Addr        { return ip4(r.giaddr[:]) }

// hostName is option 12 as dhcpv4's HostName reads it: trailing NULs
// dropped.
func (r *request) hostName() []byte { return bytes.TrimRight(r.hostname, "\x00") }

// clone copies r with its option values into memory of their own, for
// what outlives the datagram's buffer (an ACK finished after its commit,
// a lease).
func (r *request) clone() *request {
	c := new(request)
	r.cloneInto(c)
	return c
}

// cloneInto is clone into c: one allocation, for the option values.
func (r *request) cloneInto(c *request) {
	*c = *r
	opts := []*[]byte{&c.requested, &c.serverID, &c.clientID, &c.hostname, &c.vendor, &c.prl, &c.relayInfo}
	n := 0
	for _, o := range opts {
		n += len(*o)
	}
	if n == 0 {
		return
	}
	buf := make([]byte, 0, n)
	for _, o := range opts {
		if *o != nil {
			at := len(buf)
			buf = append(buf, *o...)
			*o = buf[at:len(buf):len(buf)]
		}
	}
}

// nextOption reads the option that starts at b[i] (i < len(b)): its code,
// its value (a slice of b, capacity capped so an append copies) and where
// the next one starts. Pad (0) and End (255) have no length octet and an
// empty value. ok is false when the option runs past the end of b.
func nextOption(b []byte, i int) (code byte, v []byte, next int, ok bool) {
	code = b[i]
	if code == 0 || code == 255 {
		return code, nil, i + 1, true
	}
	if i+1 >= len(b) {
		return code, nil, 0, false
	}
	n := int(b[i+1])
	if i+2+n > len(b) {
		return code, nil, 0, false
	}
	return code, b[i+2 : i+2+n : i+2+n], i + 2 + n, true
}
