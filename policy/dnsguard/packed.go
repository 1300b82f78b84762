package dnsguard

import (
	"encoding/binary"
	"hash/maphash"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// The packed-answer cache holds the bytes the guard last sent for a
// question as a given policy view sees it, with the guard's decision about
// that name (forwarded, SafeSearch, blocked...) and the query-log summary
// already worked out. A hit is answered by copying those bytes and patching
// the ID, the client's RD bit and spelling of the name, and the TTLs: no
// dns.Msg is built, packed or copied, and nothing is allocated. Everything
// that is not a plain hit (a miss, an expired entry, an unusual query) goes
// the long way, through miekg/dns, whose answer then fills the cache.

// Wire-format constants (RFC 1035 4.1, RFC 6891).
const (
	headerLen = 12
	typeOPT   = 41
	maxName   = 255
)

// wireQuery is what the fast path reads from a query without unpacking it.
type wireQuery struct {
	qname   []byte // the question name in wire form, as the client spelled it
	qtype   uint16
	qclass  uint16
	rd, cd  bool
	edns    bool
	udpSize uint16
	do      bool
}

// parseQuery reads a plain query: QR clear, opcode QUERY, not truncated, one
// question with an uncompressed name, no answer or authority records, and at
// most one additional record, which must be an EDNS0 version 0 OPT at the
// root. Anything else reports false and takes the long way, which knows
// every other shape (and answers FORMERR or NOTIMP where due).
func parseQuery(b []byte) (wireQuery, bool) {
	var q wireQuery
	if len(b) < headerLen+5 {
		return q, false
	}
	flags := binary.BigEndian.Uint16(b[2:])
	// QR, opcode (4 bits), TC must be zero; Z must be zero too.
	if flags&0xfa00 != 0 || flags&0x0040 != 0 {
		return q, false
	}
	q.rd = flags&0x0100 != 0
	q.cd = flags&0x0010 != 0
	if binary.BigEndian.Uint16(b[4:]) != 1 || binary.BigEndian.Uint16(b[6:]) != 0 || binary.BigEndian.Uint16(b[8:]) != 0 {
		return q, false
	}
	ar := binary.BigEndian.Uint16(b[10:])
	if ar > 1 {
		return q, false
	}
	end, ok := plainName(b, headerLen)
	if !ok || end+4 > len(b) {
		return q, false
	}
	q.qname = b[headerLen:end]
	q.qtype = binary.BigEndian.Uint16(b[end:])
	q.qclass = binary.BigEndian.Uint16(b[end+2:])
	off := end + 4
	if ar == 1 {
		// The OPT pseudo-record: root name, type 41, class = UDP size,
		// TTL = extended rcode, version, flags; then its options.
		if off+11 > len(b) || b[off] != 0 || binary.BigEndian.Uint16(b[off+1:]) != typeOPT {
			return q, false
		}
		q.edns = true
		q.udpSize = binary.BigEndian.Uint16(b[off+3:])
		if b[off+5] != 0 || b[off+6] != 0 { // extended rcode, version
			return q, false
		}
		q.do = b[off+7]&0x80 != 0
		rdlen := int(binary.BigEndian.Uint16(b[off+9:]))
		off += 11 + rdlen
	}
	if off != len(b) || len(q.qname) > maxName {
		return q, false
	}
	return q, true
}

// plainName returns where the uncompressed name at off ends (after its root
// label), and false for a compressed, malformed or overlong name.
func plainName(b []byte, off int) (int, bool) {
	start := off
	for {
		if off >= len(b) {
			return 0, false
		}
		l := int(b[off])
		if l == 0 {
			off++
			return off, off-start <= maxName
		}
		if l&0xc0 != 0 {
			return 0, false
		}
		off += 1 + l
		if off-start > maxName {
			return 0, false
		}
	}
}

// skipName returns where the possibly compressed name at off ends in the
// message (a pointer ends it), and false when it runs off the end.
func skipName(b []byte, off int) (int, bool) {
	for n := 0; n < maxName; n++ {
		if off >= len(b) {
			return 0, false
		}
		l := int(b[off])
		switch {
		case l == 0:
			return off + 1, true
		case l&0xc0 == 0xc0:
			if off+2 > len(b) {
				return 0, false
			}
			return off + 2, true
		case l&0xc0 != 0:
			return 0, false
		}
		off += 1 + l
	}
	return 0, false
}

// ttlOffsets walks a packed answer and returns the offset of every record's
// TTL (the OPT pseudo-record's is not a TTL and is left out), and where the
// question ends. It reports false unless the message has exactly one
// question whose name is uncompressed and every record lies within it.
func ttlOffsets(b []byte, dst []uint16) ([]uint16, int, bool) {
	if len(b) < headerLen || len(b) > 0xffff || binary.BigEndian.Uint16(b[4:]) != 1 {
		return nil, 0, false
	}
	qend, ok := plainName(b, headerLen)
	if !ok || qend+4 > len(b) {
		return nil, 0, false
	}
	qend += 4
	records := int(binary.BigEndian.Uint16(b[6:])) + int(binary.BigEndian.Uint16(b[8:])) + int(binary.BigEndian.Uint16(b[10:]))
	off := qend
	for range records {
		end, ok := skipName(b, off)
		if !ok || end+10 > len(b) {
			return nil, 0, false
		}
		rtype := binary.BigEndian.Uint16(b[end:])
		rdlen := int(binary.BigEndian.Uint16(b[end+8:]))
		if rtype != typeOPT {
			dst = append(dst, uint16(end+4))
		}
		off = end + 10 + rdlen
		if off > len(b) {
			return nil, 0, false
		}
	}
	if off != len(b) {
		return nil, 0, false
	}
	return dst, qend, true
}

// packedEntry is one cached answer. It never changes once stored, so a hit
// reads it without holding the shard's lock.
type packedEntry struct {
	// What a hit reads first, together: the key it is compared with and
	// the answer it copies share one allocation (packedCache.put), so the
	// comparison brings the answer's first bytes into the cache with it.
	key     string
	wire    []byte // the answer as first sent (ID, RD, name spelling, TTLs then)
	expires time.Time
	stored  time.Time
	ttls    []uint16 // offsets of the TTLs to age
	action  Action
	// admission: the answer is only for clients the portal admitted (a
	// portal segment, a name the portal does not need).
	admission bool
	qend      int // end of the question section in wire
	// What the query log and inspection are told on a hit, worked out once.
	name, qtype, summary string
	qtypeNum             uint16 // for inspection (Config.Queries)
	// The client Answers was last told of this answer for, and when:
	// read and written only by the hit log's flush (flushMu held).
	toldClient netip.Addr
	toldAt     time.Time
}

// patch writes the answer to query q into out (which must hold
// len(e.wire) bytes) as of now and returns it.
func (e *packedEntry) patch(out []byte, id uint16, q *wireQuery, now time.Time) []byte {
	out = out[:len(e.wire)]
	copy(out, e.wire)
	binary.BigEndian.PutUint16(out, id)
	if q.rd {
		out[2] |= 0x01
	} else {
		out[2] &^= 0x01
	}
	// The question as the client spelled it (DNS 0x20): the same length,
	// since the key is the name folded to lower case.
	copy(out[headerLen:], q.qname)
	age := now.Sub(e.stored) / time.Second
	if age <= 0 {
		return out
	}
	for _, off := range e.ttls {
		ttl := binary.BigEndian.Uint32(out[off:])
		if int64(ttl) > int64(age) {
			ttl -= uint32(age)
		} else {
			ttl = 0
		}
		binary.BigEndian.PutUint32(out[off:], ttl)
	}
	return out
}

// packedKeyLen is the fixed part of a key: view (2), qtype (2), qclass (2),
// UDP size (2), flags (1).
const packedKeyLen = 9

// appendKey appends the cache key of q as policy view sees it: the view,
// the type, class and EDNS shape of the question (the answer's size limit
// and DNSSEC records depend on them), and the name folded to lower case.
func appendKey(dst []byte, view uint16, q *wireQuery) []byte {
	var flags byte
	if q.edns {
		flags |= 1
	}
	if q.do {
		flags |= 2
	}
	if q.cd {
		flags |= 4
	}
	dst = append(dst, byte(view>>8), byte(view), byte(q.qtype>>8), byte(q.qtype), byte(q.qclass>>8), byte(q.qclass),
		byte(q.udpSize>>8), byte(q.udpSize), flags)
	for _, c := range q.qname {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// packedWays is how many entries share one set of the packed cache: one
// 64-byte cache line of pointers.
const packedWays = 8

// packedCache is a bounded, set-associative table of packed answers. A
// hit reads it without a lock: the key's hash picks a set, whose eight
// hash tags (one cache line) say which of its eight entry pointers (the
// next line) may hold the key, and that entry's key is compared in full.
// The sharded map under read locks it replaces cost a hit two atomic adds
// on a lock word the workers on the other cores were adding to as well,
// plus the map's own hashing and probing: about 7% of the daemon's CPU per
// cached answer under bench/dns.sh, mostly waiting for memory the kernel's
// packet work had pushed out of the cache in between. Writers (the long
// way, storing what it answered) take one mutex. When a set is full, its
// entry stored longest ago makes room: a cheap bound, not an LRU, since a
// hit must not write anything shared.
type packedCache struct {
	seed maphash.Seed
	mask uint64 // len(sets)-1
	sets []packedSet
	mu   sync.Mutex // held by put
}

// packedSet is one set: a way's tag is its key's hash, stored after its
// pointer. A reader that sees a tag and a pointer from different puts
// compares the key with the wrong entry's and misses, which the long way
// answers: never a wrong answer.
type packedSet struct {
	tags [packedWays]atomic.Uint64
	ways [packedWays]atomic.Pointer[packedEntry]
}

// newPackedCache holds at least size entries (the next power of two of
// sets of eight at most); nil when size <= 0 (no cache).
func newPackedCache(size int) *packedCache {
	if size <= 0 {
		return nil
	}
	n := 1
	for n*packedWays < size {
		n <<= 1
	}
	return &packedCache{seed: maphash.MakeSeed(), mask: uint64(n - 1), sets: make([]packedSet, n)}
}

// get returns the live entry for key, or nil.
func (c *packedCache) get(key []byte, now time.Time) *packedEntry {
	h := maphash.Bytes(c.seed, key)
	s := &c.sets[h&c.mask]
	for i := range s.tags {
		if s.tags[i].Load() != h {
			continue
		}
		if e := s.ways[i].Load(); e != nil && e.key == string(key) {
			if !now.Before(e.expires) {
				return nil
			}
			return e
		}
	}
	return nil
}

// put stores e under key, in place of the same key's entry, else in an
// empty way, else in place of the set's entry stored longest ago. e's key
// and answer are copied into one allocation.
func (c *packedCache) put(key []byte, e *packedEntry) {
	buf := make([]byte, len(key)+len(e.wire))
	copy(buf, key)
	copy(buf[len(key):], e.wire)
	e.key = ""
	if len(key) > 0 {
		// buf is never written again: the string may share it.
		e.key = unsafe.String(&buf[0], len(key))
	}
	e.wire = buf[len(key):len(buf):len(buf)]
	h := maphash.Bytes(c.seed, key)
	s := &c.sets[h&c.mask]
	c.mu.Lock()
	defer c.mu.Unlock()
	victim := -1
	var vic *packedEntry
	for i := range s.ways {
		old := s.ways[i].Load()
		if old != nil && s.tags[i].Load() == h && old.key == e.key {
			victim = i
			break
		}
		if victim >= 0 && vic == nil {
			continue // an empty way is taken before any entry goes
		}
		if old == nil || victim < 0 || old.stored.Before(vic.stored) {
			victim, vic = i, old
		}
	}
	s.ways[victim].Store(e)
	s.tags[victim].Store(h)
}

func (c *packedCache) len() int {
	n := 0
	for i := range c.sets {
		for j := range c.sets[i].ways {
			if c.sets[i].ways[j].Load() != nil {
				n++
			}
		}
	}
	return n
}
