// This file: reporting a code's end. When a code's time runs out the kernel
// drops its devices' admissions by itself (the admitted set's elements time
// out); nothing else would tell the rest of the daemon, so the RADIUS
// server could not end those devices' Wi-Fi sessions.

package captive

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/store"
)

const (
	// maxTrackedEnds bounds the devices whose code's end is watched at
	// once: the admitted set's own size (policy's dynamic sets hold 65535),
	// since a device the kernel cannot hold is not signed in. Beyond it the
	// soonest ends are watched and the rest wait for a later scan.
	maxTrackedEnds = 65535
	// expiryRescan is the longest the watcher sleeps without reading the
	// database again: a code's end that changed without the portal (another
	// process, a restored backup) is seen within it.
	expiryRescan = time.Minute
	// expiryRetry is the wait after a scan failed.
	expiryRetry = 10 * time.Second
	// expiryLookback is how far before its start the watcher looks for
	// codes that ended while the daemon was down: a device whose code ran
	// out then may still hold the Wi-Fi session it had (the NAS did not
	// stop with us). A day covers an overnight outage; the RADIUS side
	// ends only sessions that began before the code's end, so reporting an
	// end twice costs nothing.
	expiryLookback = 24 * time.Hour
)

// endWatch is the portal's side of the expiry watcher: the earliest end it
// sleeps until, and a way to wake it sooner. The zero value is ready.
type endWatch struct {
	mu   sync.Mutex
	next time.Time // zero: unknown (no watcher, or a scan in progress)
	wake chan struct{}
}

func (w *endWatch) wakeCh() chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.wake == nil {
		w.wake = make(chan struct{}, 1)
	}
	return w.wake
}

// note tells the watcher that a device's admission now ends at until (an
// admission, an extension): it wakes the watcher if that is sooner than it
// would wake. Cheap, no database: it is on the sign-in path.
func (w *endWatch) note(until time.Time) {
	if until.IsZero() {
		return
	}
	w.mu.Lock()
	early := w.next.IsZero() || until.Before(w.next)
	w.mu.Unlock()
	if early {
		w.poke()
	}
}

// poke wakes the watcher to scan now.
func (w *endWatch) poke() {
	select {
	case w.wakeCh() <- struct{}{}:
	default:
	}
}

func (w *endWatch) set(next time.Time) {
	w.mu.Lock()
	w.next = next
	w.mu.Unlock()
}

// guestEnd is a signed-in device of a code and when the code ends.
type guestEnd struct {
	voucherID int64
	mac       net.HardwareAddr
	ip        netip.Addr
	until     time.Time
}

type guestKey struct {
	voucherID int64
	mac       string
}

// ReportExpiries publishes an events.SessionEnded (Source portal, Reason
// "expired", At the code's end) for each device signed in with a code when
// the code's time runs out, until ctx ends. It reads the signed-in devices
// of valid codes from the database at each code's end (and at least every
// minute), and reports those that were there and are gone with their end
// passed: a revoked code or a device that signed out is gone before its
// end, and was reported as such; an extended code is still there. A device
// still admitted by another code is not reported. At start it also reports
// the codes that ran out while the daemon was down (up to a day back), as
// their devices may still hold a session.
func (p *Portal) ReportExpiries(ctx context.Context) error {
	prev, _, err := p.guestEnds(ctx, p.now().Add(-expiryLookback))
	if err != nil {
		p.log.Warn("read the codes that ended while the daemon was down; their devices' sessions are not reported", "err", err)
	}
	wake := p.ends.wakeCh()
	for {
		p.ends.set(time.Time{}) // an admission during the scan wakes us again
		now := p.now()
		cur, next, err := p.guestEnds(ctx, now)
		wait := expiryRetry
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			p.log.Warn("read signed-in visitors to report ended codes", "err", err)
		} else {
			p.reportEnded(ctx, prev, cur, now)
			prev = cur
			wait = expiryRescan
			if !next.IsZero() {
				p.ends.set(next)
				wait = min(wait, next.Sub(now))
			}
		}
		t := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// guestEnds reads the signed-in devices of codes valid at now, the
// soonest maxTrackedEnds of them, and the earliest end among them.
func (p *Portal) guestEnds(ctx context.Context, now time.Time) (map[guestKey]guestEnd, time.Time, error) {
	gs, err := p.st.ActiveGuestDevices(ctx, now)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("captive: codes' ends: %w", err)
	}
	if len(gs) > maxTrackedEnds {
		slices.SortFunc(gs, func(a, b store.GuestDevice) int { return a.Until.Compare(b.Until) })
		p.log.Warn("more signed-in visitors than the expiry watcher holds; the latest ends wait", "devices", len(gs), "held", maxTrackedEnds)
		gs = gs[:maxTrackedEnds]
	}
	out := make(map[guestKey]guestEnd, len(gs))
	var next time.Time
	for _, g := range gs {
		if g.Until.IsZero() {
			continue
		}
		out[guestKey{g.VoucherID, g.MAC.String()}] = guestEnd{voucherID: g.VoucherID, mac: g.MAC, ip: g.IP, until: g.Until}
		if next.IsZero() || g.Until.Before(next) {
			next = g.Until
		}
	}
	return out, next, nil
}

// reportEnded publishes the end of each device in prev that is not in cur
// and whose code's end has passed, unless cur still admits its MAC, the
// code was revoked before its end or the device signed out before it (those
// were reported when they happened, and prev may predate them).
func (p *Portal) reportEnded(ctx context.Context, prev, cur map[guestKey]guestEnd, now time.Time) {
	if len(prev) == 0 {
		return
	}
	still := make(map[string]bool, len(cur))
	for k := range cur {
		still[k.mac] = true
	}
	// A device on several codes that all ended lost its admission at the
	// last of those ends: that one is reported.
	last := map[string]guestEnd{}
	for k, e := range prev {
		if _, ok := cur[k]; ok || still[k.mac] || e.until.After(now) {
			continue
		}
		if l, ok := last[k.mac]; !ok || e.until.After(l.until) {
			last[k.mac] = e
		}
	}
	ended := make([]guestEnd, 0, len(last))
	for _, e := range last {
		ended = append(ended, e)
	}
	slices.SortFunc(ended, func(a, b guestEnd) int {
		if c := a.until.Compare(b.until); c != 0 {
			return c
		}
		return int(a.voucherID - b.voucherID)
	})
	var (
		id  int64
		ok  bool
		out map[string]time.Time // the code's devices: MAC -> signed out at
	)
	for _, e := range ended {
		if e.voucherID != id || out == nil {
			id, ok, out = e.voucherID, true, map[string]time.Time{}
			// A failed read reports the end: the code has ended either way,
			// and a second report of a revocation costs nothing.
			if v, err := p.st.VoucherByID(ctx, id); err == nil && !v.RevokedAt.IsZero() && v.RevokedAt.Before(e.until) {
				ok = false
			}
			if ds, err := p.st.VoucherDevices(ctx, id); err == nil {
				for _, d := range ds {
					out[d.MAC.String()] = d.LoggedOutAt
				}
			}
		}
		if at := out[e.mac.String()]; !ok || (!at.IsZero() && at.Before(e.until)) {
			continue
		}
		events.Publish(p.hub, events.SessionEnded{Source: events.SourcePortal, At: e.until, VoucherID: e.voucherID, MAC: e.mac, IP: e.ip, Reason: "expired"})
		p.log.Info("guest's code ended", "voucher", e.voucherID, "mac", e.mac, "ip", e.ip, "at", e.until)
	}
}
