package policy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// fingerprint identifies a ruleset's rules and rule-owned set contents, to tell
// whether a rebuild would change anything.
func (rs *ruleset) fingerprint() []string {
	var fp []string
	for _, c := range rs.chains {
		fp = append(fp, "chain "+c.chain.Name)
		for _, r := range c.rules {
			fp = append(fp, r.comment())
		}
	}
	for _, name := range sortedKeys(rs.fixed) {
		var keys []string
		for _, el := range rs.fixed[name] {
			keys = append(keys, string(el.Key))
		}
		slices.Sort(keys)
		fp = append(fp, "set "+name)
		fp = append(fp, keys...)
	}
	return fp
}

// Sync rebuilds the table when the rules in force now differ from those the
// kernel holds (a time slot began or ended, a group gained a device) and
// reports whether it did.
func (e *Enforcer) Sync(ctx context.Context) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.applied {
		return false, fmt.Errorf("policy: sync: table never applied")
	}
	user, err := compileActive(ctx, e.net, e.rules, e.dir, e.now())
	if err != nil {
		return false, err
	}
	// Rules that could not be resolved are reported to the caller (the
	// rules page says they are not in force); the others still go in.
	skipped := errors.Join(user.skipped...)
	if slices.Equal(build(e.net, user).fingerprint(), e.rs.fingerprint()) {
		return false, skipped
	}
	if err := e.applyLocked(ctx); err != nil {
		return false, err
	}
	return true, skipped
}

// Run keeps the kernel in step until ctx ends: it syncs at every rule time
// boundary and checks for drift every checkEvery. Errors are logged, not
// fatal: the kernel keeps enforcing the last good table meanwhile.
func (e *Enforcer) Run(ctx context.Context, checkEvery time.Duration) error {
	if checkEvery <= 0 {
		return fmt.Errorf("policy: run: check interval %v must be positive", checkEvery)
	}
	check := time.NewTicker(checkEvery)
	defer check.Stop()
	for {
		e.mu.Lock()
		now := e.now()
		next := NextBoundary(e.rules, now)
		e.mu.Unlock()
		wait := checkEvery
		if !next.IsZero() {
			wait = min(wait, next.Sub(now))
		}
		boundary := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			boundary.Stop()
			return nil
		case <-boundary.C:
			if changed, err := e.Sync(ctx); err != nil {
				e.log.Error("sync rules", "err", err)
			} else if changed {
				e.log.Info("rules switched at time boundary")
			}
		case <-check.C:
			boundary.Stop()
			n, err := e.Check(ctx)
			e.checks.note(e.now(), n, err)
			if err != nil {
				e.log.Error("drift check", "err", err)
			} else if n > 0 {
				e.log.Warn("drift check repaired", "repairs", n)
			}
		}
	}
}
