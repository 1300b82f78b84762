package people_test

// The leavers engine end to end on a wired 802.1X port: a pupil with a
// Wi-Fi password logs in with wpa_supplicant -Dwired through hostapd
// (driver=wired) and Gatehouse's RADIUS (EAP-TTLS/PAP), has an address on
// the segment and reaches the fake internet; at T0 (injected clock) the
// scheduler revokes them: the kernel cuts the device, hostapd acknowledges
// the Disconnect, and a fresh login is rejected. A second leaver's
// revocation is interrupted (the kernel fails, as a daemon dying between the
// database and the kernel would leave it) and the next start finishes it.
//
// In process: the real enforcer, RADIUS server (with EAP) and DHCP server
// in the router namespace, real hostapd, wpa_supplicant and udhcpc.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/dhcp"
	"github.com/gatehouse-net/gatehouse/people"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/radius"
	"github.com/gatehouse-net/gatehouse/radius/eap"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
	"github.com/gatehouse-net/gatehouse/testbed/wired"
)

const (
	wiredSecret     = "wired-e2e-secret"
	wiredServerName = "radius.school.example"
	wiredPassword   = "leaver wifi password 1"
)

// wiredDevices answers RADIUS's device lookups from the store, as the
// daemon's adapter does (cmd/gatehouse/radius.go).
type wiredDevices struct{ st *store.Store }

func (d wiredDevices) Lookup(ctx context.Context, mac net.HardwareAddr) (radius.DeviceInfo, error) {
	dev, err := d.st.DeviceForRADIUS(ctx, mac)
	if err != nil {
		return radius.DeviceInfo{}, err
	}
	return radius.DeviceInfo{Known: dev.Known, Approved: dev.Approved, Blocked: dev.Blocked, Segment: dev.Segment,
		Name: dev.Name, Owner: dev.Owner, SealedKeyRead: true, SealedKey: dev.PSKSealed}, nil
}

// routerDisconnector sends the Disconnect from the router's namespace,
// where the daemon runs.
type routerDisconnector struct {
	s   *testbed.School
	srv *radius.Server
	mu  sync.Mutex
	n   int
	err []error
}

func (d *routerDisconnector) Disconnect(ctx context.Context, mac net.HardwareAddr) error {
	err := d.s.Do("router", func() error {
		return radius.MACDisconnector{Server: d.srv, Actor: "people"}.Disconnect(ctx, mac)
	})
	d.mu.Lock()
	d.n++
	d.err = append(d.err, err)
	d.mu.Unlock()
	return err
}

// failingKernel is the real enforcer, except that revocations fail while
// fail is set: the database half of a revocation is written and the kernel
// never told, as when the daemon dies in the middle.
type failingKernel struct {
	*policy.Enforcer
	fail bool
}

func (k *failingKernel) Revoke(ctx context.Context, ds ...policy.Device) error {
	if k.fail {
		return errors.New("injected: the daemon stopped before the kernel was told")
	}
	return k.Enforcer.Revoke(ctx, ds...)
}

