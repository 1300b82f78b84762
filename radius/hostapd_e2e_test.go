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
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
)

// logWatch collects a process's output lines and waits for one.
type logWatch struct {
	mu    sync.Mutex
	lines []string
	cond  chan struct{}
}

func watch(r io.Reader) *logWatch {
	w := &logWatch{cond: make(chan struct{}, 1)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			w.mu.Lock()
			w.lines = append(w.lines, sc.Text())
			w.mu.Unlock()
			select {
			case w.cond <- struct{}{}:
			default:
			}
		}
	}()
	return w
}

func (w *logWatch) text() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n")
}

func (w *logWatch) waitFor(sub string, d time.Duration) bool {
	deadline := time.After(d)
	for {
		if strings.Contains(w.text(), sub) {
			return true
		}
		select {
		case <-w.cond:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			return false
		}
	}
}

func TestHostapdAccountingAndDisconnectThroughGatehouse(t *testing.T) {
	for _, tool := range []string{"hostapd", "wpa_supplicant"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (build/deps installs it): %v", tool, err)
		}
	}
	e := newE2E(t)
	e.ids["pupil1"] = Identity{Person: "P0001", Active: true}
	seg, ok := e.school.Segment("byod")
	if !ok {
		t.Fatal("no byod segment in the testbed")
	}
	dir := e.dir
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	users := write("eap_users", "\"pupil1\" MD5 \"pupil-password\"\n")
	hconf := write("hostapd.conf", fmt.Sprintf(`interface=%s
driver=wired
ieee8021x=1
use_pae_group_addr=1
eap_server=1
eap_user_file=%s
own_ip_addr=%s
nas_identifier=switch1
acct_server_addr=%s
acct_server_port=1813
acct_server_shared_secret=%s
radius_das_port=3799
radius_das_client=%s %s
radius_das_require_event_timestamp=1
radius_das_require_message_authenticator=1
logger_stdout=-1
logger_stdout_level=1
`, seg.Interface, users, testbed.MgmtRouterIP, testbed.MgmtRouterIP, e2eSecret, testbed.MgmtRouterIP, e2eSecret))
	wconf := write("wpa_supplicant.conf", `ap_scan=0
network={
	key_mgmt=IEEE8021X
	eap=MD5
	identity="pupil1"
	password="pupil-password"
	eapol_flags=0
}
`)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// The "switch": hostapd on the router's port towards the byod client.
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

	sup := e.school.Command(ctx, seg.ClientNS, "wpa_supplicant", "-Dwired", "-i", seg.ClientInterface, "-c", wconf, "-d")
	sout, _ := sup.StdoutPipe()
	sup.Stderr = sup.Stdout
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	slog := watch(sout)
	defer func() { _ = sup.Process.Kill(); _ = sup.Wait() }()
	if !slog.waitFor("CTRL-EVENT-EAP-SUCCESS", 40*time.Second) {
		t.Fatalf("wpa_supplicant did not authenticate:\n%s\n--- hostapd:\n%s", slog.text(), hlog.text())
	}

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
		t.Fatalf("no session for %s after hostapd's Accounting-Start\n--- hostapd:\n%s", seg.ClientMAC, hlog.text())
	}
	// hostapd's wired port starts accounting when the station appears,
	// before EAP has named anyone: User-Name is the MAC then.
	if sess.NAS != "aps" || sess.AP == "" || sess.NASAddr.String() != testbed.MgmtRouterIP {
		t.Fatalf("session %+v", sess)
	}

	// Gatehouse -> hostapd's DAS: acknowledged, and the Stop comes back.
	// The request leaves from the router namespace, as the daemon's would.
	var res []CoAResult
	err := e.school.Do("router", func() error {
		var err error
		res, err = e.srv.Disconnect(context.Background(), "test", seg.ClientMAC)
		return err
	})
	if err != nil || len(res) != 1 {
		t.Fatalf("disconnect: %v %v", res, err)
	}
	if res[0].Outcome != CoAAck {
		t.Fatalf("hostapd answered %+v\n--- hostapd:\n%s", res[0], hlog.text())
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
	t.Fatalf("hostapd acknowledged the Disconnect but no Stop was recorded\n--- hostapd:\n%s", hlog.text())
}
