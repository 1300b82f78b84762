package dhcp

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// answer is the reply the handler decided on; encode writes it. It is a
// value, not a dhcpv4.DHCPv4: building the library's message (an options
// map, a slice per option) and then marshalling it (sorting the map's keys)
// was half of a DISCOVER's CPU and most of its allocations.
type answer struct {
	mt     dhcpv4.MessageType
	yiaddr netip.Addr // the address offered or leased; with lease only
	ciaddr netip.Addr // echoed (INFORM)
	lease  bool       // carries yiaddr and the lease times
	rapid  bool       // RFC 4039 rapid commit option
	why    string     // a NAK's message (option 56)
	// broadcast sets the broadcast flag: a NAK through a relay (RFC 2131
	// 4.3.2 has the relay broadcast it).
	broadcast bool
}

// BOOTP layout offsets (RFC 2131 figure 1).
const (
	offCiaddr  = 12
	offYiaddr  = 16
	offGiaddr  = 24
	offChaddr  = 28
	offCookie  = 236
	headerLen  = 240
	bootpMin   = 300 // RFC 951: some relays drop shorter messages
	replyAlloc = 576 // the minimum every DHCP client must accept (RFC 2131 2)
)

// encode writes a's BOOTREPLY to req: the header, then the options in
// ascending code order (relay agent information, 82, is echoed; only
// option 114 can follow it), End, and padding to BOOTP's 300 bytes. The
// reply's buffer comes from the server's pool (replyBuf): the sockets'
// senders give it back once it is written (freeReply).
func (s *Server) encode(seg *segState, req *request, a answer) []byte {
	b := s.replyBuf()
	b[0] = byte(dhcpv4.OpcodeBootReply)
	b[1] = req.htype
	b[2] = req.hlen
	copy(b[4:8], req.xid[:])
	flags := req.flags
	if a.broadcast {
		flags |= 0x8000
	}
	binary.BigEndian.PutUint16(b[10:12], flags)
	if a.ciaddr.Is4() {
		c := a.ciaddr.As4()
		copy(b[offCiaddr:], c[:])
	}
	if a.lease && a.yiaddr.Is4() {
		y := a.yiaddr.As4()
		copy(b[offYiaddr:], y[:])
	}
	copy(b[offGiaddr:offGiaddr+4], req.giaddr[:])
	copy(b[offChaddr:offChaddr+16], req.mac())
	copy(b[offCookie:], []byte{99, 130, 83, 99})

	nak := a.mt == dhcpv4.MessageTypeNak
	if !nak {
		mask := uint32(0xffffffff) << (32 - seg.Subnet.Bits())
		b = optU32(b, dhcpv4.OptionSubnetMask, mask)
		b = optAddrs(b, dhcpv4.OptionRouter, seg.Gateway)
		b = optAddrs(b, dhcpv4.OptionDomainNameServer, seg.dns()...)
		if seg.DomainName != "" {
			b = opt(b, dhcpv4.OptionDomainName, seg.DomainName)
		}
		if a.lease {
			b = optU32(b, dhcpv4.OptionIPAddressLeaseTime, secs(seg.Lease))
		}
	}
	b = opt(b, dhcpv4.OptionDHCPMessageType, []byte{byte(a.mt)})
	b = optAddrs(b, dhcpv4.OptionServerIdentifier, seg.serverID())
	if nak {
		b = opt(b, dhcpv4.OptionMessage, a.why)
	} else if a.lease {
		b = optU32(b, dhcpv4.OptionRenewTimeValue, secs(seg.Lease/2))
		b = optU32(b, dhcpv4.OptionRebindingTimeValue, secs(seg.Lease*7/8))
	}
	if v := req.clientID; v != nil {
		b = opt(b, dhcpv4.OptionClientIdentifier, v)
	}
	if a.rapid {
		b = opt(b, dhcpv4.OptionRapidCommit, []byte(nil))
	}
	if v := req.relayInfo; v != nil {
		b = opt(b, dhcpv4.OptionRelayAgentInformation, v)
	}
	if !nak && seg.PortalURI != "" {
		b = opt(b, dhcpv4.OptionURL, seg.PortalURI)
	}
	b = append(b, 255)
	for len(b) < bootpMin {
		b = append(b, 0)
	}
	return b
}

// replyBuf returns a zeroed header from the pool of reply buffers. Replies
// were a tenth of the bytes the deployed daemon allocated per exchange
// under load, and every byte allocated brings the next collection nearer:
// the collections are where the p99 of both halves was spent (bench/dhcp.sh
// with GODEBUG=gctrace=1, the slow exchanges fall in the mark phases).
func (s *Server) replyBuf() []byte {
	p, _ := s.replies.Get().(*[replyAlloc]byte)
	if p == nil {
		p = new([replyAlloc]byte)
	}
	b := p[:headerLen]
	clear(b)
	return b
}

// freeReply gives b's buffer back to the pool once it is written, unless
// it is not one of the pool's (an encode that outgrew it allocated anew).
// Nothing may use b afterwards.
func (s *Server) freeReply(b []byte) {
	if cap(b) != replyAlloc {
		return
	}
	s.replies.Put((*[replyAlloc]byte)(b[:replyAlloc]))
}

func secs(d time.Duration) uint32 { return uint32(d / time.Second) }

// opt appends one option, split into several of at most 255 bytes when
// longer (RFC 3396); an empty value is written with length 0. It takes the
// value as bytes or as a string, so a string option is not copied first.
func opt[V ~[]byte | ~string](b []byte, code dhcpv4.OptionCode, v V) []byte {
	c := code.Code()
	if len(v) == 0 {
		return append(b, c, 0)
	}
	for len(v) > 0 {
		n := min(len(v), 255)
		b = append(b, c, byte(n))
		b = append(b, v[:n]...)
		v = v[n:]
	}
	return b
}

func optU32(b []byte, code dhcpv4.OptionCode, v uint32) []byte {
	return append(b, code.Code(), 4, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func optAddrs(b []byte, code dhcpv4.OptionCode, as ...netip.Addr) []byte {
	n := 0
	for _, a := range as {
		if a.Is4() {
			n++
		}
	}
	if n == 0 || 4*n > 255 {
		return append(b, code.Code(), 0)
	}
	b = append(b, code.Code(), byte(4*n))
	for _, a := range as {
		if a.Is4() {
			x := a.As4()
			b = append(b, x[:]...)
		}
	}
	return b
}

// isDiscover reports whether pkt is a DHCPDISCOVER, from its bytes alone:
// the read loop sorts datagrams before they are parsed (see serve). It
// walks the options up to the first message type option (53); anything
// it cannot read is not a DISCOVER, and the handler will judge it.
func isDiscover(pkt []byte) bool {
	if len(pkt) < headerLen || pkt[offCookie] != 99 || pkt[offCookie+1] != 130 || pkt[offCookie+2] != 83 || pkt[offCookie+3] != 99 {
		return false
	}
	for i := headerLen; i < len(pkt); {
		code, v, next, ok := nextOption(pkt, i)
		if !ok || code == 255 {
			return false
		}
		if code == 53 {
			return len(v) == 1 && v[0] == byte(dhcpv4.MessageTypeDiscover)
		}
		i = next
	}
	return false
}
