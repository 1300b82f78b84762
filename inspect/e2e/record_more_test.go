//go:build linux

package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse-net/gatehouse/internal/tooltest"
	"github.com/gatehouse-net/gatehouse/testbed"
	"github.com/gatehouse-net/gatehouse/testbed/browser"
)

// moreRecordings are the second round of the corpus: tools whose traffic
// hides in other protocols or on other ports (ssh -w, sslh, socat relays,
// Shadowsocks behind its obfuscating plugins), DoQ, a browser's own DoH,
// and more benign traffic (a browser, an RTP call, an HTTP/3 page load).
func moreRecordings() []recording {
	return []recording{
		{file: "ssh-w", tool: "ssh -w", pkg: "openssh-client", options: "ssh -w 5:5 (layer-3 tun over SSH), ping through it", expected: "ssh", server: "answers", addr: "192.0.2.140", seconds: 4,
			run: func(t *testing.T, l *lab, dir string) { l.sshTun(t, dir, "192.0.2.140") }},
		{file: "sslh-ssh", tool: "sslh + ssh -D", pkg: "sslh", options: "sslh on 443 sharing the port between TLS and SSH; ssh -D through it", expected: "ssh", server: "answers", addr: "192.0.2.141", seconds: 4,
			run: func(t *testing.T, l *lab, dir string) { l.sslhSSH(t, dir, "192.0.2.141") }},
		{file: "socat-tcp-relay", tool: "socat TCP relay + microsocks", pkg: "socat", options: "socat TCP-LISTEN:8080 relaying to a SOCKS5 proxy behind it", expected: "proxy", server: "answers", addr: "192.0.2.142", seconds: 3,
			run: func(t *testing.T, l *lab, dir string) { l.socatTCP(t, "192.0.2.142") }},
		{file: "socat-udp-relay", tool: "socat UDP relay + ss-tunnel", pkg: "socat", options: "socat UDP-LISTEN:443 relaying Shadowsocks UDP (chacha20-ietf-poly1305) to ss-server behind it", expected: "proxy", server: "answers", addr: "192.0.2.143", seconds: 3,
			run: func(t *testing.T, l *lab, dir string) { l.socatUDP(t, "192.0.2.143") }},
		{file: "shadowsocks-obfs-http", tool: "ss-local + obfs-local", pkg: "simple-obfs", options: "shadowsocks-libev with --plugin obfs-local obfs=http on port 80", expected: "proxy", server: "answers", addr: "192.0.2.144", seconds: 3,
			run: func(t *testing.T, l *lab, dir string) {
				l.shadowsocksPlugin(t, "192.0.2.144", "80", "obfs-server", "obfs=http", "obfs-local", "obfs=http;obfs-host=www.example.com")
			}},
		{file: "shadowsocks-obfs-tls", tool: "ss-local + obfs-local", pkg: "simple-obfs", options: "shadowsocks-libev with --plugin obfs-local obfs=tls on port 443", expected: "proxy", server: "answers", addr: "192.0.2.145", seconds: 3,
			run: func(t *testing.T, l *lab, dir string) {
				l.shadowsocksPlugin(t, "192.0.2.145", "443", "obfs-server", "obfs=tls", "obfs-local", "obfs=tls;obfs-host=www.example.com")
			}},
		{file: "shadowsocks-v2ray-plugin-ws", tool: "ss-local + v2ray-plugin", pkg: "shadowsocks-v2ray-plugin", options: "shadowsocks-libev with --plugin v2ray-plugin (WebSocket, no TLS) on port 80", expected: "proxy", server: "answers", addr: "192.0.2.146", seconds: 3,
			run: func(t *testing.T, l *lab, dir string) {
				l.shadowsocksPlugin(t, "192.0.2.146", "80", "ss-v2ray-plugin", "server;host=cdn.example.net", "ss-v2ray-plugin", "host=cdn.example.net")
			}},
		{file: "shadowsocks-v2ray-plugin-tls", tool: "ss-local + v2ray-plugin", pkg: "shadowsocks-v2ray-plugin", options: "shadowsocks-libev with --plugin v2ray-plugin tls (WebSocket over TLS) on port 443", expected: "proxy", server: "answers", addr: "192.0.2.147", seconds: 3,
			run: func(t *testing.T, l *lab, dir string) {
				p := tooltest.NewPKI(t, dir, "cdn.example.net")
				chmodAll(t, p.CA, p.ServerCert, p.ServerKey)
				l.shadowsocksPlugin(t, "192.0.2.147", "443", "ss-v2ray-plugin", "server;tls;host=cdn.example.net;cert="+p.ServerCert+";key="+p.ServerKey,
					"ss-v2ray-plugin", "tls;host=cdn.example.net;cert="+p.CA)
			}},
		// No DoQ server works here: dnsdist 1.7 (Debian 12) has no DoQ, and
		// knotd 3.2.6 serves QUIC only through XDP, whose BPF program this
		// kernel's verifier refuses ("xdp_redirect_dns_func: BPF program
		// load failed"). kdig's DoQ client is real, so it is recorded
		// against a gateway that never answers: an attempt.
		{file: "doq-kdig-silent", tool: "kdig +quic", pkg: "knot-dnsutils", options: "DoQ (QUIC, ALPN doq) on 853/udp to a blackholed server; no Debian 12 DoQ server runs here (see README)", expected: "doq", server: "silent", addr: silentAddr, seconds: 5,
			run: func(t *testing.T, l *lab, dir string) {
				l.Try(t, "pupil", "kdig", "+quic", "+time=2", "+retry=1", "@"+silentAddr, "www.example.com", "A")
			}},
		{file: "doh-chromium", tool: "chromium (secure DNS, custom provider)", pkg: "chromium", options: "headless Chromium with secure DNS mode and a custom DoH template (dnsdist as dns.example.net), loading a page", expected: "doh", server: "answers", addr: "192.0.2.149", seconds: 4,
			run: func(t *testing.T, l *lab, dir string) { l.chromiumDoH(t, dir, "192.0.2.149") }},
		{file: "doh-firefox", tool: "firefox-esr (TRR, custom provider)", pkg: "firefox-esr", options: "headless Firefox with DNS over HTTPS in TRR-only mode (network.trr.mode 3) to a custom provider (dnsdist as dns.example.net), loading a page", expected: "doh", server: "answers", addr: "192.0.2.152", seconds: 4,
			run: func(t *testing.T, l *lab, dir string) { l.firefoxDoH(t, dir, "192.0.2.152") }},
		// Benign traffic.
		{file: "benign-chromium-browsing", tool: "chromium", pkg: "chromium", options: "headless Chromium loading HTTPS and HTTP pages from the testbed web server", expected: "none", server: "answers", addr: testbed.WebIP, seconds: 4,
			run: func(t *testing.T, l *lab, dir string) { l.chromiumBrowse(t) }},
		{file: "benign-rtp-call", tool: "ffmpeg (RTP, VP8 both ways)", pkg: "ffmpeg", options: "a video-call-like exchange: VP8 over RTP, 25 fps, each side sending to the other from and to 5004/udp", expected: "none", server: "answers", addr: "192.0.2.150", seconds: 6,
			run: func(t *testing.T, l *lab, dir string) { l.rtpCall(t, "192.0.2.150") }},
		{file: "benign-http3", tool: "gtlsclient/gtlsserver (ngtcp2)", pkg: "ngtcp2-client", options: "an HTTP/3 page load over QUIC on 443/udp (Debian 12's curl has no HTTP/3 and nginx no QUIC: ngtcp2's example client and server)", expected: "none", server: "answers", addr: "192.0.2.151", seconds: 3,
			run: func(t *testing.T, l *lab, dir string) { l.http3(t, dir, "192.0.2.151") }},
	}
}

