//go:build linux

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/internal/testkit"
	"github.com/gatehouse-net/gatehouse/testbed"
)

// recordEnv turns TestRecordCorpus on (`make record-corpus`): it rewrites
// the committed captures, so it never runs as part of `make test`.
const recordEnv = "GATEHOUSE_RECORD"

// corpusDir is where the recorded captures and their manifest live,
// relative to this package.
const corpusDir = "../testdata/recorded"

// recording is one tool session to capture.
type recording struct {
	file     string // capture file name, without .pcap
	tool     string // what a pupil would run
	pkg      string // the Debian package that provides it (for its version)
	options  string // how it was run, for the manifest
	expected string // the class inspection must find, or "none" for benign traffic
	server   string // "answers", "silent" (blackholed), "closed" (refused) or "accepts" (accepts TCP, never speaks)
	addr     string // the far end; the capture keeps only packets to and from it
	seconds  int    // how long the session runs before the capture stops
	run      func(t *testing.T, l *lab, dir string)
}

// TestRecordCorpus records each tool's first seconds on the router's pupil
// interface with tcpdump (client namespace → router → server in the fake
// internet) into inspect/testdata/recorded, and writes manifest.csv. Every
// capture is of the real program named in the manifest; nothing is made up.
func TestRecordCorpus(t *testing.T) {
	if os.Getenv(recordEnv) == "" {
		t.Skipf("re-records the corpus; run with %s=1 (make record-corpus)", recordEnv)
	}
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Fatal("tcpdump missing; apt-get install -y tcpdump")
	}
	only := os.Getenv(recordEnv + "_ONLY") // a regexp of file names, to redo some
	l := newLab(t)
	// A blackholed server: packets to it vanish, as behind a firewall.
	l.blackhole(t)
	manifest := readManifest(t)
	for _, r := range recordings() {
		if only != "" && !regexp.MustCompile(only).MatchString(r.file) {
			continue
		}
		t.Run(r.file, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Chmod(dir, 0o755); err != nil { // servers that drop privileges read from it
				t.Fatal(err)
			}
			path := filepath.Join(corpusDir, r.file+".pcap")
			stop := l.tcpdump(t, path, r.addr)
			r.run(t, l, dir)
			// The last packets' way from the ring to the file.
			time.Sleep(time.Second + time.Duration(r.seconds)*time.Second/4)
			stop()
			if t.Failed() {
				os.Remove(path) // no half-recorded capture left behind
				return
			}
			fi, err := os.Stat(path)
			if err != nil || fi.Size() <= 24 {
				os.Remove(path)
				t.Fatalf("%s: nothing captured (%v)", path, err)
			}
			manifest[r.file] = []string{r.file + ".pcap", r.tool, r.pkg, pkgVersion(r.pkg), r.options, r.expected, r.server}
		})
	}
	writeManifest(t, manifest)
}

// Addresses of the recorded sessions' servers in the fake internet.
const (
	silentAddr = "192.0.2.200" // blackholed: nothing ever comes back
	closedAddr = "192.0.2.201" // no listener: the kernel refuses
)

