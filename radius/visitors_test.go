package radius

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/gatehouse-net/gatehouse/captive"
	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/store"
)

// TestRevokedVisitorCodeDisconnectsTheSession: the portal's end of a
// visitor code (revoked, or expired) becomes a Disconnect-Request to the
// NAS holding the device, audited as "portal". A visitor logging out at the
// portal, a RADIUS session's own end, and a code's end for a device that is
// approved in its own right disconnect nothing.
func TestRevokedVisitorCodeDisconnectsTheSession(t *testing.T) {
	r, got, ctx, stop := newVisitorCodesRig(t)
	defer stop()

	visitor, approved, expired := mustMAC("02:00:00:00:0a:01"), mustMAC("02:00:00:00:0a:02"), mustMAC("02:00:00:00:0a:03")
	r.devices.set(approved.String(), DeviceInfo{Approved: true})
	for i, mac := range []string{visitor.String(), approved.String(), expired.String()} {
		if _, err := r.st.RecordAccounting(ctx, store.AccountingUpdate{Status: store.AcctStart, NAS: "aps",
			NASAddr: netip.MustParseAddr("127.0.0.1"), AcctSessionID: "V" + string(rune('1'+i)), MAC: mustMAC(mac), At: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing to disconnect for these; the revocation after them is
	// handled after them (one subscriber, in order).
	events.Publish(r.hub, events.SessionEnded{Source: events.SourcePortal, MAC: visitor, VoucherID: 7, Reason: "logout"})
	events.Publish(r.hub, events.SessionEnded{Source: events.SourceRADIUS, MAC: visitor, Reason: "User-Request"})
	events.Publish(r.hub, events.SessionEnded{Source: events.SourcePortal, MAC: approved, VoucherID: 7, Reason: "revoked"})
	events.Publish(r.hub, events.SessionEnded{Source: events.SourcePortal, MAC: visitor, VoucherID: 7, Reason: "revoked"})
	events.Publish(r.hub, events.SessionEnded{Source: events.SourcePortal, MAC: expired, VoucherID: 8, Reason: "expired"})

	var sent []string
	for range 2 {
		select {
		case req := <-got:
			if req.Code != radius.CodeDisconnectRequest {
				t.Fatalf("sent %v, want a Disconnect-Request", req.Code)
			}
			sent = append(sent, rfc2865.CallingStationID_GetString(req))
		case <-time.After(15 * time.Second):
			t.Fatalf("Disconnect-Requests sent: %v; want the revoked and the expired visitor's", sent)
		}
	}
	if sent[0] != "02-00-00-00-0A-01" || sent[1] != "02-00-00-00-0A-03" {
		t.Fatalf("Disconnect-Requests for %v; want the revoked visitor's, then the expired one's", sent)
	}
	// The results are recorded and audited after the ACK arrives.
	var log []store.AuditEntry
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var err error
		if log, err = r.st.AuditSearch(ctx, store.AuditFilter{Kind: "session.disconnect", Limit: 10}); err != nil {
			t.Fatal(err)
		}
		if len(log) == 2 {
			break
		}
	}
	if len(log) != 2 || log[0].Actor != "portal" || log[1].Actor != "portal" {
		t.Fatalf("audit of the Disconnects: %+v", log)
	}
	select {
	case req := <-got:
		t.Fatalf("another request was sent, for %s", rfc2865.CallingStationID_GetString(req))
	default:
	}
}

// evictions records what the portal asks of the kernel.
type evictions struct {
	mu   sync.Mutex
	macs []string
}

func (e *evictions) AdmitWith(context.Context, policy.Device, time.Time, policy.Limits) error {
	return nil
}

func (e *evictions) Evict(_ context.Context, d policy.Device) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.macs = append(e.macs, d.MAC.String())
	return nil
}

type noNeighbours struct{}

func (noNeighbours) MACFor(netip.Addr) (net.HardwareAddr, error) { return nil, nil }

// TestThePortalsRevocationReachesTheNAS: the captive portal's own Revoke,
// for a code a device signed in with, is what FollowVisitorCodes hears: the
// portal evicts the device and the NAS holding its session gets a
// Disconnect-Request for it. This holds the portal's event and the
// follower to one meaning.
func TestThePortalsRevocationReachesTheNAS(t *testing.T) {
	r, got, ctx, stop := newVisitorCodesRig(t)
	defer stop()

	adm := &evictions{}
	portal, err := captive.New(captive.Options{Store: r.st, Admitter: adm, Neighbours: noNeighbours{}, Hub: r.hub,
		PortalURL: "http://10.40.0.1:8080"})
	if err != nil {
		t.Fatal(err)
	}
	codes, err := captive.Issue(ctx, r.st, "web:reception", captive.IssueRequest{Duration: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := codes[0].Voucher
	mac := mustMAC("02:00:00:00:0b:01")
	if _, err := r.st.RedeemVoucher(ctx, store.Redemption{CodeHash: v.CodeHash, MAC: mac, IP: netip.MustParseAddr("10.40.0.23"),
		At: time.Now(), AUPVersion: "1"}, func(store.Voucher, bool) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := r.st.RecordAccounting(ctx, store.AccountingUpdate{Status: store.AcctStart, NAS: "aps",
		NASAddr: netip.MustParseAddr("127.0.0.1"), AcctSessionID: "G1", MAC: mac, SSID: "Guest", At: time.Now()}); err != nil {
		t.Fatal(err)
	}

	if _, n, err := portal.Revoke(ctx, "web:reception", v.ID); err != nil || n != 1 {
		t.Fatalf("revoke: %d signed-in devices disconnected, %v; want 1", n, err)
	}
	adm.mu.Lock()
	evicted := slices.Clone(adm.macs)
	adm.mu.Unlock()
	if len(evicted) != 1 || evicted[0] != mac.String() {
		t.Fatalf("the portal evicted %v", evicted)
	}
	select {
	case req := <-got:
		if req.Code != radius.CodeDisconnectRequest || rfc2865.CallingStationID_GetString(req) != "02-00-00-00-0B-01" {
			t.Fatalf("sent %v for %s; want a Disconnect-Request for the visitor", req.Code, rfc2865.CallingStationID_GetString(req))
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the portal's revocation sent no Disconnect-Request")
	}
}

// TestAnExpiredVisitorCodeReachesTheNAS: a code whose time ran out (here
// while the daemon was down: the portal reports it when it starts) ends
// the Wi-Fi session its device had: the NAS gets a Disconnect-Request for
// it. A device whose session began after its code's end, as a stranger,
// keeps that session.
func TestAnExpiredVisitorCodeReachesTheNAS(t *testing.T) {
	r, got, ctx, stop := newVisitorCodesRig(t)
	defer stop()

	now := time.Now()
	signIn := func(issued time.Time, mac net.HardwareAddr, ip string, session string, sessionAt time.Time) {
		t.Helper()
		codes, err := captive.Issue(ctx, r.st, "web:reception", captive.IssueRequest{Duration: time.Hour, Now: issued}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.st.RedeemVoucher(ctx, store.Redemption{CodeHash: codes[0].Voucher.CodeHash, MAC: mac, IP: netip.MustParseAddr(ip),
			At: issued.Add(time.Minute), AUPVersion: "1"}, func(store.Voucher, bool) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if _, err := r.st.RecordAccounting(ctx, store.AccountingUpdate{Status: store.AcctStart, NAS: "aps",
			NASAddr: netip.MustParseAddr("127.0.0.1"), AcctSessionID: session, MAC: mac, SSID: "Guest", At: sessionAt}); err != nil {
			t.Fatal(err)
		}
	}
	stranger, visitor := mustMAC("02:00:00:00:0c:01"), mustMAC("02:00:00:00:0c:02")
	// The stranger's code ended 2 h 30 min ago; its session began after.
	signIn(now.Add(-210*time.Minute), stranger, "10.40.0.31", "E1", now.Add(-time.Hour))
	// The visitor's code ended 2 h ago, during its session.
	signIn(now.Add(-3*time.Hour), visitor, "10.40.0.32", "E2", now.Add(-170*time.Minute))

	defer startExpiryReports(t, ctx, r.st, r.hub)()

	select {
	case req := <-got:
		if req.Code != radius.CodeDisconnectRequest || rfc2865.CallingStationID_GetString(req) != "02-00-00-00-0C-02" {
			t.Fatalf("sent %v for %s; want a Disconnect-Request for the visitor", req.Code, rfc2865.CallingStationID_GetString(req))
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the code's end sent no Disconnect-Request")
	}
	// The stranger's end (the earlier) was handled before the visitor's,
	// by the one follower: a request for it would be here by now.
	select {
	case req := <-got:
		t.Fatalf("also sent %v for %s", req.Code, rfc2865.CallingStationID_GetString(req))
	default:
	}
}
