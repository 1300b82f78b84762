package findingstore

import (
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse-net/gatehouse/alert/finding"
)

// Defaults of the per-client finding budget.
const (
	// DefaultClientBudget is how many findings of one client are stored
	// per minute before only the unusual ones are: a device doing
	// something a detector notices raises a handful; a flood of crafted
	// packets meant to bury its real findings (or fill the disk) raises
	// thousands.
	DefaultClientBudget = 60
	// DefaultClientKinds bounds the distinct kinds (class, destination,
	// detail) remembered per client and minute.
	DefaultClientKinds = 256
	// DefaultClientTable bounds the clients the budget tracks.
	DefaultClientTable = 4096
)

// budget keeps the first and the unusual of each client's findings: the
// first ClientBudget a minute, and after that each one of a kind the client
// has not raised yet this minute (another class, destination or detail), up
// to DefaultClientKinds kinds. A repeat of a kind already stored adds
// nothing the DSL does not have. What is left out is counted and logged,
// never silently lost.
type budget struct {
	mu      sync.Mutex
	limit   int
	kinds   int
	max     int
	clients map[string]*findingMinute
}

type findingMinute struct {
	start  time.Time
	n      int
	seen   map[string]bool
	warned bool // the over-budget log line for this minute was written
}

func newBudget(limit, kinds, max int) *budget {
	return &budget{limit: limit, kinds: kinds, max: max, clients: map[string]*findingMinute{}}
}

// clientKey names the device a finding is about: its MAC when known, else
// its address; "" for findings about no client (kept always).
func clientKey(f finding.Finding) string {
	if len(f.SrcMAC) > 0 {
		return f.SrcMAC.String()
	}
	if f.SrcIP.IsValid() {
		return f.SrcIP.String()
	}
	return ""
}

func kindOf(f finding.Finding) string {
	return f.Class + "|" + f.DstIP.String() + "|" + strconv.Itoa(int(f.DstPort)) + "|" + f.Detail
}

// keep reports whether f is stored, and whether this is the client's first
// finding left out this minute (to log once).
func (b *budget) keep(f finding.Finding, now time.Time) (keep, firstOver bool) {
	key := clientKey(f)
	if key == "" {
		return true, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.clients[key]
	if c == nil {
		if len(b.clients) >= b.max {
			b.evict(now)
		}
		c = &findingMinute{start: now, seen: map[string]bool{}}
		b.clients[key] = c
	}
	if now.Sub(c.start) >= time.Minute || now.Before(c.start) {
		c.start, c.n, c.warned = now, 0, false
		clear(c.seen)
	}
	k := kindOf(f)
	novel := !c.seen[k]
	if novel && len(c.seen) < b.kinds {
		c.seen[k] = true
	} else if novel {
		novel = false // too many kinds this minute: no longer unusual
	}
	if c.n < b.limit || novel {
		c.n++
		return true, false
	}
	first := !c.warned
	c.warned = true
	return false, first
}

// evict drops clients whose minute is over, or else the oldest.
func (b *budget) evict(now time.Time) {
	var oldest string
	var oldestAt time.Time
	for k, c := range b.clients {
		if now.Sub(c.start) >= time.Minute {
			delete(b.clients, k)
			continue
		}
		if oldest == "" || c.start.Before(oldestAt) {
			oldest, oldestAt = k, c.start
		}
	}
	if len(b.clients) >= b.max && oldest != "" {
		delete(b.clients, oldest)
	}
}

func (b *budget) size() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.clients)
}
