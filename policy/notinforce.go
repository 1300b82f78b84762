package policy

import (
	"context"
	"errors"
	"fmt"
)

// NotInForce says, for each rule the enforcer holds that cannot be put in
// force now, why: a person or group rule whose person or group the people
// directory cannot resolve (a typo, a group nobody is in yet, no directory
// loaded). Such a rule is saved and shown as on, but enforces nothing; the
// rules page says so in its table rather than only in the log.
func (e *Enforcer) NotInForce(ctx context.Context) (map[int64]string, error) {
	e.mu.Lock()
	rules, dir := append([]Rule(nil), e.rules...), e.dir
	e.mu.Unlock()
	out := map[int64]string{}
	for _, r := range rules {
		if r.Disabled || (r.Who.Kind != Person && r.Who.Kind != Group) {
			continue
		}
		if dir == nil {
			out[r.ID] = fmt.Sprintf("%s rules need the people directory, which is not loaded", r.Who.Kind)
			continue
		}
		if _, err := dir.Devices(ctx, r.Who); err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return nil, err
			}
			out[r.ID] = fmt.Sprintf("%s %q cannot be found: %v", r.Who.Kind, r.Who.ID, err)
		}
	}
	return out, nil
}
