package dnsguard

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Forwarded UDP queries share a socket per upstream instead of opening one
// each (a socket, a connect, a poller registration and a close per query
// were most of a forwarded query's cost). Answers are matched to queries
// by ID and question, on a socket connected to the upstream, so only the
// upstream's address and port can answer at all. The socket is replaced
// after upstreamUses queries, so the source port an off-path forger has to
// guess keeps changing, as it does with a socket per query; the retired
// socket stays open until its last query is answered or times out.
//
// "Its last query" is counted from sock, not from the pending table: a
// query holds its use of the socket (active) from the moment sock hands it
// out until its exchange ends. Counting the pending table instead closed a
// retired socket under a query that had been given it but had not yet
// registered its ID, and that query was answered SERVFAIL although the
// upstream was healthy (a few per 100,000 forwarded queries under load).

// upstreamUses is how many queries one upstream socket carries.
const upstreamUses = 256

// upstreamPool is the current UDP socket to one upstream.
type upstreamPool struct {
	g    *Guard
	addr string
	mu   sync.Mutex
	cur  *upstreamSock
}

type upstreamSock struct {
	pool    *upstreamPool
	conn    net.Conn
	mu      sync.Mutex
	pending map[uint16]*pendingQuery
	uses    int
	active  int // uses handed out whose exchange has not ended (release)
	retired bool
	closed  bool
}

var errRetired = errors.New("retired")

type pendingQuery struct {
	q    dns.Question
	done chan result
}

type result struct {
	m   *dns.Msg
	err error
}

// pools returns the pool for upstream u, made on first use.
func (g *Guard) pool(u netip.AddrPort) *upstreamPool {
	g.poolMu.Lock()
	defer g.poolMu.Unlock()
	if g.pools == nil {
		g.pools = map[netip.AddrPort]*upstreamPool{}
	}
	p := g.pools[u]
	if p == nil {
		p = &upstreamPool{g: g, addr: u.String()}
		g.pools[u] = p
	}
	return p
}

// sock returns a socket with room for one more query, opening one when
// the current one is used up. The caller must release it once its
// exchange has ended.
func (p *upstreamPool) sock(ctx context.Context) (*upstreamSock, error) {
	var idle *upstreamSock
	defer func() {
		if idle != nil {
			idle.close(errRetired) // after p.mu: close takes it
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.cur; s != nil {
		s.mu.Lock()
		if !s.closed && s.uses < upstreamUses {
			s.uses++
			s.active++
			s.mu.Unlock()
			return s, nil
		}
		s.retired = true
		if s.active == 0 {
			idle = s
		}
		s.mu.Unlock()
		p.cur = nil
	}
	dctx, cancel := context.WithTimeout(ctx, p.g.cfg.Timeout)
	defer cancel()
	var conn net.Conn
	var err error
	if p.g.cfg.Dial != nil {
		conn, err = p.g.cfg.Dial(dctx, "udp", p.addr)
	} else {
		var d net.Dialer
		conn, err = d.DialContext(dctx, "udp", p.addr)
	}
	if err != nil {
		return nil, err
	}
	growReceiveBuffer(conn) // up to upstreamUses answers may arrive at once
	s := &upstreamSock{pool: p, conn: conn, pending: map[uint16]*pendingQuery{}, uses: 1, active: 1}
	p.cur = s
	go s.read()
	return s, nil
}

// read hands each answer to the query with its ID and question until the
// socket is closed. An error from the socket (an upstream that refuses
// with ICMP) fails every query waiting on it at once.
func (s *upstreamSock) read() {
	buf := make([]byte, dns.MaxMsgSize)
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			s.close(err)
			return
		}
		m := new(dns.Msg)
		if m.Unpack(buf[:n]) != nil || !m.Response || len(m.Question) != 1 {
			continue
		}
		s.mu.Lock()
		pq := s.pending[m.Id]
		if pq != nil && sameQuestion(pq.q, m.Question[0]) {
			delete(s.pending, m.Id)
			pq.done <- result{m: m}
		}
		s.mu.Unlock()
	}
}

// release ends one query's use of s; the last one of a retired socket
// closes it (which ends its reader).
func (s *upstreamSock) release() {
	s.mu.Lock()
	s.active--
	last := s.retired && s.active == 0
	s.mu.Unlock()
	if last {
		s.close(errRetired)
	}
}

func sameQuestion(a, b dns.Question) bool {
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
}

// close fails every waiting query with err and closes the socket.
func (s *upstreamSock) close(err error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	for id, pq := range s.pending {
		delete(s.pending, id)
		pq.done <- result{err: err}
	}
	s.mu.Unlock()
	s.conn.Close()
	p := s.pool
	p.mu.Lock()
	if p.cur == s {
		p.cur = nil
	}
	p.mu.Unlock()
}

// exchangeUDP sends req to the upstream with a fresh ID and waits for its
// answer, until timeout or ctx.
func (p *upstreamPool) exchangeUDP(ctx context.Context, req *dns.Msg, timeout time.Duration) (*dns.Msg, error) {
	s, err := p.sock(ctx)
	if err != nil {
		return nil, err
	}
	defer s.release()
	return s.exchange(ctx, req, timeout)
}

// exchange sends req on s, whose use the caller holds, with a fresh ID and
// waits for its answer, until timeout or ctx.
func (s *upstreamSock) exchange(ctx context.Context, req *dns.Msg, timeout time.Duration) (*dns.Msg, error) {
	out := req.Copy()
	pq := &pendingQuery{q: req.Question[0], done: make(chan result, 1)}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errors.New("upstream socket closed")
	}
	for {
		out.Id = uint16(rand.Uint32())
		if s.pending[out.Id] == nil {
			break
		}
	}
	s.pending[out.Id] = pq
	s.mu.Unlock()
	b, err := out.Pack()
	if err == nil {
		_, err = s.conn.Write(b)
	}
	if err != nil {
		s.forget(out.Id)
		return nil, err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-pq.done:
		return r.m, r.err
	case <-t.C:
		s.forget(out.Id)
		return nil, fmt.Errorf("no answer within %v", timeout)
	case <-ctx.Done():
		s.forget(out.Id)
		return nil, ctx.Err()
	}
}

// forget drops a query nobody waits for any more.
func (s *upstreamSock) forget(id uint16) {
	s.mu.Lock()
	delete(s.pending, id)
	s.mu.Unlock()
}

// closePools closes every upstream socket (the guard stops serving).
func (g *Guard) closePools() {
	g.poolMu.Lock()
	pools := g.pools
	g.pools = nil
	g.poolMu.Unlock()
	for _, p := range pools {
		p.mu.Lock()
		s := p.cur
		p.mu.Unlock()
		if s != nil {
			s.close(net.ErrClosed)
		}
	}
}
