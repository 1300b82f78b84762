// Package findingtest is the finding.Sink tests hand a source in place of
// the daemon's finding store: a Collector keeps every finding offered, in
// order, so a test asks what a DHCP server, a portal or a RADIUS server
// raised. It is for tests only; the product never imports it.
package findingtest

import (
	"sync"

	"github.com/gatehouse-net/gatehouse/alert/finding"
)

// Collector is a finding.Sink that keeps everything offered. The zero value
// is ready to use; it is safe for concurrent use.
type Collector struct {
	mu   sync.Mutex
	seen []finding.Finding
}

// Offer keeps f.
func (c *Collector) Offer(f finding.Finding) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen = append(c.seen, f)
}

// All returns every finding offered so far, oldest first.
func (c *Collector) All() []finding.Finding {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]finding.Finding(nil), c.seen...)
}

// Class returns the findings of one class offered so far, oldest first.
func (c *Collector) Class(class string) []finding.Finding {
	var out []finding.Finding
	for _, f := range c.All() {
		if f.Class == class {
			out = append(out, f)
		}
	}
	return out
}
