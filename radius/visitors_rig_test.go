package radius

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"layeh.com/radius"

	"github.com/gatehouse-net/gatehouse/captive"
	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
	"github.com/gatehouse-net/gatehouse/testbed/wired"
)

// newVisitorCodesRig returns a rig whose NAS is a fake that acknowledges
// every Disconnect-Request (each arrives on got), with the server following
// visitor-code ends until the returned stop is called (deferred by the
// caller, so the follower ends before the rig does). The one try has a long
// wait so that no retransmission, even on a busy machine, can be mistaken
// for another request.
func newVisitorCodesRig(t *testing.T) (r *rig, got chan *radius.Packet, ctx context.Context, stop func()) {
	t.Helper()
	port, got := fakeNAS(t, func(p *radius.Packet) *radius.Packet { return p.Response(radius.CodeDisconnectACK) })
	r = newRig(t, func(o *Options) {
		o.Clients[0].CoAPort = port
		o.CoATimeouts = []time.Duration{10 * time.Second}
	})
	ctx, cancel := context.WithCancel(context.Background())
	sub := events.Subscribe[events.SessionEnded](r.hub, "radius visitor codes", 0)
	done := make(chan error, 1)
	go func() { done <- r.srv.FollowVisitorCodes(ctx, sub) }()
	return r, got, ctx, func() { cancel(); <-done }
}

// startExpiryReports runs a captive portal over st that reports visitor
// codes' ends on hub until the returned stop is called.
func startExpiryReports(t *testing.T, ctx context.Context, st *store.Store, hub *events.Hub) (stop func()) {
	t.Helper()
	portal, err := captive.New(captive.Options{Store: st, Admitter: &evictions{}, Neighbours: noNeighbours{}, Hub: hub,
		PortalURL: "http://10.40.0.1:8080"})
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithCancel(ctx)
	pdone := make(chan error, 1)
	go func() { pdone <- portal.ReportExpiries(pctx) }()
	return func() { pcancel(); <-pdone }
}

// wiredLogin is a byod client logged in through hostapd (the "switch" on the
// router's port towards it) with EAP-MD5 as user.
type wiredLogin struct {
	seg testbed.SegmentInfo
	hap *wired.Process
	sup *wired.Process
}

// startWiredLogin starts hostapd and wpa_supplicant for user on e's byod
// segment and waits for EAP success; the caller stops both.
func startWiredLogin(t *testing.T, ctx context.Context, e *e2eRig, user, password string) wiredLogin {
	t.Helper()
	seg, ok := e.school.Segment("byod")
	if !ok {
		t.Fatal("no byod segment in the testbed")
	}
	users := filepath.Join(e.dir, "eap_users")
	if err := os.WriteFile(users, []byte("\""+user+"\" MD5 \""+password+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hap := wired.StartHostapd(t, ctx, e.school, "router", e.dir, "hostapd", wired.Hostapd{Interface: seg.Interface,
		NASIdentifier: "switch1", OwnIP: testbed.MgmtRouterIP, EAPUserFile: users, AcctServer: testbed.MgmtRouterIP,
		Secret: e2eSecret, DASClient: testbed.MgmtRouterIP})
	sup := wired.StartSupplicant(t, ctx, e.school, seg.ClientNS, seg.ClientInterface, e.dir, "wpa_supplicant",
		"\teap=MD5\n\tidentity=\""+user+"\"\n\tpassword=\""+password+"\"\n")
	if !sup.Log.WaitFor("CTRL-EVENT-EAP-SUCCESS", 40*time.Second) {
		sup.Stop()
		hap.Stop()
		t.Fatalf("wpa_supplicant did not authenticate:\n%s\n--- hostapd:\n%s", sup.Log.Text(), hap.Log.Text())
	}
	return wiredLogin{seg: seg, hap: hap, sup: sup}
}
