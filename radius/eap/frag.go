package eap

// EAP-TLS style framing (RFC 5216 3.1, shared by TTLS and PEAP): a flags
// octet, an optional four-octet total length, and a fragment of the TLS
// records.

import (
	"encoding/binary"
	"errors"
)

const (
	flagLength = 0x80 // L: the total length follows
	flagMore   = 0x40 // M: more fragments follow
	flagStart  = 0x20 // S: the server's start
	// The low three bits carry the PEAP/TTLS version; we speak version 0.
)

// maxTLSMessage bounds a reassembled TLS message from a client: a
// certificate chain of a few certificates fits with room to spare, and
// nobody gets to make us buffer more.
const maxTLSMessage = 64 << 10

var (
	errTLSShort    = errors.New("eap: TLS data without its flags")
	errTLSLength   = errors.New("eap: TLS message length is wrong or too large")
	errTLSOverflow = errors.New("eap: TLS fragments exceed the announced length")
)

// tlsFrame is the method data of one EAP-TLS/TTLS/PEAP packet.
type tlsFrame struct {
	flags byte
	total int // the L field, 0 when absent
	data  []byte
}

func parseTLSFrame(d []byte) (tlsFrame, error) {
	if len(d) < 1 {
		return tlsFrame{}, errTLSShort
	}
	f := tlsFrame{flags: d[0], data: d[1:]}
	if f.flags&flagLength != 0 {
		if len(d) < 5 {
			return tlsFrame{}, errTLSShort
		}
		t := binary.BigEndian.Uint32(d[1:5])
		if t > maxTLSMessage || int(t) < len(d)-5 {
			return tlsFrame{}, errTLSLength
		}
		f.total = int(t)
		f.data = d[5:]
	}
	return f, nil
}

// reassembler joins a client's fragments into one TLS message.
type reassembler struct {
	buf   []byte
	total int
	busy  bool // a fragment with M came, the message is not complete
}

// add takes one frame; it returns the whole message when f completes one.
// A message in one frame (nearly every client message) is f's data itself,
// not a copy: the method reads all of it before the round ends (flight's
// Read hands the flight over only once nothing is left), and the frame is
// the request's, unchanged until Handle returns. Fragments are copied, as
// they must outlive their rounds.
func (r *reassembler) add(f tlsFrame) (msg []byte, complete bool, err error) {
	if !r.busy {
		r.buf, r.total = nil, f.total
	}
	if len(r.buf)+len(f.data) > maxTLSMessage || (r.total > 0 && len(r.buf)+len(f.data) > r.total) {
		r.reset()
		return nil, false, errTLSOverflow
	}
	if !r.busy && f.flags&flagMore == 0 {
		r.reset()
		return f.data, true, nil
	}
	r.buf = append(r.buf, f.data...)
	if f.flags&flagMore != 0 {
		r.busy = true
		return nil, false, nil
	}
	msg = r.buf
	r.reset()
	return msg, true, nil
}

func (r *reassembler) reset() { r.buf, r.total, r.busy = nil, 0, false }

// fragmenter cuts our TLS message into fragments the client acknowledges
// one by one.
type fragmenter struct {
	msg  []byte
	off  int
	size int
	// framed is msg with frameRoom octets in front (startFramed): a
	// message that fits one fragment is sent in it, not copied.
	framed []byte
}

func (f *fragmenter) pending() bool { return f.msg != nil }

// frameRoom is the room a framed message leaves in front of its data:
// the EAP header and the flags octet of a single fragment.
const frameRoom = eapHeader + 1

// startFramed is start for framed, frameRoom octets of room then the
// message (flight.take's), or nil for an empty message.
func (f *fragmenter) startFramed(framed []byte, size int) {
	if len(framed) <= frameRoom {
		f.start(nil, size)
		return
	}
	f.start(framed[frameRoom:], size)
	f.framed = framed
}

// start sets the message to send; next gives its first fragment.
func (f *fragmenter) start(msg []byte, size int) {
	f.framed = nil
	f.msg, f.off, f.size = msg, 0, size
	if f.msg == nil {
		f.msg = []byte{}
	}
}

// next returns the next fragment as a whole EAP packet with its header
// left blank (eapHeader octets; session.challengeFrame fills them in),
// then the flags, the total length on the first of several, and the
// data: one allocation and one copy of the fragment per round, where the
// method data and then the packet built around it were two of each.
// last says it was the last fragment.
func (f *fragmenter) next() (pkt []byte, last bool) {
	rest := len(f.msg) - f.off
	if rest <= f.size && f.off == 0 && f.framed != nil {
		// The whole message in one fragment, in the room left for it.
		pkt = f.framed
		pkt[eapHeader] = 0
		f.msg, f.off, f.framed = nil, 0, nil
		return pkt, true
	}
	if rest <= f.size {
		pkt = make([]byte, eapHeader+1, eapHeader+1+rest)
		pkt = append(pkt, f.msg[f.off:]...)
		f.msg, f.off, f.framed = nil, 0, nil
		return pkt, true
	}
	if f.off == 0 {
		pkt = make([]byte, eapHeader+5, eapHeader+5+f.size)
		pkt[eapHeader] = flagMore | flagLength
		binary.BigEndian.PutUint32(pkt[eapHeader+1:eapHeader+5], uint32(len(f.msg)))
	} else {
		pkt = make([]byte, eapHeader+1, eapHeader+1+f.size)
		pkt[eapHeader] = flagMore
	}
	pkt = append(pkt, f.msg[f.off:f.off+f.size]...)
	f.off += f.size
	return pkt, false
}