// chmodAll makes files readable by servers that drop privileges.
func chmodAll(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

var sshClientOpts = []string{"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"}

// sshTun runs ssh -w: a layer-3 tunnel device on each side, carried by SSH.
func (l *lab) sshTun(t *testing.T, dir, addr string) {
	key := l.SSHServer(t, dir, addr+":22")
	l.Start(t, "pupil", "ssh", append(append([]string{"-N", "-w", "5:5", "-o", "Tunnel=point-to-point", "-i", key}, sshClientOpts...), "root@"+addr)...)
	up := func(ns, local, peer string) bool {
		return tooltest.WaitFor(10*time.Second, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return l.S.Command(ctx, ns, "ip", "addr", "add", local, "peer", peer, "dev", "tun5").Run() == nil
		})
	}
	if !up("pupil", "10.254.0.2", "10.254.0.1") || !up("internet", "10.254.0.1", "10.254.0.2") {
		t.Fatal("ssh -w made no tun5 on both sides")
	}
	l.Run(t, "pupil", "ip", "link", "set", "tun5", "up")
	l.Run(t, "internet", "ip", "link", "set", "tun5", "up")
	l.Try(t, "pupil", "ping", "-c", "3", "-i", "0.3", "-w", "5", "10.254.0.1")
}

// sslhSSH runs sslh on addr:443 in front of sshd (and the web server's
// HTTPS), and an ssh -D session through it.
func (l *lab) sslhSSH(t *testing.T, dir, addr string) {
	key := l.SSHServer(t, dir, "127.0.0.1:22")
	srv := l.Start(t, "internet", "sslh", "-f", "-n", "-p", addr+":443", "--ssh", "127.0.0.1:22", "--tls", testbed.WebIP+":443")
	l.WaitTCP(t, srv, addr+":443")
	l.Start(t, "pupil", "ssh", append(append([]string{"-N", "-p", "443", "-D", "127.0.0.1:1088", "-i", key}, sshClientOpts...), "root@"+addr)...)
	tooltest.WaitFor(10*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return l.S.Command(ctx, "pupil", "curl", "-sS", "--max-time", "2", "--socks5", "127.0.0.1:1088", "http://"+testbed.WebIP+"/").Run() == nil
	})
}

