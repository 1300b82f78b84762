package radius

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/store"
)

// Why the portal ends a visitor's admission, as its events.SessionEnded
// says (captive.Portal.Revoke publishes "revoked", captive.Portal.
// ReportExpiries "expired"), that ends the device's
// Wi-Fi session too. A visitor who logs out
// at the portal only signs the device out of the portal: its association
// stays.
const (
	visitorCodeRevoked = "revoked"
	visitorCodeExpired = "expired"
)

// FollowVisitorCodes ends the live RADIUS sessions of devices whose visitor
// code was revoked or expired, until ctx
// ends: the captive portal publishes an events.SessionEnded (Source
// portal) for each device it evicts, and each becomes a Disconnect-Request
// to the NAS holding the device, recorded per NAS and audited as
// "portal". The kernel has already taken the device's admission away
// whatever the NAS answers; the Disconnect makes the device associate
// again, so its next MAB gets its segment's unknown-device treatment and
// its own captive-portal check sees the portal, and the sessions page stops
// showing a visitor who is no longer admitted. sub must be subscribed
// before the portal starts.
func (s *Server) FollowVisitorCodes(ctx context.Context, sub *events.Subscription[events.SessionEnded]) error {
	sub.Run(ctx, s.visitorCodeEnded)
	if d := sub.Dropped(); d > 0 {
		s.log.Warn("radius: visitor codes' ends were missed; the kernel evicted those devices but their sessions were not disconnected", "missed", d)
	}
	return nil
}

// visitorCodeEnded disconnects e's device when e is a visitor code's end.
// A device approved in its own right is on the network by that approval,
// not by the code it once also used: its session stays.
func (s *Server) visitorCodeEnded(ctx context.Context, e events.SessionEnded) {
	if e.Source != events.SourcePortal || (e.Reason != visitorCodeRevoked && e.Reason != visitorCodeExpired) || len(e.MAC) != 6 {
		return
	}
	mac := append(net.HardwareAddr(nil), e.MAC...)
	if s.o.Devices != nil {
		// A failed lookup disconnects: the code has ended either way.
		if info, err := s.o.Devices.Lookup(ctx, mac); err == nil && info.Approved && !info.Blocked {
			return
		}
	}
	res, err := s.endVisitorSessions(ctx, mac, e)
	if err != nil {
		s.log.Warn("radius: a visitor code ended, but the device's sessions could not be looked up to disconnect", "mac", mac, "voucher", e.VoucherID, "err", err)
		return
	}
	for _, r := range res {
		if r.Outcome != CoAAck {
			s.log.Warn("radius: a visitor code ended, but the NAS did not end the device's session; the kernel has evicted it", "mac", mac, "voucher", e.VoucherID, "nas", r.NAS, "session", r.AcctID, "outcome", r.Outcome)
		}
	}
}

// endVisitorSessions disconnects mac's open sessions that the code's end e
// ends: all of them for a revocation; for an expiry, those that began
// before the code's end (e.At), since a session the device began after it
// was not admitted by the code. The portal reports, at its start, codes
// that ran out while the daemon was down; that one may have been reported
// before, and the device may have come back since as a stranger.
func (s *Server) endVisitorSessions(ctx context.Context, mac net.HardwareAddr, e events.SessionEnded) ([]CoAResult, error) {
	if e.Reason != visitorCodeExpired || e.At.IsZero() {
		return s.Disconnect(ctx, "portal", mac)
	}
	if s.o.Sessions == nil {
		return nil, errors.New("radius: disconnect: no session store")
	}
	open, err := s.o.Sessions.RADIUSSessions(ctx, store.SessionFilter{OpenOnly: true, MAC: mac})
	if err != nil {
		return nil, fmt.Errorf("radius: disconnect %s: %w", mac, err)
	}
	var out []CoAResult
	for _, sess := range open {
		if sess.Start.Before(e.At) {
			out = append(out, s.disconnect(ctx, "portal", sess))
		}
	}
	return out, nil
}