func recordings() []recording {
	ovpn := func(file, opts, proto, addr, port string, extra func(dir string) (srv, cli []string)) recording {
		return recording{file: file, tool: "openvpn", pkg: "openvpn", options: opts, expected: "vpn", server: "answers", addr: addr, seconds: 6,
			run: func(t *testing.T, l *lab, dir string) {
				l.openvpn(t, dir, proto, addr, port, true, extra)
			}}
	}
	tlsAuth := func(flag, genkey string) func(dir string) ([]string, []string) {
		return func(dir string) ([]string, []string) {
			key := filepath.Join(dir, "ta.key")
			if out, err := exec.Command("openvpn", "--genkey", "secret", key).CombinedOutput(); err != nil {
				panic(fmt.Sprintf("openvpn --genkey: %v %s", err, out))
			}
			if flag == "--tls-auth" {
				return []string{flag, key, "0"}, []string{flag, key, "1"}
			}
			return []string{flag, key}, []string{flag, key}
		}
	}
	cryptV2 := func(dir string) ([]string, []string) {
		srv, cli := filepath.Join(dir, "v2srv.key"), filepath.Join(dir, "v2cli.key")
		for _, args := range [][]string{{"--genkey", "tls-crypt-v2-server", srv}, {"--tls-crypt-v2", srv, "--genkey", "tls-crypt-v2-client", cli}} {
			if out, err := exec.Command("openvpn", args...).CombinedOutput(); err != nil {
				panic(fmt.Sprintf("openvpn %v: %v %s", args, err, out))
			}
		}
		return []string{"--tls-crypt-v2", srv}, []string{"--tls-crypt-v2", cli}
	}
	return []recording{
		ovpn("openvpn-udp", "--proto udp, port 1194, certificates", "udp", "192.0.2.101", "1194", nil),
		ovpn("openvpn-tcp", "--proto tcp-client, port 1194", "tcp", "192.0.2.102", "1194", nil),
		ovpn("openvpn-tcp-443", "--proto tcp-client, port 443", "tcp", "192.0.2.103", "443", nil),
		ovpn("openvpn-udp-tls-auth", "--proto udp, --tls-auth (HMAC on the control channel)", "udp", "192.0.2.104", "1194", tlsAuth("--tls-auth", "")),
		ovpn("openvpn-udp-tls-crypt", "--proto udp, --tls-crypt (encrypted control channel)", "udp", "192.0.2.105", "1194", tlsAuth("--tls-crypt", "")),
		ovpn("openvpn-udp-tls-crypt-v2", "--proto udp, --tls-crypt-v2 (per-client wrapped key)", "udp", "192.0.2.106", "1194", cryptV2),
		ovpn("openvpn-udp-443", "--proto udp, port 443", "udp", "192.0.2.107", "443", nil),
		{file: "openvpn-udp-silent", tool: "openvpn", pkg: "openvpn", options: "--proto udp to a blackholed server (client only)", expected: "vpn", server: "silent", addr: silentAddr, seconds: 7,
			run: func(t *testing.T, l *lab, dir string) { l.openvpn(t, dir, "udp", silentAddr, "1194", false, nil) }},
		{file: "openvpn-tcp-accepts-silent", tool: "openvpn", pkg: "openvpn", options: "--proto tcp-client to a listener that accepts and never answers", expected: "vpn", server: "accepts", addr: "192.0.2.202", seconds: 5,
			run: func(t *testing.T, l *lab, dir string) {
				l.mute(t, "192.0.2.202", "443")
				l.openvpn(t, dir, "tcp", "192.0.2.202", "443", false, nil)
			}},
		{file: "wireguard-51820", tool: "wireguard-go + wg", pkg: "wireguard-go", options: "listen-port 51820, ping through the tunnel", expected: "vpn", server: "answers", addr: "192.0.2.110", seconds: 4,
			run: func(t *testing.T, l *lab, dir string) { l.wireguard(t, dir, "192.0.2.110", "51820", true) }},
		{file: "wireguard-443", tool: "wireguard-go + wg", pkg: "wireguard-go", options: "listen-port 443/udp, ping through the tunnel", expected: "vpn", server: "answers", addr: "192.0.2.111", seconds: 4,
			run: func(t *testing.T, l *lab, dir string) { l.wireguard(t, dir, "192.0.2.111", "443", true) }},
		{file: "wireguard-silent", tool: "wireguard-go + wg", pkg: "wireguard-go", options: "endpoint blackholed, pings retry the handshake", expected: "vpn", server: "silent", addr: silentAddr, seconds: 12,
			run: func(t *testing.T, l *lab, dir string) { l.wireguard(t, dir, silentAddr, "51820", false) }},
		{file: "ssh-D", tool: "ssh -D", pkg: "openssh-client", options: "ssh -N -D 127.0.0.1:1080, curl through it", expected: "ssh", server: "answers", addr: "192.0.2.112", seconds: 4,
			run: func(t *testing.T, l *lab, dir string) { l.sshD(t, dir, "192.0.2.112") }},
		{file: "squid-connect", tool: "curl -x (squid)", pkg: "squid", options: "HTTPS through squid's CONNECT on 3128", expected: "proxy", server: "answers", addr: "192.0.2.113", seconds: 3,
			run: func(t *testing.T, l *lab, dir string) { l.squid(t, dir, "192.0.2.113") }},
		{file: "microsocks", tool: "curl --socks5 (microsocks)", pkg: "microsocks", options: "SOCKS5 on 1080", expected: "proxy", server: "answers", addr: "192.0.2.114", seconds: 3,
			run: func(t *testing.T, l *lab, dir string) {
				srv := l.start(t, "internet", "microsocks", "-i", "192.0.2.114", "-p", "1080")
				l.waitTCP(t, srv, "192.0.2.114:1080")
				l.try(t, "pupil", "curl", "-sS", "--max-time", "5", "--socks5", "192.0.2.114:1080", "http://"+testbed.WebIP+"/")
			}},
		{file: "socks5-accepts-silent", tool: "curl --socks5", pkg: "curl", options: "SOCKS5 greeting to a listener that never answers", expected: "proxy", server: "accepts", addr: "192.0.2.115", seconds: 4,
			run: func(t *testing.T, l *lab, dir string) {
				l.mute(t, "192.0.2.115", "1080")
				l.try(t, "pupil", "curl", "-sS", "--max-time", "3", "--socks5", "192.0.2.115:1080", "http://"+testbed.WebIP+"/")
			}},
		{file: "doh-curl-cloudflare-name", tool: "curl --doh-url (dnsdist)", pkg: "dnsdist", options: "DoH to a server named cloudflare-dns.com", expected: "doh", server: "answers", addr: "192.0.2.116", seconds: 3,
			run: func(t *testing.T, l *lab, dir string) { l.doh(t, dir, "192.0.2.116", "cloudflare-dns.com") }},
		{file: "doh-curl-unlisted-name", tool: "curl --doh-url (dnsdist)", pkg: "dnsdist", options: "DoH to dns.example.net, a resolver on no list, several lookups", expected: "doh", server: "answers", addr: "192.0.2.117", seconds: 4,
			run: func(t *testing.T, l *lab, dir string) { l.doh(t, dir, "192.0.2.117", "dns.example.net") }},
		{file: "dot-kdig", tool: "kdig +tls (dnsdist)", pkg: "knot-dnsutils", options: "DoT on 853", expected: "dot", server: "answers", addr: "192.0.2.118", seconds: 3,
			run: func(t *testing.T, l *lab, dir string) { l.dot(t, dir, "192.0.2.118") }},
		{file: "dot-kdig-closed", tool: "kdig +tls", pkg: "knot-dnsutils", options: "DoT to a server that refuses port 853", expected: "dot", server: "closed", addr: closedAddr, seconds: 3,
			run: func(t *testing.T, l *lab, dir string) {
				l.try(t, "pupil", "kdig", "+tls", "+time=1", "+retry=2", "-p", "853", "@"+closedAddr, "www.example.com", "A")
			}},
		{file: "dot-kdig-silent", tool: "kdig +tls", pkg: "knot-dnsutils", options: "DoT to a blackholed server", expected: "dot", server: "silent", addr: silentAddr, seconds: 5,
			run: func(t *testing.T, l *lab, dir string) {
				l.try(t, "pupil", "kdig", "+tls", "+time=4", "+retry=0", "-p", "853", "@"+silentAddr, "www.example.com", "A")
			}},
		{file: "shadowsocks-chacha20", tool: "ss-local/ss-server", pkg: "shadowsocks-libev", options: "-m chacha20-ietf-poly1305, curl through ss-local", expected: "proxy", server: "answers", addr: "192.0.2.119", seconds: 3,
			run: func(t *testing.T, l *lab, dir string) { l.shadowsocks(t, "192.0.2.119", "chacha20-ietf-poly1305") }},
		{file: "shadowsocks-aes256gcm", tool: "ss-local/ss-server", pkg: "shadowsocks-libev", options: "-m aes-256-gcm, curl through ss-local", expected: "proxy", server: "answers", addr: "192.0.2.120", seconds: 3,
			run: func(t *testing.T, l *lab, dir string) { l.shadowsocks(t, "192.0.2.120", "aes-256-gcm") }},
		{file: "tor-private-bridge", tool: "tor", pkg: "tor", options: "UseBridges to a private relay in the fake internet", expected: "tor", server: "answers", addr: "192.0.2.121", seconds: 8,
			run: func(t *testing.T, l *lab, dir string) { l.tor(t, dir, "192.0.2.121", false) }},
		{file: "tor-obfs4-bridge", tool: "tor + obfs4proxy", pkg: "obfs4proxy", options: "UseBridges with an obfs4 bridge (iat-mode=0); obfs4 looks like any fully encrypted proxy", expected: "proxy", server: "answers", addr: "192.0.2.122", seconds: 8,
			run: func(t *testing.T, l *lab, dir string) { l.tor(t, dir, "192.0.2.122", true) }},
		{file: "iodine", tool: "iodine/iodined", pkg: "iodine", options: "-r (DNS only, no raw UDP), tunnel domain t.example.net", expected: "tunnel", server: "answers", addr: "192.0.2.123", seconds: 6,
			run: func(t *testing.T, l *lab, dir string) { l.iodine(t, "192.0.2.123") }},
		{file: "ptunnel-ng", tool: "ptunnel-ng", pkg: "ptunnel-ng", options: "ICMP echo tunnel to the web server's port 80", expected: "tunnel", server: "answers", addr: "192.0.2.124", seconds: 5,
			run: func(t *testing.T, l *lab, dir string) { l.ptunnel(t, "192.0.2.124") }},
		{file: "ikev2-strongswan-silent", tool: "strongswan (charon, swanctl)", pkg: "strongswan-charon", options: "IKEv2 PSK to a blackholed gateway", expected: "vpn", server: "silent", addr: silentAddr, seconds: 8,
			run: func(t *testing.T, l *lab, dir string) { l.ikeSilent(t, dir, silentAddr) }},
		{file: "shadowsocks-udp", tool: "ss-tunnel/ss-server -u", pkg: "shadowsocks-libev", options: "-m chacha20-ietf-poly1305, DNS lookups relayed over UDP", expected: "proxy", server: "answers", addr: "192.0.2.125", seconds: 3,
			run: func(t *testing.T, l *lab, dir string) {
				srv := l.start(t, "internet", "ss-server", "-s", "192.0.2.125", "-p", "8388", "-k", "correct-horse", "-m", "chacha20-ietf-poly1305", "-u")
				l.waitUDP(t, srv, "internet", "192.0.2.125:8388")
				cli := l.start(t, "pupil", "ss-tunnel", "-s", "192.0.2.125", "-p", "8388", "-b", "127.0.0.1", "-l", "5353", "-L", testbed.ResolverIP+":53", "-U",
					"-k", "correct-horse", "-m", "chacha20-ietf-poly1305")
				l.waitUDP(t, cli, "pupil", "127.0.0.1:5353")
				for _, n := range []string{"www.example.com", "example.org", "debian.org"} {
					l.try(t, "pupil", "dig", "+time=2", "+tries=1", "-p", "5353", "@127.0.0.1", n)
				}
			}},
		{file: "stunnel-socks", tool: "stunnel4 + microsocks", pkg: "stunnel4", options: "stunnel client wrapping SOCKS5 to a stunnel server on 443", expected: "proxy", server: "answers", addr: "192.0.2.126", seconds: 3,
			run: func(t *testing.T, l *lab, dir string) { l.stunnelSOCKS(t, dir, "192.0.2.126") }},
		{file: "openconnect-ocserv", tool: "openconnect/ocserv", pkg: "openconnect", options: "--protocol=anyconnect, password auth, TLS on 443 then DTLS on 443/udp", expected: "vpn", server: "answers", addr: "192.0.2.127", seconds: 6,
			run: func(t *testing.T, l *lab, dir string) { l.openconnect(t, dir, "192.0.2.127") }},
		// Chromium browsing is not recorded yet: headless --dump-dom hangs in
		// this testbed (no D-Bus) before it loads the page.
		{file: "tinc-1.0", tool: "tincd", pkg: "tinc", options: "tinc 1.0 meta-protocol on 655/tcp, RSA keys, switch mode", expected: "vpn", server: "answers", addr: "192.0.2.128", seconds: 4,
			run: func(t *testing.T, l *lab, dir string) { l.tinc(t, dir, "192.0.2.128") }},
		{file: "v2ray-vmess-tcp", tool: "v2ray", pkg: "v2ray", options: "VMess (AEAD) over raw TCP, curl through the client's SOCKS inbound", expected: "proxy", server: "answers", addr: "192.0.2.132", seconds: 3,
			run: func(t *testing.T, l *lab, dir string) { l.v2ray(t, dir, "192.0.2.132", "vmess", "tcp") }},
		{file: "v2ray-vmess-ws", tool: "v2ray", pkg: "v2ray", options: "VMess over WebSocket (no TLS) on port 80", expected: "proxy", server: "answers", addr: "192.0.2.133", seconds: 3,
			run: func(t *testing.T, l *lab, dir string) { l.v2ray(t, dir, "192.0.2.133", "vmess", "ws") }},
		{file: "v2ray-vless-tls", tool: "v2ray", pkg: "v2ray", options: "VLESS over TCP+TLS on 443", expected: "proxy", server: "answers", addr: "192.0.2.134", seconds: 3,
			run: func(t *testing.T, l *lab, dir string) { l.v2ray(t, dir, "192.0.2.134", "vless", "tls") }},
		{file: "v2ray-trojan", tool: "v2ray", pkg: "v2ray", options: "Trojan over TLS on 443, an HTTPS page fetched through it", expected: "proxy", server: "answers", addr: "192.0.2.135", seconds: 3,
			run: func(t *testing.T, l *lab, dir string) { l.v2ray(t, dir, "192.0.2.135", "trojan", "tls") }},
		// Benign traffic: nothing may be raised.
		{file: "benign-curl-https", tool: "curl", pkg: "curl", options: "three HTTPS page loads from the testbed web server", expected: "none", server: "answers", addr: testbed.WebIP, seconds: 3,
			run: func(t *testing.T, l *lab, dir string) {
				for range 3 {
					l.try(t, "pupil", "curl", "-sSk", "--max-time", "5", "https://"+testbed.WebIP+"/index.html")
				}
			}},
		{file: "benign-https-download", tool: "curl (openssl s_server -WWW)", pkg: "openssl", options: "a 3 MB HTTPS download, first packets", expected: "none", server: "answers", addr: "192.0.2.130", seconds: 4,
			run: func(t *testing.T, l *lab, dir string) { l.download(t, dir, "192.0.2.130") }},
		{file: "benign-apt-http", tool: "curl as apt", pkg: "curl", options: "plain HTTP GETs with APT's user agent", expected: "none", server: "answers", addr: testbed.WebIP, seconds: 3,
			run: func(t *testing.T, l *lab, dir string) {
				for _, p := range []string{"/debian/dists/bookworm/InRelease", "/debian/pool/main/h/hello/hello_2.10-3_amd64.deb"} {
					l.try(t, "pupil", "curl", "-sS", "-A", "Debian APT-HTTP/1.3 (2.6.1)", "--max-time", "5", "http://"+testbed.WebIP+p)
				}
			}},
		{file: "benign-ntp", tool: "chronyd", pkg: "chrony", options: "chronyd -q one-shot client against a chronyd server", expected: "none", server: "answers", addr: "192.0.2.131", seconds: 4,
			run: func(t *testing.T, l *lab, dir string) { l.ntp(t, dir, "192.0.2.131") }},
		{file: "benign-dns", tool: "dig", pkg: "dnsutils", options: "ordinary lookups through the testbed resolver", expected: "none", server: "answers", addr: testbed.ResolverIP, seconds: 2,
			run: func(t *testing.T, l *lab, dir string) {
				for _, n := range []string{"www.example.com", "example.org", "debian.org"} {
					l.try(t, "pupil", "dig", "+time=1", "+tries=1", "@"+testbed.ResolverIP, n)
				}
			}},
	}
}

