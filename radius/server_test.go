package radius

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2869"
	"layeh.com/radius/rfc3576"

	"github.com/gatehouse-net/gatehouse/alert/finding"
	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/password"
	"github.com/gatehouse-net/gatehouse/store"
)

const wait = 3 * time.Second

func vlanOf(t *testing.T, p *radius.Packet) string {
	t.Helper()
	tt, ok := p.Lookup(64)
	if !ok || !bytes.Equal(tt, []byte{0, 0, 0, 13}) {
		t.Fatalf("Tunnel-Type %x, want VLAN", tt)
	}
	if mt, _ := p.Lookup(65); !bytes.Equal(mt, []byte{0, 0, 0, 6}) {
		t.Fatalf("Tunnel-Medium-Type %x, want IEEE-802", mt)
	}
	v, _ := p.Lookup(81)
	return string(v)
}

func drops(r *rig, reason string) float64 {
	return testutil.ToFloat64(r.srv.metrics.drops.WithLabelValues("aps", reason))
}

func TestMABApprovedDeviceGetsItsSegmentsVLANWithMessageAuthenticatorFirst(t *testing.T) {
	r := newRig(t, nil)
	r.devices.set("02:00:00:00:00:01", DeviceInfo{Approved: true})
	r.devices.set("02:00:00:00:00:02", DeviceInfo{Approved: true, Segment: "staff"})
	for _, tc := range []struct {
		user, called, vlan string
	}{
		{"020000000001", "0A-00-00-00-00-01:Pupils", "20"},      // SSID decides
		{"02-00-00-00-00-01", "0a-00-00-00-00-01:BYOD", "30"},   // dashed upper
		{"0200.0000.0001", "0A-00-00-00-00-01:Pupils", "20"},    // Cisco dotted
		{"02:00:00:00:00:02", "0A-00-00-00-00-01:Pupils", "10"}, // its own segment wins
	} {
		req := signRequest(t, mabRequest(testSecret, tc.user, tc.called), false)
		p := checkReply(t, req, exchange(t, r.srv.AuthAddr(), req, wait), testSecret)
		if p.Code != radius.CodeAccessAccept {
			t.Fatalf("%s: %v", tc.user, p.Code)
		}
		if got := vlanOf(t, p); got != tc.vlan {
			t.Fatalf("%s on %s: VLAN %q, want %q", tc.user, tc.called, got, tc.vlan)
		}
		if rfc2869.AcctInterimInterval_Get(p) != 600 {
			t.Fatalf("interim interval %d", rfc2869.AcctInterimInterval_Get(p))
		}
	}
}

func TestUnknownDevicesFollowTheSegmentsModeAndRaiseAFinding(t *testing.T) {
	r := newRig(t, nil)
	r.devices.set("02:00:00:00:00:0b", DeviceInfo{Blocked: true, Approved: true})
	for _, tc := range []struct {
		mac, ssid string
		code      radius.Code
		vlan      string
		finding   bool
	}{
		{"02:00:00:00:00:a1", "Staff", radius.CodeAccessAccept, "10", true},  // alert
		{"02:00:00:00:00:a2", "Pupils", radius.CodeAccessAccept, "40", true}, // quarantine: visitor VLAN
		{"02:00:00:00:00:a3", "BYOD", radius.CodeAccessAccept, "30", false},  // allow
		{"02:00:00:00:00:a4", "Lab", radius.CodeAccessReject, "", true},      // deny
		{"02:00:00:00:00:a5", "Nobody", radius.CodeAccessReject, "", false},  // SSID no segment serves
		{"02:00:00:00:00:0b", "Staff", radius.CodeAccessReject, "", false},   // blocked
	} {
		before := len(r.found.All())
		req := signRequest(t, mabRequest(testSecret, tc.mac, "0A-00-00-00-00-01:"+tc.ssid), false)
		p := checkReply(t, req, exchange(t, r.srv.AuthAddr(), req, wait), testSecret)
		if p.Code != tc.code {
			t.Fatalf("%s on %s: %v, want %v", tc.mac, tc.ssid, p.Code, tc.code)
		}
		if tc.vlan != "" && vlanOf(t, p) != tc.vlan {
			t.Fatalf("%s on %s: VLAN %q, want %s", tc.mac, tc.ssid, vlanOf(t, p), tc.vlan)
		}
		got := len(r.found.All()) - before
		if (got == 1) != tc.finding || got > 1 {
			t.Fatalf("%s on %s: %d findings", tc.mac, tc.ssid, got)
		}
	}
	f := r.found.All()[0]
	if f.Class != finding.ClassUnapprovedDevice || f.Source != finding.SourceRADIUS || f.Segment != "staff" ||
		f.SrcMAC.String() != "02:00:00:00:00:a1" || f.Detail != finding.DetailNotApproved || f.Valid() != nil || !strings.Contains(f.Evidence, `SSID "Staff"`) {
		t.Fatalf("finding %+v", f)
	}
}

