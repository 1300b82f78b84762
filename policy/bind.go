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

// Binding is one pair for BindMany: Device.IP handed to Device.MAC until
// Until (a lease), or for good with a zero Until (a reservation).
type Binding struct {
	Device Device
	Until  time.Time
}

// BindMany binds several pairs as Bind does each, and returns one error per
// pair (nil where it was bound). The DHCP server binds a group commit's
// leases this way: instead of one transaction per lease, each taken under
// the enforcer's lock, the pairs join the queue of plain admissions
// (admitbatch.go) and go to the kernel together, so a batch of leases costs
// about one netlink round trip. It returns once the kernel holds every pair
// it reports bound; a pair the kernel refused gets the kernel's error, the
// others still go in. Order is kept as for admissions: an unbind or any
// other change later than this call first sends what is queued.
func (e *Enforcer) BindMany(ctx context.Context, bs []Binding) []error {
	errs := make([]error, len(bs))
	keys := make([]string, len(bs))
	now := e.now()
	for i, b := range bs {
		// The pair's name only for an error: formatting it for every
		// pair was a third of what a binding allocated.
		if err := ctx.Err(); err != nil {
			errs[i] = fmt.Errorf("policy: bind %v: %w", b.Device, err)
			continue
		}
		k, err := admittedKey(b.Device)
		if err != nil {
			errs[i] = fmt.Errorf("policy: bind %v: %w", b.Device, err)
			continue
		}
		if !b.Until.IsZero() && !b.Until.After(now) {
			errs[i] = fmt.Errorf("policy: bind %v: until %v is not in the future", b.Device, b.Until)
			continue
		}
		keys[i] = k
	}
	e.mu.Lock()
	if !e.applied || e.admits.closed {
		// Before Apply there is no table (Apply sends the desired
		// state whole); after Close there is no batcher: each pair
		// goes the way Bind takes it.
		e.mu.Unlock()
		for i, b := range bs {
			if errs[i] == nil {
				errs[i] = e.Bind(ctx, b.Device, b.Until)
			}
		}
		return errs
	}
	waits := make([]*pendingAdmit, len(bs))
	unchanged := false
	for i, b := range bs {
		if errs[i] != nil {
			continue
		}
		if m, ok := e.members[SetBound][keys[i]]; ok && m.until.Equal(b.Until) {
			unchanged = true
			continue
		}
		o := e.recordAddLocked(op{set: SetBound, key: keys[i], add: true, until: b.Until})
		// One queued entry per pair, so that a refused pair is found
		// and answered alone (sendAdmitsNL).
		waits[i] = e.queueBindLocked(b.Device, o)
	}
	e.mu.Unlock()
	// Not abandoned on ctx: the desired state already holds the pairs and
	// the transaction carrying them is bounded by netlink.
	for i, p := range waits {
		if p != nil {
			<-p.done
			errs[i] = p.err
		}
	}
	if unchanged {
		// A pair already in the desired state may still be on its way
		// to the kernel in another caller's entry: as Bind would, wait
		// until what is queued has been sent.
		e.mu.Lock()
		e.drainLocked()
		e.mu.Unlock()
	}
	return errs
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