// tcpdump captures packets to and from addr on the router's pupil
// interface into path until the returned stop is called.
func (l *lab) tcpdump(t *testing.T, path, addr string) (stop func()) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := l.s.Command(ctx, "router", "tcpdump", "-i", l.pupil.Interface, "-U", "--immediate-mode", "-n", "-s", "2048", "-c", "400",
		"-w", path, "host", addr)
	out := &testkit.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = 3 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("tcpdump: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if !waitFor(5*time.Second, func() bool { return strings.Contains(out.String(), "listening on") }) {
		t.Fatalf("tcpdump did not start:\n%s", out.String())
	}
	return func() {
		cancel()
		<-done
		t.Logf("tcpdump: %s", strings.TrimSpace(out.String()))
	}
}

// try runs a client command that may fail (the server never answers);
// its output is logged.
func (l *lab) try(t *testing.T, ns, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := l.s.Command(ctx, ns, name, args...).CombinedOutput()
	t.Logf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	return string(out)
}

// mute listens on addr:port in the fake internet, accepting connections and
// never saying anything.
func (l *lab) mute(t *testing.T, addr, port string) {
	t.Helper()
	p := l.start(t, "internet", "socat", "TCP-LISTEN:"+port+",bind="+addr+",reuseaddr,fork", "SYSTEM:sleep 30")
	l.waitTCP(t, p, addr+":"+port)
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	writeFile(t, p, content)
	return p
}

