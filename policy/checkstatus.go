package policy

import (
	"sync"
	"time"
)

// CheckStatus is what the last periodic drift check (Run's Check) found,
// for the overview page: the daemon's log has each difference, this only
// says when the kernel's table was last known to match the rules.
type CheckStatus struct {
	At      time.Time // zero: Run has not checked yet
	Repairs int       // differences the last check repaired
	Err     error     // the last check failed
	Total   int       // repairs by every check since the Enforcer was made
}

// checkRecord holds the last CheckStatus; its own lock, because Check
// holds the Enforcer's for the whole comparison.
type checkRecord struct {
	mu sync.Mutex
	st CheckStatus
}

func (r *checkRecord) note(at time.Time, repairs int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.At, r.st.Repairs, r.st.Err = at, repairs, err
	if err == nil {
		r.st.Total += repairs
	}
}

// LastCheck reports the last periodic drift check Run made.
func (e *Enforcer) LastCheck() CheckStatus {
	e.checks.mu.Lock()
	defer e.checks.mu.Unlock()
	return e.checks.st
}
