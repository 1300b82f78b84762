package policy

import (
	"context"
	"fmt"
	"time"
)

// Bind records that the router handed d.IP to d.MAC until the given time (a
// DHCP lease, a reservation's lease): on a segment with BindMACIP, only such
// pairs (and admitted visitors) are forwarded. The kernel drops the element
// when it runs out, as the lease does.
func (e *Enforcer) Bind(ctx context.Context, d Device, until time.Time) error {
	k, err := admittedKey(d)
	if err != nil {
		return fmt.Errorf("policy: bind %v: %w", d, err)
	}
	if !until.After(e.now()) {
		return fmt.Errorf("policy: bind %v: until %v is not in the future", d, until)
	}
	return e.change(ctx, "bind "+d.String(), []op{{set: SetBound, key: k, add: true, until: until}})
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
