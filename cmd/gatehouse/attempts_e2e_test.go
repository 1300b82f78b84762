//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/internal/tooltest"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
)

// liveTool is one real bypass tool run from the pupil's laptop while the
// daemon watches.
type liveTool struct {
	name   string
	class  string // the class the stored finding must carry
	dst    string // the far end the finding must name
	silent bool   // the server never answers: the finding must be an attempt
	run    func(t *testing.T, l *tooltest.Lab, dir, dst string)
}

// Servers in the fake internet, one address per tool so that no finding is
// taken for a repeat of another's. The .200-.203 addresses are blackholed.
func liveTools() []liveTool {
	return []liveTool{
		{name: "openvpn udp/1194", class: "vpn", dst: "192.0.2.11", run: func(t *testing.T, l *tooltest.Lab, dir, dst string) {
			l.OpenVPN(t, dir, "udp", dst, "1194", true, nil)
		}},
		{name: "openvpn tcp/443", class: "vpn", dst: "192.0.2.12", run: func(t *testing.T, l *tooltest.Lab, dir, dst string) {
			l.OpenVPN(t, dir, "tcp", dst, "443", true, nil)
		}},
		{name: "wireguard-go udp/443", class: "vpn", dst: "192.0.2.13", run: func(t *testing.T, l *tooltest.Lab, dir, dst string) {
			l.WireGuard(t, dir, dst, "443", true)
		}},
		{name: "ssh -D", class: "ssh", dst: "192.0.2.14", run: func(t *testing.T, l *tooltest.Lab, dir, dst string) {
			l.SSHD(t, dir, dst)
		}},
		{name: "squid CONNECT", class: "proxy", dst: "192.0.2.15", run: func(t *testing.T, l *tooltest.Lab, dir, dst string) {
			l.Squid(t, dir, dst)
		}},
		{name: "microsocks", class: "proxy", dst: "192.0.2.16", run: func(t *testing.T, l *tooltest.Lab, dir, dst string) {
			l.Microsocks(t, dst)
		}},
		{name: "curl --doh-url", class: "doh", dst: "192.0.2.17", run: func(t *testing.T, l *tooltest.Lab, dir, dst string) {
			l.DoH(t, dir, dst, "cloudflare-dns.com")
		}},
		{name: "shadowsocks aes-256-gcm", class: "proxy", dst: "192.0.2.19", run: func(t *testing.T, l *tooltest.Lab, dir, dst string) {
			l.Shadowsocks(t, dst, "aes-256-gcm")
		}},
		{name: "v2ray vmess-ws", class: "proxy", dst: "192.0.2.22", run: func(t *testing.T, l *tooltest.Lab, dir, dst string) {
			l.V2Ray(t, dir, dst, "vmess", "ws")
		}},
		{name: "tor private bridge", class: "tor", dst: "192.0.2.23", run: func(t *testing.T, l *tooltest.Lab, dir, dst string) {
			l.Tor(t, dir, dst, false)
		}},
		{name: "iodine", class: "tunnel", dst: "192.0.2.20", run: func(t *testing.T, l *tooltest.Lab, dir, dst string) {
			l.Iodine(t, dst)
		}},
		{name: "ptunnel-ng", class: "tunnel", dst: "192.0.2.21", run: func(t *testing.T, l *tooltest.Lab, dir, dst string) {
			l.PTunnel(t, dst)
		}},
		{name: "openvpn udp (silent)", class: "vpn", dst: "192.0.2.200", silent: true, run: func(t *testing.T, l *tooltest.Lab, dir, dst string) {
			l.OpenVPN(t, dir, "udp", dst, "1194", false, nil)
		}},
		{name: "wireguard-go (silent)", class: "vpn", dst: "192.0.2.201", silent: true, run: func(t *testing.T, l *tooltest.Lab, dir, dst string) {
			l.WireGuard(t, dir, dst, "51820", false)
		}},
		{name: "strongswan IKEv2 (silent)", class: "vpn", dst: "192.0.2.202", silent: true, run: func(t *testing.T, l *tooltest.Lab, dir, dst string) {
			l.IKESilent(t, dir, dst)
		}},
		{name: "kdig DoT (silent)", class: "dot", dst: "192.0.2.203", silent: true, run: func(t *testing.T, l *tooltest.Lab, dir, dst string) {
			l.Try(t, "pupil", "kdig", "+tls", "+time=4", "+retry=0", "-p", "853", "@"+dst, "www.example.com", "A")
		}},
	}
}

