package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/internal/testkit"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
)

// TestDaemonStoresAttemptsAgainstASilentServer: the real daemon, capturing
// on the pupil segment, stores a finding of confidence "attempt" that names
// the pupil's laptop when a real OpenVPN client and a real DoT client
// (kdig) try a server that never answers (the fake internet drops
// everything sent to it).
func TestDaemonStoresAttemptsAgainstASilentServer(t *testing.T) {
	testbed.Require(t)
	for _, tool := range []string{"openvpn", "kdig", "udhcpc", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed: %v", tool, err)
		}
	}
	bin := buildGatehouse(t)
	segs := testbed.DefaultSegments()
	for i := range segs {
		segs[i].Unconfigured = segs[i].Name == "pupil"
	}
	school := testbed.New(t, testbed.Options{Segments: segs})
	dir := t.TempDir()
	files, err := school.Config(dir)
	if err != nil {
		t.Fatal(err)
	}
	pupil, _ := school.Segment("pupil")
	ctx := context.Background()
	st, err := store.Open(ctx, files.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.DecideDevice(ctx, "test", pupil.ClientMAC, store.DeviceDecision{Approved: true, Name: "LAPTOP-0042"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, school, bin, files.Path)
	dhcpLease(t, school, dir)

	const silent = "192.0.2.200"
	rules := filepath.Join(dir, "silent.nft")
	if err := os.WriteFile(rules, []byte("table ip ghsilent {\n chain in {\n  type filter hook input priority 0; policy accept;\n  ip daddr "+silent+" drop\n }\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := school.Command(ctx, "internet", "nft", "-f", rules).CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}

	pki := newVPNPKI(t, dir)
	vctx, stopVPN := context.WithCancel(ctx)
	vpn := school.Command(vctx, "pupil", "openvpn", "--verb", "3", "--disable-dco", "--dev", "tun", "--ca", pki.ca, "--data-ciphers", "AES-256-GCM",
		"--proto", "udp", "--tls-client", "--remote", silent, "1194", "--nobind", "--cert", pki.clientCert, "--key", pki.clientKey,
		"--ifconfig", "10.250.9.2", "10.250.9.1")
	vpnOut := &testkit.SyncBuffer{}
	vpn.Stdout, vpn.Stderr = vpnOut, vpnOut
	vpn.Cancel = func() error { return vpn.Process.Signal(syscall.SIGTERM) }
	vpn.WaitDelay = 3 * time.Second
	if err := vpn.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stopVPN(); vpn.Wait() }()
	kctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	school.Command(kctx, "pupil", "kdig", "+tls", "+time=4", "+retry=0", "-p", "853", "@"+silent, "www.example.com", "A").Run()

	want := map[string]bool{"vpn": false, "dot": false}
	waitForLong(t, "attempts stored by the daemon", 60*time.Second, func() bool {
		fs, err := st.Findings(ctx, store.FindingFilter{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			if _, ok := want[f.Class]; ok && f.DstIP.String() == silent && f.Confidence == "attempt" && f.SrcMAC.String() == pupil.ClientMAC.String() {
				want[f.Class] = true
			}
		}
		return want["vpn"] && want["dot"]
	})
	if t.Failed() {
		t.Logf("daemon log:\n%s\nopenvpn:\n%s", d.log.String(), vpnOut.String())
	}
}
