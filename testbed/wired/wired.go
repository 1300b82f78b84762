// Package wired starts the real IEEE 802.1X peers that the RADIUS, people
// and daemon tests talk to: hostapd with driver=wired as a switch port in
// one testbed namespace, and wpa_supplicant -Dwired as the device plugged
// into it in another. It owns their configuration files, their start and
// stop, and reading their output; the tests keep what they assert. It is
// not used by the product.
package wired

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

	"github.com/gatehouse-net/gatehouse/testbed"
)

// Require fails the test when hostapd or wpa_supplicant is missing
// (build/deps installs both).
func Require(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"hostapd", "wpa_supplicant"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (build/deps installs it): %v", tool, err)
		}
	}
}

// Log collects a process's output lines.
type Log struct {
	mu    sync.Mutex
	lines []string
	more  chan struct{}
}

// Collect reads r's lines into a Log until r ends.
func Collect(r io.Reader) *Log {
	l := &Log{more: make(chan struct{}, 1)}
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			l.mu.Lock()
			l.lines = append(l.lines, sc.Text())
			l.mu.Unlock()
			select {
			case l.more <- struct{}{}:
			default:
			}
		}
	}()
	return l
}

// Text is every line so far.
func (l *Log) Text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// Tail is the last n lines, for a failure's message.
func (l *Log) Tail(n int) string { return Tail(l.Text(), n) }

// Tail is the last n lines of s.
func Tail(s string, n int) string {
	ls := strings.Split(s, "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

// WaitFor waits up to d for a line containing sub, reporting whether one
// came.
func (l *Log) WaitFor(sub string, d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		if strings.Contains(l.Text(), sub) {
			return true
		}
		select {
		case <-l.more:
		case <-time.After(200 * time.Millisecond):
		case <-deadline.C:
			return strings.Contains(l.Text(), sub)
		}
	}
}

// Process is a started hostapd or wpa_supplicant.
type Process struct {
	Log  *Log
	cmd  *testbed.Cmd
	once sync.Once
}

// Stop kills the process and waits for it; it may be called more than
// once (the test's cleanup calls it too).
func (p *Process) Stop() {
	p.once.Do(func() {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	})
}

func start(t testing.TB, ctx context.Context, s *testbed.School, ns string, args ...string) *Process {
	t.Helper()
	cmd := s.Command(ctx, ns, args[0], args[1:]...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s in %s: %v", args[0], ns, err)
	}
	p := &Process{Log: Collect(out), cmd: cmd}
	t.Cleanup(p.Stop)
	return p
}

// Hostapd is a switch port: hostapd with driver=wired on Interface,
// asking AuthServer (or, without one, its own EAP server with the users of
// EAPUserFile), reporting to AcctServer, and taking Disconnect and CoA
// requests from DASClient on port 3799 when that is set.
type Hostapd struct {
	Interface     string
	SSID          string // named in Called-Station-Id; "" for none
	NASIdentifier string
	OwnIP         string
	AuthServer    string // host; port 1812
	EAPUserFile   string // hostapd's own EAP server's users, when AuthServer is ""
	AcctServer    string // host; port 1813; "" for no accounting
	Secret        string
	DASClient     string // the address that may send Disconnect/CoA; "" for none
}

// Config is the hostapd.conf text.
func (h Hostapd) Config() string {
	var b strings.Builder
	fmt.Fprintf(&b, "interface=%s\ndriver=wired\n", h.Interface)
	if h.SSID != "" {
		fmt.Fprintf(&b, "ssid=%s\n", h.SSID)
	}
	b.WriteString("ieee8021x=1\nuse_pae_group_addr=1\n")
	if h.AuthServer == "" {
		fmt.Fprintf(&b, "eap_server=1\neap_user_file=%s\n", h.EAPUserFile)
	}
	fmt.Fprintf(&b, "own_ip_addr=%s\nnas_identifier=%s\n", h.OwnIP, h.NASIdentifier)
	if h.AuthServer != "" {
		fmt.Fprintf(&b, "auth_server_addr=%s\nauth_server_port=1812\nauth_server_shared_secret=%s\n", h.AuthServer, h.Secret)
	}
	if h.AcctServer != "" {
		fmt.Fprintf(&b, "acct_server_addr=%s\nacct_server_port=1813\nacct_server_shared_secret=%s\n", h.AcctServer, h.Secret)
	}
	if h.DASClient != "" {
		fmt.Fprintf(&b, "radius_das_port=3799\nradius_das_client=%s %s\nradius_das_require_event_timestamp=1\nradius_das_require_message_authenticator=1\n", h.DASClient, h.Secret)
	}
	b.WriteString("logger_stdout=-1\nlogger_stdout_level=1\n")
	return b.String()
}

// StartHostapd writes h's configuration into dir as name.conf, runs
// hostapd -d with it in namespace ns until ctx ends or the test does, and
// waits until the port is up.
func StartHostapd(t testing.TB, ctx context.Context, s *testbed.School, ns, dir, name string, h Hostapd) *Process {
	t.Helper()
	conf := write(t, dir, name+".conf", h.Config())
	p := start(t, ctx, s, ns, "hostapd", "-d", conf)
	if !p.Log.WaitFor("interface state", 20*time.Second) && !strings.Contains(p.Log.Text(), h.Interface) {
		t.Fatalf("hostapd did not start:\n%s", p.Log.Tail(30))
	}
	return p
}

// StartSupplicant writes a wired 802.1X network block into dir as
// name.conf and runs wpa_supplicant -Dwired with it on iface in namespace
// ns. network is the block's inside (eap=, identity=, ... each line ending
// in a newline); key_mgmt and eapol_flags are set here.
func StartSupplicant(t testing.TB, ctx context.Context, s *testbed.School, ns, iface, dir, name, network string) *Process {
	t.Helper()
	conf := write(t, dir, name+".conf", "ap_scan=0\nnetwork={\n\tkey_mgmt=IEEE8021X\n\teapol_flags=0\n"+network+"}\n")
	return start(t, ctx, s, ns, "wpa_supplicant", "-Dwired", "-i", iface, "-c", conf, "-d")
}

func write(t testing.TB, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
