package dhcp

import (
	"fmt"
	mbits "math/bits"
	"strings"
	"sync/atomic"
	"time"
)

// Timings are latency histograms of the stages an exchange goes through
// inside the server, so that a tail seen from outside (perfdhcp's p99) can
// be split into where it was spent. Each histogram is a few atomic adds per
// sample; the stages are sampled once per job, batch or ACK, never per
// statement.
type Timings struct {
	// JobWait: a job read from a socket until a worker takes it (the
	// scheduler's queue and the wait for a CPU).
	JobWait hist
	// AckQueue: an ACK's writes queued until its batch closes (the
	// previous batch's commit when one is running, plus the fill wait,
	// commitMaxAge).
	AckQueue hist
	// Commit: one batch's transaction (statements and COMMIT, with any
	// checkpoint SQLite runs in it).
	Commit hist
	// FinishWait: a batch's commit done until the finisher takes it up
	// (its bindings, and the finisher's CPU).
	FinishWait hist
	// Finish: a batch's callbacks and the flush of its ACKs.
	Finish hist
	// AckTotal: an ACK's writes queued until it was written to the socket.
	AckTotal hist
	// BatchSize: writes per batch (a count, not microseconds).
	BatchSize hist
}

// histBuckets covers 1 µs to about 70 s in quarter powers of two.
const histBuckets = 105

// hist is a log-scale histogram of non-negative values (microseconds, or a
// count), four buckets per power of two.
type hist struct {
	b   [histBuckets]atomic.Uint64
	max atomic.Uint64
}

func bucketOf(v uint64) int {
	if v < 4 {
		return int(v)
	}
	e := mbits.Len64(v) - 1            // 2^e <= v
	q := int((v >> (uint(e) - 2)) & 3) // next two bits
	i := 4*(e-1) + q
	return min(i, histBuckets-1)
}

// bucketLow is the smallest value bucket i holds.
func bucketLow(i int) uint64 {
	if i < 4 {
		return uint64(i)
	}
	e := i/4 + 1
	q := uint64(i % 4)
	return (4 + q) << uint(e-2)
}

func (h *hist) add(v uint64) {
	h.b[bucketOf(v)].Add(1)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

func (h *hist) since(t time.Time) {
	d := time.Since(t)
	if d < 0 {
		d = 0
	}
	h.add(uint64(d / time.Microsecond))
}

// take returns the histogram's quantiles and count and empties it.
func (h *hist) take() (n uint64, qs [4]uint64, max uint64) {
	var c [histBuckets]uint64
	for i := range h.b {
		c[i] = h.b[i].Swap(0)
		n += c[i]
	}
	max = h.max.Swap(0)
	if n == 0 {
		return 0, qs, max
	}
	for k, p := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := uint64(float64(n)*p + 0.999999)
		var sum uint64
		for i := range c {
			sum += c[i]
			if sum >= want {
				qs[k] = bucketLow(i)
				break
			}
		}
	}
	return n, qs, max
}

// Report returns one line per stage ("t_NAME n=N p50=… p90=… p99=… p999=…
// max=…", microseconds but for batch_size) and empties the histograms, so
// that each report covers the time since the last.
func (t *Timings) Report() string {
	var b strings.Builder
	for _, s := range []struct {
		name string
		h    *hist
	}{
		{"job_wait", &t.JobWait}, {"ack_queue", &t.AckQueue}, {"commit", &t.Commit},
		{"finish_wait", &t.FinishWait}, {"finish", &t.Finish}, {"ack_total", &t.AckTotal},
		{"batch_size", &t.BatchSize},
	} {
		n, q, m := s.h.take()
		fmt.Fprintf(&b, "t_%s n=%d p50=%d p90=%d p99=%d p999=%d max=%d\n", s.name, n, q[0], q[1], q[2], q[3], m)
	}
	return b.String()
}

// Empty reports whether no stage has a sample since the last Report: a
// server that handled nothing has no timings worth logging. It only reads
// the counts; a sample added meanwhile waits for the next Report.
func (t *Timings) Empty() bool {
	for _, h := range []*hist{&t.JobWait, &t.AckQueue, &t.Commit, &t.FinishWait, &t.Finish, &t.AckTotal, &t.BatchSize} {
		if !h.empty() {
			return false
		}
	}
	return true
}

// empty reports whether h holds no sample.
func (h *hist) empty() bool {
	for i := range h.b {
		if h.b[i].Load() != 0 {
			return false
		}
	}
	return true
}
