//go:build linux

package e2e

import (
	"net/netip"
	"os/exec"
	"testing"

	"github.com/gatehouse-net/gatehouse/inspect"
)

// TestAttemptsAgainstSilentServers runs real clients from the pupil
// namespace against a server in the fake internet that never answers (a
// firewall drops everything sent to it) and expects each to be found
// anyway, live on the router's pupil interface, as an attempt that names
// the pupil device.
func TestAttemptsAgainstSilentServers(t *testing.T) {
	for _, prog := range []string{"/usr/lib/ipsec/charon", "swanctl"} {
		if _, err := exec.LookPath(prog); err != nil {
			t.Skipf("%s missing; apt-get install -y strongswan-charon strongswan-swanctl", prog)
		}
	}
	l := newLab(t)
	l.Blackhole(t, silentAddr)
	silent := netip.MustParseAddr(silentAddr)
	attempt := func(t *testing.T, class, detail string) {
		t.Helper()
		f, ok := l.got.wait(findingWait, func(f inspect.Finding) bool {
			return f.Class == class && f.Detail == detail && f.DstIP == silent
		})
		if !ok {
			t.Fatalf("no %s/%s finding to %s; findings: %v", class, detail, silent, l.got.all())
		}
		if f.Confidence != inspect.Attempt || f.SrcIP != l.Pupil.ClientAddr || f.SrcMAC.String() != l.Pupil.ClientMAC.String() {
			t.Errorf("finding %s: want an attempt from the pupil %v (%v)", f, l.Pupil.ClientAddr, l.Pupil.ClientMAC)
		}
		t.Logf("%s", f)
	}
	t.Run("openvpn-udp", func(t *testing.T) {
		dir := t.TempDir()
		done := make(chan struct{})
		go func() { defer close(done); l.OpenVPN(t, dir, "udp", silentAddr, "1194", false, nil) }()
		attempt(t, inspect.ClassVPN, "openvpn")
		<-done
	})
	t.Run("wireguard", func(t *testing.T) {
		dir := t.TempDir()
		done := make(chan struct{})
		go func() { defer close(done); l.WireGuard(t, dir, silentAddr, "51820", false) }()
		attempt(t, inspect.ClassVPN, "wireguard")
		<-done
	})
	t.Run("ikev2-strongswan", func(t *testing.T) {
		dir := t.TempDir()
		done := make(chan struct{})
		go func() { defer close(done); l.IKESilent(t, dir, silentAddr) }()
		attempt(t, inspect.ClassVPN, "ipsec")
		<-done
	})
	t.Run("dot-kdig", func(t *testing.T) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			l.Try(t, "pupil", "kdig", "+tls", "+time=4", "+retry=0", "-p", "853", "@"+silentAddr, "www.example.com", "A")
		}()
		attempt(t, inspect.ClassDoT, "dot")
		<-done
	})
}
