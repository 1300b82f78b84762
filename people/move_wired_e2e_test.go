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
// new segment. Withdrawing the device's approval sends hostapd a
// Disconnect-Request, which it acknowledges, and the device's next MAB
// (radclient, as an access point) gets its segment's unknown_devices
// answer instead of the approved VLAN.
//
// hostapd's wired driver has no MAB path, so hostapd's own EAP server
// (EAP-MD5) authenticates the supplicant; accounting and dynamic
// authorisation go to Gatehouse.

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
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

// wiredRig is a device on the testbed's pupil port with a live session:
// Gatehouse's RADIUS server (accounting, and MAB for radclient) in the
// router namespace, hostapd driver=wired on the port and wpa_supplicant
// behind it, and the people service deciding about the device.
type wiredRig struct {
	school *testbed.School
	st     *store.Store
	srv    *radius.Server
	svc    *people.Service
	hap    *wired.Process
	mac    net.HardwareAddr
	sess   store.RADIUSSession
}

// newWiredRig starts everything with the device approved onto approveOn
// and waits for hostapd's Accounting-Start. opts gets the store and the
// server before the service is made.
func newWiredRig(t *testing.T, segments []radius.Segment, approveOn string, opts func(*people.Options, *testbed.School, *radius.Server)) *wiredRig {
	t.Helper()
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
		AuthAddr: testbed.MgmtRouterIP + ":1812",
		AcctAddr: testbed.MgmtRouterIP + ":1813",
		Clients:  []radius.Client{{Name: "switch", Prefix: netip.MustParsePrefix(testbed.MgmtNet), Secret: []byte(wiredSecret), RequireMessageAuthenticator: true}},
		Segments: segments,
		Devices:  wiredDevices{st}, Sessions: st, Auditor: st,
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

	po := people.Options{Store: st}
	opts(&po, school, srv)
	svc, err := people.New(po)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ApproveDevice(ctx, "test", mac, approveOn, "laptop", ""); err != nil {
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
	t.Cleanup(pcancel)
	hap := wired.StartHostapd(t, pctx, school, "router", dir, "hostapd", wired.Hostapd{Interface: seg.Interface,
		SSID: "wired-pupil", NASIdentifier: "switch-pupil", OwnIP: testbed.MgmtRouterIP, EAPUserFile: users,
		AcctServer: testbed.MgmtRouterIP, Secret: wiredSecret, DASClient: testbed.MgmtRouterIP})
	t.Cleanup(hap.Stop)
	sup := wired.StartSupplicant(t, pctx, school, seg.ClientNS, seg.ClientInterface, dir, "wpa_supplicant",
		"\teap=MD5\n\tidentity=\"pupil1\"\n\tpassword=\"pupil-password\"\n")
	t.Cleanup(sup.Stop)
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
	return &wiredRig{school: school, st: st, srv: srv, svc: svc, hap: hap, mac: mac, sess: sess}
}

// waitStop waits for hostapd's Accounting-Stop of the rig's session.
func (r *wiredRig) waitStop(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		got, err := r.st.RADIUSSession(context.Background(), r.sess.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Open() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("hostapd acknowledged the Disconnect but no Stop was recorded\n--- hostapd:\n%s", r.hap.Log.Text())
		}
	}
}

// switchNAS is the NAS book's entry for hostapd.
func (r *wiredRig) switchNAS() radius.NASStatus {
	for _, n := range r.srv.NAS() {
		if n.Name == "switch" {
			return n
		}
	}
	return radius.NASStatus{}
}

