package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/pki"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
)

// TestDaemonEAPWithPeopleAndCertificates: `gatehouse run` in a testbed
// router with its EAP defaults (every method) answers eapol_test in the
// access point namespace: PEAP-MSCHAPv2 for a pupil whose password was set
// with `gatehouse people password` (the NT hash is stored because PEAP is
// enabled, not because of radius.store_nt_hash), and EAP-TLS with a client
// certificate the school CA issued for them, both with the MPPE keys
// checked; a device certificate is rejected from a MAC nobody approved and
// accepted, on the device's segment, once `gatehouse device approve` names
// the device by the certificate's DNS name; once another pupil becomes a leaver (the MIS gives a leaving
// date in the past), their PEAP login, which worked before, is rejected.
func TestDaemonEAPWithPeopleAndCertificates(t *testing.T) {
	testbed.Require(t)
	if _, err := exec.LookPath("eapol_test"); err != nil {
		t.Fatal("eapol_test is not installed (eapoltest; build/deps installs it)")
	}
	const serverName = "radius.school.example"
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
	cfgText := pupilIface.ReplaceAllString(string(raw), "${1}interface: gh-pupil\n${1}ssids: [Pupils]\n")
	cfgText = regexp.MustCompile(`(?m)^radius:\n( +)`).ReplaceAllString(cfgText, "radius:\n${1}eap:\n${1}${1}server_name: "+serverName+"\n${1}")
	if !strings.Contains(cfgText, "ssids: [Pupils]") || !strings.Contains(cfgText, "server_name: "+serverName) || strings.Contains(cfgText, "store_nt_hash") {
		t.Fatalf("configuration not as wanted:\n%s", cfgText)
	}
	if err := os.WriteFile(files.Path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cli := func(stdin string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("gatehouse %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	mis, _ := filepath.Abs("../../../shared/mis/pupils-sims.csv")
	csv, err := os.ReadFile(mis)
	if err != nil {
		t.Fatal(err)
	}
	cli("", "people", "import", "--config", files.Path, "--apply", mis)
	cli("charlie's wifi 1\n", "people", "password", "--config", files.Path, "--person", "C00223272516A") // 1002jacc
	cli("priya's wifi 2\n", "people", "password", "--config", files.Path, "--person", "B00187910201A")   // 1001murp

	// A client certificate for 1002jacc from the school CA the daemon will
	// open (the admin page does the same; here without a browser).
	cfg, err := loadConfig(files.Path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	a, err := pki.Open(pki.Options{Dir: pki.DirFor(cfg.Database), ServerName: serverName, Store: st, People: st})
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := st.PersonLogin(context.Background(), "1002jacc")
	if err != nil {
		t.Fatal(err)
	}
	iss, err := a.IssuePerson(context.Background(), "test", p.ID)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := a.IssueDevice(context.Background(), "test", "laptop7.school.example")
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	devP12 := filepath.Join(dir, "laptop7.p12")
	if err := os.WriteFile(devP12, dev.PKCS12, 0o600); err != nil {
		t.Fatal(err)
	}
	p12 := filepath.Join(dir, iss.FileName)
	if err := os.WriteFile(p12, iss.PKCS12, 0o600); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, "ca.pem")
	caPEM, err := os.ReadFile(filepath.Join(pki.DirFor(cfg.Database), "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}

	d := startDaemon(t, school, bin, files.Path)
	eapolAs := func(name, network, mac string) (bool, string) {
		t.Helper()
		conf := filepath.Join(dir, name+".conf")
		body := fmt.Sprintf("network={\n\tkey_mgmt=WPA-EAP\n\tca_cert=%q\n\tdomain_suffix_match=%q\n%s}\n", ca, serverName, network)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := school.Command(ctx, "mgmt", "eapol_test", "-c", conf, "-a", testbed.MgmtRouterIP, "-p", "1812",
			"-s", files.RadiusSecret, "-t", "30", "-M", mac, "-N", "30:s:0A-00-00-00-00-01:Pupils").CombinedOutput()
		o := string(out)
		return err == nil && strings.Contains(o, "SUCCESS") && strings.Contains(o, "MPPE keys OK: 1  mismatch: 0"), o
	}
	eapol := func(name, network string) (bool, string) {
		t.Helper()
		return eapolAs(name, network, "02:00:00:00:00:42")
	}
	peap := func(user, pw string) string {
		return fmt.Sprintf("\teap=PEAP\n\tanonymous_identity=\"anonymous@school.example\"\n\tidentity=%q\n\tpassword=%q\n\tphase2=\"auth=MSCHAPV2\"\n", user, pw)
	}
	if ok, out := eapol("peap", peap("1002jacc", "charlie's wifi 1")); !ok {
		t.Fatalf("PEAP-MSCHAPv2:\n%s\n--- daemon:\n%s", tailLines(out, 40), d.log.String())
	}
	if ok, out := eapol("peap-wrong", peap("1002jacc", "charlie's wifi 2")); ok {
		t.Fatalf("PEAP-MSCHAPv2 with a wrong password succeeded:\n%s", tailLines(out, 20))
	}
	tlsNet := fmt.Sprintf("\teap=TLS\n\tidentity=\"1002jacc\"\n\tprivate_key=%q\n\tprivate_key_passwd=%q\n", p12, iss.Password)
	if ok, out := eapol("tls", tlsNet); !ok {
		t.Fatalf("EAP-TLS:\n%s\n--- daemon:\n%s", tailLines(out, 40), d.log.String())
	}
	// A device certificate: rejected until the device at that MAC is
	// approved under the certificate's name, then on its segment.
	devNet := fmt.Sprintf("\teap=TLS\n\tidentity=\"laptop7.school.example\"\n\tprivate_key=%q\n\tprivate_key_passwd=%q\n", devP12, dev.Password)
	if ok, out := eapolAs("dev-unknown", devNet, "3c:22:fb:0a:0b:0c"); ok {
		t.Fatalf("device certificate from an unapproved MAC accepted:\n%s", tailLines(out, 20))
	}
	cli("", "device", "approve", "--config", files.Path, "--mac", "3c:22:fb:0a:0b:0c", "--segment", "pupil", "--name", "laptop7.school.example")
	if ok, out := eapolAs("dev", devNet, "3c:22:fb:0a:0b:0c"); !ok {
		t.Fatalf("EAP-TLS with the approved device's certificate:\n%s\n--- daemon:\n%s", tailLines(out, 40), d.log.String())
	}
	if !regexp.MustCompile(`radius: EAP login.*identity=laptop7.school.example.*segment=pupil`).MatchString(d.log.String()) {
		t.Fatalf("the device's login is not logged on its segment:\n%s", d.log.String())
	}
	if ok, out := eapol("priya", peap("1001murp", "priya's wifi 2")); !ok {
		t.Fatalf("PEAP-MSCHAPv2 of 1001murp before leaving:\n%s", tailLines(out, 40))
	}

	// 1001murp leaves: the MIS now gives a leaving date in the past.
	left := strings.Replace(string(csv), "2025-09-04,,1001murp", "2025-09-04,"+time.Now().AddDate(0, 0, -2).Format("2006-01-02")+",1001murp", 1)
	if left == string(csv) {
		t.Fatal("1001murp's row not found in the MIS export")
	}
	leavers := filepath.Join(dir, "pupils-left.csv")
	if err := os.WriteFile(leavers, []byte(left), 0o600); err != nil {
		t.Fatal(err)
	}
	cli("", "people", "import", "--config", files.Path, "--apply", leavers)
	if ok, out := eapol("priya-left", peap("1001murp", "priya's wifi 2")); ok || !strings.Contains(out, "Access-Reject") && !strings.Contains(out, "EAP: Received EAP-Failure") && !strings.Contains(out, "FAILURE") {
		t.Fatalf("a leaver's PEAP login was not rejected:\n%s\n--- daemon:\n%s", tailLines(out, 40), d.log.String())
	}
}

// tailLines is the last n lines of s (eapol_test's output is long).
func tailLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