// TestDaemonStoresFindingsFromLiveTools: the real daemon, capturing on the
// pupil segment while the pupil's laptop holds a DHCP lease from it, stores
// a finding naming the laptop's MAC for each real bypass tool run from the
// laptop, one after another: twelve against servers that answer and four
// against servers that never answer (the fake internet drops everything
// sent to them), which must be stored as attempts.
func TestDaemonStoresFindingsFromLiveTools(t *testing.T) {
	testbed.Require(t)
	for _, tool := range []string{"openvpn", "wireguard-go", "wg", "sshd", "ssh", "squid", "microsocks", "dnsdist", "curl",
		"ss-server", "ss-local", "v2ray", "tor", "iodine", "iodined", "ptunnel-ng", "/usr/lib/ipsec/charon", "swanctl",
		"kdig", "socat", "udhcpc", "nft"} {
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
	dir := t.TempDir()
	files, err := school.Config(dir)
	if err != nil {
		t.Fatal(err)
	}
	pupil, _ := school.Segment("pupil")
	mac := pupil.ClientMAC.String()
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
	lease := dhcpLease(t, school, dir)
	t.Logf("pupil laptop %s holds lease %s", mac, lease)
	lab := &tooltest.Lab{S: school, Pupil: pupil}
	lab.Blackhole(t, "192.0.2.200-192.0.2.203")

	type row struct{ tool, class, confidence, detail string }
	var table []row
	for _, tool := range liveTools() {
		t.Run(strings.NewReplacer(" ", "_", "/", "-").Replace(tool.name), func(t *testing.T) {
			// try runs the tool once (its servers stop when the try's
			// subtest ends) and waits for the stored finding.
			try := func(n int) (got store.Finding, found bool) {
				t.Run(fmt.Sprintf("try%d", n), func(t *testing.T) {
					tdir := t.TempDir()
					if err := os.Chmod(tdir, 0o755); err != nil { // servers that drop privileges read from it
						t.Fatal(err)
					}
					tool.run(t, lab, tdir, tool.dst)
					found = tooltest.WaitFor(20*time.Second, func() bool {
						fs, err := st.Findings(ctx, store.FindingFilter{MAC: pupil.ClientMAC, Limit: 500})
						if err != nil {
							t.Fatal(err)
						}
						for _, f := range fs {
							if f.DstIP.String() == tool.dst && f.SrcMAC.String() == mac && f.Class == tool.class && (!tool.silent || f.Confidence == "attempt") {
								got = f
								return true
							}
						}
						return false
					})
				})
				return got, found
			}
			// A second try when the first was missed: the statistical
			// detectors (a fully encrypted stream's first bytes judged
			// random) pass a random flow's opening 99.4-99.7% of the time
			// per direction (the rest opens with six printable bytes or a
			// plausible length, which they exempt on purpose;
			// inspect's TestFullyEncryptedMissRate prints the rates), and a
			// busy CI machine can shed a captured packet. A tool the
			// daemon cannot see fails both tries; the first miss is
			// logged so that a detector that has become unreliable shows.
			got, found := try(1)
			if !found && !t.Failed() {
				t.Logf("%s: no finding after the first try; trying once more", tool.name)
				got, found = try(2)
			}
			if t.Failed() {
				return
			}
			if !found {
				fs, _ := st.Findings(ctx, store.FindingFilter{Limit: 500})
				var seen []string
				for _, f := range fs {
					seen = append(seen, fmt.Sprintf("%s %s→%s:%d %s/%s %s", f.SrcMAC, f.SrcIP, f.DstIP, f.DstPort, f.Class, f.Detail, f.Confidence))
				}
				table = append(table, row{tool.name, "NOT FOUND (want " + tool.class + ")", "-", "-"})
				t.Fatalf("no stored %s finding naming %s to %s in two tries (silent=%v); stored:\n%s", tool.class, mac, tool.dst, tool.silent, strings.Join(seen, "\n"))
			}
			table = append(table, row{tool.name, got.Class, got.Confidence, got.Detail})
		})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-26s %-8s %-10s %s\n", "tool", "class", "confidence", "detail")
	for _, r := range table {
		fmt.Fprintf(&b, "%-26s %-8s %-10s %s\n", r.tool, r.class, r.confidence, r.detail)
	}
	t.Logf("stored findings naming %s, by tool:\n%s", mac, b.String())
	if t.Failed() {
		t.Logf("daemon log:\n%s", d.log.String())
	}
}
