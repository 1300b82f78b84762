package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-net/gatehouse/dhcp/devicesweb"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/store"
)

func policyDevice(d store.Device) policy.Device { return policy.Device{MAC: d.MAC, IP: d.IP} }

// deviceHooks keep the kernel in step with what the network manager decides
// on the devices page.
func deviceHooks(enf *policy.Enforcer, reloadReservations func(context.Context) error) devicesweb.Hooks {
	return devicesweb.Hooks{
		OnApprove: func(ctx context.Context, d store.Device) error {
			return errors.Join(enf.Approve(ctx, policyDevice(d)), enf.Release(ctx, policyDevice(d)))
		},
		OnUnapprove: func(ctx context.Context, d store.Device) error { return enf.Unapprove(ctx, policyDevice(d)) },
		OnBlock:     func(ctx context.Context, d store.Device) error { return enf.Revoke(ctx, policyDevice(d)) },
		OnUnblock: func(ctx context.Context, d store.Device) error {
			err := enf.Reinstate(ctx, policyDevice(d))
			if d.Approved {
				err = errors.Join(err, enf.Approve(ctx, policyDevice(d)))
			}
			return err
		},
		OnReservationsChanged: reloadReservations,
	}
}

// restoreQuarantine puts back into quarantine every stranger holding a
// lease on a segment that quarantines unknown devices. The quarantine sets
// have no timeout and the DHCP server fills them only at a lease, so without
// this a restart would let those devices out until their next renewal.
func restoreQuarantine(ctx context.Context, network policy.Network, st *store.Store, enf *policy.Enforcer, now time.Time) (int, error) {
	quarantines := map[string]bool{}
	for _, s := range network.Segments {
		quarantines[s.Name] = s.UnknownDevices == policy.UnknownQuarantine
	}
	leases, err := st.DHCPLeases(ctx)
	if err != nil {
		return 0, fmt.Errorf("loading leases: %w", err)
	}
	n := 0
	for _, l := range leases {
		if !quarantines[l.Segment] || l.MAC == nil || l.State != "bound" || !now.Before(l.Expires) {
			continue
		}
		d, err := st.DeviceByMAC(ctx, l.MAC)
		if err == nil && (d.Approved || d.Blocked) {
			continue
		}
		if err := enf.Quarantine(ctx, policy.Device{MAC: l.MAC, IP: l.IP}); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// restoreDevices puts the approvals and blocks the database holds into the
// enforcer, before its first Apply, so a restart neither grants nor loses
// access.
func restoreDevices(ctx context.Context, st *store.Store, enf *policy.Enforcer) (approved, blocked int, err error) {
	devs, err := st.ListDevices(ctx, store.DeviceFilter{Limit: 1 << 30})
	if err != nil {
		return 0, 0, fmt.Errorf("loading devices: %w", err)
	}
	for _, d := range devs {
		if d.Approved && !d.Blocked {
			if err := enf.Approve(ctx, policyDevice(d)); err != nil {
				return approved, blocked, err
			}
			approved++
		}
		if d.Blocked && d.IP.IsValid() {
			if err := enf.Revoke(ctx, policyDevice(d)); err != nil {
				return approved, blocked, err
			}
			blocked++
		}
	}
	return approved, blocked, nil
}