// serverCert makes a self-signed certificate for the EAP server and writes
// it as the supplicants' CA.
func serverCert(t *testing.T, dir string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: wiredServerName},
		DNSNames: []string{wiredServerName}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestLeaverOnAWiredPortLosesTheSessionAndTheInternetAtT0(t *testing.T) {
	wired.Require(t)
	r := newKernelRig(t, nil)
	ctx := context.Background()
	dir := t.TempDir()
	loc, _ := time.LoadLocation("Europe/London")
	var clockMu sync.Mutex
	clock := time.Date(2027, 6, 25, 22, 59, 0, 0, time.UTC) // 23:59 BST on the leaving day
	now := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return clock }
	setClock := func(c time.Time) { clockMu.Lock(); clock = c; clockMu.Unlock() }

	// Two Year 11 pupils leaving after exams (2027-06-25).
	var leavers []store.Person
	ps, _ := r.svc.Members(ctx, "Year 11")
	for _, p := range ps {
		if p.LeavesOn == "2027-06-25" {
			leavers = append(leavers, p)
		}
	}
	if len(leavers) < 2 {
		t.Fatalf("want two Year 11 leavers in the sample, have %d", len(leavers))
	}

	// The RADIUS server, with EAP, answering from package people.
	kern := &failingKernel{Enforcer: r.enf}
	disc := &routerDisconnector{s: r.s}
	// Gatehouse's DHCP server on both segments.
	var dsegs []dhcp.Segment
	for _, name := range []string{"pupil", "staff"} {
		seg, _ := r.s.Segment(name)
		dsegs = append(dsegs, dhcp.Segment{Name: name, Interface: seg.Interface, Subnet: seg.Subnet, Gateway: seg.Gateway,
			RangeStart: seg.DHCPStart, RangeEnd: seg.DHCPEnd, Lease: seg.Lease})
	}
	dsrv, err := dhcp.New(dhcp.Config{Segments: dsegs, Store: dhcp.NewSQLStore(r.st),
		Listen: func(iface string) (net.PacketConn, error) {
			var c net.PacketConn
			err := r.s.Do("router", func() error {
				var err error
				c, err = dhcp.ListenUDP(iface)
				return err
			})
			return c, err
		}})
	if err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithCancel(ctx)
	ddone := make(chan error, 1)
	go func() { ddone <- dsrv.Run(dctx) }()
	t.Cleanup(func() { dcancel(); <-ddone })
	select {
	case <-dsrv.Ready():
	case err := <-ddone:
		t.Fatalf("dhcp server: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("dhcp server not ready")
	}
	svc, err := people.New(people.Options{Store: r.st, Kernel: kern, Disconnector: disc, Leases: dsrv, Location: loc, Now: now,
		Credentials: radius.PersonKeys{Store: r.st, Actor: "people"}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := radius.New(radius.Options{
		AuthAddr: testbed.MgmtRouterIP + ":1812", AcctAddr: testbed.MgmtRouterIP + ":1813",
		Clients: []radius.Client{{Name: "switch", Prefix: netip.MustParsePrefix(testbed.MgmtNet), Secret: []byte(wiredSecret), RequireMessageAuthenticator: true}},
		// hostapd names its port's network in Called-Station-Id (ssid=
		// below): a wired port has no SSID of its own, and a person's
		// login lands on the segment it names.
		Segments: []radius.Segment{{Name: "pupil", SSIDs: []string{"wired-pupil"}, Unknown: policy.UnknownAllow},
			{Name: "staff", SSIDs: []string{"wired-staff"}, Unknown: policy.UnknownAllow}},
		Devices: wiredDevices{r.st}, Identities: people.RADIUSIdentities{Service: svc}, Sessions: r.st, Auditor: r.st,
		EAP:         &eap.Options{TLS: &tls.Config{Certificates: []tls.Certificate{serverCert(t, dir)}}},
		RejectDelay: -1,
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		t.Fatal(err)
	}
	disc.srv = srv
	if err := r.s.Do("router", srv.Listen); err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(ctx)
	rdone := make(chan struct{})
	go func() { defer close(rdone); _ = srv.Run(rctx) }()
	t.Cleanup(func() { rcancel(); <-rdone })

	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pctx, pcancel := context.WithTimeout(ctx, 240*time.Second)
	defer pcancel()
	// hostapd on a segment's router-side interface: the segment's port.
	// (One at a time: each takes Disconnects on the router's port 3799.)
	hostapd := func(seg testbed.SegmentInfo) (*wired.Log, func()) {
		p := wired.StartHostapd(t, pctx, r.s, "router", dir, "hostapd-"+seg.Name, wired.Hostapd{Interface: seg.Interface,
			SSID: "wired-" + seg.Name, NASIdentifier: "switch-" + seg.Name, OwnIP: testbed.MgmtRouterIP,
			AuthServer: testbed.MgmtRouterIP, AcctServer: testbed.MgmtRouterIP, Secret: wiredSecret, DASClient: testbed.MgmtRouterIP})
		return p.Log, p.Stop
	}
	supplicant := func(seg testbed.SegmentInfo, name, user string) (*wired.Log, func()) {
		p := wired.StartSupplicant(t, pctx, r.s, seg.ClientNS, seg.ClientInterface, dir, name, fmt.Sprintf(
			"\teap=TTLS\n\tanonymous_identity=\"anonymous@school.example\"\n\tidentity=%q\n\tpassword=%q\n\tphase2=\"auth=PAP\"\n"+
				"\tca_cert=%q\n\tdomain_suffix_match=%q\n\tphase1=\"tls_disable_tlsv1_0=1 tls_disable_tlsv1_1=1 tls_disable_tlsv1_3=1\"\n",
			user, wiredPassword, filepath.Join(dir, "ca.pem"), wiredServerName))
		return p.Log, p.Stop
	}
	openSession := func(mac net.HardwareAddr, person string) (store.RADIUSSession, bool) {
		open, err := r.st.RADIUSSessions(ctx, store.SessionFilter{OpenOnly: true, MAC: mac})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range open {
			if s.Person == person {
				return s, true
			}
		}
		return store.RADIUSSession{}, false
	}
	waitFor := func(what string, d time.Duration, cond func() bool) time.Duration {
		start := time.Now()
		for !cond() {
			if time.Since(start) > d {
				t.Fatalf("%s: not within %v", what, d)
			}
			time.Sleep(200 * time.Millisecond)
		}
		return time.Since(start)
	}
	// lease runs udhcpc on seg's client, which configures the address it
	// is given; it reports the address, or udhcpc's output on failure.
	configure := write("udhcpc.sh", "#!/bin/sh\ncase \"$1\" in bound|renew) ip addr flush dev \"$interface\"; ip addr add \"$ip/$subnet\" dev \"$interface\"; ip route replace default via \"$router\"; echo \"leased=$ip\";; esac\n")
	if err := os.Chmod(configure, 0o755); err != nil {
		t.Fatal(err)
	}
	lease := func(seg testbed.SegmentInfo) (string, bool) {
		c, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		out, err := r.s.Command(c, seg.ClientNS, "udhcpc", "-f", "-q", "-n", "-i", testbed.ClientInterface, "-s", configure, "-t", "3", "-T", "1").CombinedOutput()
		for _, l := range strings.Split(string(out), "\n") {
			if ip, ok := strings.CutPrefix(l, "leased="); ok && err == nil {
				return ip, true
			}
		}
		return string(out), false
	}
	// login gives the leaver a device on seg, logged in and with a lease.
	login := func(seg testbed.SegmentInfo, p store.Person, hlog *wired.Log) (store.RADIUSSession, func()) {
		if err := svc.SetWiFiPassword(ctx, "web:nm", p.ID, wiredPassword); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Decide(ctx, "web:nm", seg.ClientMAC, store.DeviceDecision{Approved: true, Owner: p.UPN}); err != nil {
			t.Fatal(err)
		}
		// The device takes its address from Gatehouse's DHCP.
		ip, ok := lease(seg)
		if !ok {
			t.Fatalf("no DHCP lease for %s: %s", seg.Name, ip)
		}
		fmt.Printf("wired leaver: %s's device leased %s on %s\n", p.Username, ip, seg.Name)
		sup, stop := supplicant(seg, "sup-"+seg.Name, p.Username)
		if !sup.WaitFor("CTRL-EVENT-EAP-SUCCESS", 60*time.Second) {
			t.Fatalf("%s did not authenticate:\n%s\n--- hostapd:\n%s", p.Username, wired.Tail(sup.Text(), 40), wired.Tail(hlog.Text(), 40))
		}
		var sess store.RADIUSSession
		waitFor("an open session naming the leaver", 30*time.Second, func() bool {
			var ok bool
			sess, ok = openSession(seg.ClientMAC, people.PersonRef(p.ID))
			return ok
		})
		return sess, stop
	}
	reachable := func(seg testbed.SegmentInfo) bool {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return r.s.Command(c, seg.ClientNS, "curl", "-sS", "-k", "--max-time", "2", "https://"+testbed.WebIP+"/").Run() == nil
	}
	rejected := func(seg testbed.SegmentInfo, p store.Person) {
		again, stop := supplicant(seg, "sup-again-"+seg.Name, p.Username)
		defer stop()
		if !again.WaitFor("CTRL-EVENT-EAP-FAILURE", 60*time.Second) || strings.Contains(again.Text(), "CTRL-EVENT-EAP-SUCCESS") {
			t.Fatalf("the leaver's next login was not rejected:\n%s", wired.Tail(again.Text(), 40))
		}
	}
	segOf := func(name string) testbed.SegmentInfo {
		seg, ok := r.s.Segment(name)
		if !ok {
			t.Fatalf("no %s segment", name)
		}
		return seg
	}

	// 1. At T0 the scheduler revokes the leaver on the pupil port.
	pupil := segOf("pupil")
	hlog, stopHostapd := hostapd(pupil)
	leaver, second := leavers[0], leavers[1]
	// The second leaver's date was wrong in the MIS: a day later.
	if _, err := svc.Postpone(ctx, "web:nm", second.ID, "2027-06-26", "leaves after the last exam"); err != nil {
		t.Fatal(err)
	}
	sess, stop := login(pupil, leaver, hlog)
	if _, err := svc.Tick(ctx); err != nil {
		t.Fatalf("a minute before T0: %v", err)
	}
	if !reachable(pupil) {
		t.Fatal("the leaver's device cannot reach the internet before T0")
	}
	setClock(time.Date(2027, 6, 25, 23, 0, 0, 0, time.UTC)) // midnight BST: T0
	t0 := time.Now()
	// The scheduler's tick runs while the device keeps trying.
	tickDone := make(chan error, 1)
	go func() {
		res, err := svc.Tick(ctx)
		if err == nil && res.Revoked < 1 {
			err = fmt.Errorf("nobody revoked: %+v", res)
		}
		tickDone <- err
	}()
	cut := waitFor("the leaver's device losing the internet", 30*time.Second, func() bool { return !reachable(pupil) })
	if err := <-tickDone; err != nil {
		t.Fatalf("T0 tick: %v", err)
	}
	tickTook := time.Since(t0)
	fmt.Printf("wired leaver: T0 to the internet refused: %v (the whole T0 tick, Disconnect included: %v)\n", cut.Round(time.Millisecond), tickTook.Round(time.Millisecond))
	if disc.n != 1 || disc.err[0] != nil {
		t.Fatalf("disconnects at T0: %d %v\n--- hostapd:\n%s", disc.n, disc.err, wired.Tail(hlog.Text(), 40))
	}
	if !strings.Contains(hlog.Text(), "RADIUS DAS: Found a matching session "+pupil.ClientMAC.String()+" - disconnecting") {
		t.Fatalf("hostapd did not act on the Disconnect:\n%s", wired.Tail(hlog.Text(), 40))
	}
	waitFor("hostapd's Stop for the session", 20*time.Second, func() bool {
		got, err := r.st.RADIUSSession(ctx, sess.ID)
		return err == nil && !got.Open()
	})
	if n := dsrv.Metrics().Releases.Load(); n != 1 {
		t.Fatalf("%d leases released at T0, want the leaver's", n)
	}
	if ip, ok := lease(pupil); ok {
		t.Fatalf("the revoked device was given a new lease: %s", ip)
	}
	stop()
	rejected(pupil, leaver)
	if reachable(pupil) {
		t.Fatal("the leaver's device reached the internet after the rejected login")
	}

	// 2. The second leaver (postponed a day) is on the staff port; their
	// revocation is interrupted after its database half (the kernel
	// refuses, as a daemon dying between the two would leave it) and the
	// next start finishes it: device cut, session disconnected.
	staff := segOf("staff")
	stopHostapd()
	hlog2, _ := hostapd(staff)
	sess2, stop2 := login(staff, second, hlog2)
	if !reachable(staff) {
		t.Fatal("the second leaver's device cannot reach the internet before their T0")
	}
	kern.fail = true
	setClock(time.Date(2027, 6, 26, 23, 0, 0, 0, time.UTC)) // the postponed T0
	if _, err := svc.Tick(ctx); err == nil {
		t.Fatal("the interrupted revocation was not reported")
	}
	if p, _ := r.st.PersonByID(ctx, second.ID); p.State != store.PersonRevoked {
		t.Fatalf("the database half did not happen: %s", p.State)
	}
	if pend, _ := r.st.PendingRevocations(ctx); len(pend) != 1 || pend[0].PersonID != second.ID {
		t.Fatalf("pending revocations after the interruption: %+v", pend)
	}
	fmt.Printf("wired leaver: interrupted revocation: device reaches the internet before the restart: %v; disconnects sent so far: %d\n", reachable(staff), disc.n)
	// Restart: a new enforcer (a new process) restores from the database
	// and a new scheduler finishes the pending revocation.
	r.enf.Close()
	h, err := r.s.OpenNS("router")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	enf2, err := policy.New(policy.Options{NetNSFd: int(h)}, r.network, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enf2.Close()
	svc2, err := people.New(people.Options{Store: r.st, Kernel: enf2, Disconnector: disc, Leases: dsrv, Location: loc, Now: now,
		Credentials: radius.PersonKeys{Store: r.st, Actor: "people"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := svc2.Restore(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := enf2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	discBefore := disc.n
	res, err := svc2.Tick(ctx)
	if err != nil || res.Finished != 1 {
		t.Fatalf("restart: %+v %v", res, err)
	}
	if reachable(staff) {
		t.Fatal("after the restart the second leaver's device still reaches the internet")
	}
	if disc.n <= discBefore || disc.err[len(disc.err)-1] != nil {
		t.Fatalf("the restart sent no acknowledged Disconnect: %d %v\n--- hostapd:\n%s", disc.n, disc.err, wired.Tail(hlog2.Text(), 40))
	}
	if !strings.Contains(hlog2.Text(), "RADIUS DAS: Found a matching session "+staff.ClientMAC.String()+" - disconnecting") {
		t.Fatalf("hostapd did not act on the restart's Disconnect:\n%s", wired.Tail(hlog2.Text(), 40))
	}
	waitFor("hostapd's Stop for the second session", 20*time.Second, func() bool {
		got, err := r.st.RADIUSSession(ctx, sess2.ID)
		return err == nil && !got.Open()
	})
	if pend, _ := r.st.PendingRevocations(ctx); len(pend) != 0 {
		t.Fatalf("still pending after the restart: %+v", pend)
	}
	if n := dsrv.Metrics().Releases.Load(); n != 2 {
		t.Fatalf("%d leases released in all, want both leavers'", n)
	}
	if ip, ok := lease(staff); ok {
		t.Fatalf("the second revoked device was given a new lease: %s", ip)
	}
	stop2()
	rejected(staff, second)
	if reachable(pupil) {
		t.Fatal("the first leaver regained the internet across the restart")
	}
}