// openvpn runs a client (and, when serve, a server) for one session.
func (l *lab) openvpn(t *testing.T, dir, proto, addr, port string, serve bool, extra func(dir string) ([]string, []string)) {
	p := newPKI(t, dir, "vpn.example.net")
	common := []string{"--verb", "3", "--disable-dco", "--dev", "tun", "--dh", "none", "--ca", p.ca,
		"--data-ciphers", "AES-256-GCM", "--connect-timeout", "10", "--connect-retry", "1", "1"}
	var srvExtra, cliExtra []string
	if extra != nil {
		srvExtra, cliExtra = extra(dir)
	}
	sp, cp := "udp", "udp"
	if proto == "tcp" {
		sp, cp = "tcp-server", "tcp-client"
	}
	if serve {
		srv := l.start(t, "internet", "openvpn", append(append(common, "--tls-server", "--proto", sp,
			"--local", addr, "--lport", port, "--cert", p.serverCert, "--key", p.serverKey,
			"--ifconfig", "10.250.0.1", "10.250.0.2"), srvExtra...)...)
		if proto == "tcp" {
			l.waitTCP(t, srv, addr+":"+port)
		} else {
			l.waitUDP(t, srv, "internet", addr+":"+port)
		}
	}
	cli := l.start(t, "pupil", "openvpn", append(append(common, "--tls-client", "--proto", cp,
		"--remote", addr, port, "--nobind", "--cert", p.clientCert, "--key", p.clientKey,
		"--ifconfig", "10.250.0.2", "10.250.0.1"), cliExtra...)...)
	if serve {
		waitOutput(t, cli, "Initialization Sequence Completed", 20*time.Second)
	} else {
		time.Sleep(7 * time.Second)
	}
}

