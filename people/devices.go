package people

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/store"
)

func kernelDevice(d store.Device) policy.Device { return policy.Device{MAC: d.MAC, IP: d.IP} }

// ErrOwnerRevoked is returned when a device of a person whose access was
// revoked is to be approved.
var ErrOwnerRevoked = errors.New("people: the device's owner no longer has access")

// Decide records what a person decided about a device (approval, block,
// name, owner) and applies it to the kernel: approving lets the MAC
// through approval-gated segments and ends a quarantine, withdrawing it
// cuts the device's connections, blocking puts it in the revoked set,
// unblocking lifts that (and restores its approval). The owner text is
// matched against people (UPN, staff code, admission number, username or
// email) and links the device to that person when it names one.
//
// committed reports whether the database change was made: an error with
// committed true means the router could not apply it yet, and Restore
// applies it at the next start.
func (s *Service) Decide(ctx context.Context, actor string, mac net.HardwareAddr, dec store.DeviceDecision) (committed bool, err error) {
	if len(mac) != 6 {
		return false, fmt.Errorf("people: decide device: need a 6-byte MAC")
	}
	before, err := s.st.DeviceByMAC(ctx, mac)
	had := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	var owner store.Person
	if dec.Owner != "" {
		if p, err := s.st.PersonByKey(ctx, dec.Owner); err == nil {
			owner = p
		} else if !errors.Is(err, store.ErrNotFound) {
			return false, err
		}
	}
	if owner.ID == 0 && had {
		// The text names nobody: keep a link the text did not change.
		if pid, err := s.st.DeviceOwner(ctx, mac); err == nil && pid != 0 && dec.Owner == before.Owner {
			if p, err := s.st.PersonByID(ctx, pid); err == nil {
				owner = p
			}
		}
	}
	if dec.Approved && !dec.Blocked && (owner.State == store.PersonRevoked || owner.State == store.PersonLeft) {
		return false, fmt.Errorf("%w: %s", ErrOwnerRevoked, DisplayName(owner))
	}
	now := s.now()
	if err := s.st.DecideDevice(ctx, actor, mac, dec, now); err != nil {
		return false, err
	}
	if err := s.st.SetDeviceOwner(ctx, actor, mac, owner.ID, now); err != nil {
		return true, err
	}
	after, err := s.st.DeviceByMAC(ctx, mac)
	if err != nil {
		return true, err
	}
	return true, s.apply(ctx, actor, mac, had, before, after, owner.ID)
}

// ErrUnknownPerson is returned when an approval names an owner who is not
// among the people.
var ErrUnknownPerson = errors.New("people: no such person")

// ApproveDevice is what "gatehouse device approve" and the devices API
// mean: approve mac for a RADIUS segment ("" lets the SSID decide), lift
// any block, name it when name is given, and, when owner is given, link it
// to that person (UPN, staff code, admission number, username or email).
// Unlike Decide, an owner naming nobody is an error (ErrUnknownPerson):
// a script that mistypes an id must not approve an ownerless device. The
// kernel takes the change as with Decide; committed has Decide's meaning.
func (s *Service) ApproveDevice(ctx context.Context, actor string, mac net.HardwareAddr, segment, name, owner string) (committed bool, err error) {
	if len(mac) != 6 {
		return false, fmt.Errorf("people: approve device: need a 6-byte MAC")
	}
	var p store.Person
	if owner != "" {
		if p, err = s.st.PersonByKey(ctx, owner); errors.Is(err, store.ErrNotFound) {
			return false, fmt.Errorf("%w: %q", ErrUnknownPerson, owner)
		} else if err != nil {
			return false, err
		}
	}
	before, err := s.st.DeviceByMAC(ctx, mac)
	had := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	if p.ID == 0 && had {
		// No owner given: the device keeps its owner, who must still
		// have access for it to be approved.
		if pid, err := s.st.DeviceOwner(ctx, mac); err == nil && pid != 0 {
			if p, err = s.st.PersonByID(ctx, pid); err != nil {
				return false, err
			}
		}
	}
	if p.State == store.PersonRevoked || p.State == store.PersonLeft {
		return false, fmt.Errorf("%w: %s", ErrOwnerRevoked, DisplayName(p))
	}
	// The segment it was approved for, to tell a move from a first
	// approval: a device already on the network is moved in place.
	var wasOn string
	if had && before.Approved && !before.Blocked {
		rd, err := s.st.RADIUSDeviceByMAC(ctx, mac)
		if err != nil {
			return false, err
		}
		wasOn = rd.Segment
	}
	now := s.now()
	if err := s.st.ApproveDevice(ctx, actor, mac, segment, name, now); err != nil {
		return false, err
	}
	if owner != "" {
		mid, err := s.st.DeviceByMAC(ctx, mac)
		if err != nil {
			return true, err
		}
		if mid.Owner != owner {
			if err := s.st.DecideDevice(ctx, actor, mac, store.DeviceDecision{Approved: true, Name: mid.Name, Owner: owner}, now); err != nil {
				return true, err
			}
		}
		if err := s.st.SetDeviceOwner(ctx, actor, mac, p.ID, now); err != nil {
			return true, err
		}
	}
	after, err := s.st.DeviceByMAC(ctx, mac)
	if err != nil {
		return true, err
	}
	err = s.apply(ctx, actor, mac, had, before, after, p.ID)
	if had && before.Approved && !before.Blocked && wasOn != segment && s.opts.Reauthorizer != nil {
		// Moved while approved: its live sessions change VLAN now,
		// not at their next re-authentication. A NAS that neither moves
		// nor ends a session is logged and recorded on its page, not an
		// error of the approval: the approval is saved and applied, and
		// the session's next Access-Accept carries the new VLAN.
		if merr := s.opts.Reauthorizer.MoveSegment(ctx, mac, segment); merr != nil {
			s.log.Warn("device moved to another segment, but a live session was not moved", "mac", mac, "segment", segment, "err", merr)
		}
	}
	return true, err
}

