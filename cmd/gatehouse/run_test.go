package main

import (
	"context"
	"crypto/tls"
	"net/http"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/config"
	"github.com/gatehouse-net/gatehouse/internal/testkit"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
	"github.com/gatehouse-net/gatehouse/web/webtest"
)

// waitFor polls cond every 50 ms for up to 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// daemonUnderTest is `gatehouse run` inside a testbed router.
type daemonUnderTest struct {
	school *testbed.School
	cmd    *testbed.Cmd
	log    *testkit.SyncBuffer
	exited chan error
	admin  string // https://host:port of the admin page, reached from mgmt
}

// startDaemon runs bin with the configuration at path in the school's router
// and waits until its admin page answers from the management network.
func startDaemon(t *testing.T, school *testbed.School, bin, path string) *daemonUnderTest {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	d := &daemonUnderTest{school: school, log: &testkit.SyncBuffer{}, exited: make(chan error, 1), admin: "https://" + cfg.Admin.Listen}
	d.cmd = school.Command(context.Background(), "router", bin, "run", "--config", path)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.exited <- d.cmd.Wait() }()
	t.Cleanup(func() { d.kill(t) })
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		select {
		case err := <-d.exited:
			d.exited <- err
			t.Fatalf("gatehouse exited during start (%v):\n%s", err, d.log.String())
		default:
		}
		if d.healthy() {
			return d
		}
	}
	t.Fatalf("gatehouse did not become healthy in 60 s:\n%s", d.log.String())
	return nil
}

func (d *daemonUnderTest) client() *http.Client {
	c := d.school.HTTPClient("mgmt")
	c.Timeout = 5 * time.Second
	// The daemon's own self-signed certificate.
	c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	return c
}

// browser is a webtest browser, not signed in, on the daemon's admin page
// from the management network, patient with argon2 on a loaded machine.
func (d *daemonUnderTest) browser(t testing.TB) *webtest.Browser {
	c := d.client()
	c.Timeout = time.Minute
	return webtest.RemoteVia(t, d.admin, c)
}