// wireguard brings up a wireguard-go client (and server when serve) and
// pings through the tunnel.
func (l *lab) wireguard(t *testing.T, dir, addr, port string, serve bool) {
	suffix := fmt.Sprint(os.Getpid()%10000) + port[:2]
	srvIf, cliIf := "wrs"+suffix, "wrc"+suffix
	keys := map[string]string{}
	for _, side := range []string{"server", "client"} {
		priv := strings.TrimSpace(l.run(t, "internet", "wg", "genkey"))
		cmd := exec.Command("wg", "pubkey")
		cmd.Stdin = strings.NewReader(priv + "\n")
		pub, err := cmd.Output()
		if err != nil {
			t.Fatalf("wg pubkey: %v", err)
		}
		keys[side] = strings.TrimSpace(string(pub))
		writeFile(t, filepath.Join(dir, side+".key"), priv+"\n")
	}
	up := func(ns, ifname string) {
		ctx, cancel := context.WithCancel(context.Background())
		cmd := l.s.Command(ctx, ns, "wireguard-go", "-f", ifname)
		out := &testkit.SyncBuffer{}
		cmd.Env = append(os.Environ(), "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1")
		cmd.Stdout, cmd.Stderr = out, out
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = 3 * time.Second
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatalf("start wireguard-go: %v", err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		sock := "/var/run/wireguard/" + ifname + ".sock"
		if !waitFor(10*time.Second, func() bool { _, err := os.Stat(sock); return err == nil }) {
			t.Fatalf("wireguard-go in %s made no %s\n%s", ns, sock, out.String())
		}
	}
	if serve {
		up("internet", srvIf)
		l.run(t, "internet", "wg", "set", srvIf, "listen-port", port, "private-key", filepath.Join(dir, "server.key"),
			"peer", keys["client"], "allowed-ips", "10.251.1.2/32")
		l.run(t, "internet", "ip", "addr", "add", "10.251.1.1/24", "dev", srvIf)
		l.run(t, "internet", "ip", "link", "set", srvIf, "up")
	}
	up("pupil", cliIf)
	l.run(t, "pupil", "wg", "set", cliIf, "private-key", filepath.Join(dir, "client.key"),
		"peer", keys["server"], "allowed-ips", "10.251.1.1/32", "endpoint", addr+":"+port)
	l.run(t, "pupil", "ip", "addr", "add", "10.251.1.2/24", "dev", cliIf)
	l.run(t, "pupil", "ip", "link", "set", cliIf, "up")
	if serve {
		l.run(t, "pupil", "ping", "-c", "3", "-i", "0.3", "-w", "10", "10.251.1.1")
	} else {
		l.try(t, "pupil", "ping", "-c", "12", "-i", "1", "-w", "12", "10.251.1.1")
	}
}

func (l *lab) sshD(t *testing.T, dir, addr string) {
	l.run(t, "internet", "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "host"))
	l.run(t, "internet", "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "id"))
	pub, err := os.ReadFile(filepath.Join(dir, "id.pub"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "authorized_keys"), string(pub))
	writeFile(t, filepath.Join(dir, "sshd_config"), strings.Join([]string{
		"ListenAddress " + addr + ":22", "HostKey " + filepath.Join(dir, "host"), "PidFile none",
		"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"), "PermitRootLogin prohibit-password",
		"PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no", "AllowTcpForwarding yes",
	}, "\n")+"\n")
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		t.Fatal(err)
	}
	srv := l.start(t, "internet", sshd, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	l.waitTCP(t, srv, addr+":22")
	l.start(t, "pupil", "ssh", "-N", "-D", "127.0.0.1:1082", "-i", filepath.Join(dir, "id"),
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "root@"+addr)
	waitFor(10*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return l.s.Command(ctx, "pupil", "curl", "-sS", "--max-time", "2", "--socks5", "127.0.0.1:1082", "http://"+testbed.WebIP+"/").Run() == nil
	})
}

func (l *lab) squid(t *testing.T, dir, addr string) {
	conf := filepath.Join(dir, "squid.conf")
	writeFile(t, conf, strings.Join([]string{
		"http_port " + addr + ":3128", "http_access allow all", "cache deny all", "cache_effective_user proxy",
		"pid_filename none", "cache_log /dev/null", "access_log none", "cache_store_log none", "netdb_filename none",
		"pinger_enable off", "shutdown_lifetime 0 seconds", "visible_hostname gatehouse-test-squid",
		"dns_nameservers " + testbed.ResolverIP,
	}, "\n")+"\n")
	os.Chmod(conf, 0o644)
	srv := l.start(t, "internet", "squid", "-N", "-d", "1", "-f", conf)
	l.waitTCP(t, srv, addr+":3128")
	l.try(t, "pupil", "curl", "-sS", "-k", "--max-time", "10", "-x", "http://"+addr+":3128", "https://"+testbed.WebIP+"/")
}

// dnsConf starts dnsdist with DoH on addr:443 (certificate for name) and
// DoT on addr:853.
func (l *lab) dnsdist(t *testing.T, dir, addr, name string) {
	p := newPKI(t, dir, name)
	conf := filepath.Join(dir, "dnsdist.conf")
	writeFile(t, conf, strings.Join([]string{
		`setSecurityPollSuffix("")`, `setACL({"0.0.0.0/0"})`,
		fmt.Sprintf(`newServer({address=%q})`, testbed.ResolverIP+":53"),
		fmt.Sprintf(`addDOHLocal(%q, %q, %q, "/dns-query")`, addr+":443", p.serverCert, p.serverKey),
		fmt.Sprintf(`addTLSLocal(%q, %q, %q)`, addr+":853", p.serverCert, p.serverKey),
	}, "\n")+"\n")
	srv := l.start(t, "internet", "dnsdist", "--supervised", "--disable-syslog", "-C", conf)
	l.waitTCP(t, srv, addr+":443")
	l.waitTCP(t, srv, addr+":853")
}

func (l *lab) doh(t *testing.T, dir, addr, name string) {
	l.dnsdist(t, dir, addr, name)
	// One curl resolving several names over one DoH connection.
	l.try(t, "pupil", "curl", "-sS", "--max-time", "10", "--resolve", name+":443:"+addr,
		"--doh-url", "https://"+name+"/dns-query", "--doh-insecure",
		"http://www.example.com/", "http://example.org/", "http://debian.org/", "http://www.example.net/", "http://example.com/")
}

func (l *lab) dot(t *testing.T, dir, addr string) {
	l.dnsdist(t, dir, addr, "dot.example.net")
	l.try(t, "pupil", "kdig", "+tls", "+time=3", "+retry=1", "-p", "853", "@"+addr, "www.example.com", "A")
}

func (l *lab) shadowsocks(t *testing.T, addr, method string) {
	srv := l.start(t, "internet", "ss-server", "-s", addr, "-p", "8388", "-k", "correct-horse", "-m", method, "-u")
	l.waitTCP(t, srv, addr+":8388")
	port := map[string]string{"aes-256-gcm": "1084"}[method]
	if port == "" {
		port = "1083"
	}
	cli := l.start(t, "pupil", "ss-local", "-s", addr, "-p", "8388", "-b", "127.0.0.1", "-l", port, "-k", "correct-horse", "-m", method)
	l.waitSocket(t, cli, "pupil", "-Hltn", "127.0.0.1:"+port)
	l.try(t, "pupil", "curl", "-sS", "--max-time", "5", "--socks5-hostname", "127.0.0.1:"+port, "http://"+testbed.WebIP+"/")
}

// tor runs a private relay (with an obfs4 transport when obfs) and a tor
// client that uses it as its bridge.
func (l *lab) tor(t *testing.T, dir, addr string, obfs bool) {
	sdir, cdir := filepath.Join(dir, "relay"), filepath.Join(dir, "client")
	for _, d := range []string{sdir, cdir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	srvConf := []string{"DataDirectory " + sdir, "SocksPort 0", "ORPort " + addr + ":9001", "Address " + addr,
		"BridgeRelay 1", "PublishServerDescriptor 0", "AssumeReachable 1", "ExitRelay 0", "Log notice stdout", "RunAsDaemon 0"}
	if obfs {
		srvConf = append(srvConf, "ServerTransportPlugin obfs4 exec /usr/bin/obfs4proxy",
			"ServerTransportListenAddr obfs4 "+addr+":443", "ExtORPort auto")
	}
	writeFile(t, filepath.Join(dir, "relay.torrc"), strings.Join(srvConf, "\n")+"\n")
	srv := l.start(t, "internet", "tor", "-f", filepath.Join(dir, "relay.torrc"))
	l.waitTCP(t, srv, addr+":9001")
	bridge := addr + ":9001"
	if obfs {
		line := filepath.Join(sdir, "pt_state", "obfs4_bridgeline.txt")
		var cert string
		waitFor(15*time.Second, func() bool {
			b, err := os.ReadFile(line)
			if err != nil {
				return false
			}
			m := regexp.MustCompile(`cert=(\S+)`).FindStringSubmatch(string(b))
			if m == nil || strings.Contains(m[1], "<") {
				return false
			}
			cert = m[1]
			return true
		})
		if cert == "" {
			t.Fatalf("no obfs4 bridge line in %s\n%s", line, srv.out.String())
		}
		l.waitTCP(t, srv, addr+":443")
		bridge = "obfs4 " + addr + ":443 cert=" + cert + " iat-mode=0"
	}
	cliConf := []string{"DataDirectory " + cdir, "SocksPort 127.0.0.1:9055", "UseBridges 1", "Bridge " + bridge, "Log notice stdout"}
	if obfs {
		cliConf = append(cliConf, "ClientTransportPlugin obfs4 exec /usr/bin/obfs4proxy")
	}
	writeFile(t, filepath.Join(dir, "client.torrc"), strings.Join(cliConf, "\n")+"\n")
	l.start(t, "pupil", "tor", "-f", filepath.Join(dir, "client.torrc"))
	time.Sleep(8 * time.Second)
}

func (l *lab) iodine(t *testing.T, addr string) {
	srv := l.start(t, "internet", "iodined", "-f", "-c", "-P", "correct-horse", "-l", addr, "10.252.0.1", "t.example.net")
	l.waitUDP(t, srv, "internet", addr+":53")
	l.start(t, "pupil", "iodine", "-f", "-r", "-P", "correct-horse", addr, "t.example.net")
	time.Sleep(5 * time.Second)
	l.try(t, "pupil", "ping", "-c", "3", "-i", "0.3", "-w", "4", "10.252.0.1")
}

func (l *lab) ptunnel(t *testing.T, addr string) {
	l.start(t, "internet", "ptunnel-ng", "-r"+testbed.WebIP, "-R80")
	time.Sleep(500 * time.Millisecond)
	cli := l.start(t, "pupil", "ptunnel-ng", "-p"+addr, "-l2223", "-r"+testbed.WebIP, "-R80")
	l.waitSocket(t, cli, "pupil", "-Hltn", "0.0.0.0:2223")
	for range 2 {
		l.try(t, "pupil", "curl", "-sS", "--max-time", "4", "http://127.0.0.1:2223/")
	}
}

// ikeSilent starts charon in the pupil namespace (its own sockets and
// configuration) and initiates an IKEv2 connection to a gateway that never
// answers.
func (l *lab) ikeSilent(t *testing.T, dir, addr string) {
	vici := "unix://" + filepath.Join(dir, "charon.vici")
	writeFile(t, filepath.Join(dir, "strongswan.conf"), "charon {\n  port = 0\n  port_nat_t = 0\n  install_routes = no\n  retransmit_tries = 3\n  retransmit_timeout = 2.0\n  plugins {\n    vici {\n      socket = "+vici+"\n    }\n  }\n  filelog {\n    stdout {\n      path = /dev/stdout\n      default = 1\n    }\n  }\n}\n")
	writeFile(t, filepath.Join(dir, "swanctl.conf"), `connections {
  school-bypass {
    version = 2
    remote_addrs = `+addr+`
    local { auth = psk
            id = pupil@example.net }
    remote { auth = psk
             id = gw.example.net }
    children { net { remote_ts = 0.0.0.0/0 } }
  }
}
secrets { ike-1 { id = gw.example.net
                  secret = correct-horse-battery } }
`)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := l.s.Command(ctx, "pupil", "/usr/lib/ipsec/charon")
	cmd.Env = append(os.Environ(), "STRONGSWAN_CONF="+filepath.Join(dir, "strongswan.conf"))
	out := &testkit.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 3 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("charon: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		t.Logf("charon:\n%s", out.String())
	})
	if !waitFor(10*time.Second, func() bool { _, err := os.Stat(filepath.Join(dir, "charon.vici")); return err == nil }) {
		t.Fatalf("charon made no vici socket\n%s", out.String())
	}
	l.try(t, "pupil", "swanctl", "--load-all", "--uri", vici, "--file", filepath.Join(dir, "swanctl.conf"))
	l.try(t, "pupil", "timeout", "7", "swanctl", "--initiate", "--uri", vici, "--child", "net", "--timeout", "6")
}

// download serves a 3 MB file with openssl s_server -WWW and fetches it.
func (l *lab) download(t *testing.T, dir, addr string) {
	p := newPKI(t, dir, "updates.example.net")
	blob := make([]byte, 3<<20)
	rand.Read(blob)
	if err := os.WriteFile(filepath.Join(dir, "update.bin"), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := l.s.Command(ctx, "internet", "openssl", "s_server", "-WWW", "-accept", addr+":443", "-cert", p.serverCert, "-key", p.serverKey, "-quiet")
	cmd.Dir = dir
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	time.Sleep(time.Second)
	l.try(t, "pupil", "curl", "-sSk", "--max-time", "10", "-o", "/dev/null", "--resolve", "updates.example.net:443:"+addr, "https://updates.example.net/update.bin")
}

// pkgVersion is the installed version of a Debian package.
func pkgVersion(pkg string) string {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", pkg).Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

var manifestHeader = []string{"file", "tool", "package", "version", "options", "expected", "server"}

// readManifest loads the existing manifest so that a partial re-record
// (GATEHOUSE_RECORD_ONLY) keeps the other rows.
func readManifest(t *testing.T) map[string][]string {
	m := map[string][]string{}
	fh, err := os.Open(filepath.Join(corpusDir, "manifest.csv"))
	if err != nil {
		return m
	}
	defer fh.Close()
	rows, err := csv.NewReader(fh).ReadAll()
	if err != nil {
		t.Fatalf("manifest: %v", err)
	}
	for _, r := range rows[1:] {
		m[strings.TrimSuffix(r[0], ".pcap")] = r
	}
	return m
}

func writeManifest(t *testing.T, m map[string][]string) {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fh, err := os.Create(filepath.Join(corpusDir, "manifest.csv"))
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(fh)
	w.Write(manifestHeader)
	for _, k := range keys {
		w.Write(m[k])
	}
	w.Flush()
	if err := errors.Join(w.Error(), fh.Close()); err != nil {
		t.Fatal(err)
	}
}

func (l *lab) stunnelSOCKS(t *testing.T, dir, addr string) {
	p := newPKI(t, dir, "proxy.example.net")
	socks := l.start(t, "internet", "microsocks", "-i", "127.0.0.1", "-p", "1085")
	l.waitTCP(t, socks, "127.0.0.1:1085")
	writeFile(t, filepath.Join(dir, "server.conf"), "foreground = yes\npid =\n[socks]\naccept = "+addr+":443\nconnect = 127.0.0.1:1085\ncert = "+p.serverCert+"\nkey = "+p.serverKey+"\n")
	srv := l.start(t, "internet", "stunnel4", filepath.Join(dir, "server.conf"))
	l.waitTCP(t, srv, addr+":443")
	writeFile(t, filepath.Join(dir, "client.conf"), "foreground = yes\npid =\n[socks]\nclient = yes\naccept = 127.0.0.1:1086\nconnect = "+addr+":443\n")
	cli := l.start(t, "pupil", "stunnel4", filepath.Join(dir, "client.conf"))
	l.waitSocket(t, cli, "pupil", "-Hltn", "127.0.0.1:1086")
	l.try(t, "pupil", "curl", "-sS", "--max-time", "5", "--socks5", "127.0.0.1:1086", "http://"+testbed.WebIP+"/")
}

func (l *lab) openconnect(t *testing.T, dir, addr string) {
	p := newPKI(t, dir, "vpn.example.net")
	pw := filepath.Join(dir, "ocpasswd")
	cmd := exec.Command("ocpasswd", "-c", pw, "pupil")
	cmd.Stdin = strings.NewReader("correct-horse\ncorrect-horse\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ocpasswd: %v %s", err, out)
	}
	// The workers run as nobody and must reach sec-mod's socket, which
	// t.TempDir's private parent would hide.
	sockDir, err := os.MkdirTemp("", "gh-ocserv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	if err := os.Chmod(sockDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "ocserv.conf"), strings.Join([]string{
		`auth = "plain[passwd=` + pw + `]"`, "tcp-port = 443", "udp-port = 443", "listen-host = " + addr,
		"run-as-user = nobody", "run-as-group = nogroup", "socket-file = " + filepath.Join(sockDir, "ocserv.sock"),
		"server-cert = " + p.serverCert, "server-key = " + p.serverKey, "isolate-workers = false", "max-clients = 4",
		"keepalive = 30", "dpd = 60", "mobile-dpd = 300", "try-mtu-discovery = false", "device = vpns",
		"ipv4-network = 10.253.0.0/24", "dns = " + testbed.ResolverIP, "pid-file = " + filepath.Join(dir, "ocserv.pid"),
		"cert-user-oid = 0.9.2342.19200300.100.1.1", "compression = false", "predictable-ips = true",
	}, "\n")+"\n")
	srv := l.start(t, "internet", "ocserv", "-f", "-d", "1", "-c", filepath.Join(dir, "ocserv.conf"))
	l.waitTCP(t, srv, addr+":443")
	ctx, cancel := context.WithCancel(context.Background())
	c := l.s.Command(ctx, "pupil", "openconnect", "--protocol=anyconnect", "--cafile", p.ca, "--resolve", "vpn.example.net:"+addr,
		"-u", "pupil", "--passwd-on-stdin", "--script", "/bin/true", "https://vpn.example.net/")
	c.Stdin = strings.NewReader("correct-horse\n")
	out := &testkit.SyncBuffer{}
	c.Stdout, c.Stderr = out, out
	c.Cancel = func() error { return c.Process.Signal(syscall.SIGINT) }
	c.WaitDelay = 3 * time.Second
	if err := c.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { c.Wait(); close(done) }()
	waitFor(10*time.Second, func() bool {
		return strings.Contains(out.String(), "DTLS") && strings.Contains(out.String(), "onnected")
	})
	time.Sleep(2 * time.Second)
	cancel()
	<-done
	t.Logf("openconnect:\n%s", out.String())
	t.Logf("ocserv:\n%s", srv.out.String())
}

