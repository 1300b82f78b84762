package radius

import (
	"context"
	"net"
	"sync"
	"sync/atomic"

	"layeh.com/radius"
)

// answersInline says whether the read loop should answer this request
// itself rather than hand it to a worker: a MAC authentication (User-Name
// a MAC, no EAP, no 4-way handshake to match) of a device held in memory
// as approved (devcache.go), so the answer is a map read, an HMAC and a
// send. A stranger goes to a worker: its finding may wait for a database
// write, and a flood of made-up MACs must not hold up everyone else's.
// Handing such a request to a worker cost more than answering it: a
// second thread woken per request, which on the daemon under radclient's
// load was a fifth of its CPU (bench/radius.sh, PERF). Anything that may
// wait (argon2id, EAP's TLS, the store) still goes to the workers.
//
// A PAP re-authentication is answered inline too when its person is held
// in memory (identities.go) and the credential cache holds a password
// verified for them (credcache.go): then the answer is a map read and an
// HMAC. That is a hint as well: if the password is not the cached one, the
// decision hands the request back to a worker rather than run argon2id
// here (request.inline, auth.go's pap).
//
// pkt has passed frame: every attribute's length is within the packet.
func (s *Server) answersInline(acct bool, pkt []byte) bool {
	if acct || radius.Code(pkt[0]) != radius.CodeAccessRequest {
		return false
	}
	var (
		mac      macKey
		isMAC    bool
		named    bool
		name     []byte
		password bool
	)
	for i := headerLen; i+2 <= len(pkt); {
		t, l := pkt[i], int(pkt[i+1])
		if l < 2 || i+l > len(pkt) {
			return false
		}
		switch t {
		case typeEAPMessage:
			// An EAP round: the TLS work of a login's coroutine and
			// in-memory lookups; the rare wait (argon2id) starts
			// another read loop first (readers.mayBlock).
			return s.eap != nil
		case typeLongExtended5:
			return false
		case 1: // User-Name: the first, as the decision reads it
			if !named {
				name = pkt[i+2 : i+l]
				mac, isMAC = parseMAC6(string(name))
				named = true
			}
		case 2: // User-Password
			password = true
		}
		i += l
	}
	if isMAC {
		// The entry may be stale: this only picks the goroutine; the
		// lookup in work checks the change log as every lookup does.
		cache, ok := s.o.Devices.(*deviceCache)
		return ok && cache.approved(mac)
	}
	if !password || len(name) == 0 || s.creds == nil {
		return false
	}
	ids, ok := s.o.Identities.(*identityCache)
	if !ok {
		return false
	}
	now := s.now()
	who, ok := ids.held(name, now)
	return ok && s.creds.holds(who, now)
}

// readers are the read loops of one socket. Each reads its own batch
// (concurrent reads serialise on the socket's read lock; the answering runs
// outside it) and answers EAP rounds itself: handing a round to a worker
// woke a second thread per round, which under bench/eap.sh was most of the
// scheduler's and the kernel's context-switch CPU.
//
// A round about to wait long (argon2id for a TTLS-PAP password not in the
// credential cache, a person or device not held in memory, so a store
// read) first starts another loop (mayBlock), so the socket keeps its
// target of loops reading; a loop finding more than target running ends
// after its batch. Extra loops are bounded by the in-flight bound: each
// waits with a request's token held.
type readers struct {
	s      *Server
	ctx    context.Context
	wg     *sync.WaitGroup // Run's: it waits for every loop
	conn   *net.UDPConn
	acct   bool
	target int32
	max    int32
	n      atomic.Int32 // loops running

	mu      sync.Mutex
	batches map[*batch]struct{} // each running loop's
}

// batch is the part of a loop's last read not yet taken, and the replies
// the loop has decided and not yet sent: handOver takes the one and sends
// the other when a round is about to wait.
type batch struct {
	r       *udpBatchReader
	out     *udpReplies
	mu      sync.Mutex
	next, n int
}

func (b *batch) start(n int) {
	b.mu.Lock()
	b.next, b.n = 0, n
	b.mu.Unlock()
}

