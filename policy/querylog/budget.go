package querylog

import (
	"github.com/gatehouse-net/gatehouse/policy/dnsguard"
)

// Defaults of the per-client budget.
const (
	// DefaultClientBudget is how many routine lookups (forwarded or cached)
	// of one client are stored per minute. A person browsing makes far
	// fewer; a flood meant to push real lookups out of what the DSL sees
	// makes far more.
	DefaultClientBudget = 300
	// DefaultClientTable bounds the clients the budget tracks.
	DefaultClientTable = 8192
)

// The budget (internal/clientbudget, keyed by the client's address) keeps
// the first and the unusual of each client's lookups: the first
// ClientBudget routine ones a minute, and every one the guard did something
// about (blocked, SafeSearch, refused before admission, failed), which is
// not counted against it. What is left out is counted, never silently lost.

// routine reports whether the guard just answered q, as for any name.
func routine(q dnsguard.Query) bool {
	return q.Action == dnsguard.Forwarded || q.Action == dnsguard.Cached
}