func (d *daemonUnderTest) healthy() bool {
	resp, err := d.client().Get(d.admin + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// kill stops the daemon with SIGKILL, as a crash would.
func (d *daemonUnderTest) kill(t *testing.T) {
	if d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case err := <-d.exited:
		d.exited <- err
	case <-time.After(10 * time.Second):
		t.Errorf("gatehouse did not die after SIGKILL")
	}
}

func TestDaemonInTheRouter(t *testing.T) {
	testbed.Require(t)
	bin := buildGatehouse(t)
	segs := testbed.DefaultSegments()
	for i := range segs {
		// The pupil client gets its address from the daemon.
		segs[i].Unconfigured = segs[i].Name == "pupil"
	}
	school := testbed.New(t, testbed.Options{Segments: segs})
	dir := t.TempDir()
	files, err := school.Config(dir)
	if err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(files.Path)
	if err != nil {
		t.Fatal(err)
	}
	// Strangers on the pupil segment are quarantined, so the restart test
	// below also proves a restart keeps them there.
	quarantined := pupilIface.ReplaceAllString(string(good), "${1}interface: gh-pupil\n${1}unknown_devices: quarantine\n")
	if quarantined == string(good) {
		t.Fatalf("the testbed's configuration has no gh-pupil segment:\n%s", good)
	}
	good = []byte(quarantined)
	if err := os.WriteFile(files.Path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	// The static clients' addresses are reserved, as a school must for a
	// device with a static address under MAC-address binding.
	if err := reserveStaticClients(context.Background(), files.Database, school); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, school, bin, files.Path)

	t.Run("SIGHUP with a bad file keeps the running configuration", func(t *testing.T) {
		bad := strings.Replace(string(good), "10.10.0.0/22", "10.10.0.0/33", 1)
		if err := os.WriteFile(files.Path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the refusal in the log", func() bool { return strings.Contains(d.log.String(), "configuration reload refused") })
		if !strings.Contains(d.log.String(), "segments[0].subnet") {
			t.Errorf("the log does not say why the reload was refused:\n%s", d.log.String())
		}
		if !d.healthy() {
			t.Fatal("the daemon stopped serving after a bad reload")
		}
		if err := os.WriteFile(files.Path, good, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the reload in the log", func() bool { return strings.Contains(d.log.String(), "configuration reloaded") })

		// SafeSearch is applied by a reload, without a restart.
		dig := func() string {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out, _ := school.Command(ctx, "staff", "dig", "+time=2", "+tries=2", "@10.10.0.1", "www.google.com", "A").CombinedOutput()
			return string(out)
		}
		if out := dig(); !strings.Contains(out, "forcesafesearch.google.com") {
			t.Fatalf("with safesearch on, www.google.com is not the strict host:\n%s", out)
		}
		off := strings.Replace(string(good), "safesearch: true", "safesearch: false", 1)
		if err := os.WriteFile(files.Path, []byte(off), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "safesearch applied", func() bool { return strings.Contains(d.log.String(), "applied=[dns.safesearch]") })
		if out := dig(); strings.Contains(out, "forcesafesearch.google.com") {
			t.Errorf("after a reload with safesearch off, www.google.com is still the strict host:\n%s", out)
		}
		if err := os.WriteFile(files.Path, good, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "safesearch back on", func() bool { return strings.Count(d.log.String(), "applied=[dns.safesearch]") == 2 })
	})

	t.Run("a pupil device gets a lease and is recorded as an unapproved device", func(t *testing.T) {
		pupil, _ := school.Segment("pupil")
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		// -s /bin/true: take the lease without configuring the interface.
		out, err := school.Command(ctx, "pupil", "udhcpc", "-q", "-n", "-f", "-i", "eth0", "-s", "/bin/true", "-t", "10", "-T", "1", "-x", "hostname:pupil-laptop").CombinedOutput()
		if err != nil {
			t.Fatalf("udhcpc: %v\n%s", err, out)
		}
		m := regexp.MustCompile(`lease of (10\.20\.\d+\.\d+) obtained from 10\.20\.0\.1`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("udhcpc got no lease from the pupil gateway:\n%s", out)
		}
		st, err := store.Open(ctx, files.Database)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		var dev store.Device
		waitFor(t, "the device record", func() bool {
			dev, err = st.DeviceByMAC(ctx, pupil.ClientMAC)
			return err == nil
		})
		if dev.Segment != "pupil" || dev.Hostname != "pupil-laptop" || dev.IP.String() != string(m[1]) {
			t.Errorf("device record %+v, want pupil-laptop on pupil at %s", dev, m[1])
		}
		if dev.Approved {
			t.Errorf("a device nobody approved is recorded as approved")
		}
		waitFor(t, "the stranger in the quarantine set", func() bool {
			return strings.Contains(nftTable(t, school), string(m[1]))
		})
	})

	t.Run("a visitor is held at the portal until a code from reception is redeemed", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		visitorCurl := func(args ...string) (string, error) {
			base := []string{"-s", "-S", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}"}
			out, err := school.Command(ctx, "visitor", "curl", append(base, args...)...).CombinedOutput()
			return string(out), err
		}
		probe := []string{"--resolve", "connectivitycheck.gstatic.com:80:" + testbed.WebIP, "http://connectivitycheck.gstatic.com/generate_204"}
		out, err := visitorCurl(probe...)
		if err != nil || !strings.HasPrefix(out, "302 http://10.40.0.1:8080/") {
			t.Fatalf("Android's probe before admission: %q (%v), want a 302 to the portal", out, err)
		}
		if out, err := visitorCurl("-k", "https://"+testbed.WebIP+"/"); err == nil {
			t.Fatalf("HTTPS before admission reached the internet: %q", out)
		}

		code, stdout, stderr := cli(t, "", "voucher", "issue", "--config", files.Path, "--duration", "2h", "--note", "governor visit")
		if code != 0 {
			t.Fatalf("voucher issue: exit %d: %s", code, stderr)
		}
		voucher := strings.TrimSpace(stdout)
		if !regexp.MustCompile(`^[0-9A-Z]{5}-[0-9A-Z]{5}$`).MatchString(voucher) {
			t.Fatalf("voucher issue printed %q, want one code like ABCDE-FGHJK", stdout)
		}

		out, err = visitorCurl("--data-urlencode", "code="+strings.ToLower(voucher), "-d", "accept=yes", "-d", "lang=en", "http://10.40.0.1:8080/login")
		if err != nil || !(strings.HasPrefix(out, "200") || strings.HasPrefix(out, "303")) {
			t.Fatalf("redeeming the code: %q (%v)", out, err)
		}
		if out, err := visitorCurl("-k", "https://"+testbed.WebIP+"/"); err != nil || !strings.HasPrefix(out, "200") {
			t.Fatalf("HTTPS after admission: %q (%v)", out, err)
		}
		if out, err := visitorCurl(probe...); err != nil || !strings.HasPrefix(out, "204") {
			t.Fatalf("Android's probe after admission: %q (%v), want 204 from the internet", out, err)
		}
	})

	// The pupil client here takes its address by DHCP without configuring
	// it, so the staff client (static address) plays the device.
	t.Run("an SSH session to the outside becomes a stored finding that names the device", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		dev, _ := school.Segment("staff")
		// Any 192.0.2.0/24 address can be bound in the fake internet.
		server := school.Command(ctx, "internet", "nc", "-l", "-s", "192.0.2.30", "-p", "22")
		server.Stdin = strings.NewReader("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
		if err := server.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { server.Process.Kill(); server.Wait() }()
		st, err := store.Open(ctx, files.Database)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		var got []store.Finding
		waitFor(t, "an ssh finding for the device", func() bool {
			client := school.Command(ctx, "staff", "nc", "-w", "1", "192.0.2.30", "22")
			client.Stdin = strings.NewReader("SSH-2.0-OpenSSH_9.2p1\r\n")
			_ = client.Run()
			got, err = st.Findings(ctx, store.FindingFilter{Class: "ssh", MAC: dev.ClientMAC})
			return err == nil && len(got) > 0
		})
		f := got[0]
		if f.Segment != "staff" || f.SrcIP.String() != dev.ClientAddr.String() || f.DstIP.String() != "192.0.2.30" || f.DstPort != 22 {
			t.Errorf("finding %+v, want the device (%s) on the staff segment to 192.0.2.30:22", f, dev.ClientAddr)
		}
	})

	t.Run("SIGKILL leaves the rules in force and a restart changes nothing in the kernel", func(t *testing.T) {
		before := nftTable(t, school)
		if !strings.Contains(before, "table inet gatehouse") {
			t.Fatalf("no gatehouse table in the router:\n%s", before)
		}
		d.kill(t)
		if after := nftTable(t, school); after != before {
			t.Fatalf("the table changed when the daemon died:\n--- before\n%s\n--- after\n%s", before, after)
		}
		d2 := startDaemon(t, school, bin, files.Path)
		defer d2.kill(t)
		if after := nftTable(t, school); after != before {
			t.Fatalf("a restart changed the kernel's table:\n--- before\n%s\n--- after\n%s", before, after)
		}
	})
}

// nftTable is the router's gatehouse table as nft prints it, without the
// counters and element expiry times that change by themselves.
func nftTable(t *testing.T, school *testbed.School) string {
	t.Helper()
	out, err := school.Command(context.Background(), "router", "nft", "-s", "list", "table", "inet", "gatehouse").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list table: %v\n%s", err, out)
	}
	return expires.ReplaceAllString(string(out), "")
}

var expires = regexp.MustCompile(` expires [0-9hms.]+`)

// pupilIface is the pupil segment's interface line, with its indentation.
var pupilIface = regexp.MustCompile(`(?m)^( +)interface: gh-pupil\n`)

func TestReloadPlanAppliesDNSSettingsAndNamesWhatNeedsARestart(t *testing.T) {
	dir := t.TempDir()
	load := func(edit func(string) string) *config.Config {
		t.Helper()
		cfg, err := config.Parse(dir+"/gatehouse.yaml", []byte(edit(testConfig(dir))))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	same := func(s string) string { return s }
	cases := []struct {
		name             string
		edit             func(string) string
		applied, restart []string
	}{
		{"nothing changed", same, nil, nil},
		{"safesearch off", func(s string) string { return s + "  safesearch: false\n" }, []string{"dns.safesearch"}, nil},
		{"another signatures file", func(s string) string { return s + "inspect:\n  signatures: /etc/gatehouse/signatures.txt\n" }, []string{"inspect.signatures"}, nil},
		{"a segment's lease", func(s string) string { return strings.Replace(s, "lease: 8h", "lease: 4h", 1) }, nil, []string{"segments"}},
		{"school renamed and a new upstream", func(s string) string {
			return strings.Replace(strings.Replace(s, "Test School", "New School", 1), "[203.0.113.53]", "[203.0.113.54]", 1)
		}, nil, []string{"site", "dns.upstream"}},
	}
	old := load(same)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			applied, restart := reloadPlan(old, load(tc.edit))
			if strings.Join(applied, ",") != strings.Join(tc.applied, ",") || strings.Join(restart, ",") != strings.Join(tc.restart, ",") {
				t.Errorf("reloadPlan = applied %v, restart %v; want %v, %v", applied, restart, tc.applied, tc.restart)
			}
		})
	}
}