// apply puts a saved device decision into the kernel (before is the
// record as it was, had whether there was one), cuts the sessions of a
// device newly blocked or no longer approved and tells OnChange.
func (s *Service) apply(ctx context.Context, actor string, mac net.HardwareAddr, had bool, before, after store.Device, ownerID int64) error {
	var errs []error
	k := s.opts.Kernel
	if k != nil {
		d := kernelDevice(after)
		switch {
		case after.Blocked && (!had || !before.Blocked):
			errs = append(errs, k.Revoke(ctx, d))
		case !after.Blocked && had && before.Blocked:
			errs = append(errs, k.Reinstate(ctx, d))
			if after.Approved {
				errs = append(errs, k.Approve(ctx, d))
			}
		}
		if !after.Blocked {
			switch {
			case after.Approved && (!had || !before.Approved):
				errs = append(errs, k.Approve(ctx, d), k.Release(ctx, d))
			case !after.Approved && had && before.Approved:
				errs = append(errs, k.Unapprove(ctx, d))
			}
		}
	}
	var unconfirmed error // the NAS did not confirm a Disconnect
	switch {
	case after.Blocked && (!had || !before.Blocked):
		unconfirmed = s.cutSessions(ctx, mac, &errs)
	case !after.Blocked && !after.Approved && had && before.Approved && !before.Blocked:
		// Approval withdrawn: the live session still carries the
		// approved segment's VLAN and would keep it until the device
		// next signs in. Ending it now makes the device's next MAB get
		// its segment's unknown_devices answer (visitor VLAN,
		// quarantine or reject). Its lease goes too, as for a block:
		// the address belongs to the approved segment's pool, and a
		// device moved to another VLAN needs an address in that
		// subnet, so the old one would only sit reserved for it until
		// it ran out, still naming it as the holder of an address it
		// no longer uses. Unlike a block, the DHCP server answers the
		// device again, as its segment treats strangers: in place on
		// a segment that quarantines by DHCP, the new lease is what
		// puts it in quarantine. A device that stays on its segment
		// (no RADIUS session to end) loses nothing: the pool keeps a
		// released address for its last holder while any other is
		// free, and gives it back at the device's next request.
		unconfirmed = s.cutSessions(ctx, mac, &errs)
	}
	if !had || before.Owner != after.Owner || before.Approved != after.Approved || before.Blocked != after.Blocked {
		errs = append(errs, s.changed(ctx))
	}
	if err := errors.Join(errs...); err != nil {
		s.log.Error("device decision saved but not applied", "mac", mac, "by", actor, "err", errors.Join(err, unconfirmed))
		return errors.Join(err, unconfirmed)
	}
	if unconfirmed != nil {
		s.log.Warn("device decision applied, but the NAS did not confirm ending its session", "mac", mac, "by", actor, "err", unconfirmed)
		return &SessionNotEndedError{Err: unconfirmed}
	}
	s.log.Info("device decided", "mac", mac, "by", actor, "approved", after.Approved, "blocked", after.Blocked, "owner", ownerID)
	return nil
}

