package radius

// WPA-Enterprise on a real switch port: hostapd (driver=wired) in the
// router namespace is the authenticator and sends every EAP round to
// Gatehouse; wpa_supplicant -Dwired in the client namespace logs in by each
// method. The accounting session names the person (the Accept's User-Name
// replaces the anonymous outer identity), and after the person is revoked a
// Disconnect-Request ends the session and the next login is rejected.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
)

func TestHostapdWiredEAPThroughGatehouse(t *testing.T) {
	for _, tool := range []string{"hostapd", "wpa_supplicant"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (build/deps installs it): %v", tool, err)
		}
	}
	e := newEAPE2E(t, nil)
	seg, ok := e.school.Segment("byod")
	if !ok {
		t.Fatal("no byod segment in the testbed")
	}
	write := func(name, body string) string {
		p := filepath.Join(e.dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hconf := write("hostapd.conf", fmt.Sprintf(`interface=%s
driver=wired
ieee8021x=1
use_pae_group_addr=1
own_ip_addr=%s
nas_identifier=switch1
auth_server_addr=%s
auth_server_port=1812
auth_server_shared_secret=%s
acct_server_addr=%s
acct_server_port=1813
acct_server_shared_secret=%s
radius_das_port=3799
radius_das_client=%s %s
radius_das_require_event_timestamp=1
radius_das_require_message_authenticator=1
logger_stdout=-1
logger_stdout_level=1
`, seg.Interface, testbed.MgmtRouterIP, testbed.MgmtRouterIP, e2eSecret, testbed.MgmtRouterIP, e2eSecret, testbed.MgmtRouterIP, e2eSecret))
	ctx, cancel := context.WithTimeout(context.Background(), 240*time.Second)
	defer cancel()
	hap := e.school.Command(ctx, "router", "hostapd", "-d", hconf)
	hout, _ := hap.StdoutPipe()
	hap.Stderr = hap.Stdout
	if err := hap.Start(); err != nil {
		t.Fatal(err)
	}
	hlog := watch(hout)
	defer func() { _ = hap.Process.Kill(); _ = hap.Wait() }()
	if !hlog.waitFor("interface state", 20*time.Second) && !hlog.waitFor(seg.Interface, time.Second) {
		t.Fatalf("hostapd did not start:\n%s", hlog.text())
	}
	supplicant := func(t *testing.T, name, network string) (*logWatch, func()) {
		t.Helper()
		conf := write(name+".conf", "ap_scan=0\nnetwork={\n\tkey_mgmt=IEEE8021X\n\teapol_flags=0\n"+network+"}\n")
		sup := e.school.Command(ctx, seg.ClientNS, "wpa_supplicant", "-Dwired", "-i", seg.ClientInterface, "-c", conf, "-d")
		sout, _ := sup.StdoutPipe()
		sup.Stderr = sup.Stdout
		if err := sup.Start(); err != nil {
			t.Fatal(err)
		}
		w := watch(sout)
		return w, func() { _ = sup.Process.Kill(); _ = sup.Wait() }
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
			if !slog.waitFor("CTRL-EVENT-EAP-SUCCESS", 60*time.Second) {
				stop()
				t.Fatalf("wpa_supplicant did not authenticate:\n%s\n--- hostapd:\n%s", tail(slog.text(), 60), tail(hlog.text(), 60))
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
				t.Fatalf("no open session naming the person after %s\n--- hostapd:\n%s", m.method, tail(hlog.text(), 60))
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
			id := e.ids["amy"]
			id.Active = false
			e.ids["amy"] = id
			var res []CoAResult
			err := e.school.Do("router", func() error {
				var err error
				res, err = e.srv.Disconnect(context.Background(), "test", seg.ClientMAC)
				return err
			})
			if err != nil || len(res) == 0 || res[0].Outcome != CoAAck {
				t.Fatalf("disconnect: %+v %v\n--- hostapd:\n%s", res, err, tail(hlog.text(), 40))
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
					t.Fatalf("hostapd acknowledged the Disconnect but no Stop was recorded\n--- hostapd:\n%s", tail(hlog.text(), 40))
				}
				time.Sleep(300 * time.Millisecond)
			}
			// The device tries again: rejected.
			stop()
			again, stopAgain := supplicant(t, "sup-again", e.network(m.method, "1.3", m.user, m.secret))
			defer stopAgain()
			if !again.waitFor("CTRL-EVENT-EAP-FAILURE", 60*time.Second) || strings.Contains(again.text(), "CTRL-EVENT-EAP-SUCCESS") {
				t.Fatalf("the revoked person's next login was not rejected:\n%s", tail(again.text(), 60))
			}
		})
	}
}