func TestMovingADeviceToAnotherSegmentSendsHostapdACoA(t *testing.T) {
	wired.Require(t)
	ctx := context.Background()
	r := newWiredRig(t, []radius.Segment{{Name: "pupil", VLAN: 20, SSIDs: []string{"wired-pupil"}, Unknown: policy.UnknownAllow},
		{Name: "staff", VLAN: 30, SSIDs: []string{"wired-staff"}, Unknown: policy.UnknownAllow}}, "pupil",
		func(o *people.Options, school *testbed.School, srv *radius.Server) {
			o.Reauthorizer = routerReauthorizer{s: school, srv: srv}
		})
	st, srv, svc, hap, mac, sess := r.st, r.srv, r.svc, r.hap, r.mac, r.sess

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
	nas := r.switchNAS()
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
	r.waitStop(t)
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

// mab asks Gatehouse's RADIUS server, as an access point on the management
// network would, whether mac may join ssid by MAC authentication, with
// radclient; it returns radclient's output.
func (r *wiredRig) mab(t *testing.T, ssid string) string {
	t.Helper()
	m := strings.ToUpper(strings.ReplaceAll(r.mac.String(), ":", "-"))
	f := filepath.Join(t.TempDir(), "mab.txt")
	req := fmt.Sprintf("User-Name = %q\nUser-Password = %q\nCalling-Station-Id = %q\nCalled-Station-Id = \"0A-00-00-00-00-01:%s\"\nMessage-Authenticator = 0x00\n", m, m, m, ssid)
	if err := os.WriteFile(f, []byte(req), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, _ := r.school.Command(ctx, "mgmt", "radclient", "-x", "-r", "1", "-t", "4", "-f", f, testbed.MgmtRouterIP+":1812", "auth", wiredSecret).CombinedOutput()
	return string(out)
}

var wiredVLAN = regexp.MustCompile(`Tunnel-Private-Group-Id(:0)? = "(\d+)"`)

// acceptedOnto is the VLAN an Access-Accept in radclient's output carries,
// or "" when there was none.
func acceptedOnto(out string) string {
	if !strings.Contains(out, "Received Access-Accept") {
		return ""
	}
	if m := wiredVLAN.FindStringSubmatch(out); m != nil {
		return m[2]
	}
	return "none"
}

// TestWithdrawingApprovalDisconnectsOnHostapd: the network manager withdraws
// a device's approval (the device page's "unapprove") while it is on the
// approved segment's VLAN. Gatehouse sends hostapd a Disconnect-Request,
// which hostapd acknowledges and reports as a Stop, and the device's next
// MAB gets the segment's unknown_devices answer: a quarantining segment
// puts it on the visitor VLAN.
func TestWithdrawingApprovalDisconnectsOnHostapd(t *testing.T) {
	wired.Require(t)
	if _, err := exec.LookPath("radclient"); err != nil {
		t.Fatal("radclient is not installed (Debian freeradius-utils; build/deps installs it)")
	}
	ctx := context.Background()
	var disc *routerDisconnector
	r := newWiredRig(t, []radius.Segment{{Name: "pupil", VLAN: 20, SSIDs: []string{"wired-pupil"}, Unknown: policy.UnknownQuarantine},
		{Name: "visitor", VLAN: 40, SSIDs: []string{"wired-visitor"}, Portal: true}}, "pupil",
		func(o *people.Options, school *testbed.School, srv *radius.Server) {
			disc = &routerDisconnector{s: school, srv: srv}
			o.Disconnector = disc
		})
	if v := acceptedOnto(r.mab(t, "wired-pupil")); v != "20" {
		t.Fatalf("approved device's MAB accepted onto VLAN %q, want 20", v)
	}

	committed, err := r.svc.Decide(ctx, "web:nm", r.mac, store.DeviceDecision{Approved: false, Name: "laptop"})
	if err != nil || !committed {
		t.Fatalf("unapprove: committed %v, %v\n--- hostapd:\n%s", committed, err, r.hap.Log.Text())
	}
	nas := r.switchNAS()
	if len(nas.LastCoA) != 1 {
		t.Fatalf("NAS book %+v\n--- hostapd:\n%s", nas, r.hap.Log.Text())
	}
	if d := nas.LastCoA[0]; d.Kind != radius.KindDisconnect || d.Outcome != radius.CoAAck || d.SessionID != r.sess.ID || d.MAC != r.mac.String() {
		t.Fatalf("hostapd's answer to the Disconnect-Request was recorded as %+v\n--- hostapd:\n%s", d, r.hap.Log.Text())
	}
	if nas.CoA[radius.CoAAck] != 1 || len(nas.CoA) != 1 {
		t.Fatalf("NAS counts %v", nas.CoA)
	}
	log, err := r.st.AuditSearch(ctx, store.AuditFilter{Kind: "session.disconnect", Limit: 10})
	if err != nil || len(log) != 1 || log[0].Actor != "people" || log[0].Object != fmt.Sprintf("session:%d", r.sess.ID) {
		t.Fatalf("audit of the Disconnect: %+v %v", log, err)
	}
	if log, err := r.st.AuditSearch(ctx, store.AuditFilter{Kind: "device.update", Actor: "web:nm", Limit: 10}); err != nil || len(log) != 1 {
		t.Fatalf("audit of the withdrawal: %+v %v", log, err)
	}
	r.waitStop(t)
	if v := acceptedOnto(r.mab(t, "wired-pupil")); v != "40" {
		t.Fatalf("after the withdrawal the device's MAB was accepted onto VLAN %q, want the visitor VLAN 40", v)
	}
}
