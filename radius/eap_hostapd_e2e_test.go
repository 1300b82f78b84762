package radius

// WPA-Enterprise on a real switch port: hostapd (driver=wired) in the
// router namespace is the authenticator and sends every EAP round to
// Gatehouse; wpa_supplicant -Dwired in the client namespace logs in by each
// method. The accounting session names the person (the Accept's User-Name
// replaces the anonymous outer identity), and after the person is revoked a
// Disconnect-Request ends the session and the next login is rejected.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
	"github.com/gatehouse-net/gatehouse/testbed/wired"
)

func TestHostapdWiredEAPThroughGatehouse(t *testing.T) {
	wired.Require(t)
	e := newEAPE2E(t, nil)
	seg, ok := e.school.Segment("byod")
	if !ok {
		t.Fatal("no byod segment in the testbed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 240*time.Second)
	defer cancel()
	hap := wired.StartHostapd(t, ctx, e.school, "router", e.dir, "hostapd", wired.Hostapd{Interface: seg.Interface,
		NASIdentifier: "switch1", OwnIP: testbed.MgmtRouterIP, AuthServer: testbed.MgmtRouterIP, AcctServer: testbed.MgmtRouterIP,
		Secret: e2eSecret, DASClient: testbed.MgmtRouterIP})
	defer hap.Stop()
	hlog := hap.Log
	supplicant := func(t *testing.T, name, network string) (*wired.Log, func()) {
		t.Helper()
		p := wired.StartSupplicant(t, ctx, e.school, seg.ClientNS, seg.ClientInterface, e.dir, name, network)
		return p.Log, p.Stop
	}
	personSession := func() (store.RADIUSSession, bool) {
		open, err := e.st.RADIUSSessions(context.Background(), store.SessionFilter{OpenOnly: true, MAC: seg.ClientMAC})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range open {
			if s.Person == "T042" {
				return s, true
			}
		}
		return store.RADIUSSession{}, false
	}
	for _, m := range []struct{ method, user, secret string }{
		{"TTLS-PAP", "amy", amyPassword},
		{"TTLS-MSCHAPV2", "amy", amyPassword},
		{"TLS", "amy@school.example", "amy"},
		{"PEAP", "amy", amyPassword}, // last: it stays on for the revocation below
	} {
		t.Run(m.method, func(t *testing.T) {
			slog, stop := supplicant(t, "sup-"+m.method, e.network(m.method, "1.3", m.user, m.secret))
			if !slog.WaitFor("CTRL-EVENT-EAP-SUCCESS", 60*time.Second) {
				stop()
				t.Fatalf("wpa_supplicant did not authenticate:\n%s\n--- hostapd:\n%s", tail(slog.Text(), 60), tail(hlog.Text(), 60))
			}
			var sess store.RADIUSSession
			deadline := time.Now().Add(30 * time.Second)
			found := false
			for !found && time.Now().Before(deadline) {
				if sess, found = personSession(); !found {
					time.Sleep(300 * time.Millisecond)
				}
			}
			if !found {
				stop()
				t.Fatalf("no open session naming the person after %s\n--- hostapd:\n%s", m.method, tail(hlog.Text(), 60))
			}
			if sess.Username != "amy" && sess.Username != "amy@school.example" {
				t.Errorf("session user %q, want the inner identity", sess.Username)
			}
			if m.method != "PEAP" {
				stop()
				return
			}
			// The person is revoked: a Disconnect ends the port's session,
			// and the supplicant's next login is rejected.
			id, _ := e.ids.get("amy")
			id.Active = false
			e.ids.set("amy", id)
			var res []CoAResult
			err := e.school.Do("router", func() error {
				var err error
				res, err = e.srv.Disconnect(context.Background(), "test", seg.ClientMAC)
				return err
			})
			if err != nil || len(res) == 0 || res[0].Outcome != CoAAck {
				t.Fatalf("disconnect: %+v %v\n--- hostapd:\n%s", res, err, tail(hlog.Text(), 40))
			}
			deadline = time.Now().Add(20 * time.Second)
			for {
				got, err := e.st.RADIUSSession(context.Background(), sess.ID)
				if err != nil {
					t.Fatal(err)
				}
				if !got.Open() {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("hostapd acknowledged the Disconnect but no Stop was recorded\n--- hostapd:\n%s", tail(hlog.Text(), 40))
				}
				time.Sleep(300 * time.Millisecond)
			}
			// The device tries again: rejected.
			stop()
			again, stopAgain := supplicant(t, "sup-again", e.network(m.method, "1.3", m.user, m.secret))
			defer stopAgain()
			if !again.WaitFor("CTRL-EVENT-EAP-FAILURE", 60*time.Second) || strings.Contains(again.Text(), "CTRL-EVENT-EAP-SUCCESS") {
				t.Fatalf("the revoked person's next login was not rejected:\n%s", tail(again.Text(), 60))
			}
		})
	}
}
