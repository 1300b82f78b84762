package inspect

import (
	"net/netip"
	"time"
)

// flowKey identifies a flow in both directions: the endpoint that sorts
// first is a.
type flowKey struct {
	a, b   netip.Addr
	pa, pb uint16
	proto  uint8
}

func makeKey(src netip.Addr, sport uint16, dst netip.Addr, dport uint16, proto uint8) flowKey {
	if c := src.Compare(dst); c < 0 || c == 0 && sport <= dport {
		return flowKey{a: src, b: dst, pa: sport, pb: dport, proto: proto}
	}
	return flowKey{a: dst, b: src, pa: dport, pb: sport, proto: proto}
}

const (
	dirC2S = 0 // client to server
	dirS2C = 1
)

// flow is one slot of the table. Nothing in it is allocated per flow, so
// reusing a slot costs nothing; the TCP reassembly buffers are borrowed
// from the BufferPool only while a flow is being classified.
type flow struct {
	key        flowKey
	prev, next int32
	live       bool

	client, server netip.Addr
	cport, sport   uint16
	proto          uint8
	clientMAC      [6]byte
	hasMAC         bool
	first, last    time.Time
	pkts           [2]uint32
	bytes          [2]uint32

	// done is set once the flow is classified or given up on; after that
	// packets are only counted.
	done  bool
	class string

	st [2]tcpStream

	// Scratch of the per-protocol detectors.
	ovpnSID   [8]byte
	ovpnSeen  bool
	wgIndex   [2]uint32
	wgCounter [2]uint64
	wgRun     [2]uint8
	wgInit    bool
	helloDone bool // TLS or QUIC ClientHello already judged
	tlsSNI    bool // hello had a name that did not settle the flow
	torName   bool // SNI looks like Tor's random www.<x>.com
	certCheck bool // undecided TLS hello: look at the server certificate
	synSeen   bool // the flow was seen from its first packet
	tlsVer    uint16
	icmpOdd   uint8 // echo packets that do not look like ping
	encFirst  int8  // fully-encrypted-first-packet verdict: 0 unknown, 1 yes, -1 no
	tlsRecs   recTrace
	sniSeen   bool     // a TLS or QUIC hello named the server
	dohSNI    string   // the SNI of a flow watched for the DoH shape
	dohWhy    uint8    // why it is watched
	ztAddrs   [10]byte // ZeroTier destination and source of the client's first packet
	ztSeen    bool
	tvUDP     uint8   // TeamViewer UDP frames seen
	attempt   bool    // a client-side recognition waits for the server (Engine.pending)
	encHead   [8]byte // first bytes of the first random-looking datagram
}

// flowChunk is how many slots the table allocates at a time. A table
// grows by chunks as flows arrive, up to its bound, and keeps what it grew
// to: a quiet segment holds a few chunks, not its bound's worth of slots.
const flowChunk = 256

// flowTable is a bounded table with LRU order; the least recently seen
// flow is reused when the table is full or it has been idle too long.
// Slots live in chunks so that a slot's address never changes as the
// table grows.
type flowTable struct {
	chunks     []*[flowChunk]flow
	n          int32 // slots handed out so far (the high-water mark)
	max        int32
	index      map[flowKey]int32
	head, tail int32   // head is the most recently used
	free       []int32 // released slots below n, reused first
	idle       time.Duration
}

func newFlowTable(n int, idle time.Duration) *flowTable {
	return &flowTable{
		max:   int32(n),
		index: make(map[flowKey]int32),
		head:  -1,
		tail:  -1,
		idle:  idle,
	}
}

// at returns slot i.
func (t *flowTable) at(i int32) *flow {
	u := uint32(i)
	return &t.chunks[u/flowChunk][u%flowChunk]
}

func (t *flowTable) get(k flowKey) (int32, bool) {
	i, ok := t.index[k]
	return i, ok
}

func (t *flowTable) unlink(i int32) {
	f := t.at(i)
	if f.prev >= 0 {
		t.at(f.prev).next = f.next
	} else {
		t.head = f.next
	}
	if f.next >= 0 {
		t.at(f.next).prev = f.prev
	} else {
		t.tail = f.prev
	}
	f.prev, f.next = -1, -1
}

func (t *flowTable) pushFront(i int32) {
	f := t.at(i)
	f.prev = -1
	f.next = t.head
	if t.head >= 0 {
		t.at(t.head).prev = i
	}
	t.head = i
	if t.tail < 0 {
		t.tail = i
	}
}

// touch marks slot i as just used.
func (t *flowTable) touch(i int32) {
	if t.head == i {
		return
	}
	t.unlink(i)
	t.pushFront(i)
}

// oldest returns the least recently used slot, or -1.
func (t *flowTable) oldest() int32 { return t.tail }

// remove frees slot i.
func (t *flowTable) remove(i int32) {
	f := t.at(i)
	delete(t.index, f.key)
	t.unlink(i)
	f.live = false
	t.free = append(t.free, i)
}

// add takes a slot for k, a released one if there is one and otherwise a
// new one (growing the table by a chunk when needed); the caller must have
// made room.
func (t *flowTable) add(k flowKey) int32 {
	var i int32
	if n := len(t.free); n > 0 {
		i = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		if t.n%flowChunk == 0 {
			t.chunks = append(t.chunks, new([flowChunk]flow))
		}
		i = t.n
		t.n++
	}
	t.index[k] = i
	f := t.at(i)
	*f = flow{key: k, live: true, prev: -1, next: -1}
	f.st[0].buf, f.st[1].buf = -1, -1
	t.pushFront(i)
	return i
}

func (t *flowTable) full() bool { return len(t.free) == 0 && t.n >= t.max }

func (t *flowTable) len() int { return int(t.n) - len(t.free) }