// cutSessions ends a device's live RADIUS session and its DHCP lease, when
// those components are wired. Their failure does not stop the kernel's
// backstop, which has already cut the device. A lease's failure is added to
// errs; the Disconnect's is returned, as the only thing that did not happen
// is the NAS confirming the session's end.
func (s *Service) cutSessions(ctx context.Context, mac net.HardwareAddr, errs *[]error) (unconfirmed error) {
	if s.opts.Disconnector != nil {
		if err := s.opts.Disconnector.Disconnect(ctx, mac); err != nil {
			unconfirmed = fmt.Errorf("disconnect %s: %w", mac, err)
		}
	}
	if s.opts.Leases != nil {
		if err := s.opts.Leases.ReleaseMAC(ctx, mac); err != nil {
			*errs = append(*errs, fmt.Errorf("release leases of %s: %w", mac, err))
		}
	}
	return unconfirmed
}

// SessionNotEndedError is Decide's error when a block or a withdrawn
// approval is saved and the router applies it (the kernel has cut the
// device), but the NAS did not confirm ending the device's live session:
// no restart resends the Disconnect, so callers must not say the change
// waits for one. The NAS's answer is on the RADIUS page's NAS list.
type SessionNotEndedError struct{ Err error }

func (e *SessionNotEndedError) Error() string {
	return "the access point did not confirm ending the device's session: " + e.Err.Error()
}

func (e *SessionNotEndedError) Unwrap() error { return e.Err }

// SessionNotEnded marks the error for callers that know it only by this
// method (the devices page does not import this package).
func (e *SessionNotEndedError) SessionNotEnded() {}

// Restore puts the database's device decisions into the kernel before its
// first Apply, so a restart neither grants nor loses access: approved
// devices into the approved set, blocked ones (a revoked person's devices
// among them) into the revoked set, and strangers holding a lease on a
// quarantining segment back into quarantine (the quarantine sets have no
// timeout and the DHCP server fills them only at a lease).
func (s *Service) Restore(ctx context.Context, now time.Time) (approved, blocked, quarantined int, err error) {
	k := s.opts.Kernel
	if k == nil {
		return 0, 0, 0, errors.New("people: restore: no kernel")
	}
	devs, err := s.st.ListDevices(ctx, store.DeviceFilter{Limit: 1 << 30})
	if err != nil {
		return 0, 0, 0, fmt.Errorf("people: restore: loading devices: %w", err)
	}
	var revoke []policy.Device
	for _, d := range devs {
		switch {
		case d.Blocked:
			revoke = append(revoke, kernelDevice(d))
		case d.Approved:
			if err := k.Approve(ctx, kernelDevice(d)); err != nil {
				return approved, blocked, 0, err
			}
			approved++
		}
	}
	if len(revoke) > 0 {
		if err := k.Revoke(ctx, revoke...); err != nil {
			return approved, 0, 0, err
		}
		blocked = len(revoke)
	}
	if len(s.opts.QuarantineSegments) == 0 {
		return approved, blocked, 0, nil
	}
	leases, err := s.st.DHCPLeases(ctx)
	if err != nil {
		return approved, blocked, 0, fmt.Errorf("people: restore: loading leases: %w", err)
	}
	for _, l := range leases {
		if !slices.Contains(s.opts.QuarantineSegments, l.Segment) || l.MAC == nil || l.State != "bound" || !now.Before(l.Expires) {
			continue
		}
		d, err := s.st.DeviceByMAC(ctx, l.MAC)
		if err == nil && (d.Approved || d.Blocked) {
			continue
		}
		if err := k.Quarantine(ctx, policy.Device{MAC: l.MAC, IP: l.IP}); err != nil {
			return approved, blocked, quarantined, err
		}
		quarantined++
	}
	return approved, blocked, quarantined, nil
}

// DevicesOfPerson returns a person's devices.
func (s *Service) DevicesOfPerson(ctx context.Context, id int64) ([]store.Device, error) {
	ods, err := s.st.DevicesOf(ctx, []int64{id})
	if err != nil {
		return nil, err
	}
	out := make([]store.Device, len(ods))
	for i, d := range ods {
		out[i] = d.Device
	}
	return out, nil
}

func parseIP(s string) (netip.Addr, error) { return netip.ParseAddr(s) }