func TestAccessRequestWithoutOrWithBadMessageAuthenticatorIsDroppedAndCounted(t *testing.T) {
	r := newRig(t, nil)
	r.devices.set("02:00:00:00:00:01", DeviceInfo{Approved: true})
	mk := func() *radius.Packet { return mabRequest(testSecret, "02:00:00:00:00:01", "0A-00-00-00-00-01:Staff") }

	if got := exchange(t, r.srv.AuthAddr(), signRequest(t, mk(), true), 500*time.Millisecond); got != nil {
		t.Fatal("answered a request without Message-Authenticator")
	}
	// Tampered: a valid request whose attribute changed after signing (the
	// BlastRADIUS move) and one whose MAC is flipped.
	good := signRequest(t, mk(), false)
	tampered := append([]byte(nil), good...)
	tampered[len(tampered)-1] ^= 1
	if got := exchange(t, r.srv.AuthAddr(), tampered, 500*time.Millisecond); got != nil {
		t.Fatal("answered a tampered request")
	}
	flipped := append([]byte(nil), good...)
	flipped[25] ^= 0x80
	if got := exchange(t, r.srv.AuthAddr(), flipped, 500*time.Millisecond); got != nil {
		t.Fatal("answered a request with a flipped Message-Authenticator")
	}
	wrong := signRequest(t, mabRequest("another secret", "02:00:00:00:00:01", "0A-00-00-00-00-01:Staff"), false)
	if got := exchange(t, r.srv.AuthAddr(), wrong, 500*time.Millisecond); got != nil {
		t.Fatal("answered a request signed with another secret")
	}
	if drops(r, dropNoMA) != 1 || drops(r, dropBadMA) != 3 {
		t.Fatalf("drops: no MA %v, bad MA %v", drops(r, dropNoMA), drops(r, dropBadMA))
	}
	// The untouched one is answered.
	checkReply(t, good, exchange(t, r.srv.AuthAddr(), good, wait), testSecret)
}

func TestClientWithMessageAuthenticatorOptOutIsAnswered(t *testing.T) {
	r := newRig(t, func(o *Options) { o.Clients[0].RequireMessageAuthenticator = false })
	r.devices.set("02:00:00:00:00:01", DeviceInfo{Approved: true})
	req := signRequest(t, mabRequest(testSecret, "02:00:00:00:00:01", "0A-00-00-00-00-01:Staff"), true)
	p := checkReply(t, req, exchange(t, r.srv.AuthAddr(), req, wait), testSecret)
	if p.Code != radius.CodeAccessAccept {
		t.Fatal(p.Code)
	}
}

func TestRequestsFromOutsideEveryClientAreDroppedAndCounted(t *testing.T) {
	r := newRig(t, func(o *Options) { o.Clients[0].Prefix = netip.MustParsePrefix("10.99.0.0/24") })
	req := signRequest(t, mabRequest(testSecret, "02:00:00:00:00:01", "0A-00-00-00-00-01:Staff"), false)
	if got := exchange(t, r.srv.AuthAddr(), req, 500*time.Millisecond); got != nil {
		t.Fatal("answered a stranger")
	}
	if n := testutil.ToFloat64(r.srv.metrics.drops.WithLabelValues(unknownClient, dropUnknownClient)); n != 1 {
		t.Fatalf("unknown-client drops %v", n)
	}
}

func TestMalformedDatagramsAreDroppedByReasonWithoutPanic(t *testing.T) {
	r := newRig(t, nil)
	good := signRequest(t, mabRequest(testSecret, "02:00:00:00:00:01", "0A-00-00-00-00-01:Staff"), false)
	badLen := append([]byte(nil), good...)
	badLen[2], badLen[3] = 0xff, 0xff
	overflow := append([]byte(nil), good...)
	overflow[21] = 200 // the first attribute claims more than is there
	for _, tc := range []struct {
		name, reason string
		b            []byte
	}{
		{"short", dropShort, good[:10]},
		{"bad length", dropBadLength, badLen},
		{"attribute overflow", dropBadAttribute, overflow},
		{"oversize", dropOversize, append(append([]byte(nil), good...), make([]byte, 4096)...)},
		{"wrong code", dropUnexpectedCode, append([]byte{byte(radius.CodeAccessAccept)}, good[1:]...)},
	} {
		if got := exchange(t, r.srv.AuthAddr(), tc.b, 300*time.Millisecond); got != nil {
			t.Fatalf("%s: answered", tc.name)
		}
		if drops(r, tc.reason) != 1 {
			t.Fatalf("%s: %s drops = %v", tc.name, tc.reason, drops(r, tc.reason))
		}
	}
}

