package people

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
)

// RADIUSDeviceEnds is radius.DeviceEnds: a device linked to a person ends
// its access when that person's does (their departure: leaving day,
// postponement or end of term, plus their groups' grace). With it, a MAB
// login's Session-Timeout is clamped to the owner's departure, as their
// PAP or 802.1X login's is, so the access point ends the session at that
// moment even if nothing else reaches it then.
//
// The RADIUS server keeps these answers in its device cache, which follows
// the device change log; migration 0102 names a person's devices there
// whenever the people change log names the person (or everyone), so a new
// leaving date, a postponement or a calendar change reaches the cache.
type RADIUSDeviceEnds struct{ Service *Service }

// DeviceEnd is radius.DeviceEnds.DeviceEnd.
func (e RADIUSDeviceEnds) DeviceEnd(ctx context.Context, mac net.HardwareAddr) (time.Time, error) {
	// The devices page's owner is a linked person or free text; only the
	// link names someone with a departure.
	id, err := e.Service.st.DeviceOwner(ctx, mac)
	if err != nil || id == 0 {
		return time.Time{}, err
	}
	p, err := e.Service.st.PersonByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return time.Time{}, nil // deleted since; the change log brings the device again
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("people: owner of device %s: %w", mac, err)
	}
	dep, ok, err := e.Service.departure(ctx, p)
	if err != nil {
		return time.Time{}, fmt.Errorf("people: owner of device %s: %w", mac, err)
	}
	if !ok {
		return time.Time{}, nil
	}
	return dep.At, nil
}

// DeviceEnds is radius.ManyDeviceEnds: DeviceEnd of each of macs (ends[i]
// is macs[i]'s), with the owners and their groups read in one query. The
// RADIUS server's device cache asks it once for every approved device at
// start; DeviceEnd per device was two or three queries each.
func (e RADIUSDeviceEnds) DeviceEnds(ctx context.Context, macs []net.HardwareAddr) ([]time.Time, error) {
	owners, err := e.Service.st.DeviceOwnerPeople(ctx, macs)
	if err != nil {
		return nil, fmt.Errorf("people: owners of devices: %w", err)
	}
	ends := make([]time.Time, len(macs))
	for i, mac := range macs {
		o, ok := owners[mac.String()]
		if !ok {
			continue // no linked owner (or deleted since): no end, as DeviceEnd
		}
		dep, ok, err := e.Service.departureIn(o.Person, func() ([]string, error) { return o.Groups, nil })
		if err != nil {
			return nil, fmt.Errorf("people: owner of device %s: %w", mac, err)
		}
		if ok {
			ends[i] = dep.At
		}
	}
	return ends, nil
}
