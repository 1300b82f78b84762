package policy

import (
	"context"
	"fmt"
	"time"
)

// Bind records that the router handed d.IP to d.MAC until the given time (a
// DHCP lease), or for good with a zero until (a reservation): on a segment
// with BindMACIP, only such pairs (and admitted visitors) are forwarded. The
// kernel drops the element when it runs out, as the lease does. Binding a
// pair again with the same until changes nothing, in the kernel either: a
// restart that binds its leases again leaves the table as it was.
func (e *Enforcer) Bind(ctx context.Context, d Device, until time.Time) error {
	k, err := admittedKey(d)
	if err != nil {
		return fmt.Errorf("policy: bind %v: %w", d, err)
	}
	if !until.IsZero() && !until.After(e.now()) {
		return fmt.Errorf("policy: bind %v: until %v is not in the future", d, until)
	}
	return e.changeFunc(ctx, "bind "+d.String(), func() []op {
		if m, ok := e.members[SetBound][k]; ok && m.until.Equal(until) {
			return nil
		}
		return []op{{set: SetBound, key: k, add: true, until: until}}
	})
}

// Unbind ends a binding (a released or declined lease) and cuts the pair's
// open connections.
func (e *Enforcer) Unbind(ctx context.Context, d Device) error {
	k, err := admittedKey(d)
	if err != nil {
		return fmt.Errorf("policy: unbind %v: %w", d, err)
	}
	if err := e.change(ctx, "unbind "+d.String(), []op{{set: SetBound, key: k}}); err != nil {
		return err
	}
	return e.killFlows(ctx, d.IP)
}