// take is the next datagram of the batch to answer; false when none is
// left (all answered, or handed over).
func (b *batch) take() (int, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.next >= b.n {
		return 0, false
	}
	b.next++
	return b.next - 1, true
}

func (p *readers) register(b *batch) {
	p.mu.Lock()
	p.batches[b] = struct{}{}
	p.mu.Unlock()
}

func (p *readers) unregister(b *batch) {
	p.mu.Lock()
	delete(p.batches, b)
	p.mu.Unlock()
}

// handOver gives the datagrams the loops have read and not yet taken to
// the workers, and sends the replies the loops have already decided: the
// loop whose round is about to wait would otherwise hold both until it is
// done (a MAB answer queued before a first login's argon2id would wait for
// it). Which loop calls is not known, so every loop's rest goes; it is
// answered as it would be from a worker.
func (p *readers) handOver() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for b := range p.batches {
		b.mu.Lock()
		for ; b.next < b.n; b.next++ {
			pkt, src := b.r.packet(b.next)
			p.s.receiveTo(p.ctx, p.conn, p.acct, pkt, src, nil, false)
		}
		b.mu.Unlock()
		if b.out != nil {
			if err := b.out.flush(); err != nil {
				p.s.log.Warn("radius: send", "err", err)
			}
		}
	}
}

func (s *Server) newReaders(ctx context.Context, wg *sync.WaitGroup, conn *net.UDPConn, acct bool) *readers {
	// One loop reading. Two (a loop per processor) were measured: the
	// second waits on the socket's read lock, and each batch's release of
	// it woke that loop's thread, which cost MAB 10% and cached PAP half
	// again of their CPU per request (bench/radius.sh) and won back less
	// of EAP's than one loop did (bench/eap.sh). A TLS step is a fraction
	// of a millisecond; whatever may wait longer starts another loop first.
	return &readers{s: s, ctx: ctx, wg: wg, conn: conn, acct: acct, target: 1, max: 1 + int32(s.o.MaxInFlight),
		batches: map[*batch]struct{}{}}
}

// spawn starts a loop, unless max run already or the server is stopping.
func (p *readers) spawn() {
	if p.ctx.Err() != nil {
		return
	}
	if p.n.Add(1) > p.max {
		p.n.Add(-1)
		return
	}
	p.wg.Add(1) // the caller is one of wg's: Run's Wait has not returned
	go func() {
		defer p.wg.Done()
		p.s.readLoop(p.ctx, p)
	}()
}

// surplus says the calling loop should end: more than target run. It
// counts the caller out when it says so.
func (p *readers) surplus() bool {
	for {
		n := p.n.Load()
		if n <= p.target {
			return false
		}
		if p.n.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// mayBlock is called by a request about to wait long, on whatever
// goroutine runs it: if that is a read loop, another takes its place (it
// ends after its batch, surplus) and the rest of its batch goes to the
// workers; if it is a worker, the extra loop ends after its first batch.
func (s *Server) mayBlock() {
	if p := s.authReaders.Load(); p != nil {
		p.spawn()
		p.handOver()
	}
}

// mayReadPerson is called before a lookup of user's identity: one not held
// in memory (identities.go) may read the store, so another loop reads
// meanwhile (mayBlock).
func (s *Server) mayReadPerson(user string) {
	if s.authReaders.Load() == nil {
		return // not serving (a test calling in): no loop to replace
	}
	if ids, ok := s.o.Identities.(*identityCache); ok && user != "" {
		if _, held := ids.held([]byte(user), s.now()); held {
			return
		}
	}
	s.mayBlock()
}

// mayReadDevice is mayReadPerson for a device (devcache.go).
func (s *Server) mayReadDevice(mac []byte) {
	if s.authReaders.Load() == nil {
		return
	}
	if cache, ok := s.o.Devices.(*deviceCache); ok && len(mac) == len(macKey{}) && cache.approved(macKey(mac)) {
		return
	}
	s.mayBlock()
}
