package captive

import (
	"context"
	"errors"

	"github.com/gatehouse-net/gatehouse/events"
)

// SubscribeLeases subscribes to the hub's granted leases for
// FollowLeases. Call it before the DHCP server starts, so that no lease is
// missed.
func SubscribeLeases(hub *events.Hub) *events.Subscription[events.LeaseGranted] {
	return events.Subscribe[events.LeaseGranted](hub, "guest-readmit", 0)
}

// FollowLeases lets a visitor whose code is still valid back on when their
// phone returns and takes a lease, without the sign-in sheet
// (ReadmitOnLease for each granted lease), until ctx is done.
//
// portalSegments, when given, are the names of the segments with the portal:
// a lease on any other segment is passed over without asking the database,
// since an admission means nothing where no portal gate stands. On a school
// network most leases are pupils' and staff's, on segments without the
// portal, and at a morning rush each would otherwise cost a voucher query.
// Without portalSegments every lease is looked up, as before.
func (p *Portal) FollowLeases(ctx context.Context, leases *events.Subscription[events.LeaseGranted], portalSegments ...string) error {
	var portal map[string]bool
	if len(portalSegments) > 0 {
		portal = make(map[string]bool, len(portalSegments))
		for _, s := range portalSegments {
			portal[s] = true
		}
	}
	leases.Run(ctx, func(ctx context.Context, l events.LeaseGranted) {
		if l.MAC == nil {
			return
		}
		if portal != nil && !portal[l.Segment] {
			return
		}
		if _, err := p.ReadmitOnLease(ctx, l.MAC, l.IP); err != nil && !errors.Is(err, context.Canceled) {
			p.log.Warn("re-admitting a returning guest", "mac", l.MAC.String(), "ip", l.IP, "err", err)
		}
	})
	return nil
}