// socatTCP relays addr:8080 to a SOCKS5 proxy only the relay can reach.
func (l *lab) socatTCP(t *testing.T, addr string) {
	socks := l.Start(t, "internet", "microsocks", "-i", "127.0.0.1", "-p", "1089")
	l.WaitTCP(t, socks, "127.0.0.1:1089")
	relay := l.Start(t, "internet", "socat", "TCP-LISTEN:8080,bind="+addr+",reuseaddr,fork", "TCP:127.0.0.1:1089")
	l.WaitTCP(t, relay, addr+":8080")
	l.Try(t, "pupil", "curl", "-sS", "--max-time", "5", "--socks5-hostname", addr+":8080", "http://"+testbed.WebIP+"/")
}

// socatUDP relays addr:443/udp to ss-server's UDP relay behind it, and
// resolves names through ss-tunnel.
func (l *lab) socatUDP(t *testing.T, addr string) {
	srv := l.Start(t, "internet", "ss-server", "-s", "127.0.0.1", "-p", "8389", "-k", "correct-horse", "-m", "chacha20-ietf-poly1305", "-U")
	l.WaitUDP(t, srv, "internet", "127.0.0.1:8389")
	relay := l.Start(t, "internet", "socat", "UDP4-LISTEN:443,bind="+addr+",reuseaddr,fork", "UDP4:127.0.0.1:8389")
	l.WaitUDP(t, relay, "internet", addr+":443")
	cli := l.Start(t, "pupil", "ss-tunnel", "-s", addr, "-p", "443", "-b", "127.0.0.1", "-l", "5354", "-L", testbed.ResolverIP+":53", "-U",
		"-k", "correct-horse", "-m", "chacha20-ietf-poly1305")
	l.WaitUDP(t, cli, "pupil", "127.0.0.1:5354")
	for _, n := range []string{"www.example.com", "example.org", "debian.org"} {
		l.Try(t, "pupil", "dig", "+time=2", "+tries=1", "-p", "5354", "@127.0.0.1", n)
	}
}

