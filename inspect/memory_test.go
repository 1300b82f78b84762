//go:build linux

package inspect

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestAnIdleSiteHoldsNoFlowMemory is the inspection half of the memory
// budget's guard (issue 17): engines used to preallocate their whole flow
// table and reassembly buffers, about 27 MB per interface before a packet
// arrived. Four interfaces must now cost next to nothing until traffic
// comes.
func TestAnIdleSiteHoldsNoFlowMemory(t *testing.T) {
	before := heapInUse()
	s := NewSite(SiteOptions{Interfaces: []Interface{{Name: "a"}, {Name: "b"}, {Name: "c"}, {Name: "d"}}})
	grown := int64(heapInUse()) - int64(before)
	runtime.KeepAlive(s)
	// Generous: the per-engine scratch is about 20 KiB.
	if grown > 2<<20 {
		t.Errorf("a site of four idle engines holds %.1f MiB of heap, want under 2 MiB", float64(grown)/(1<<20))
	}
	if got := s.engines[0].bufs; got != s.engines[3].bufs || got.Allocated() != 0 {
		t.Errorf("engines do not share one empty buffer pool: %p %p, %d bytes allocated", got, s.engines[3].bufs, got.Allocated())
	}
}

func TestFlowTableGrowsByChunksUpToItsBound(t *testing.T) {
	e := NewEngine(Options{MaxFlows: 3*flowChunk - 10, FlowIdle: time.Minute})
	if len(e.flows.chunks) != 0 {
		t.Fatalf("a new table holds %d chunks, want none", len(e.flows.chunks))
	}
	send := func(n int) {
		for i := range n {
			b := frame(t, pktSpec{src: pupil, dst: server, udp: true, sport: uint16(20000 + i), dport: 9999, payload: []byte("x")})
			e.HandlePacket(b, ci(t0, len(b)))
		}
	}
	send(flowChunk + 1)
	if len(e.flows.chunks) != 2 || e.flows.len() != flowChunk+1 {
		t.Errorf("%d flows: %d chunks, %d in the table; want 2 chunks", flowChunk+1, len(e.flows.chunks), e.flows.len())
	}
	send(5 * flowChunk)
	if len(e.flows.chunks) != 3 || e.flows.len() != 3*flowChunk-10 || !e.flows.full() {
		t.Errorf("past the bound: %d chunks, %d flows, full %v; want 3 chunks, %d flows, full", len(e.flows.chunks), e.flows.len(), e.flows.full(), 3*flowChunk-10)
	}
	if s := e.Stats(); s.Evicted != uint64(5*flowChunk-(3*flowChunk-10)) {
		t.Errorf("evicted %d, want %d", s.Evicted, 5*flowChunk-(3*flowChunk-10))
	}
	// Released slots are reused before the table grows again.
	e.Reset()
	send(flowChunk)
	if len(e.flows.chunks) != 3 || e.flows.len() != flowChunk || len(e.flows.free) != 2*flowChunk-10 {
		t.Errorf("after Reset: %d chunks, %d flows, %d free", len(e.flows.chunks), e.flows.len(), len(e.flows.free))
	}
}

func TestBufferPoolIsBoundedLazyAndShared(t *testing.T) {
	p := NewBufferPool(20) // rounded up to whole chunks: 24
	if p.Max() != 24 || p.Allocated() != 0 {
		t.Fatalf("new pool: max %d, %d bytes allocated; want 24 and 0", p.Max(), p.Allocated())
	}
	var mu sync.Mutex
	seen := map[int32]bool{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []int32
			for range 10 {
				i := p.get()
				if i < 0 {
					continue
				}
				b := p.slot(i)
				b[0], b[len(b)-1] = byte(i), byte(i)
				mine = append(mine, i)
			}
			mu.Lock()
			for _, i := range mine {
				if seen[i] {
					t.Errorf("buffer %d handed out twice", i)
				}
				seen[i] = true
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(seen) != 24 || p.get() != -1 || p.Allocated() != 24*streamBufSize {
		t.Errorf("40 asked of 24: %d handed out, %d bytes allocated; want 24, the pool dry", len(seen), p.Allocated())
	}
	for i := range seen {
		if b := p.slot(i); b[0] != byte(i) || b[len(b)-1] != byte(i) || len(b) != streamBufSize || cap(b) != streamBufSize {
			t.Errorf("buffer %d overlaps another or has the wrong size (%d, cap %d)", i, len(b), cap(b))
		}
		p.put(i)
	}
	if i := p.get(); i < 0 || p.Allocated() != 24*streamBufSize {
		t.Errorf("after returning every buffer: got %d, %d bytes allocated", i, p.Allocated())
	}
}

func TestCaptureRingGeometry(t *testing.T) {
	for _, tc := range []struct {
		cfg         CaptureConfig
		size, count int
		bad         bool
	}{
		{CaptureConfig{}, 64 << 10, 4, false},
		{CaptureConfig{RingBytes: 4 << 20}, 128 << 10, 32, false},
		{CaptureConfig{RingBytes: 256 << 10}, 64 << 10, 4, false},
		{CaptureConfig{RingBytes: 64 << 10}, 16 << 10, 4, false},
		{CaptureConfig{BlockSize: 256 << 10, NumBlocks: 16}, 256 << 10, 16, false},
		{CaptureConfig{RingBytes: 32 << 10}, 0, 0, true},
		{CaptureConfig{RingBytes: 512 << 20}, 0, 0, true},
	} {
		size, n, err := tc.cfg.blocks()
		if (err != nil) != tc.bad || size != tc.size || n != tc.count {
			t.Errorf("%+v: %d blocks of %d (%v); want %d of %d, error %v", tc.cfg, n, size, err, tc.count, tc.size, tc.bad)
		}
	}
}