func TestRetransmissionGetsTheIdenticalReplyAndNoSecondWrite(t *testing.T) {
	r := newRig(t, nil)
	p := radius.New(radius.CodeAccountingRequest, []byte(testSecret))
	_ = rfc2866.AcctStatusType_Set(p, rfc2866.AcctStatusType_Value_Start)
	_ = rfc2866.AcctSessionID_SetString(p, "SESS-1")
	_ = rfc2865.CallingStationID_SetString(p, "02-00-00-00-00-01")
	_ = rfc2865.CalledStationID_SetString(p, "0A-00-00-00-00-01:Staff")
	_ = rfc2865.FramedIPAddress_Set(p, net.IPv4(10, 10, 0, 50))
	req, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(r.srv.AcctAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	first := sendOn(t, c, req, wait)
	second := sendOn(t, c, req, wait)
	if first == nil || !bytes.Equal(first, second) {
		t.Fatalf("replies differ:\n% x\n% x", first, second)
	}
	if !radius.IsAuthenticResponse(first, req, []byte(testSecret)) {
		t.Fatal("bad response authenticator")
	}
	if n := r.sessions.writes.Load(); n != 1 {
		t.Fatalf("%d store writes for one request sent twice", n)
	}
	if n := testutil.ToFloat64(r.srv.metrics.retrans.WithLabelValues("aps")); n != 1 {
		t.Fatalf("retransmissions %v", n)
	}
	// Access-Request too: the cached bytes, even with a random salt inside.
	r.devices.set("02:00:00:00:00:01", DeviceInfo{Approved: true})
	if _, err := r.keys.Rotate(context.Background(), "test", mustMAC("02:00:00:00:00:01")); err != nil {
		// the device must be known to the store
		if err := r.st.ApproveDevice(context.Background(), "test", mustMAC("02:00:00:00:00:01"), "", "", time.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := r.keys.Rotate(context.Background(), "test", mustMAC("02:00:00:00:00:01")); err != nil {
			t.Fatal(err)
		}
	}
	areq := signRequest(t, mabRequest(testSecret, "02:00:00:00:00:01", "0A-00-00-00-00-01:Staff"), false)
	a1 := exchange(t, r.srv.AuthAddr(), areq, wait)
	a2 := exchange(t, r.srv.AuthAddr(), areq, wait)
	// exchange dials a new source port each time: a different source is a
	// different request, so use one socket.
	ca, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(r.srv.AuthAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	areq2 := signRequest(t, mabRequest(testSecret, "02:00:00:00:00:01", "0A-00-00-00-00-01:Staff"), false)
	b1, b2 := sendOn(t, ca, areq2, wait), sendOn(t, ca, areq2, wait)
	if a1 == nil || a2 == nil || b1 == nil || !bytes.Equal(b1, b2) {
		t.Fatal("Access-Request retransmission not answered identically")
	}
}

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func TestStatusServerIsAnsweredOnBothPortsAndNeedsMessageAuthenticator(t *testing.T) {
	r := newRig(t, nil)
	for _, tc := range []struct {
		addr netip.AddrPort
		want radius.Code
	}{{r.srv.AuthAddr(), radius.CodeAccessAccept}, {r.srv.AcctAddr(), radius.CodeAccountingResponse}} {
		req := signRequest(t, radius.New(radius.CodeStatusServer, []byte(testSecret)), false)
		p := checkReply(t, req, exchange(t, tc.addr, req, wait), testSecret)
		if p.Code != tc.want {
			t.Fatalf("Status-Server on %v: %v", tc.addr, p.Code)
		}
		if got := exchange(t, tc.addr, signRequest(t, radius.New(radius.CodeStatusServer, []byte(testSecret)), true), 300*time.Millisecond); got != nil {
			t.Fatal("answered Status-Server without Message-Authenticator")
		}
	}
}

func TestPAPAgainstArgon2idHashes(t *testing.T) {
	r := newRig(t, nil)
	hash, err := password.Hash("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	r.ids.set("amy", Identity{Person: "T042", PasswordHash: hash, Active: true, Segment: "staff", Until: time.Now().Add(90 * time.Minute)})
	r.ids.set("leaver", Identity{Person: "P007", PasswordHash: hash, Active: false})
	r.ids.set("ended", Identity{Person: "P008", PasswordHash: hash, Active: true, Until: time.Now().Add(-time.Minute)})
	pap := func(user, pw, ssid string) *radius.Packet {
		p := radius.New(radius.CodeAccessRequest, []byte(testSecret))
		_ = rfc2865.UserName_SetString(p, user)
		_ = rfc2865.UserPassword_SetString(p, pw)
		_ = rfc2865.CalledStationID_SetString(p, "0A-00-00-00-00-01:"+ssid)
		req := signRequest(t, p, false)
		// argon2id takes its time on a busy machine.
		return checkReply(t, req, exchange(t, r.srv.AuthAddr(), req, 20*time.Second), testSecret)
	}
	p := pap("amy", "correct horse battery", "Staff")
	if p.Code != radius.CodeAccessAccept || vlanOf(t, p) != "10" {
		t.Fatalf("right password: %v", p.Code)
	}
	st := rfc2865.SessionTimeout_Get(p)
	if st < 85*60 || st > 90*60 || rfc2865.TerminationAction_Get(p) != 1 {
		t.Fatalf("Session-Timeout %d, Termination-Action %d", st, rfc2865.TerminationAction_Get(p))
	}
	for _, tc := range []struct{ user, pw, ssid string }{
		{"amy", "wrong", "Staff"},
		{"amy", "correct horse battery", "Pupils"}, // not her segment's SSID
		{"leaver", "correct horse battery", "Staff"},
		{"ended", "correct horse battery", "Staff"},
		{"nobody", "x", "Staff"},
	} {
		if p := pap(tc.user, tc.pw, tc.ssid); p.Code != radius.CodeAccessReject {
			t.Fatalf("%+v: %v", tc, p.Code)
		}
	}
}

func TestAccessRejectIsDelayedWithoutHoldingAWorker(t *testing.T) {
	r := newRig(t, func(o *Options) { o.RejectDelay = 300 * time.Millisecond; o.MaxInFlight = 1 })
	r.devices.set("02:00:00:00:00:01", DeviceInfo{Approved: true})
	reject := signRequest(t, mabRequest(testSecret, "02:00:00:00:00:99", "0A-00-00-00-00-01:Lab"), false)
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(r.srv.AuthAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(reject); err != nil {
		t.Fatal(err)
	}
	// With one worker, an accept still gets through while the reject waits.
	accept := signRequest(t, mabRequest(testSecret, "02:00:00:00:00:01", "0A-00-00-00-00-01:Staff"), false)
	deadline := time.Now().Add(wait)
	var got *radius.Packet
	for got == nil && time.Now().Before(deadline) {
		if b := exchange(t, r.srv.AuthAddr(), accept, 200*time.Millisecond); b != nil {
			got = checkReply(t, accept, b, testSecret)
		}
	}
	if got == nil || got.Code != radius.CodeAccessAccept {
		t.Fatal("an accept was held up behind a delayed reject")
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal("the delayed reject never came:", err)
	}
	if p := checkReply(t, reject, buf[:n], testSecret); p.Code != radius.CodeAccessReject {
		t.Fatal(p.Code)
	}
}

func TestPanicInAHandlerIsCountedAndTheServerCarriesOn(t *testing.T) {
	r := newRig(t, nil)
	r.devices.mu.Lock()
	r.devices.panic = true
	r.devices.mu.Unlock()
	req := signRequest(t, mabRequest(testSecret, "02:00:00:00:00:01", "0A-00-00-00-00-01:Staff"), false)
	if got := exchange(t, r.srv.AuthAddr(), req, 500*time.Millisecond); got != nil {
		t.Fatal("answered despite the panic")
	}
	if drops(r, dropPanic) != 1 {
		t.Fatalf("panic drops %v", drops(r, dropPanic))
	}
	r.devices.mu.Lock()
	r.devices.panic = false
	r.devices.mu.Unlock()
	r.devices.set("02:00:00:00:00:01", DeviceInfo{Approved: true})
	req = signRequest(t, mabRequest(testSecret, "02:00:00:00:00:01", "0A-00-00-00-00-01:Staff"), false)
	checkReply(t, req, exchange(t, r.srv.AuthAddr(), req, wait), testSecret)
}

func TestPersonalKeyIsSentAsTunnelPasswordArubaAndCiscoForms(t *testing.T) {
	r := newRig(t, nil)
	mac := mustMAC("02:00:00:00:00:01")
	if err := r.st.ApproveDevice(context.Background(), "nm", mac, "staff", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	r.devices.set(mac.String(), DeviceInfo{Approved: true})
	key, err := r.keys.Rotate(context.Background(), "nm", mac)
	if err != nil {
		t.Fatal(err)
	}
	rp := mabRequest(testSecret, "02-00-00-00-00-01", "0A-00-00-00-00-01:Staff")
	req := signRequest(t, rp, false)
	p := checkReply(t, req, exchange(t, r.srv.AuthAddr(), req, wait), testSecret)
	tp, ok := p.Lookup(69)
	if !ok || tp[0] != 0 {
		t.Fatalf("Tunnel-Password %x", tp)
	}
	pw, _, err := radius.TunnelPassword(tp[1:], []byte(testSecret), rp.Authenticator[:])
	if err != nil || string(pw) != key {
		t.Fatalf("Tunnel-Password decrypts to %q (%v), want %q", pw, err, key)
	}
	var aruba, cisco []string
	for _, a := range p.Attributes {
		if a.Type != rfc2865.VendorSpecific_Type {
			continue
		}
		vendor, v, err := radius.VendorSpecific(a.Attribute)
		if err != nil {
			t.Fatal(err)
		}
		switch vendor {
		case vendorAruba:
			pw, _, err := radius.TunnelPassword(v[2:], []byte(testSecret), rp.Authenticator[:])
			if err != nil {
				t.Fatal(err)
			}
			aruba = append(aruba, string(pw))
		case vendorCisco:
			cisco = append(cisco, string(v[2:]))
		}
	}
	if len(aruba) != 1 || aruba[0] != key || strings.Join(cisco, ",") != "psk-mode=ascii,psk="+key {
		t.Fatalf("aruba %v cisco %v", aruba, cisco)
	}
}

func TestAccountingMakesSessionsAndAccountingOnClosesThem(t *testing.T) {
	r := newRig(t, nil)
	r.devices.set("02:00:00:00:00:01", DeviceInfo{Approved: true, Owner: "P123"})
	started := events.Subscribe[events.SessionStarted](r.hub, "test", 8)
	acct := func(status rfc2866.AcctStatusType, id string, extra func(*radius.Packet)) {
		t.Helper()
		p := radius.New(radius.CodeAccountingRequest, []byte(testSecret))
		_ = rfc2866.AcctStatusType_Set(p, status)
		if id != "" {
			_ = rfc2866.AcctSessionID_SetString(p, id)
		}
		if extra != nil {
			extra(p)
		}
		req, err := p.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if resp := exchange(t, r.srv.AcctAddr(), req, wait); resp == nil || !radius.IsAuthenticResponse(resp, req, []byte(testSecret)) {
			t.Fatalf("no authentic Accounting-Response to %v", status)
		}
	}
	acct(rfc2866.AcctStatusType_Value_Start, "A1", func(p *radius.Packet) {
		_ = rfc2865.UserName_SetString(p, "020000000001")
		_ = rfc2865.CallingStationID_SetString(p, "02-00-00-00-00-01")
		_ = rfc2865.CalledStationID_SetString(p, "0A-00-00-00-00-01:Staff")
		_ = rfc2865.FramedIPAddress_Set(p, net.IPv4(10, 10, 0, 77))
		_ = rfc2865.NASPort_Set(p, 7)
	})
	open, err := r.st.RADIUSSessions(context.Background(), store.SessionFilter{OpenOnly: true})
	if err != nil || len(open) != 1 {
		t.Fatalf("open sessions %v %v", open, err)
	}
	s := open[0]
	if s.Person != "P123" || s.MAC.String() != "02:00:00:00:00:01" || s.IP.String() != "10.10.0.77" || s.SSID != "Staff" ||
		s.AP != "0a:00:00:00:00:01" || s.NASPort != "7" || s.NAS != "aps" {
		t.Fatalf("session %+v", s)
	}
	// The start is on the hub, in events' own type.
	if got := started.Drain(); len(got) != 1 || got[0].Source != events.SourceRADIUS || got[0].MAC.String() != "02:00:00:00:00:01" ||
		got[0].IP.String() != "10.10.0.77" || got[0].SessionID != "A1" || got[0].SSID != "Staff" || got[0].Person != "P123" {
		t.Fatalf("session-started events %+v", got)
	}
	acct(rfc2866.AcctStatusType_Value_AccountingOn, "", nil)
	if open, _ := r.st.RADIUSSessions(context.Background(), store.SessionFilter{OpenOnly: true}); len(open) != 0 {
		t.Fatalf("Accounting-On left %d open", len(open))
	}
	// A wrong secret on accounting is dropped and counted.
	p := radius.New(radius.CodeAccountingRequest, []byte("wrong"))
	_ = rfc2866.AcctStatusType_Set(p, rfc2866.AcctStatusType_Value_Start)
	_ = rfc2866.AcctSessionID_SetString(p, "A2")
	req, _ := p.Encode()
	if exchange(t, r.srv.AcctAddr(), req, 300*time.Millisecond) != nil || drops(r, dropBadAuthenticatr) != 1 {
		t.Fatal("accounting with a wrong secret was not dropped and counted")
	}
}

// fakeNAS answers Disconnect-Requests the way a NAS does.
func fakeNAS(t *testing.T, answer func(req *radius.Packet) *radius.Packet) (port int, got chan *radius.Packet) {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	got = make(chan *radius.Packet, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			b := buf[:n]
			pkt, maOff, err := frame(b)
			if err != nil || maOff < 0 || !radius.IsAuthenticRequest(pkt, []byte(testSecret)) ||
				!validMA(pkt, maOff, []byte(testSecret), make([]byte, 16)) {
				continue // a NAS drops what it cannot verify
			}
			req, err := radius.Parse(pkt, []byte(testSecret))
			if err != nil {
				continue
			}
			got <- req
			if resp := answer(req); resp != nil {
				out, err := resp.Encode()
				if err == nil {
					_, _ = c.WriteToUDP(out, from)
				}
			}
		}
	}()
	return c.LocalAddr().(*net.UDPAddr).Port, got
}

func TestDisconnectReachesTheNASAndRecordsAckNakAndTimeout(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answer  func(*radius.Packet) *radius.Packet
		outcome string
		cause   uint32
	}{
		{"ack", func(p *radius.Packet) *radius.Packet { return p.Response(radius.CodeDisconnectACK) }, CoAAck, 0},
		{"nak", func(p *radius.Packet) *radius.Packet {
			q := p.Response(radius.CodeDisconnectNAK)
			_ = rfc3576.ErrorCause_Set(q, rfc3576.ErrorCause_Value_SessionContextNotFound)
			return q
		}, CoANak, 503},
		{"silent", func(*radius.Packet) *radius.Packet { return nil }, CoATimeout, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port, got := fakeNAS(t, tc.answer)
			r := newRig(t, func(o *Options) {
				o.Clients[0].CoAPort = port
				o.CoATimeouts = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}
			})
			mac := mustMAC("02:00:00:00:00:01")
			if _, err := r.st.RecordAccounting(context.Background(), store.AccountingUpdate{Status: store.AcctStart, NAS: "aps",
				NASAddr: netip.MustParseAddr("127.0.0.1"), AcctSessionID: "S9", Username: "amy", MAC: mac, At: time.Now()}); err != nil {
				t.Fatal(err)
			}
			res, err := r.srv.Disconnect(context.Background(), "nm", mac)
			if err != nil || len(res) != 1 {
				t.Fatalf("%v %v", res, err)
			}
			if res[0].Outcome != tc.outcome || res[0].ErrorCause != tc.cause {
				t.Fatalf("result %+v", res[0])
			}
			req := <-got
			if rfc2866.AcctSessionID_GetString(req) != "S9" || rfc2865.CallingStationID_GetString(req) != "02-00-00-00-00-01" ||
				rfc2865.UserName_GetString(req) != "amy" {
				t.Fatalf("request attributes %v", req.Attributes)
			}
			if _, err := rfc2869.EventTimestamp_Lookup(req); err != nil {
				t.Fatal("no Event-Timestamp")
			}
			if tc.outcome == CoATimeout && res[0].Tries != 2 {
				t.Fatalf("tries %d", res[0].Tries)
			}
			nas := r.srv.NAS()
			if len(nas) != 1 || nas[0].CoA[tc.outcome] != 1 || len(nas[0].LastCoA) != 1 {
				t.Fatalf("NAS book %+v", nas)
			}
			log, _ := r.st.AuditList(context.Background(), 5, 0)
			if len(log) == 0 || log[0].Action != "session.disconnect" {
				t.Fatalf("not audited: %+v", log)
			}
			if err := (MACDisconnector{Server: r.srv, Actor: "leavers"}).Disconnect(context.Background(), mac); (err == nil) != (tc.outcome == CoAAck) {
				t.Fatalf("MACDisconnector: %v for %s", err, tc.outcome)
			}
			<-got
		})
	}
}

func TestCollectorExportsPerClientCounters(t *testing.T) {
	r := newRig(t, nil)
	req := signRequest(t, radius.New(radius.CodeStatusServer, []byte(testSecret)), false)
	checkReply(t, req, exchange(t, r.srv.AuthAddr(), req, wait), testSecret)
	reg := prometheus.NewRegistry()
	reg.MustRegister(r.srv.Collector())
	n, err := testutil.GatherAndCount(reg, "gatehouse_radius_requests_total", "gatehouse_radius_responses_total")
	if err != nil || n < 2 {
		t.Fatalf("%d series, %v", n, err)
	}
}

func TestOptOutOfMessageAuthenticatorIsWarnedAtStart(t *testing.T) {
	var buf bytes.Buffer
	_, err := New(Options{
		Clients: []Client{{Name: "old-ap", Prefix: netip.MustParsePrefix("10.99.0.7/32"), Secret: []byte("x"), RequireMessageAuthenticator: false},
			{Name: "aps", Prefix: netip.MustParsePrefix("10.99.0.0/24"), Secret: []byte("y"), RequireMessageAuthenticator: true}},
		Devices: &fakeDevices{m: map[string]DeviceInfo{}},
		Logger:  slog.New(slog.NewTextHandler(&buf, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "client=old-ap") || !strings.Contains(out, "BlastRADIUS") || strings.Contains(out, "client=aps") {
		t.Fatalf("log:\n%s", out)
	}
}

func TestARevokedPersonsDeviceGetsNoKeyThroughTheStoreAdapterPath(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	p, err := r.st.CreatePerson(ctx, "nm", store.Person{Kind: "staff", StaffCode: "ABC", LegalForename: "Al", LegalSurname: "Bee"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	mac := mustMAC("02:00:00:00:00:61")
	if err := r.st.ApproveDevice(ctx, "nm", mac, "staff", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := r.st.SetDeviceOwner(ctx, "nm", mac, p.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.keys.Rotate(ctx, "nm", mac); err != nil {
		t.Fatal(err)
	}
	// What the daemon's adapter does: one query, sealed key included.
	lookup := func() {
		v, err := r.st.DeviceForRADIUS(ctx, mac)
		if err != nil {
			t.Fatal(err)
		}
		r.devices.set(mac.String(), DeviceInfo{Approved: v.Approved, Segment: v.Segment, Owner: v.Owner, SealedKeyRead: true, SealedKey: v.PSKSealed})
	}
	lookup()
	req := signRequest(t, mabRequest(testSecret, "02-00-00-00-00-61", "0A-00-00-00-00-01:Staff"), false)
	if p := checkReply(t, req, exchange(t, r.srv.AuthAddr(), req, wait), testSecret); p.Code != radius.CodeAccessAccept || p.Get(69) == nil {
		t.Fatalf("before: %v, Tunnel-Password %x", p.Code, p.Get(69))
	}
	if err := (PersonKeys{Store: r.st, Actor: "leavers"}).DisablePerson(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	lookup()
	req = signRequest(t, mabRequest(testSecret, "02-00-00-00-00-61", "0A-00-00-00-00-01:Staff"), false)
	if p := checkReply(t, req, exchange(t, r.srv.AuthAddr(), req, wait), testSecret); p.Get(69) != nil {
		t.Fatal("the key still goes out after the person's keys were disabled")
	}
}

// A wired 802.1X switch names no SSID: its logins go to the segment its
// client entry names, and without one they are rejected as before.
func TestWiredLoginWithoutSSIDUsesTheClientsSegment(t *testing.T) {
	hash, err := password.Hash("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	pap := func(r *rig, user string) *radius.Packet {
		p := radius.New(radius.CodeAccessRequest, []byte(testSecret))
		_ = rfc2865.UserName_SetString(p, user)
		_ = rfc2865.UserPassword_SetString(p, "correct horse battery")
		_ = rfc2865.CalledStationID_SetString(p, "0A-00-00-00-00-01") // a switch: no SSID
		req := signRequest(t, p, false)
		return checkReply(t, req, exchange(t, r.srv.AuthAddr(), req, 20*time.Second), testSecret)
	}
	plain := newRig(t, nil)
	plain.ids.set("visiting", Identity{Person: "T099", PasswordHash: hash, Active: true})
	if p := pap(plain, "visiting"); p.Code != radius.CodeAccessReject {
		t.Fatalf("no SSID, no person segment, no client segment: %v, want reject", p.Code)
	}
	wired := newRig(t, func(o *Options) { o.Clients[0].Segment = "staff" })
	wired.ids.set("visiting", Identity{Person: "T099", PasswordHash: hash, Active: true})
	wired.ids.set("pupil", Identity{Person: "P001", PasswordHash: hash, Active: true, Segment: "pupil"})
	if p := pap(wired, "visiting"); p.Code != radius.CodeAccessAccept || vlanOf(t, p) != "10" {
		t.Fatalf("switch port on the staff segment: %v, want Accept on VLAN 10", p.Code)
	}
	// The client's segment is what the port asks for: a person of another
	// segment is refused there, as on another segment's SSID.
	if p := pap(wired, "pupil"); p.Code != radius.CodeAccessReject {
		t.Fatalf("a pupil on the staff switch: %v, want reject", p.Code)
	}
}

// Several valid keys (a rotation with an overlap) go out as several
// Tunnel-Password attributes, each decrypting to its key, through both
// the store adapter's one-query path and the Keyring's own read; once the
// overlap ends only the new key goes out.
func TestRotationOverlapSendsOneTunnelPasswordPerValidKey(t *testing.T) {
	var clock atomic.Pointer[time.Time]
	start := time.Now()
	clock.Store(&start)
	r := newRig(t, func(o *Options) { o.Now = func() time.Time { return *clock.Load() } })
	ctx := context.Background()
	mac := mustMAC("02:00:00:00:00:71")
	if err := r.st.ApproveDevice(ctx, "nm", mac, "staff", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	oldKey, err := r.keys.Rotate(ctx, "nm", mac)
	if err != nil {
		t.Fatal(err)
	}
	newKey, err := r.keys.RotateKeepingOld(ctx, "nm", mac, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if oldKey == newKey {
		t.Fatal("the rotation gave the same key")
	}
	keysSent := func() (tunnel, aruba []string) {
		t.Helper()
		rp := mabRequest(testSecret, "02-00-00-00-00-71", "0A-00-00-00-00-01:Staff")
		req := signRequest(t, rp, false)
		p := checkReply(t, req, exchange(t, r.srv.AuthAddr(), req, wait), testSecret)
		if p.Code != radius.CodeAccessAccept {
			t.Fatalf("%v", p.Code)
		}
		for _, a := range p.Attributes {
			switch a.Type {
			case 69:
				pw, _, err := radius.TunnelPassword(a.Attribute[1:], []byte(testSecret), rp.Authenticator[:])
				if err != nil {
					t.Fatal(err)
				}
				tunnel = append(tunnel, string(pw))
			case rfc2865.VendorSpecific_Type:
				if vendor, v, err := radius.VendorSpecific(a.Attribute); err == nil && vendor == vendorAruba {
					pw, _, err := radius.TunnelPassword(v[2:], []byte(testSecret), rp.Authenticator[:])
					if err != nil {
						t.Fatal(err)
					}
					aruba = append(aruba, string(pw))
				}
			}
		}
		return tunnel, aruba
	}
	both := newKey + "," + oldKey
	// The store adapter path: one query, old keys included.
	adapter := func() {
		d, err := StoreDevices{Store: r.st}.Lookup(ctx, mac)
		if err != nil {
			t.Fatal(err)
		}
		r.devices.set(mac.String(), d)
	}
	adapter()
	if tp, ar := keysSent(); strings.Join(tp, ",") != both || strings.Join(ar, ",") != both {
		t.Fatalf("within the overlap (adapter): Tunnel-Password %v Aruba %v, want %s", tp, ar, both)
	}
	// The Keyring's own read (a Devices that does not read keys).
	r.devices.set(mac.String(), DeviceInfo{Approved: true})
	if tp, _ := keysSent(); strings.Join(tp, ",") != both {
		t.Fatalf("within the overlap (keyring): Tunnel-Password %v, want %s", tp, both)
	}
	// After the overlap: the server's clock drops the old key.
	later := time.Now().Add(2 * time.Hour)
	clock.Store(&later)
	adapter()
	if tp, ar := keysSent(); strings.Join(tp, ",") != newKey || strings.Join(ar, ",") != newKey {
		t.Fatalf("after the overlap: Tunnel-Password %v Aruba %v, want only %s", tp, ar, newKey)
	}
}

// A CoA-Request (code 43) carries the change and identifies the session as
// Disconnect does; CoA-ACK, CoA-NAK with its Error-Cause, silence, and a
// Disconnect-ACK (an answer to another kind of request) are each recorded
// as what they are.
func TestChangeOfAuthorizationReachesTheNASAndRecordsTheAnswer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answer  func(*radius.Packet) *radius.Packet
		outcome string
		cause   uint32
	}{
		{"ack", func(p *radius.Packet) *radius.Packet { return p.Response(radius.CodeCoAACK) }, CoAAck, 0},
		{"nak", func(p *radius.Packet) *radius.Packet {
			q := p.Response(radius.CodeCoANAK)
			_ = rfc3576.ErrorCause_Set(q, rfc3576.ErrorCause_Value_UnsupportedAttribute)
			return q
		}, CoANak, 401},
		{"silent", func(*radius.Packet) *radius.Packet { return nil }, CoATimeout, 0},
		{"disconnect-ack", func(p *radius.Packet) *radius.Packet { return p.Response(radius.CodeDisconnectACK) }, CoATimeout, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port, got := fakeNAS(t, tc.answer)
			r := newRig(t, func(o *Options) {
				o.Clients[0].CoAPort = port
				o.CoATimeouts = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}
			})
			mac := mustMAC("02:00:00:00:00:02")
			if _, err := r.st.RecordAccounting(context.Background(), store.AccountingUpdate{Status: store.AcctStart, NAS: "aps",
				NASAddr: netip.MustParseAddr("127.0.0.1"), AcctSessionID: "S10", Username: "amy", MAC: mac, At: time.Now()}); err != nil {
				t.Fatal(err)
			}
			if _, err := r.srv.ChangeAuthorization(context.Background(), "nm", mac, Change{}); err == nil {
				t.Fatal("an empty change was sent")
			}
			res, err := r.srv.ChangeAuthorization(context.Background(), "nm", mac, Change{SessionTimeout: 90 * time.Minute, VLAN: 20})
			if err != nil || len(res) != 1 {
				t.Fatalf("%v %v", res, err)
			}
			if res[0].Kind != KindCoA || res[0].Outcome != tc.outcome || res[0].ErrorCause != tc.cause {
				t.Fatalf("result %+v", res[0])
			}
			req := <-got
			if req.Code != radius.CodeCoARequest || rfc2866.AcctSessionID_GetString(req) != "S10" ||
				rfc2865.CallingStationID_GetString(req) != "02-00-00-00-00-02" || rfc2865.UserName_GetString(req) != "amy" {
				t.Fatalf("request %v %v", req.Code, req.Attributes)
			}
			if _, err := rfc2869.EventTimestamp_Lookup(req); err != nil {
				t.Fatal("no Event-Timestamp")
			}
			if st, err := rfc2865.SessionTimeout_Lookup(req); err != nil || st != 5400 {
				t.Fatalf("Session-Timeout %v %v", st, err)
			}
			if ta, err := rfc2865.TerminationAction_Lookup(req); err != nil || ta != terminationRADIUSReq {
				t.Fatalf("Termination-Action %v %v", ta, err)
			}
			if v := req.Get(81); string(v) != "20" || len(req.Get(64)) != 4 || req.Get(64)[3] != tunnelTypeVLAN {
				t.Fatalf("VLAN attributes %q %x", v, req.Get(64))
			}
			nas := r.srv.NAS()
			if len(nas) != 1 || nas[0].CoA[tc.outcome] != 1 || len(nas[0].LastCoA) != 1 || nas[0].LastCoA[0].Kind != KindCoA {
				t.Fatalf("NAS book %+v", nas)
			}
			log, _ := r.st.AuditList(context.Background(), 5, 0)
			if len(log) == 0 || log[0].Action != "session.coa" {
				t.Fatalf("not audited: %+v", log)
			}
		})
	}
}

func TestParseOverlap(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 0, "72h": 72 * time.Hour, "7d": 7 * 24 * time.Hour, "0d": 0, "366d": MaxOverlap} {
		if got, err := ParseOverlap(in); err != nil || got != want {
			t.Errorf("ParseOverlap(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"forever", "-1h", "367d", "-2d", "1.5d", "9000h"} {
		if got, err := ParseOverlap(in); err == nil {
			t.Errorf("ParseOverlap(%q) = %v; want an error", in, got)
		}
	}
}

// The per-client counters of the common case are resolved once and kept
// (metrics.go's hotCounters): they must still count each request and
// reply under the same labels as the vectors' other series.
func TestHotCountersCountUnderTheVectorsLabels(t *testing.T) {
	r := newRig(t, nil)
	r.devices.set("02:00:00:00:00:01", DeviceInfo{Approved: true})
	for range 2 {
		req := signRequest(t, mabRequest(testSecret, "020000000001", "0A-00-00-00-00-01:Pupils"), false)
		if p := checkReply(t, req, exchange(t, r.srv.AuthAddr(), req, wait), testSecret); p.Code != radius.CodeAccessAccept {
			t.Fatalf("approved device: %v", p.Code)
		}
	}
	// A stranger on a segment that denies strangers: a reject.
	req := signRequest(t, mabRequest(testSecret, "020000000009", "0A-00-00-00-00-01:Lab"), false)
	if p := checkReply(t, req, exchange(t, r.srv.AuthAddr(), req, wait), testSecret); p.Code != radius.CodeAccessReject {
		t.Fatalf("stranger on Lab: %v", p.Code)
	}
	for _, c := range []struct {
		vec  *prometheus.CounterVec
		code string
		want float64
	}{
		{r.srv.metrics.requests, "Access-Request", 3},
		{r.srv.metrics.responses, "Access-Accept", 2},
		{r.srv.metrics.responses, "Access-Reject", 1},
	} {
		if got := testutil.ToFloat64(c.vec.WithLabelValues("aps", c.code)); got != c.want {
			t.Errorf("%s: %v, want %v", c.code, got, c.want)
		}
	}
}

// A proxied request's Proxy-State attributes come back in the reply,
// unmodified and in their order, and the reply is still signed right
// (RFC 2865 section 5.33): an Access-Accept, an Access-Reject and an
// Accounting-Response. A request without them gets none.
func TestProxyStateIsCopiedIntoEveryReply(t *testing.T) {
	r := newRig(t, func(o *Options) { o.RejectDelay = 0 })
	r.devices.set("02:00:00:00:00:01", DeviceInfo{Approved: true})
	r.devices.set("02:00:00:00:00:09", DeviceInfo{Known: true, Blocked: true})
	states := [][]byte{[]byte("proxy-one"), {0, 1, 2, 3}, bytes.Repeat([]byte{0xfe}, 200)}
	proxied := func(p *radius.Packet) *radius.Packet {
		for _, s := range states {
			p.Add(typeProxyState, radius.Attribute(s))
		}
		return p
	}
	check := func(what string, resp []byte) {
		t.Helper()
		p, err := radius.Parse(resp, []byte(testSecret))
		if err != nil {
			t.Fatal(err)
		}
		var got [][]byte
		for _, a := range p.Attributes {
			if a.Type == typeProxyState {
				got = append(got, a.Attribute)
			}
		}
		if len(got) != len(states) {
			t.Fatalf("%s: %d Proxy-State attributes, want %d", what, len(got), len(states))
		}
		for i := range states {
			if !bytes.Equal(got[i], states[i]) {
				t.Fatalf("%s: Proxy-State %d is %x, want %x", what, i, got[i], states[i])
			}
		}
	}

	req := signRequest(t, proxied(mabRequest(testSecret, "020000000001", "0A-00-00-00-00-01:Pupils")), false)
	resp := exchange(t, r.srv.AuthAddr(), req, wait)
	if p := checkReply(t, req, resp, testSecret); p.Code != radius.CodeAccessAccept {
		t.Fatalf("accept: %v", p.Code)
	}
	check("Access-Accept", resp)
	// The retransmission is answered from the duplicate cache: the same
	// octets, Proxy-State included.
	if again := exchange(t, r.srv.AuthAddr(), req, wait); !bytes.Equal(again, resp) {
		t.Fatal("the retransmission's reply differs")
	}

	req = signRequest(t, proxied(mabRequest(testSecret, "020000000009", "0A-00-00-00-00-01:Pupils")), false)
	resp = exchange(t, r.srv.AuthAddr(), req, 3*time.Second)
	if p := checkReply(t, req, resp, testSecret); p.Code != radius.CodeAccessReject {
		t.Fatalf("reject: %v", p.Code)
	}
	check("Access-Reject", resp)

	p := proxied(radius.New(radius.CodeAccountingRequest, []byte(testSecret)))
	_ = rfc2866.AcctStatusType_Set(p, rfc2866.AcctStatusType_Value_AccountingOn)
	areq, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	resp = exchange(t, r.srv.AcctAddr(), areq, wait)
	if resp == nil || !radius.IsAuthenticResponse(resp, areq, []byte(testSecret)) {
		t.Fatal("no authentic Accounting-Response")
	}
	check("Accounting-Response", resp)

	req = signRequest(t, mabRequest(testSecret, "020000000001", "0A-00-00-00-00-01:Pupils"), false)
	resp = exchange(t, r.srv.AuthAddr(), req, wait)
	checkReply(t, req, resp, testSecret)
	if hasAttr(resp, typeProxyState) {
		t.Fatal("a request without Proxy-State got one back")
	}
}