// ntp serves time with one chronyd in the fake internet and sets the
// clock once (without touching it: -x) with another in the pupil.
func (l *lab) ntp(t *testing.T, dir, addr string) {
	conf := filepath.Join(dir, "server.conf")
	writeFile(t, conf, "bindaddress "+addr+"\nallow all\nlocal stratum 8\ncmdport 0\npidfile "+filepath.Join(dir, "srv.pid")+"\ndriftfile "+filepath.Join(dir, "drift")+"\n")
	srv := l.start(t, "internet", "chronyd", "-d", "-x", "-f", conf)
	l.waitUDP(t, srv, "internet", addr+":123")
	cconf := filepath.Join(dir, "client.conf")
	writeFile(t, cconf, "server "+addr+" iburst\ncmdport 0\npidfile "+filepath.Join(dir, "cli.pid")+"\n")
	l.try(t, "pupil", "timeout", "10", "chronyd", "-q", "-x", "-f", cconf)
}

// blackhole makes silentAddr a server that never answers: the fake
// internet drops everything sent to it, as a firewall would.
func (l *lab) blackhole(t *testing.T) {
	l.run(t, "internet", "nft", "-f", writeTemp(t, "table ip ghsilent {\n chain in {\n  type filter hook input priority 0; policy accept;\n  ip daddr "+silentAddr+" drop\n }\n}\n"))
}

