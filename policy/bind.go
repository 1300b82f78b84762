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

// Bound reports whether d may send through the router as far as MAC-address
// binding goes: its address is on no segment that binds, or the router
// bound the pair (a live lease or a reservation). The portal asks it before
// admitting a visitor, so that a code cannot turn an address nobody was
// given into a working one.
func (e *Enforcer) Bound(d Device) bool {
	ip := d.IP.Unmap()
	binds := false
	for _, s := range e.net.Segments {
		if s.Subnet.Contains(ip) {
			binds = s.BindMACIP
			break
		}
	}
	if !binds {
		return true
	}
	k, err := admittedKey(Device{MAC: d.MAC, IP: ip})
	if err != nil {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	m, ok := e.members[SetBound][k]
	return ok && (m.until.IsZero() || e.now().Before(m.until))
}
