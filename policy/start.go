package policy

import (
	"context"
	"fmt"
)

// Start brings the kernel to the desired state with as little change as it
// can, for a daemon that starts while a table from its previous run may
// still be enforcing. When that table has the right chains, rules and sets,
// only set elements are repaired, so a restart leaves rate meters, counters
// and elements' expiry times as they were; otherwise the table is rebuilt in
// one batch, as Apply does. It reports whether it rebuilt the table and how
// many elements it repaired.
func (e *Enforcer) Start(ctx context.Context) (rebuilt bool, repairs int, err error) {
	if err := ctx.Err(); err != nil {
		return false, 0, fmt.Errorf("policy: start: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.drainLocked()
	user, err := compileActive(ctx, e.net, e.rules, e.dir, e.now())
	if err != nil {
		return false, 0, err
	}
	e.rs = build(e.net, user)
	drift, err := e.structuralDrift()
	if err != nil {
		return false, 0, err
	}
	if len(drift) > 0 {
		e.log.Info("building the table", "reason", drift[0], "differences", len(drift))
		return true, 0, e.applyLocked(ctx)
	}
	e.applied = true
	repairs, err = e.repairElements()
	e.log.Info("table from the previous run adopted", "elements repaired", repairs)
	return false, repairs, err
}
