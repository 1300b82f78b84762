package inspect

// streamBufSize is how much of each direction of a TCP flow is kept for the
// classifiers: enough for a ClientHello with a post-quantum key share and a
// TLS 1.2 server flight with a modest certificate chain.
const streamBufSize = 8 << 10

// bufPool hands out fixed-size buffers from one allocation, so that
// reassembly memory is bounded however many flows are open.
type bufPool struct {
	mem  []byte
	size int
	free []int32
}

func newBufPool(n, size int) *bufPool {
	p := &bufPool{mem: make([]byte, n*size), size: size, free: make([]int32, n)}
	for i := range p.free {
		p.free[i] = int32(n - 1 - i)
	}
	return p
}

func (p *bufPool) get() int32 {
	if len(p.free) == 0 {
		return -1
	}
	i := p.free[len(p.free)-1]
	p.free = p.free[:len(p.free)-1]
	return i
}

func (p *bufPool) put(i int32) {
	if i >= 0 {
		p.free = append(p.free, i)
	}
}

func (p *bufPool) slot(i int32) []byte {
	return p.mem[int(i)*p.size : int(i+1)*p.size]
}

// tcpStream reassembles the start of one direction of a TCP flow, in order,
// giving up at the first hole.
type tcpStream struct {
	buf    int32 // pool slot, -1 none
	n      int32 // bytes held
	next   uint32
	synced bool
	gap    bool
	seen   uint32 // in-order payload bytes seen in total
}

// seqLess compares TCP sequence numbers modulo 2^32.
func seqLess(a, b uint32) bool { return int32(a-b) < 0 }

// add takes one segment and returns the part of it that is new, in-order
// data (nil for retransmissions and after a hole).
func (s *tcpStream) add(seq uint32, syn bool, payload []byte) []byte {
	if syn {
		s.next = seq + 1
		s.synced = true
		return nil
	}
	if len(payload) == 0 || s.gap {
		return nil
	}
	if !s.synced {
		s.next = seq
		s.synced = true
	}
	switch {
	case seq == s.next:
	case seqLess(seq, s.next):
		over := s.next - seq
		if over >= uint32(len(payload)) {
			return nil // a retransmission
		}
		payload = payload[over:]
	default:
		s.gap = true
		return nil
	}
	s.next += uint32(len(payload))
	s.seen += uint32(len(payload))
	return payload
}

// recTrace records the sizes of the first TLS records of a flow in both
// directions, in arrival order. The shape of the encrypted records right
// after the handshake gives away a TLS handshake tunnelled inside TLS.
type recTrace struct {
	hdr  [2][5]byte
	hn   [2]uint8
	skip [2]uint32 // body bytes still to skip before the next header
	bad  [2]bool
	n    uint8
	recs [24]tlsRec
	// doh, when watching, also sees every record after the first 24.
	doh dohShape
}

type tlsRec struct {
	dir uint8
	typ uint8
	len uint16
}

// feed walks record headers through newly arrived in-order bytes.
func (r *recTrace) feed(dir int, data []byte) {
	for len(data) > 0 && !r.bad[dir] && (int(r.n) < len(r.recs) || r.doh.watch) {
		if r.skip[dir] > 0 {
			k := min(uint32(len(data)), r.skip[dir])
			r.skip[dir] -= k
			data = data[k:]
			continue
		}
		k := min(5-int(r.hn[dir]), len(data))
		copy(r.hdr[dir][r.hn[dir]:], data[:k])
		r.hn[dir] += uint8(k)
		data = data[k:]
		if r.hn[dir] < 5 {
			return
		}
		h := r.hdr[dir]
		r.hn[dir] = 0
		if h[0] < 20 || h[0] > 24 || h[1] != 3 {
			r.bad[dir] = true
			return
		}
		l := uint16(h[3])<<8 | uint16(h[4])
		if int(r.n) < len(r.recs) {
			r.recs[r.n] = tlsRec{dir: uint8(dir), typ: h[0], len: l}
			r.n++
		}
		r.doh.record(dir, h[0], l)
		r.skip[dir] = uint32(l)
	}
}
