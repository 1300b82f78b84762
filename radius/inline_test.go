package radius

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/gatehouse-net/gatehouse/radius/eap"
)

// EAP rounds are answered in the read loops when EAP is configured (the
// engine's TLS step and in-memory lookups; argon2id starts another loop
// first), never on the accounting port, and never without an engine.
func TestAnswersInlineEAPRoundsWhenEAPIsOn(t *testing.T) {
	p := radius.New(radius.CodeAccessRequest, []byte("secret"))
	_ = rfc2865.UserName_SetString(p, "anonymous@school.example")
	p.Add(typeEAPMessage, radius.Attribute{2, 0, 0, 5, 1})
	pkt, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	on := &Server{eap: &eap.Engine{}}
	if !on.answersInline(false, pkt) {
		t.Error("EAP on: an EAP round goes to a worker")
	}
	if on.answersInline(true, pkt) {
		t.Error("an EAP round on the accounting port is answered inline")
	}
	if (&Server{}).answersInline(false, pkt) {
		t.Error("EAP off: an EAP round is answered inline")
	}
}

// The read loops: a loop beyond the target ends (once per surplus loop),
// and no more than max run, however many rounds say they may block.
func TestReadersKeepTheirTargetAndBound(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	s := &Server{o: Options{MaxInFlight: 4}}
	s.eap = &eap.Engine{}
	p := s.newReaders(ctx, &wg, nil, false)
	if p.target != 1 || p.max != 5 {
		t.Fatalf("target %d, max %d; want 1, 5 (one loop and one per request in flight)", p.target, p.max)
	}
	// Surplus loops as mayBlock leaves them.
	p.target = 2
	// At max, spawn starts nothing (it would start a loop on a nil conn).
	p.n.Store(p.max)
	p.spawn()
	if n := p.n.Load(); n != p.max {
		t.Fatalf("spawn at max: %d running, want %d", n, p.max)
	}
	ended := 0
	for range p.max {
		if p.surplus() {
			ended++
		}
	}
	if ended != int(p.max-p.target) || p.n.Load() != p.target {
		t.Fatalf("%d loops ended, %d running; want %d, %d", ended, p.n.Load(), p.max-p.target, p.target)
	}
	// A stopping server starts no loop.
	cancel()
	p.n.Store(0)
	p.spawn()
	if n := p.n.Load(); n != 0 {
		t.Fatalf("spawn after the end: %d running", n)
	}
}

// A batch gives each datagram once, and none once handed over.
func TestBatchTakesEachDatagramOnce(t *testing.T) {
	b := &batch{}
	b.start(3)
	for want := range 2 {
		if i, ok := b.take(); !ok || i != want {
			t.Fatalf("take: %d %v, want %d true", i, ok, want)
		}
	}
	b.mu.Lock()
	b.next = b.n // as handOver leaves it
	b.mu.Unlock()
	if i, ok := b.take(); ok {
		t.Fatalf("take after the hand-over: %d", i)
	}
	b.start(1)
	if i, ok := b.take(); !ok || i != 0 {
		t.Fatalf("next batch: %d %v", i, ok)
	}
}

// A round about to wait sends the replies its loop has already decided:
// handOver flushes every loop's queue, so a MAB answer queued before a
// first login's argon2id goes out at once, not after it.
func TestHandOverSendsTheRepliesALoopHasDecided(t *testing.T) {
	srv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	io, err := newUDPIO(srv)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{log: slog.New(slog.DiscardHandler)}
	p := s.newReaders(context.Background(), &sync.WaitGroup{}, srv, false)
	out := io.newReplies()
	p.register(&batch{r: io.newBatchReader(maxPacket + 1), out: out})
	reply := []byte("an answer already decided")
	if !out.add(reply, peer.LocalAddr().(*net.UDPAddr).AddrPort()) {
		t.Fatal("the reply could not be queued")
	}

	p.handOver()

	buf := make([]byte, 64)
	if err := peer.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, _, err := peer.ReadFromUDP(buf)
	if err != nil || string(buf[:n]) != string(reply) {
		t.Fatalf("the peer got %q (%v), want the queued reply at the hand-over", buf[:n], err)
	}
	if out.n != 0 {
		t.Fatalf("%d replies still queued after the hand-over", out.n)
	}
}
