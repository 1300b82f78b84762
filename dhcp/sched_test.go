package dhcp

import (
	"testing"
	"time"
)

// schedJob is a job of n datagrams read at at.
func schedJob(disc bool, n int, at time.Time) *job {
	return &job{dgs: make([]datagram, n), at: at, disc: disc}
}

// TestSchedulerOrder: REQUESTs go first, but at most requestRun in a row
// while a DISCOVER waits; DISCOVERs keep their order.
func TestSchedulerOrder(t *testing.T) {
	sc := newScheduler(100, 100, 3)
	t0 := time.Now()
	var discs, reqs []*job
	for i := range 3 {
		d := schedJob(true, 1, t0.Add(time.Duration(i)*time.Microsecond))
		discs = append(discs, d)
		if !sc.push(d) {
			t.Fatal("push refused below the bound")
		}
	}
	for i := range requestRun + 2 {
		r := schedJob(false, 1, t0.Add(time.Millisecond+time.Duration(i)*time.Microsecond))
		reqs = append(reqs, r)
		sc.push(r)
	}
	want := append(append([]*job{}, reqs[:requestRun]...), discs[0])
	want = append(want, reqs[requestRun:]...)
	want = append(want, discs[1:]...)
	for i, w := range want {
		j, stale := sc.next(t0.Add(2 * time.Millisecond))
		if stale != nil {
			t.Fatalf("step %d: a fresh DISCOVER reported stale", i)
		}
		if j != w {
			t.Fatalf("step %d: got disc=%v at %v, want disc=%v at %v", i, j != nil && j.disc, j.at.Sub(t0), w.disc, w.at.Sub(t0))
		}
	}
	if j, stale := sc.next(t0); j != nil || stale != nil {
		t.Fatal("empty scheduler returned a job")
	}
}

// TestSchedulerDropsStaleDiscoversOnly: a DISCOVER that waited longer than
// discoverMaxWait comes back as stale; a REQUEST as old is still handled.
func TestSchedulerDropsStaleDiscoversOnly(t *testing.T) {
	sc := newScheduler(100, 100, 3)
	t0 := time.Now()
	old := schedJob(true, 2, t0)
	fresh := schedJob(true, 1, t0.Add(discoverMaxWait))
	req := schedJob(false, 1, t0)
	sc.push(old)
	sc.push(fresh)
	sc.push(req)
	now := t0.Add(discoverMaxWait + time.Millisecond)
	if j, stale := sc.next(now); j != nil || stale != old {
		t.Fatalf("got %v, stale %v: want the old DISCOVER dropped first", j, stale)
	}
	if j, _ := sc.next(now); j != req {
		t.Fatal("an old REQUEST was not handled")
	}
	if j, _ := sc.next(now); j != fresh {
		t.Fatal("the fresh DISCOVER was not handled")
	}
	if sc.discs.n != 0 || sc.reqs.n != 0 {
		t.Fatalf("queues count %d and %d datagrams when empty", sc.reqs.n, sc.discs.n)
	}
}

// TestSchedulerBoundsEachQueue: a queue refuses a job that would take it
// past its bound in datagrams, and the other queue is not affected.
func TestSchedulerBoundsEachQueue(t *testing.T) {
	sc := newScheduler(10, 4, 3)
	t0 := time.Now()
	if !sc.push(schedJob(true, 3, t0)) {
		t.Fatal("DISCOVERs refused below the bound")
	}
	if sc.push(schedJob(true, 2, t0)) {
		t.Fatal("DISCOVERs queued past their bound")
	}
	if !sc.push(schedJob(false, 8, t0)) || !sc.push(schedJob(false, 2, t0)) {
		t.Fatal("REQUESTs refused within their bound")
	}
	if sc.push(schedJob(false, 1, t0)) {
		t.Fatal("REQUESTs queued past their bound")
	}
	sc.next(t0)
	if !sc.push(schedJob(false, 1, t0)) {
		t.Fatal("no room after a job was taken")
	}
	// One wake-up per worker at most; the pushes did not block.
	if len(sc.wake) != cap(sc.wake) {
		t.Fatalf("%d wake-ups pending, want %d", len(sc.wake), cap(sc.wake))
	}
}

// TestJobQueueCompacts: a queue that never empties does not grow without
// bound.
func TestJobQueueCompacts(t *testing.T) {
	q := jobQueue{max: 1 << 30}
	j := schedJob(false, 1, time.Now())
	for i := range 10000 {
		q.jobs = append(q.jobs, j)
		q.n++
		if i > 0 {
			q.pop()
		}
	}
	if len(q.jobs) > 200 {
		t.Fatalf("queue of one job holds a slice of %d", len(q.jobs))
	}
}
