package radius

import (
	"bytes"
	"net/netip"
	"testing"
	"time"
)

func dupKeyN(i int) dupKey {
	pkt := make([]byte, headerLen)
	pkt[1], pkt[4], pkt[5] = byte(i), byte(i>>8), byte(i)
	return newDupKey(&Client{Name: "aps"}, netip.MustParseAddrPort("127.0.0.1:1000"), pkt)
}

// The duplicate cache answers a retransmission with the stored reply,
// ignores one in progress, forgets an unanswered request, expires after
// the window, and stays bounded, forgotten requests included.
func TestDupCacheReplaysExpiresAndStaysBounded(t *testing.T) {
	t0 := time.Unix(1000, 0)
	c := newDupCache(5*time.Second, 100)
	k := dupKeyN(1)
	if st, _ := c.begin(k, t0); st != dupNew {
		t.Fatalf("first sight: %v", st)
	}
	if st, _ := c.begin(k, t0); st != dupInProgress {
		t.Fatalf("while in progress: %v", st)
	}
	c.complete(k, []byte("reply"), t0)
	if st, b := c.begin(k, t0.Add(time.Second)); st != dupReplay || !bytes.Equal(b, []byte("reply")) {
		t.Fatalf("retransmission: %v %q", st, b)
	}
	k2 := dupKeyN(2)
	c.begin(k2, t0)
	c.complete(k2, []byte("reject"), t0.Add(time.Second))
	if st, _ := c.begin(k2, t0.Add(500*time.Millisecond)); st != dupInProgress {
		t.Fatalf("a delayed reject before it is due: %v", st)
	}
	k3 := dupKeyN(3)
	c.begin(k3, t0)
	c.forget(k3)
	if st, _ := c.begin(k3, t0); st != dupNew {
		t.Fatalf("a forgotten request again: %v", st)
	}
	if st, _ := c.begin(k, t0.Add(6*time.Second)); st != dupNew {
		t.Fatalf("after the window: %v", st)
	}
	// Forgotten requests behind one still held take ring room until it
	// expires.
	c = newDupCache(5*time.Second, 100)
	c.begin(dupKeyN(5000), t0)
	full := 0
	for i := range 1000 {
		st, _ := c.begin(dupKeyN(i), t0)
		if st == dupFull {
			full++
			continue
		}
		c.forget(dupKeyN(i))
	}
	if c.n() > 200 || full != 801 {
		t.Fatalf("ring of %d keys, %d refused; want at most 200 kept, 801 refused", c.n(), full)
	}
	// The ring wraps and grows in order.
	c = newDupCache(5*time.Second, 1000)
	for i := range 300 {
		at := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		if st, _ := c.begin(dupKeyN(i), at); st != dupNew {
			t.Fatalf("request %d: %v", i, st)
		}
		c.complete(dupKeyN(i), []byte{byte(i)}, at)
		if c.len() > 50 {
			t.Fatalf("%d entries held with a 5 s window at 10 a second", c.len())
		}
	}
	if st, b := c.begin(dupKeyN(299), t0.Add(299*100*time.Millisecond)); st != dupReplay || b[0] != byte(299%256) {
		t.Fatalf("the newest after wrapping: %v %v", st, b)
	}
}

// The ring and its index agree with a plain map of the same entries
// through growth, wrapping, forgetting and expiry: random requests over a
// few hundred keys, time moving on by random steps.
func TestDupCacheAgreesWithAMap(t *testing.T) {
	type ref struct {
		at, readyAt time.Time
		done        bool
		reply       []byte
	}
	const window = 5 * time.Second
	c := newDupCache(window, 1<<20)
	m := map[dupKey]ref{}
	now := time.Unix(1000, 0)
	rnd := uint64(1)
	next := func(n int) int {
		rnd ^= rnd << 13
		rnd ^= rnd >> 7
		rnd ^= rnd << 17
		return int(rnd % uint64(n))
	}
	for i := range 40000 {
		now = now.Add(time.Duration(next(3)) * time.Millisecond)
		k := dupKeyN(next(3000))
		for key, e := range m {
			if now.Sub(e.at) >= window {
				delete(m, key)
			}
		}
		e, held := m[k]
		want := dupNew
		if held {
			want = dupReplay
			if !e.done || now.Before(e.readyAt) {
				want = dupInProgress
			}
		}
		st, b := c.begin(k, now)
		if st != want || (st == dupReplay && !bytes.Equal(b, e.reply)) {
			t.Fatalf("step %d: %v %q, want %v %q", i, st, b, want, e.reply)
		}
		if st != dupNew {
			continue
		}
		m[k] = ref{at: now}
		switch next(4) {
		case 0:
			c.forget(k)
			delete(m, k)
		case 1: // in progress for a while
		default:
			reply := []byte{byte(i), byte(i >> 8), byte(i >> 16)}
			ready := now.Add(time.Duration(next(2)) * time.Second)
			c.complete(k, reply, ready)
			m[k] = ref{at: now, readyAt: ready, done: true, reply: reply}
		}
		if c.len() != len(m) {
			t.Fatalf("step %d: %d entries, want %d", i, c.len(), len(m))
		}
	}
}