// tinc runs a tinc 1.0 node in the fake internet and one on the pupil's
// laptop that connects to it.
func (l *lab) tinc(t *testing.T, dir, addr string) {
	nodes := map[string]string{"gw": filepath.Join(dir, "gw"), "laptop": filepath.Join(dir, "laptop")}
	for name, d := range nodes {
		if err := os.MkdirAll(filepath.Join(d, "hosts"), 0o700); err != nil {
			t.Fatal(err)
		}
		conf := "Name = " + name + "\nMode = switch\nInterface = tinc" + name[:2] + fmt.Sprint(os.Getpid()%1000) + "\n"
		host := ""
		if name == "gw" {
			conf += "BindToAddress = " + addr + "\n"
			host = "Address = " + addr + "\n"
		} else {
			conf += "ConnectTo = gw\n"
		}
		writeFile(t, filepath.Join(d, "tinc.conf"), conf)
		writeFile(t, filepath.Join(d, "hosts", name), host)
		cmd := exec.Command("tincd", "-c", d, "-K", "2048")
		cmd.Stdin = strings.NewReader("\n\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("tincd -K: %v\n%s", err, out)
		}
	}
	for name, d := range nodes {
		other := "laptop"
		if name == "laptop" {
			other = "gw"
		}
		b, err := os.ReadFile(filepath.Join(nodes[other], "hosts", other))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(d, "hosts", other), string(b))
	}
	srv := l.start(t, "internet", "tincd", "-c", nodes["gw"], "-D", "-d1", "--pidfile", filepath.Join(dir, "gw.pid"))
	l.waitTCP(t, srv, addr+":655")
	l.start(t, "pupil", "tincd", "-c", nodes["laptop"], "-D", "-d1", "--pidfile", filepath.Join(dir, "laptop.pid"))
	time.Sleep(4 * time.Second)
}

