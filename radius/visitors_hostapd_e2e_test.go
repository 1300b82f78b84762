package radius

// A visitor code's end reaching a real access point: hostapd (driver=wired)
// holds the device's session, the portal's end of its visitor code comes in
// as the portal publishes it, and Gatehouse's Disconnect-Request is
// acknowledged by hostapd, which reports the Stop. As in
// hostapd_e2e_test.go, hostapd's own EAP server authenticates the port.

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/captive"
	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed/wired"
)

func TestRevokedVisitorCodeDisconnectsOnHostapd(t *testing.T) {
	visitorCodeEndOnHostapd(t, func(ctx context.Context, e *e2eRig, mac net.HardwareAddr) events.SessionEnded {
		return events.SessionEnded{Source: events.SourcePortal, At: time.Now(), VoucherID: 12, MAC: mac, Reason: visitorCodeRevoked}
	})
}

// TestExpiredVisitorCodeDisconnectsOnHostapd: the code the device signed
// in with runs out during its session; the portal's expiry watcher (here
// at its start, as after a restart) reports it, and hostapd ends the
// session.
func TestExpiredVisitorCodeDisconnectsOnHostapd(t *testing.T) {
	visitorCodeEndOnHostapd(t, func(ctx context.Context, e *e2eRig, mac net.HardwareAddr) events.SessionEnded {
		sub := events.Subscribe[events.SessionEnded](e.hub, "test expired", 10)
		defer sub.Close()
		// A one-hour code issued an hour ago: it ends now, after the
		// session began.
		now := time.Now()
		codes, err := captive.Issue(ctx, e.st, "web:reception", captive.IssueRequest{Duration: time.Hour, Now: now.Add(-time.Hour)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.st.RedeemVoucher(ctx, store.Redemption{CodeHash: codes[0].Voucher.CodeHash, MAC: mac, IP: netip.MustParseAddr("10.40.0.23"),
			At: now.Add(-30 * time.Minute), AUPVersion: "1"}, func(store.Voucher, bool) error { return nil }); err != nil {
			t.Fatal(err)
		}
		defer startExpiryReports(t, ctx, e.st, e.hub)()
		select {
		case ev := <-sub.Events():
			if ev.Reason != visitorCodeExpired || ev.MAC.String() != mac.String() {
				t.Fatalf("the portal reported %+v", ev)
			}
			return ev
		case <-ctx.Done():
			t.Fatal("the portal did not report the code's end")
		}
		return events.SessionEnded{}
	})
}

// visitorCodeEndOnHostapd has hostapd hold a visitor's session, then hands
// the portal's end of its code (from end) to the server in the router
// namespace, and checks that hostapd acknowledges the Disconnect and
// reports the Stop.
func visitorCodeEndOnHostapd(t *testing.T, end func(ctx context.Context, e *e2eRig, mac net.HardwareAddr) events.SessionEnded) {
	wired.Require(t)
	e := newE2E(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	login := startWiredLogin(t, ctx, e, "visitor", "visitor-password")
	seg, hap := login.seg, login.hap
	defer hap.Stop()
	defer login.sup.Stop()
	var sess store.RADIUSSession
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && sess.ID == 0; time.Sleep(300 * time.Millisecond) {
		open, err := e.st.RADIUSSessions(ctx, store.SessionFilter{OpenOnly: true, MAC: seg.ClientMAC})
		if err != nil {
			t.Fatal(err)
		}
		if len(open) == 1 {
			sess = open[0]
		}
	}
	if sess.ID == 0 {
		t.Fatalf("no session for %s after hostapd's Accounting-Start\n--- hostapd:\n%s", seg.ClientMAC, hap.Log.Text())
	}

	// The portal's event for the device, handled in the router
	// namespace, where the daemon sends from.
	ev := end(ctx, e, seg.ClientMAC)
	if err := e.school.Do("router", func() error {
		e.srv.visitorCodeEnded(ctx, ev)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var nas NASStatus
	for _, n := range e.srv.NAS() {
		if n.Name == "aps" {
			nas = n
		}
	}
	if len(nas.LastCoA) != 1 {
		t.Fatalf("NAS book %+v\n--- hostapd:\n%s", nas, hap.Log.Text())
	}
	if d := nas.LastCoA[0]; d.Kind != KindDisconnect || d.Outcome != CoAAck || d.SessionID != sess.ID {
		t.Fatalf("hostapd's answer to the Disconnect-Request was recorded as %+v\n--- hostapd:\n%s", d, hap.Log.Text())
	}
	log, err := e.st.AuditSearch(ctx, store.AuditFilter{Kind: "session.disconnect", Limit: 10})
	if err != nil || len(log) != 1 || log[0].Actor != "portal" || log[0].Object != fmt.Sprintf("session:%d", sess.ID) {
		t.Fatalf("audit of the Disconnect: %+v %v", log, err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		got, err := e.st.RADIUSSession(ctx, sess.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Open() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("hostapd acknowledged the Disconnect but no Stop was recorded\n--- hostapd:\n%s", hap.Log.Text())
		}
	}
}
