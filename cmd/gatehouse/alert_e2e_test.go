package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/gatehouse-net/gatehouse/alert"
	"github.com/gatehouse-net/gatehouse/alert/alerttest"
	"github.com/gatehouse-net/gatehouse/internal/testkit"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
)

// defaultAlertRuns is how many separate VPN alerts the end-to-end test
// raises to measure the time from the tool starting to the DSL's email;
// GATEHOUSE_ALERT_RUNS overrides it (`make test` runs fewer, `make e2e-full`
// the 20).
const defaultAlertRuns = 20

// smtpOutage is how long the mail server is down in the end-to-end test;
// GATEHOUSE_SMTP_OUTAGE (a Go duration) overrides it.
const smtpOutage = 2 * time.Minute

// udhcpcScript configures the interface from the lease, so the pupil's
// tools use the address the daemon gave it.
const udhcpcScript = `#!/bin/sh
case "$1" in
bound|renew)
	m="$mask"; [ -n "$m" ] || m="$subnet"
	ip addr flush dev "$interface"
	ip addr add "$ip/$m" dev "$interface"
	for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
	;;
esac
`

// TestPupilVPNEmailsTheDSL is the alert pipeline end to end: the real
// daemon in the testbed's router, a pupil device that got its address from
// the daemon and whose owner is a pupil, a real openvpn client to a real
// openvpn server in the fake internet, and the DSL's mailbox on a real SMTP
// server (aiosmtpd). It prints the time from openvpn starting to the email
// arriving over the alerts it raises, checks that a repeat rolls up into the
// open alert without a second email, and that an email raised while the
// mail server is down arrives once it is back.
func TestPupilVPNEmailsTheDSL(t *testing.T) {
	testbed.Require(t)
	for _, tool := range []string{"openvpn", "udhcpc", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed: %v", tool, err)
		}
	}
	alertRuns := defaultAlertRuns
	if s := os.Getenv("GATEHOUSE_ALERT_RUNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			t.Fatalf("GATEHOUSE_ALERT_RUNS=%q: want 1 to 100", s)
		}
		alertRuns = n
	}
	outage := smtpOutage
	if s := os.Getenv("GATEHOUSE_SMTP_OUTAGE"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("GATEHOUSE_SMTP_OUTAGE: %v", err)
		}
		outage = d
	}
	bin := buildGatehouse(t)
	segs := testbed.DefaultSegments()
	for i := range segs {
		segs[i].Unconfigured = segs[i].Name == "pupil"
	}
	school := testbed.New(t, testbed.Options{Segments: segs})
	// STARTTLS required; the daemon trusts the server's certificate
	// through alerts.smtp.ca_file.
	mailbox := alerttest.StartSMTP(t, school, "mgmt", testbed.MgmtClientIP+":2525")
	dir := t.TempDir()
	files, err := school.Config(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The trust's SIEM: rsyslog, and a webhook receiver that checks the
	// signature.
	siem := alerttest.StartRsyslog(t, school, "mgmt", testbed.MgmtClientIP+":5514")
	secret := "webhook-secret-123"
	secretFile := filepath.Join(dir, "webhook.key")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hookLn, err := school.Listen("mgmt", "tcp4", testbed.MgmtClientIP+":8088")
	if err != nil {
		t.Fatal(err)
	}
	var hookMu sync.Mutex
	var hooks []alert.Event
	badHooks := 0
	hookSrv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		hookMu.Lock()
		defer hookMu.Unlock()
		var e alert.Event
		if r.Header.Get(alert.SignatureHeader) != alert.Sign([]byte(secret), body) || json.Unmarshal(body, &e) != nil {
			badHooks++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		hooks = append(hooks, e)
	})}
	go hookSrv.Serve(hookLn)
	t.Cleanup(func() { hookSrv.Close() })
	setAlertsConfig(t, files.Path, mailbox.Addr, mailbox.CAFile, map[string]any{
		"webhook": "http://" + testbed.MgmtClientIP + ":8088/gatehouse", "webhook_secret_file": secretFile,
		"syslog": map[string]any{"server": siem.Addr},
	})

	// The pupil and their approved laptop, as the network manager and the
	// MIS import would have recorded them.
	pupil, _ := school.Segment("pupil")
	ctx := context.Background()
	st, err := store.Open(ctx, files.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.CreatePerson(ctx, "test", store.Person{Kind: "pupil", UPN: "A123456789012", AdmissionNo: "S1042", LegalForename: "Samuel",
		PreferredForename: "Sam", LegalSurname: "Pupil", YearGroup: "9", RegGroup: "9B"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := st.DecideDevice(ctx, "test", pupil.ClientMAC, store.DeviceDecision{Approved: true, Name: "LAPTOP-0042", Owner: "S1042"}, time.Now()); err != nil {
		t.Fatal(err)
	}

	d := startDaemon(t, school, bin, files.Path)
	ip := dhcpLease(t, school, dir)
	t.Logf("the pupil's laptop %s has %s from the daemon", pupil.ClientMAC, ip)
	pki := newVPNPKI(t, dir)

	vpnMails := func() int {
		n := 0
		for _, m := range mailbox.Messages() {
			if strings.Contains(alerttest.Subject(m), "VPN use") {
				n++
			}
		}
		return n
	}
	openAlert := func() store.Alert {
		as, err := st.ListAlerts(ctx, store.AlertFilter{State: store.AlertNew})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if a.Class == "vpn" {
				return a
			}
		}
		return store.Alert{}
	}
	closeAlert := func(a store.Alert) {
		if _, err := st.ChangeAlert(ctx, "web:dsl", a.ID, store.AlertClosed, store.OutcomeTruePositive, "spoke to the pupil", time.Now()); err != nil {
			t.Fatal(err)
		}
	}

	var latencies []time.Duration
	for run := range alertRuns {
		before := vpnMails()
		dst := netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + run)})
		start := time.Now()
		stop := startVPN(t, school, pki, dst, run)
		var msg alerttest.Message
		for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			ms := mailbox.Messages()
			found := 0
			for _, m := range ms {
				if strings.Contains(alerttest.Subject(m), "VPN use") {
					found++
					msg = m
				}
			}
			if found > before {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %d: no email within 90 s of openvpn to %s; daemon log:\n%s\nSMTP log:\n%s", run, dst, d.log.String(), mailbox.Log())
			}
		}
		latencies = append(latencies, msg.Arrived.Sub(start))
		if run == 0 {
			text := alerttest.Subject(msg) + "\n" + msg.Body
			for _, want := range []string{"Sam Pupil", "Year 9, 9B", "LAPTOP-0042", pupil.ClientMAC.String(), "VPN use", "openvpn", "https://10.99.0.1:8443/alerts/view?id="} {
				if !strings.Contains(text, want) {
					t.Errorf("the email lacks %q:\n%s", want, text)
				}
			}
			if !regexp.MustCompile(`When: +\w{3} \d+ \w{3} \d{4} \d\d:\d\d:\d\d`).MatchString(msg.Body) {
				t.Errorf("the email does not give the time:\n%s", msg.Body)
			}
			t.Logf("first email:\nSubject: %s\n%s", alerttest.Subject(msg), msg.Body)

			// A repeat while the alert is open folds into it: the count
			// grows and nothing more is queued.
			a := openAlert()
			stop2 := startVPN(t, school, pki, netip.MustParseAddr("192.0.2.99"), 99)
			waitForLong(t, "the repeat to roll up into the open alert", 60*time.Second, func() bool {
				got, err := st.AlertByID(ctx, a.ID)
				return err == nil && got.Count >= 2
			})
			stop2()
			items, err := st.OutboxItems(ctx, a.ID, 10)
			if err != nil || len(emails(items)) != 1 || len(items) != 3 {
				t.Errorf("the rolled-up alert has %d notifications, %d of them emails (%v), want one each by email, webhook and syslog",
					len(items), len(emails(items)), err)
			}
			if as, _ := st.ListAlerts(ctx, store.AlertFilter{State: store.AlertNew}); len(as) != 1 {
				t.Errorf("%d open alerts after a repeat, want 1: %+v", len(as), as)
			}
		}
		stop()
		if a := openAlert(); a.ID != 0 {
			closeAlert(a)
		} else {
			t.Fatalf("run %d: an email but no open vpn alert", run)
		}
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	p := func(q float64) time.Duration { return latencies[int(q*float64(len(latencies)-1)+0.5)] }
	fmt.Printf("openvpn start -> DSL email, %d runs: min %v p50 %v p95 %v max %v\n",
		len(latencies), latencies[0].Round(time.Millisecond), p(0.5).Round(time.Millisecond), p(0.95).Round(time.Millisecond),
		latencies[len(latencies)-1].Round(time.Millisecond))

	// Every new alert also reached the SIEM, by syslog and by the signed
	// webhook.
	if line, ok := siem.WaitFor(30*time.Second, `class="vpn"`, `person="Sam Pupil"`, fmt.Sprintf(`id="%d"`, alertRuns)); !ok {
		t.Errorf("rsyslog did not get alert %d, the last:\n%s", alertRuns, line)
	}
	waitForLong(t, "the webhook posts", 30*time.Second, func() bool {
		hookMu.Lock()
		defer hookMu.Unlock()
		return len(hooks) >= alertRuns
	})
	hookMu.Lock()
	if badHooks != 0 || hooks[0].Person != "Sam Pupil" || hooks[0].MAC != pupil.ClientMAC.String() || hooks[0].Class != "vpn" {
		t.Errorf("webhook: %d badly signed, first %+v", badHooks, hooks[0])
	}
	fmt.Printf("SIEM: %d signed webhook posts; rsyslog parsed the last run's alert as RFC 5424\n", len(hooks))
	hookMu.Unlock()

	// The mail server goes away; an alert is raised; it comes back.
	mailbox.Stop()
	down := time.Now()
	before := vpnMails()
	stop := startVPN(t, school, pki, netip.MustParseAddr("192.0.2.98"), 98)
	var a store.Alert
	waitForLong(t, "an alert while the mail server is down", 60*time.Second, func() bool { a = openAlert(); return a.ID != 0 })
	waitForLong(t, "a failed delivery attempt", 60*time.Second, func() bool {
		items, err := st.OutboxItems(ctx, a.ID, 10)
		items = emails(items)
		return err == nil && len(items) == 1 && items[0].Attempts >= 1 && items[0].SentAt.IsZero()
	})
	stop()
	time.Sleep(time.Until(down.Add(outage)))
	mailbox.Start()
	back := time.Now()
	waitForLong(t, "the email raised during the outage", 7*time.Minute, func() bool { return vpnMails() > before })
	items, _ := st.OutboxItems(ctx, a.ID, 10)
	items = emails(items)
	fmt.Printf("SMTP down for %v: the email arrived %v after the server came back, after %d attempts\n",
		back.Sub(down).Round(time.Second), time.Since(back).Round(time.Second), items[0].Attempts)

	// The router's own addresses and MACs never became findings (its gateways
	// talk on every segment the engines capture).
	fs, err := st.Findings(ctx, store.FindingFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		for _, seg := range school.Segments() {
			if f.SrcIP == seg.Gateway || f.SrcMAC.String() == seg.RouterMAC.String() {
				t.Errorf("the router's own address or MAC (%s, %s) is a finding: %+v", seg.Gateway, seg.RouterMAC, f)
			}
		}
	}

	// Attribution across this suite's alerts, by source.
	all, err := st.ListAlerts(ctx, store.AlertFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]int{}
	for _, a := range all {
		src := a.AttributedBy
		if src == "" {
			src = "none"
		}
		by[src]++
	}
	attributed := len(all) - by["none"]
	fmt.Printf("attribution: %d of %d alerts (%.0f%%) by source %v\n", attributed, len(all), 100*float64(attributed)/float64(len(all)), by)
	if strings.Contains(d.log.String(), "level=ERROR") {
		t.Logf("daemon errors:\n%s", d.log.String())
	}
}

