package inspect

import (
	"sync"
	"sync/atomic"
)

// streamBufSize is how much of each direction of a TCP flow is kept for the
// classifiers: enough for a ClientHello with a post-quantum key share and a
// TLS 1.2 server flight with a modest certificate chain.
const streamBufSize = 8 << 10

// bufChunk is how many buffers a BufferPool allocates at a time (64 KiB).
const bufChunk = 8

// BufferPool is the TCP reassembly memory of one or more engines: at most
// a fixed number of streamBufSize buffers, allocated a chunk at a time as
// flows need them and kept for reuse, so that reassembly memory is bounded
// however many flows are open and an idle site holds none. A flow borrows
// a buffer per direction while it is being classified and gives it back
// when it is decided or given up on; when the pool is dry, flows are
// judged on their first segment alone. It is safe for concurrent use, so
// the engines of a site share one.
type BufferPool struct {
	size int
	// chunks has a fixed length, so readers need no lock: an entry is
	// stored once, under mu, before any index in it is handed out.
	chunks []atomic.Pointer[[bufChunk * streamBufSize]byte]

	mu   sync.Mutex
	n    int32 // buffers allocated so far
	free []int32
}

// NewBufferPool returns a pool of at most n buffers (default 1024, 8 MiB,
// when n <= 0).
func NewBufferPool(n int) *BufferPool {
	if n <= 0 {
		n = 1024
	}
	chunks := (n + bufChunk - 1) / bufChunk
	return &BufferPool{
		size:   streamBufSize,
		chunks: make([]atomic.Pointer[[bufChunk * streamBufSize]byte], chunks),
		free:   make([]int32, 0, chunks*bufChunk),
	}
}

// Max is how many buffers the pool may hold.
func (p *BufferPool) Max() int { return len(p.chunks) * bufChunk }

// Allocated is how many bytes of buffers the pool holds so far.
func (p *BufferPool) Allocated() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return int(p.n) * p.size
}

func (p *BufferPool) get() int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.free); n > 0 {
		i := p.free[n-1]
		p.free = p.free[:n-1]
		return i
	}
	if int(p.n) >= p.Max() {
		return -1
	}
	i := p.n
	if i%bufChunk == 0 {
		p.chunks[i/bufChunk].Store(new([bufChunk * streamBufSize]byte))
	}
	p.n++
	return i
}

func (p *BufferPool) put(i int32) {
	if i < 0 {
		return
	}
	p.mu.Lock()
	p.free = append(p.free, i)
	p.mu.Unlock()
}

func (p *BufferPool) slot(i int32) []byte {
	c := p.chunks[i/bufChunk].Load()
	off := int(i%bufChunk) * p.size
	return c[off : off+p.size : off+p.size]
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
