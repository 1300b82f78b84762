package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/testbed"
)

// TestDaemonRADIUSWithTheCommandLine runs the real daemon in the testbed's
// router, approves a device and gives it a key with the command line, and
// checks with radclient (from the management network, where the access
// points are) that the Accept carries the pupil VLAN and that Tunnel-Password
// decrypts to the key the command printed; accounting makes a session that
// `gatehouse sessions` lists, before and after a restart.
func TestDaemonRADIUSWithTheCommandLine(t *testing.T) {
	testbed.Require(t)
	if _, err := exec.LookPath("radclient"); err != nil {
		t.Fatal("radclient is not installed (freeradius-utils; build/deps installs it)")
	}
	bin := buildGatehouse(t)
	school := testbed.New(t, testbed.Options{})
	dir := t.TempDir()
	files, err := school.Config(dir)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(files.Path)
	if err != nil {
		t.Fatal(err)
	}
	withSSID := pupilIface.ReplaceAllString(string(raw), "${1}interface: gh-pupil\n${1}ssids: [Pupils]\n")
	if withSSID == string(raw) {
		t.Fatal("no pupil segment in the testbed configuration")
	}
	if err := os.WriteFile(files.Path, []byte(withSSID), 0o600); err != nil {
		t.Fatal(err)
	}
	const nmPassword = "a long network manager passphrase"
	if code, _, stderr := cli(t, nmPassword+"\n", "user", "add", "--config", files.Path, "--role", "network", "--name", "nm"); code != 0 {
		t.Fatalf("user add: %s", stderr)
	}
	d := startDaemon(t, school, bin, files.Path)

	cli := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("gatehouse %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	radclient := func(kind string, attrs ...string) string {
		t.Helper()
		f := filepath.Join(dir, fmt.Sprintf("req-%d.txt", time.Now().UnixNano()))
		if err := os.WriteFile(f, []byte(strings.Join(attrs, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		port := "1812"
		if kind == "acct" {
			port = "1813"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, _ := school.Command(ctx, "mgmt", "radclient", "-x", "-r", "2", "-t", "3", "-f", f,
			testbed.MgmtRouterIP+":"+port, kind, files.RadiusSecret).CombinedOutput()
		return string(out)
	}
	const mac = "3c:22:fb:01:02:03"
	mab := []string{`User-Name = "3C22FB010203"`, `User-Password = "3C22FB010203"`, `Calling-Station-Id = "3C-22-FB-01-02-03"`,
		`Called-Station-Id = "0A-00-00-00-00-01:Pupils"`, `Message-Authenticator = 0x00`}

	cli("device", "approve", "--config", files.Path, "--mac", mac, "--segment", "pupil", "--name", "Pupil laptop 7")
	out := cli("device", "key", "--config", files.Path, "--mac", mac, "--ssid", "Pupils")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "WIFI:T:WPA;S:Pupils;P:") {
		t.Fatalf("device key printed:\n%s", out)
	}
	key := lines[0]

	check := func(when string) {
		t.Helper()
		got := radclient("auth", mab...)
		if !strings.Contains(got, "Received Access-Accept") || !strings.Contains(got, `Tunnel-Private-Group-Id:0 = "20"`) {
			t.Fatalf("%s: MAB of the approved device:\n%s\n--- daemon:\n%s", when, got, d.log.String())
		}
		if !strings.Contains(got, fmt.Sprintf("Tunnel-Password:0 = %q", key)) {
			t.Fatalf("%s: Tunnel-Password is not the printed key %q:\n%s", when, key, got)
		}
	}
	check("first start")

	// A rotation with an overlap: radclient decrypts two Tunnel-Password
	// attributes, the new key and the one it replaces, both valid for now.
	newKey := strings.TrimSpace(cli("device", "key", "--config", files.Path, "--mac", mac, "--keep-old", "7d"))
	if newKey == key || strings.Contains(newKey, "\n") {
		t.Fatalf("device key --keep-old printed %q (old %q)", newKey, key)
	}
	if got := radclient("auth", mab...); strings.Count(got, "Tunnel-Password:0 = ") != 2 ||
		!strings.Contains(got, fmt.Sprintf("Tunnel-Password:0 = %q", key)) || !strings.Contains(got, fmt.Sprintf("Tunnel-Password:0 = %q", newKey)) {
		t.Fatalf("after device key --keep-old 7d: want both %q and %q as Tunnel-Password:\n%s", key, newKey, got)
	}
	key = newKey
	// The daemon learns of the command line's keys from the key
	// generation, not a minute's poll, and derives nothing: both keys'
	// PMKs were stored by the command line when it made them.
	waitFor(t, "the daemon loading the command line's two keys", func() bool { return pmkLoad.MatchString(d.log.String()) })

	// The devices API approves as the command line does: a second device,
	// approved by a script with a token, is accepted onto the pupil VLAN.
	b := d.browser(t)
	b.Login("nm", nmPassword)
	token := b.NewToken("approvals")
	if r := b.API(http.MethodPost, "/api/v1/devices", token, `{"mac":"3c:22:fb:01:02:04","segment":"pupil","owner":"NOBODY"}`); r.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("API approval naming nobody: %d %s", r.StatusCode, r.Body)
	}
	if r := b.API(http.MethodPost, "/api/v1/devices", token, `{"mac":"3c:22:fb:01:02:04","segment":"pupil","name":"Pupil laptop 8"}`); r.StatusCode != http.StatusOK {
		t.Fatalf("API approval: %d %s", r.StatusCode, r.Body)
	}
	if r := b.API(http.MethodGet, "/api/v1/devices", token, ""); r.StatusCode != http.StatusOK || !strings.Contains(r.Body, `"mac":"3c:22:fb:01:02:04"`) {
		t.Fatalf("API devices: %d %s", r.StatusCode, r.Body)
	}
	got := radclient("auth", `User-Name = "3C22FB010204"`, `User-Password = "3C22FB010204"`, `Calling-Station-Id = "3C-22-FB-01-02-04"`,
		`Called-Station-Id = "0A-00-00-00-00-01:Pupils"`, `Message-Authenticator = 0x00`)
	if !strings.Contains(got, "Received Access-Accept") || !strings.Contains(got, `Tunnel-Private-Group-Id:0 = "20"`) {
		t.Fatalf("MAB of the device the API approved:\n%s", got)
	}

	acct := radclient("acct", `Acct-Status-Type = Start`, `Acct-Session-Id = "CLI-1"`, `User-Name = "3C22FB010203"`,
		`Calling-Station-Id = "3C-22-FB-01-02-03"`, `Called-Station-Id = "0A-00-00-00-00-01:Pupils"`, `Framed-IP-Address = 10.20.0.99`)
	if !strings.Contains(acct, "Received Accounting-Response") {
		t.Fatalf("accounting:\n%s", acct)
	}
	sessions := func() []map[string]any {
		t.Helper()
		var doc struct {
			Sessions []map[string]any `json:"sessions"`
		}
		if err := json.Unmarshal([]byte(cli("sessions", "--config", files.Path, "--json")), &doc); err != nil {
			t.Fatal(err)
		}
		return doc.Sessions
	}
	if s := sessions(); len(s) != 1 || s[0]["mac"] != mac || s[0]["ip"] != "10.20.0.99" || s[0]["ssid"] != "Pupils" {
		t.Fatalf("sessions: %v", s)
	}

	// A restart keeps the session and keeps answering the same.
	d.kill(t)
	d = startDaemon(t, school, bin, files.Path)
	if s := sessions(); len(s) != 1 || s[0]["acct_session_id"] != "CLI-1" {
		t.Fatalf("sessions after a restart: %v", s)
	}
	check("after a restart")
	// A start loads the stored PMKs: no PBKDF2.
	waitFor(t, "the restarted daemon loading the stored PMKs", func() bool { return pmkLoad.MatchString(d.log.String()) })
}

// pmkLoad is the daemon's log line for loading the two keys of the test's
// device (the current one and the one kept for the overlap) on the Pupils
// SSID from the stored PMKs, deriving none.
var pmkLoad = regexp.MustCompile(`personal keys for 4-way handshakes loaded.* keys=2 pmks=2 derived=0`)
