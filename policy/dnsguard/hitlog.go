package dnsguard

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// The hit log keeps the query log, inspection's answer table and query
// checks (Config.Queries) and the MAC lookup off the path of a cached
// answer: a hit appends a note to a
// bounded buffer (a lock and a copy, no allocation) and a goroutine hands
// the buffered notes to the Recorder and Answers every hitLogEvery, after
// the answers have left. When the buffer is full a note is dropped and
// counted (Stats.LogDropped): a flood costs log lines, never answers.
// Everything else (misses, refusals, policy answers worked out afresh) is
// still recorded on the serving goroutine before its answer leaves.

// hitLogEvery is how often buffered hits are handed on. Inspection reads
// the guard's answers off the wire as well, so a few milliseconds here
// lose it nothing.
const hitLogEvery = 5 * time.Millisecond

// hitLogSize bounds the notes waiting: about 30 ms of a busy school's
// cached lookups at 250,000 a second.
const hitLogSize = 8192

type hitNote struct {
	at      time.Time
	client  netip.Addr
	segment string
	e       *packedEntry
	// port is the client's; refused: the client was over its rate and
	// answered REFUSED, so only inspection (Config.Queries) is told;
	// uninspected: the query came in on Config.RedirectedListen, so
	// inspection is not told. Together, last, they take one word: 16,384
	// notes are allocated.
	port        uint16
	refused     bool
	uninspected bool
}

type hitLog struct {
	mu      sync.Mutex
	buf     []hitNote
	spare   []hitNote
	dropped atomic.Uint64
	// wake tells runHitLog that the buffer has notes again. A ticker
	// instead woke the daemon 200 times a second with nothing to hand on:
	// on an idle router that was most of its CPU, and under another
	// component's load (RADIUS) a wake-up of the whole process each time.
	wake chan struct{}
}

func newHitLog() *hitLog {
	return &hitLog{buf: make([]hitNote, 0, hitLogSize), spare: make([]hitNote, 0, hitLogSize), wake: make(chan struct{}, 1)}
}

// signal wakes runHitLog when first is set (the buffer was empty); a wake
// already pending covers this note too.
func (l *hitLog) signal(first bool) {
	if !first {
		return
	}
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *hitLog) add(n hitNote) {
	l.mu.Lock()
	if len(l.buf) < cap(l.buf) {
		first := len(l.buf) == 0
		l.buf = append(l.buf, n)
		l.mu.Unlock()
		l.signal(first)
		return
	}
	l.mu.Unlock()
	l.dropped.Add(1)
}

// addAll adds the notes of a batch under one lock; those past the room
// left are dropped and counted.
func (l *hitLog) addAll(ns []hitNote) {
	l.mu.Lock()
	k := min(len(ns), cap(l.buf)-len(l.buf))
	first := len(l.buf) == 0 && k > 0
	l.buf = append(l.buf, ns[:k]...)
	l.mu.Unlock()
	l.signal(first)
	if k < len(ns) {
		l.dropped.Add(uint64(len(ns) - k))
	}
}

// take swaps the buffer for the empty spare and returns what was in it;
// give returns it as the next spare once handed on.
func (l *hitLog) take() []hitNote {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.buf
	l.buf, l.spare = l.spare[:0], nil
	return out
}

func (l *hitLog) give(b []hitNote) {
	clear(b) // drop the entries' references for the collector
	l.mu.Lock()
	l.spare = b[:0]
	l.mu.Unlock()
}

// runHitLog hands buffered hits on until ctx ends, and once more after:
// hitLogEvery after the first note into an empty buffer, so a busy guard
// flushes as often as before and an idle one never wakes.
func (g *Guard) runHitLog(ctx context.Context) {
	t := time.NewTimer(hitLogEvery)
	t.Stop()
	for {
		select {
		case <-ctx.Done():
			g.flushHits()
			return
		case <-g.hitLog.wake:
		}
		t.Reset(hitLogEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			g.flushHits()
			return
		case <-t.C:
			g.flushHits()
		}
	}
}

// flushHits hands every buffered hit to the Recorder and Answers now.
func (g *Guard) flushHits() {
	g.flushMu.Lock()
	defer g.flushMu.Unlock()
	notes := g.hitLog.take()
	if notes == nil {
		return // another flush holds the spare; it is handing them on
	}
	var m macMemo
	for i := range notes {
		g.noteHit(&notes[i], &m)
	}
	g.hitLog.give(notes)
}

// macMemo is the last client a flush looked the MAC of up: a flush holds
// a few milliseconds of hits, and a device asks for names in bursts, so
// the lease table is asked once a burst rather than once a hit.
type macMemo struct {
	client netip.Addr
	mac    net.HardwareAddr
	ok     bool
}

func (m *macMemo) lookup(c ClientLookup, client netip.Addr) net.HardwareAddr {
	if !m.ok || m.client != client {
		m.client, m.mac, m.ok = client, c.MACFor(client), true
	}
	return m.mac
}

// noteHit records one cached answer. A panic in a Recorder or Answers is
// recovered and counted, as on the serving path, and the rest go on.
func (g *Guard) noteHit(n *hitNote, m *macMemo) {
	defer func() {
		if v := recover(); v != nil {
			g.panics.Add(1)
			g.log.Error("dnsguard: panic recording a cached answer", "panic", fmt.Sprint(v), "client", n.client.String(),
				"name", n.e.name, "stack", string(debug.Stack()))
		}
	}()
	e := n.e
	if n.refused {
		var mac net.HardwareAddr
		if g.cfg.Clients != nil {
			mac = m.lookup(g.cfg.Clients, n.client)
		}
		g.cfg.Queries(Inspected{Time: n.at, Client: n.client, ClientPort: n.port, MAC: mac, Segment: n.segment, Name: e.name, Type: e.qtypeNum})
		return
	}
	rec := Query{Time: n.at, Client: n.client, Segment: n.segment, Name: e.name, Type: e.qtype, Answer: e.summary, Action: e.action}
	if rec.Action == Forwarded {
		rec.Action = Cached
	}
	if g.cfg.Clients != nil {
		rec.MAC = m.lookup(g.cfg.Clients, n.client)
	}
	if g.cfg.Recorder != nil {
		g.cfg.Recorder.Record(rec)
	}
	if g.cfg.Queries != nil && !n.uninspected {
		g.cfg.Queries(Inspected{Time: n.at, Client: n.client, ClientPort: n.port, MAC: rec.MAC, Segment: n.segment, Name: e.name, Type: e.qtypeNum})
	}
	if g.cfg.Answers != nil && !(e.toldClient == n.client && sameAnswerGrain(n.at, e.toldAt)) {
		e.toldClient, e.toldAt = n.client, n.at
		g.cfg.Answers(rec.Client, rec.Name, rec.Answer, rec.Time)
	}
}

// answerGrain is how long after telling Answers of a cached answer to a
// client the same answer to the same client is not told again: inspection
// keeps what it is told for an hour and leaves a lookup it was told of
// within the second as it is (inspect.Resolutions), so a device asking
// again and again (every query is still recorded above) costs it nothing.
const answerGrain = time.Second

func sameAnswerGrain(at, told time.Time) bool {
	d := at.Sub(told)
	return d >= 0 && d < answerGrain
}