// shadowsocksPlugin runs ss-server and ss-local with a SIP003 plugin on
// each side and fetches a page through ss-local's SOCKS port.
func (l *lab) shadowsocksPlugin(t *testing.T, addr, port, srvPlugin, srvOpts, cliPlugin, cliOpts string) {
	const method = "chacha20-ietf-poly1305"
	srv := l.Start(t, "internet", "ss-server", "-s", addr, "-p", port, "-k", "correct-horse", "-m", method, "--plugin", srvPlugin, "--plugin-opts", srvOpts)
	l.WaitTCP(t, srv, addr+":"+port)
	cli := l.Start(t, "pupil", "ss-local", "-s", addr, "-p", port, "-b", "127.0.0.1", "-l", "1090", "-k", "correct-horse", "-m", method,
		"--plugin", cliPlugin, "--plugin-opts", cliOpts)
	l.WaitSocket(t, cli, "pupil", "-Hltn", "127.0.0.1:1090")
	for range 2 {
		l.Try(t, "pupil", "curl", "-sS", "--max-time", "5", "--socks5-hostname", "127.0.0.1:1090", "http://"+testbed.WebIP+"/")
	}
}

// chromiumDoH runs dnsdist as dns.example.net and a headless Chromium
// whose profile sets secure DNS to that custom provider (as a pupil does
// in Settings → Privacy → Use secure DNS), then loads a page by name.
func (l *lab) chromiumDoH(t *testing.T, dir, addr string) {
	l.DNSDist(t, dir, addr, "dns.example.net")
	bin, profile := chromiumProfile(t)
	state, err := json.Marshal(map[string]any{"dns_over_https": map[string]any{
		"mode": "secure", "templates": "https://dns.example.net/dns-query{?dns}"}})
	if err != nil {
		t.Fatal(err)
	}
	tooltest.WriteFile(t, filepath.Join(profile, "Local State"), string(state))
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	// Chromium's DoH ignores --ignore-certificate-errors; the SPKI list
	// is what a test may use to make it trust the throwaway certificate.
	tab := browser.Start(t, ctx, l.S, "pupil", bin, profile, "--ignore-certificate-errors-spki-list="+spkiHash(t, filepath.Join(dir, "server.pem")),
		"--host-resolver-rules=MAP dns.example.net "+addr)
	for _, u := range []string{"http://www.example.com/", "http://example.com/"} {
		nctx, ncancel := context.WithTimeout(tab, 10*time.Second)
		_, err := chromedp.Run(nctx, chromedp.Navigate(u))
		ncancel()
		t.Logf("chromium %s: %v", u, err)
	}
}

// spkiHash is the base64 SHA-256 of the certificate's public key, as
// Chromium's --ignore-certificate-errors-spki-list wants it.
func spkiHash(t *testing.T, certFile string) string {
	t.Helper()
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", certFile)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// firefoxDoH runs dnsdist as dns.example.net and a headless Firefox
// whose profile turns on DNS over HTTPS with that custom provider, only
// (as Settings → Privacy → DNS over HTTPS → Max Protection does), then
// loads a page by name. The profile's own certificate store trusts the
// test CA, as a pupil would click through.
func (l *lab) firefoxDoH(t *testing.T, dir, addr string) {
	l.DNSDist(t, dir, addr, "dns.example.net")
	profile := filepath.Join(dir, "firefox")
	if err := os.MkdirAll(profile, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-N", "-d", "sql:" + profile, "--empty-password"}, {"-A", "-d", "sql:" + profile, "-n", "gh-test-ca", "-t", "C,,", "-i", filepath.Join(dir, "ca.pem")}} {
		if out, err := exec.Command("certutil", args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil %v: %v\n%s", args, err, out)
		}
	}
	prefs := map[string]any{
		"network.trr.mode": 3, "network.trr.uri": "https://dns.example.net/dns-query", "network.trr.custom_uri": "https://dns.example.net/dns-query",
		"network.trr.bootstrapAddr": addr, "network.trr.confirmationNS": "skip",
		"app.update.enabled": false, "app.normandy.enabled": false, "datareporting.policy.dataSubmissionEnabled": false,
		"toolkit.telemetry.enabled": false, "browser.shell.checkDefaultBrowser": false, "browser.safebrowsing.malware.enabled": false,
		"browser.safebrowsing.phishing.enabled": false, "network.captive-portal-service.enabled": false, "network.connectivity-service.enabled": false,
		"extensions.update.enabled": false, "browser.startup.homepage_override.mstone": "ignore", "dom.security.https_only_mode": false,
	}
	var js strings.Builder
	for k, v := range prefs {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&js, "user_pref(%q, %s);\n", k, b)
	}
	tooltest.WriteFile(t, filepath.Join(profile, "user.js"), js.String())
	ff := l.StartEnv(t, "pupil", []string{"MOZ_HEADLESS=1", "HOME=" + dir}, "firefox-esr", "--headless", "--no-remote", "--profile", profile,
		"--screenshot", filepath.Join(dir, "page.png"), "http://www.example.com/")
	tooltest.WaitFor(30*time.Second, func() bool { done, _ := ff.Exited(); return done })
	if _, err := os.Stat(filepath.Join(dir, "page.png")); err != nil {
		t.Logf("firefox made no screenshot (%v):\n%s", err, ff.Out.String())
	}
}

