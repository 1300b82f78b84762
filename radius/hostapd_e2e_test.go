package radius

// hostapd (driver=wired) as a switch port and wpa_supplicant -Dwired as the
// device behind it: hostapd reports the session to our accounting port, and
// our Disconnect-Request reaches hostapd's Dynamic Authorization Server
// (radius_das_port), which acknowledges it, ends the port's session and
// reports the Stop.
//
// hostapd's wired driver has no MAC-authentication (MAB) path: macaddr_acl
// applies to IEEE 802.11 association only. Here the port authenticates the
// supplicant with hostapd's own EAP server (EAP-MD5), so that accounting and
// Disconnect are tested on their own; eap_hostapd_e2e_test.go has hostapd
// send the EAP logins themselves to Gatehouse.

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
	"github.com/gatehouse-net/gatehouse/testbed/wired"
)

func TestHostapdAccountingAndDisconnectThroughGatehouse(t *testing.T) {
	wired.Require(t)
	e := newE2E(t)
	e.ids.set("pupil1", Identity{Person: "P0001", Active: true})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// The "switch": hostapd on the router's port towards the byod client.
	login := startWiredLogin(t, ctx, e, "pupil1", "pupil-password")
	seg, hlog := login.seg, login.hap.Log
	defer login.hap.Stop()
	defer login.sup.Stop()

	// Accounting Start reaches Gatehouse as a session naming the device.
	var sess store.RADIUSSession
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		open, err := e.st.RADIUSSessions(context.Background(), store.SessionFilter{OpenOnly: true, MAC: seg.ClientMAC})
		if err != nil {
			t.Fatal(err)
		}
		if len(open) == 1 {
			sess = open[0]
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if sess.ID == 0 {
		t.Fatalf("no session for %s after hostapd's Accounting-Start\n--- hostapd:\n%s", seg.ClientMAC, hlog.Text())
	}
	// hostapd's wired port starts accounting when the station appears,
	// before EAP has named anyone: User-Name is the MAC then.
	if sess.NAS != "aps" || sess.AP == "" || sess.NASAddr.String() != testbed.MgmtRouterIP {
		t.Fatalf("session %+v", sess)
	}

	// Gatehouse -> hostapd's DAS, CoA-Request: Debian 12's hostapd 2.10
	// (built with CONFIG_HS20) accepts only the Hotspot 2.0 Terms and
	// Conditions filtering attribute in a CoA-Request, so a new
	// Session-Timeout or VLAN is answered CoA-NAK, Error-Cause 401
	// (Unsupported-Attribute): recorded as such, and the session stays.
	var coa []CoAResult
	err := e.school.Do("router", func() error {
		var err error
		coa, err = e.srv.ChangeAuthorization(context.Background(), "test", seg.ClientMAC, Change{SessionTimeout: time.Hour, VLAN: 20})
		return err
	})
	if err != nil || len(coa) != 1 {
		t.Fatalf("CoA: %v %v", coa, err)
	}
	if coa[0].Kind != KindCoA || coa[0].Outcome != CoANak || coa[0].ErrorCause != 401 {
		t.Fatalf("hostapd answered the CoA-Request %+v\n--- hostapd:\n%s", coa[0], hlog.Text())
	}
	naks := uint64(0)
	for _, n := range e.srv.NAS() {
		if n.Name == "aps" {
			naks = n.CoA[CoANak]
		}
	}
	if naks != 1 {
		t.Fatalf("the NAK is not in the NAS book: %+v", e.srv.NAS())
	}
	if got, err := e.st.RADIUSSession(context.Background(), sess.ID); err != nil || !got.Open() {
		t.Fatalf("after the NAKed CoA the session is %+v (%v); want still open", got, err)
	}

	// Gatehouse -> hostapd's DAS: acknowledged, and the Stop comes back.
	// The request leaves from the router namespace, as the daemon's would.
	var res []CoAResult
	err = e.school.Do("router", func() error {
		var err error
		res, err = e.srv.Disconnect(context.Background(), "test", seg.ClientMAC)
		return err
	})
	if err != nil || len(res) != 1 {
		t.Fatalf("disconnect: %v %v", res, err)
	}
	if res[0].Outcome != CoAAck {
		t.Fatalf("hostapd answered %+v\n--- hostapd:\n%s", res[0], hlog.Text())
	}
	deadline = time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		got, err := e.st.RADIUSSession(context.Background(), sess.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Open() {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("hostapd acknowledged the Disconnect but no Stop was recorded\n--- hostapd:\n%s", hlog.Text())
}