// setAlertsConfig points the testbed's configuration at the test's mail
// server (STARTTLS always, trusting caFile) and the admin page's address
// for links.
func setAlertsConfig(t *testing.T, path, smtp, caFile string, more map[string]any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	alerts, _ := c["alerts"].(map[string]any)
	if alerts == nil {
		alerts = map[string]any{}
	}
	alerts["smtp"] = map[string]any{"server": smtp, "from": "gatehouse@school.example", "starttls": "always", "ca_file": caFile}
	alerts["dsl"] = []string{"dsl@school.example"}
	alerts["link"] = "https://" + testbed.MgmtRouterIP + ":8443"
	for k, v := range more {
		alerts[k] = v
	}
	c["alerts"] = alerts
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

// dhcpLease takes a lease for the pupil namespace from the daemon and
// configures it.
func dhcpLease(t *testing.T, school *testbed.School, dir string) string {
	t.Helper()
	script := filepath.Join(dir, "udhcpc.sh")
	if err := os.WriteFile(script, []byte(udhcpcScript), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := school.Command(ctx, "pupil", "udhcpc", "-q", "-n", "-f", "-i", "eth0", "-s", script, "-t", "10", "-T", "1",
		"-x", "hostname:sams-laptop").CombinedOutput()
	if err != nil {
		t.Fatalf("udhcpc: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`lease of (10\.20\.\d+\.\d+) obtained`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no lease:\n%s", out)
	}
	return string(m[1])
}

type vpnPKI struct{ ca, serverCert, serverKey, clientCert, clientKey string }

// newVPNPKI makes a CA and a server and client certificate for openvpn.
func newVPNPKI(t *testing.T, dir string) vpnPKI {
	t.Helper()
	now := time.Now()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caKey := key()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	p := vpnPKI{ca: write("ca.pem", "CERTIFICATE", caDER)}
	leaf := func(name string, serial int64, eku x509.ExtKeyUsage) (string, string) {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name}, NotBefore: now.Add(-time.Hour),
			NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement, ExtKeyUsage: []x509.ExtKeyUsage{eku}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(name+".pem", "CERTIFICATE", der), write(name+".key", "PRIVATE KEY", kder)
	}
	p.serverCert, p.serverKey = leaf("server", 2, x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey = leaf("client", 3, x509.ExtKeyUsageClientAuth)
	return p
}

// startVPN starts an openvpn server on dst in the fake internet and an
// openvpn client to it on the pupil's laptop, and returns a function that
// stops both.
func startVPN(t *testing.T, school *testbed.School, p vpnPKI, dst netip.Addr, n int) (stop func()) {
	t.Helper()
	common := []string{"--verb", "3", "--disable-dco", "--dev", "tun", "--dh", "none", "--ca", p.ca, "--data-ciphers", "AES-256-GCM",
		"--proto", "udp", "--connect-retry", "1", "1"}
	inner := fmt.Sprintf("10.250.%d.", n)
	ctx, cancel := context.WithCancel(context.Background())
	var procs []*testbed.Cmd
	for _, c := range []struct {
		ns   string
		args []string
	}{
		{"internet", append(common, "--tls-server", "--local", dst.String(), "--lport", "1194", "--cert", p.serverCert, "--key", p.serverKey,
			"--ifconfig", inner+"1", inner+"2")},
		{"pupil", append(common, "--tls-client", "--remote", dst.String(), "1194", "--nobind", "--cert", p.clientCert, "--key", p.clientKey,
			"--ifconfig", inner+"2", inner+"1")},
	} {
		cmd := school.Command(ctx, c.ns, "openvpn", c.args...)
		out := &testkit.SyncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = 3 * time.Second
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatalf("openvpn in %s: %v", c.ns, err)
		}
		procs = append(procs, cmd)
		if c.ns == "internet" {
			time.Sleep(200 * time.Millisecond) // the server's socket first
		}
	}
	return func() {
		cancel()
		for _, c := range procs {
			c.Wait()
		}
	}
}

func waitForLong(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out after %v waiting for %s", d, what)
}

// emails keeps the email notifications of an outbox listing.
func emails(items []store.OutboxItem) []store.OutboxItem {
	var out []store.OutboxItem
	for _, it := range items {
		if it.Channel == store.ChannelEmail {
			out = append(out, it)
		}
	}
	return out
}

// TestLiveRADIUSSessionAttributesAnAlert: the access point (radclient in
// the management namespace) sends the daemon's RADIUS listener an
// Accounting-Start for the pupil's login on the pupil's laptop, with the
// laptop's MAC and the address the daemon leased it, from an access point
// the network manager placed in a room. The laptop is approved but owned
// by nobody, so only the live RADIUS session can name the pupil: the VPN
// alert that follows is attributed "radius" with the pupil, the access
// point, the room and the SSID, and the DSL's email names the room. The
// VPN flow itself is on the flow log the alert's timeline shows.
func TestLiveRADIUSSessionAttributesAnAlert(t *testing.T) {
	testbed.Require(t)
	for _, tool := range []string{"openvpn", "udhcpc", "ip", "radclient"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed (build/deps): %v", tool, err)
		}
	}
	bin := buildGatehouse(t)
	segs := testbed.DefaultSegments()
	for i := range segs {
		segs[i].Unconfigured = segs[i].Name == "pupil"
	}
	school := testbed.New(t, testbed.Options{Segments: segs})
	mailbox := alerttest.StartSMTP(t, school, "mgmt", testbed.MgmtClientIP+":2528")
	dir := t.TempDir()
	files, err := school.Config(dir)
	if err != nil {
		t.Fatal(err)
	}
	setAlertsConfig(t, files.Path, mailbox.Addr, mailbox.CAFile, nil)

	pupil, _ := school.Segment("pupil")
	ap := []byte{0x0a, 0x00, 0x00, 0x00, 0x00, 0x07}
	ctx := context.Background()
	st, err := store.Open(ctx, files.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.CreatePerson(ctx, "test", store.Person{Kind: "pupil", UPN: "A123456789013", AdmissionNo: "S1043", Username: "sam.pupil",
		LegalForename: "Samuel", PreferredForename: "Sam", LegalSurname: "Pupil", YearGroup: "9", RegGroup: "9B"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := st.SetAPRoom(ctx, "test", ap, "B12 Science"); err != nil {
		t.Fatal(err)
	}
	if err := st.DecideDevice(ctx, "test", pupil.ClientMAC, store.DeviceDecision{Approved: true, Name: "LAPTOP-0043"}, time.Now()); err != nil {
		t.Fatal(err)
	}

	d := startDaemon(t, school, bin, files.Path)
	ip := dhcpLease(t, school, dir)
	macDash := strings.ToUpper(strings.ReplaceAll(pupil.ClientMAC.String(), ":", "-"))
	apDash := "0A-00-00-00-00-07"
	req := filepath.Join(dir, "acct-start.txt")
	if err := os.WriteFile(req, []byte(strings.Join([]string{`Acct-Status-Type = Start`, `Acct-Session-Id = "LIVE-1"`, `User-Name = "sam.pupil"`,
		`Calling-Station-Id = "` + macDash + `"`, `Called-Station-Id = "` + apDash + `:Pupils"`, `Framed-IP-Address = ` + ip,
		`NAS-IP-Address = ` + testbed.MgmtClientIP}, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	out, _ := school.Command(rctx, "mgmt", "radclient", "-x", "-r", "2", "-t", "3", "-f", req,
		testbed.MgmtRouterIP+":1813", "acct", files.RadiusSecret).CombinedOutput()
	rcancel()
	if !strings.Contains(string(out), "Received Accounting-Response") {
		t.Fatalf("the daemon did not answer the access point's Accounting-Start:\n%s\n--- daemon:\n%s", out, d.log.String())
	}
	t.Logf("Accounting-Start for sam.pupil on %s (%s) at AP %s answered", pupil.ClientMAC, ip, apDash)

	pki := newVPNPKI(t, dir)
	stop := startVPN(t, school, pki, netip.MustParseAddr("192.0.2.150"), 50)
	var a store.Alert
	waitForLong(t, "the VPN alert", 90*time.Second, func() bool {
		as, err := st.ListAlerts(ctx, store.AlertFilter{Limit: 100})
		if err != nil {
			return false
		}
		for _, x := range as {
			if x.Class == "vpn" {
				a = x
				return true
			}
		}
		return false
	})
	stop()
	if a.AttributedBy != alert.ByRADIUS || a.PersonName != "Sam Pupil" || a.PersonGroup != "Year 9, 9B" || a.Room != "B12 Science" ||
		a.SSID != "Pupils" || !strings.EqualFold(a.AccessPoint, "0a:00:00:00:00:07") || a.DeviceName != "LAPTOP-0043" {
		t.Errorf("the VPN alert is not attributed through the live RADIUS session: by %q person %q (%q) room %q AP %q SSID %q device %q",
			a.AttributedBy, a.PersonName, a.PersonGroup, a.Room, a.AccessPoint, a.SSID, a.DeviceName)
	}
	// The flow that raised it is on the flow log the alert's timeline
	// shows, with its class, its far end and its bytes.
	var vpnFlow store.Flow
	waitForLong(t, "the VPN flow in the flow log", 30*time.Second, func() bool {
		fs, err := st.DeviceFlows(ctx, a.SrcIP, a.SrcMAC, a.FirstSeen.Add(-time.Hour), a.LastSeen.Add(time.Hour), 500)
		if err != nil {
			return false
		}
		for _, f := range fs {
			if f.Class == "vpn" && f.Server == netip.MustParseAddr("192.0.2.150") && f.ServerPort == 1194 && f.BytesOut > 0 && f.BytesIn > 0 {
				vpnFlow = f
				return true
			}
		}
		return false
	})
	fmt.Printf("flow log: the VPN flow %s:%d -> %s:%d/%s from %s, %d bytes out, %d in, segment %q, MAC %s\n", vpnFlow.Client, vpnFlow.ClientPort,
		vpnFlow.Server, vpnFlow.ServerPort, vpnFlow.Proto, vpnFlow.Start.Format(time.RFC3339), vpnFlow.BytesOut, vpnFlow.BytesIn, vpnFlow.Segment, vpnFlow.MAC)
	if vpnFlow.Segment != "pupil" || vpnFlow.MAC.String() != pupil.ClientMAC.String() {
		t.Errorf("the VPN flow's segment %q / MAC %s, want pupil / %s", vpnFlow.Segment, vpnFlow.MAC, pupil.ClientMAC)
	}

	msg, ok := mailbox.WaitFor(90*time.Second, "VPN use", "Sam Pupil", "B12 Science")
	if !ok {
		t.Fatalf("no email naming the pupil and the room; SMTP log:\n%s", mailbox.Log())
	}
	t.Logf("email:\nSubject: %s\n%s", alerttest.Subject(msg), msg.Body)

	all, err := st.ListAlerts(ctx, store.AlertFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]int{}
	for _, x := range all {
		src := x.AttributedBy
		if src == "" {
			src = "none"
		}
		by[src]++
	}
	fmt.Printf("live RADIUS attribution: vpn alert by %q (person %q, AP %s, room %q, SSID %q); all %d alerts by source %v\n",
		a.AttributedBy, a.PersonName, a.AccessPoint, a.Room, a.SSID, len(all), by)
}