// v2ray runs a v2ray server in the fake internet and a v2ray client on the
// pupil's laptop with a SOCKS inbound, and fetches a page through it (an
// HTTPS one over TLS transports, so that a TLS handshake runs inside).
func (l *lab) v2ray(t *testing.T, dir, addr, proto, transport string) {
	const id = "b831381d-6324-4d53-ad4f-8cda48b30811"
	port := map[string]int{"tcp": 10086, "ws": 80, "tls": 443}[transport]
	p := newPKI(t, dir, "cdn.example.net")
	stream := map[string]any{"network": "tcp"}
	switch transport {
	case "ws":
		stream = map[string]any{"network": "ws", "wsSettings": map[string]any{"path": "/ray"}}
	case "tls":
		stream = map[string]any{"network": "tcp", "security": "tls", "tlsSettings": map[string]any{
			"serverName": "cdn.example.net", "allowInsecure": true,
			"certificates": []any{map[string]any{"certificateFile": p.serverCert, "keyFile": p.serverKey}}}}
	}
	var in, out map[string]any
	switch proto {
	case "vmess":
		in = map[string]any{"clients": []any{map[string]any{"id": id, "alterId": 0}}}
		out = map[string]any{"vnext": []any{map[string]any{"address": addr, "port": port, "users": []any{map[string]any{"id": id, "alterId": 0, "security": "aes-128-gcm"}}}}}
	case "vless":
		in = map[string]any{"clients": []any{map[string]any{"id": id}}, "decryption": "none"}
		out = map[string]any{"vnext": []any{map[string]any{"address": addr, "port": port, "users": []any{map[string]any{"id": id, "encryption": "none"}}}}}
	case "trojan":
		in = map[string]any{"clients": []any{map[string]any{"password": "correct-horse"}}}
		out = map[string]any{"servers": []any{map[string]any{"address": addr, "port": port, "password": "correct-horse"}}}
	}
	srvConf := map[string]any{
		"log":       map[string]any{"loglevel": "warning"},
		"inbounds":  []any{map[string]any{"listen": addr, "port": port, "protocol": proto, "settings": in, "streamSettings": stream}},
		"outbounds": []any{map[string]any{"protocol": "freedom"}},
	}
	cliConf := map[string]any{
		"log":       map[string]any{"loglevel": "warning"},
		"inbounds":  []any{map[string]any{"listen": "127.0.0.1", "port": 1087, "protocol": "socks", "settings": map[string]any{"udp": false}}},
		"outbounds": []any{map[string]any{"protocol": proto, "settings": out, "streamSettings": stream}},
	}
	for name, c := range map[string]any{"server.json": srvConf, "client.json": cliConf} {
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name), string(b))
	}
	srv := l.start(t, "internet", "v2ray", "-config", filepath.Join(dir, "server.json"))
	l.waitTCP(t, srv, fmt.Sprintf("%s:%d", addr, port))
	cli := l.start(t, "pupil", "v2ray", "-config", filepath.Join(dir, "client.json"))
	l.waitSocket(t, cli, "pupil", "-Hltn", "127.0.0.1:1087")
	url := "http://" + testbed.WebIP + "/"
	if transport == "tls" {
		url = "https://" + testbed.WebIP + "/"
	}
	l.try(t, "pupil", "curl", "-sSk", "--max-time", "5", "--socks5", "127.0.0.1:1087", url)
}
