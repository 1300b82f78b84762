package people_test

// A device moved to another segment while it is on the network, end to end
// with a real access point: hostapd (driver=wired) reports the session to
// Gatehouse's accounting, and approving the device onto another segment
// sends hostapd's Dynamic Authorization Server a CoA-Request carrying the
// new segment's VLAN. Debian's hostapd 2.10 refuses a VLAN (or any
// attribute but the HS 2.0 filter) in a CoA with CoA-NAK, Error-Cause 401
// (Unsupported-Attribute): that answer is recorded per NAS, and the session
// is then ended with a Disconnect-Request, which hostapd acknowledges and
// reports as a Stop, so that the device's next authentication lands on the
// new segment.
//
// hostapd's wired driver has no MAB path, so hostapd's own EAP server
// (EAP-MD5) authenticates the supplicant; accounting and dynamic
// authorisation go to Gatehouse.

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/people"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/radius"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
	"github.com/gatehouse-net/gatehouse/testbed/wired"
)

// routerReauthorizer sends the CoA from the router's namespace, where the
// daemon runs.
type routerReauthorizer struct {
	s   *testbed.School
	srv *radius.Server
}

func (r routerReauthorizer) MoveSegment(ctx context.Context, mac net.HardwareAddr, segment string) error {
	return r.s.Do("router", func() error {
		return radius.MACReauthorizer{Server: r.srv, Actor: "people"}.MoveSegment(ctx, mac, segment)
	})
}

func TestMovingADeviceToAnotherSegmentSendsHostapdACoA(t *testing.T) {
	wired.Require(t)
	school := testbed.New(t, testbed.Options{})
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(ctx, filepath.Join(dir, "gh.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	seg, ok := school.Segment("pupil")
	if !ok {
		t.Fatal("no pupil segment in the testbed")
	}
	mac := seg.ClientMAC

	srv, err := radius.New(radius.Options{
		AcctAddr: testbed.MgmtRouterIP + ":1813",
		Clients:  []radius.Client{{Name: "switch", Prefix: netip.MustParsePrefix(testbed.MgmtNet), Secret: []byte(wiredSecret), RequireMessageAuthenticator: true}},
		Segments: []radius.Segment{{Name: "pupil", VLAN: 20, SSIDs: []string{"wired-pupil"}, Unknown: policy.UnknownAllow},
			{Name: "staff", VLAN: 30, SSIDs: []string{"wired-staff"}, Unknown: policy.UnknownAllow}},
		Devices: wiredDevices{st}, Sessions: st, Auditor: st,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := school.Do("router", srv.Listen); err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(ctx)
	rdone := make(chan struct{})
	go func() { defer close(rdone); _ = srv.Run(rctx) }()
	t.Cleanup(func() { rcancel(); <-rdone })

	svc, err := people.New(people.Options{Store: st, Reauthorizer: routerReauthorizer{s: school, srv: srv}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ApproveDevice(ctx, "test", mac, "pupil", "laptop", ""); err != nil {
		t.Fatal(err)
	}
	if n := coaCount(srv); n != 0 {
		t.Fatalf("a first approval sent %d dynamic-authorisation requests", n)
	}

	users := filepath.Join(dir, "eap_users")
	if err := os.WriteFile(users, []byte("\"pupil1\" MD5 \"pupil-password\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 90*time.Second)
	defer pcancel()
	hap := wired.StartHostapd(t, pctx, school, "router", dir, "hostapd", wired.Hostapd{Interface: seg.Interface,
		SSID: "wired-pupil", NASIdentifier: "switch-pupil", OwnIP: testbed.MgmtRouterIP, EAPUserFile: users,
		AcctServer: testbed.MgmtRouterIP, Secret: wiredSecret, DASClient: testbed.MgmtRouterIP})
	defer hap.Stop()
	sup := wired.StartSupplicant(t, pctx, school, seg.ClientNS, seg.ClientInterface, dir, "wpa_supplicant",
		"\teap=MD5\n\tidentity=\"pupil1\"\n\tpassword=\"pupil-password\"\n")
	defer sup.Stop()
	if !sup.Log.WaitFor("CTRL-EVENT-EAP-SUCCESS", 40*time.Second) {
		t.Fatalf("wpa_supplicant did not authenticate:\n%s\n--- hostapd:\n%s", sup.Log.Text(), hap.Log.Text())
	}
	var sess store.RADIUSSession
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && sess.ID == 0; time.Sleep(300 * time.Millisecond) {
		open, err := st.RADIUSSessions(ctx, store.SessionFilter{OpenOnly: true, MAC: mac})
		if err != nil {
			t.Fatal(err)
		}
		if len(open) == 1 {
			sess = open[0]
		}
	}
	if sess.ID == 0 {
		t.Fatalf("no session for %s after hostapd's Accounting-Start\n--- hostapd:\n%s", mac, hap.Log.Text())
	}

	// Renaming it on the same segment is no move: nothing is sent.
	if _, err := svc.ApproveDevice(ctx, "test", mac, "pupil", "pupil laptop", ""); err != nil {
		t.Fatal(err)
	}
	if n := coaCount(srv); n != 0 {
		t.Fatalf("re-approving on the same segment sent %d dynamic-authorisation requests", n)
	}

	// The move: approved onto staff.
	if committed, err := svc.ApproveDevice(ctx, "test", mac, "staff", "", ""); err != nil || !committed {
		t.Fatalf("move: committed %v, %v", committed, err)
	}
	if rd, err := st.RADIUSDeviceByMAC(ctx, mac); err != nil || rd.Segment != "staff" {
		t.Fatalf("after the move the device's segment is %q (%v)", rd.Segment, err)
	}
	var nas radius.NASStatus
	for _, n := range srv.NAS() {
		if n.Name == "switch" {
			nas = n
		}
	}
	// Most recent first: the Disconnect, then the CoA it replaced.
	if len(nas.LastCoA) != 2 {
		t.Fatalf("NAS book %+v\n--- hostapd:\n%s", nas, hap.Log.Text())
	}
	coa, disc := nas.LastCoA[1], nas.LastCoA[0]
	if coa.Kind != radius.KindCoA || coa.Outcome != radius.CoANak || coa.ErrorCause != 401 || coa.SessionID != sess.ID || coa.MAC != mac.String() {
		t.Fatalf("hostapd's answer to the CoA-Request was recorded as %+v\n--- hostapd:\n%s", coa, hap.Log.Text())
	}
	if disc.Kind != radius.KindDisconnect || disc.Outcome != radius.CoAAck || disc.SessionID != sess.ID {
		t.Fatalf("the Disconnect after the NAK was recorded as %+v\n--- hostapd:\n%s", disc, hap.Log.Text())
	}
	if nas.CoA[radius.CoANak] != 1 || nas.CoA[radius.CoAAck] != 1 {
		t.Fatalf("NAS counts %v", nas.CoA)
	}
	log, err := st.AuditSearch(ctx, store.AuditFilter{Kind: "session.coa", Limit: 10})
	if err != nil || len(log) != 1 || log[0].Actor != "people" {
		t.Fatalf("audit of the CoA: %+v %v", log, err)
	}
	// hostapd ends the port's session and reports the Stop.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		got, err := st.RADIUSSession(ctx, sess.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Open() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hostapd acknowledged the Disconnect but no Stop was recorded\n--- hostapd:\n%s", hap.Log.Text())
		}
	}
}

// coaCount is how many Disconnect/CoA requests the server has answers for.
func coaCount(srv *radius.Server) uint64 {
	var n uint64
	for _, s := range srv.NAS() {
		for _, v := range s.CoA {
			n += v
		}
	}
	return n
}