// chromiumBrowse loads pages from the testbed web server in headless
// Chromium, as a pupil browsing would.
func (l *lab) chromiumBrowse(t *testing.T) {
	bin, profile := chromiumProfile(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	tab := browser.Start(t, ctx, l.S, "pupil", bin, profile, "--ignore-certificate-errors",
		"--host-resolver-rules=MAP www.example.com "+testbed.WebIP)
	for _, u := range []string{"https://www.example.com/", "https://www.example.com/index.html", "http://www.example.com/"} {
		nctx, ncancel := context.WithTimeout(tab, 10*time.Second)
		_, err := chromedp.Run(nctx, chromedp.Navigate(u))
		ncancel()
		t.Logf("chromium %s: %v", u, err)
	}
}

// chromiumProfile finds Debian's chromium and makes a fresh profile.
func chromiumProfile(t *testing.T) (bin, profile string) {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed (Debian package chromium): ", err)
	}
	// Not t.TempDir: Chromium may still write into it while it is removed.
	profile, err = os.MkdirTemp("", "gh-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(profile) })
	return bin, profile
}

// rtpCall sends VP8 video over RTP from the pupil to addr and back, as a
// video call's media does.
func (l *lab) rtpCall(t *testing.T, addr string) {
	send := func(to, local string) []string {
		return []string{"-nostdin", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25", "-t", "6",
			"-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "800k", "-f", "rtp", "rtp://" + to + ":5004?localport=5004" + local}
	}
	// The far end first, and the pupil's side as soon as the far end's
	// socket is bound, so that neither side's first packets meet a closed
	// port (ffmpeg gives up on the ICMP error). The far end sends from
	// addr: the fake internet's block is routed locally, so any of its
	// addresses can be bound.
	b := l.Start(t, "internet", "ffmpeg", send(l.Pupil.ClientAddr.String(), "&localaddr="+addr)...)
	l.WaitUDP(t, b, "internet", addr+":5004")
	a := l.Start(t, "pupil", "ffmpeg", send(addr, "")...)
	tooltest.WaitFor(20*time.Second, func() bool {
		da, _ := a.Exited()
		db, _ := b.Exited()
		return da && db
	})
}

// http3 serves a page with ngtcp2's example HTTP/3 server and fetches it
// with its example client.
func (l *lab) http3(t *testing.T, dir, addr string) {
	p := tooltest.NewPKI(t, dir, "www.example.net")
	htdocs := filepath.Join(dir, "htdocs")
	if err := os.MkdirAll(htdocs, 0o755); err != nil {
		t.Fatal(err)
	}
	tooltest.WriteFile(t, filepath.Join(htdocs, "index.html"), "<!doctype html><title>h3</title><p>"+strings.Repeat("hello over HTTP/3 ", 400)+"\n")
	srv := l.Start(t, "internet", "gtlsserver", "-q", "-d", htdocs, addr, "443", p.ServerKey, p.ServerCert)
	l.WaitUDP(t, srv, "internet", addr+":443")
	for range 2 {
		l.Try(t, "pupil", "timeout", "5", "gtlsclient", "-q", "--exit-on-all-streams-close", addr, "443", fmt.Sprintf("https://%s/index.html", "www.example.net"))
	}
}
