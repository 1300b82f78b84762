package radius

import (
	"sort"
	"sync"
	"time"
)

// NASStatus is what the NAS page shows of one client.
type NASStatus struct {
	Name      string
	LastSeen  time.Time // zero: never
	Requests  uint64
	Dropped   uint64
	CoA       map[string]uint64 // outcome -> count
	LastCoA   []CoAResult       // most recent first, a few
	CoAPort   int
	Address   string
	RequireMA bool
}

const keepCoAResults = 10

// nasBook keeps the per-NAS figures the page shows. Its keys are the
// configured client names only.
type nasBook struct {
	mu sync.Mutex
	m  map[string]*NASStatus
}

func newNASBook() *nasBook { return &nasBook{m: map[string]*NASStatus{}} }

func (b *nasBook) add(name string) {
	b.m[name] = &NASStatus{Name: name, CoA: map[string]uint64{}}
}

func (b *nasBook) seen(name string, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n := b.m[name]; n != nil {
		n.LastSeen = at
		n.Requests++
	}
}

func (b *nasBook) dropped(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n := b.m[name]; n != nil {
		n.Dropped++
	}
}

func (b *nasBook) coa(r CoAResult) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.m[r.NAS]
	if n == nil {
		return
	}
	n.CoA[r.Outcome]++
	n.LastCoA = append([]CoAResult{r}, n.LastCoA...)
	if len(n.LastCoA) > keepCoAResults {
		n.LastCoA = n.LastCoA[:keepCoAResults]
	}
}

// NAS returns every configured client's figures, by name.
func (s *Server) NAS() []NASStatus {
	s.nas.mu.Lock()
	defer s.nas.mu.Unlock()
	out := make([]NASStatus, 0, len(s.nas.m))
	for _, n := range s.nas.m {
		c := *n
		c.CoA = make(map[string]uint64, len(n.CoA))
		for k, v := range n.CoA {
			c.CoA[k] = v
		}
		c.LastCoA = append([]CoAResult(nil), n.LastCoA...)
		if cl := s.byName[n.Name]; cl != nil {
			c.CoAPort, c.Address, c.RequireMA = cl.CoAPort, cl.Prefix.String(), cl.RequireMessageAuthenticator
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// alertLimiter lets a finding for the same device and segment through once
// per period, in a bounded table (cleared when full: at worst a few repeats).
type alertLimiter struct {
	mu     sync.Mutex
	max    int
	period time.Duration
	m      map[string]time.Time
}

func newAlertLimiter(max int, period time.Duration) *alertLimiter {
	return &alertLimiter{max: max, period: period, m: map[string]time.Time{}}
}

func (a *alertLimiter) allow(key string, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if at, ok := a.m[key]; ok && now.Sub(at) < a.period {
		return false
	}
	if len(a.m) >= a.max {
		clear(a.m)
	}
	a.m[key] = now
	return true
}
