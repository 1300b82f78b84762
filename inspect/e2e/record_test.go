//go:build linux

package e2e

import (
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

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
	l.Blackhole(t, silentAddr)
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
			stop := l.Tcpdump(t, path, r.addr)
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
				l.OpenVPN(t, dir, proto, addr, port, true, extra)
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
	return append([]recording{
		ovpn("openvpn-udp", "--proto udp, port 1194, certificates", "udp", "192.0.2.101", "1194", nil),
		ovpn("openvpn-tcp", "--proto tcp-client, port 1194", "tcp", "192.0.2.102", "1194", nil),
		ovpn("openvpn-tcp-443", "--proto tcp-client, port 443", "tcp", "192.0.2.103", "443", nil),
		ovpn("openvpn-udp-tls-auth", "--proto udp, --tls-auth (HMAC on the control channel)", "udp", "192.0.2.104", "1194", tlsAuth("--tls-auth", "")),
		ovpn("openvpn-udp-tls-crypt", "--proto udp, --tls-crypt (encrypted control channel)", "udp", "192.0.2.105", "1194", tlsAuth("--tls-crypt", "")),
		ovpn("openvpn-udp-tls-crypt-v2", "--proto udp, --tls-crypt-v2 (per-client wrapped key)", "udp", "192.0.2.106", "1194", cryptV2),
		ovpn("openvpn-udp-443", "--proto udp, port 443", "udp", "192.0.2.107", "443", nil),
		{file: "openvpn-udp-silent", tool: "openvpn", pkg: "openvpn", options: "--proto udp to a blackholed server (client only)", expected: "vpn", server: "silent", addr: silentAddr, seconds: 7,
			run: func(t *testing.T, l *lab, dir string) { l.OpenVPN(t, dir, "udp", silentAddr, "1194", false, nil) }},
		{file: "openvpn-tcp-accepts-silent", tool: "openvpn", pkg: "openvpn", options: "--proto tcp-client to a listener that accepts and never answers", expected: "vpn", server: "accepts", addr: "192.0.2.202", seconds: 5,
			run: func(t *testing.T, l *lab, dir string) {
				l.Mute(t, "192.0.2.202", "443")
				l.OpenVPN(t, dir, "tcp", "192.0.2.202", "443", false, nil)
			}},
		{file: "wireguard-51820", tool: "wireguard-go + wg", pkg: "wireguard-go", options: "listen-port 51820, ping through the tunnel", expected: "vpn", server: "answers", addr: "192.0.2.110", seconds: 4,
			run: func(t *testing.T, l *lab, dir string) { l.WireGuard(t, dir, "192.0.2.110", "51820", true) }},
		{file: "wireguard-443", tool: "wireguard-go + wg", pkg: "wireguard-go", options: "listen-port 443/udp, ping through the tunnel", expected: "vpn", server: "answers", addr: "192.0.2.111", seconds: 4,
			run: func(t *testing.T, l *lab, dir string) { l.WireGuard(t, dir, "192.0.2.111", "443", true) }},
		{file: "wireguard-silent", tool: "wireguard-go + wg", pkg: "wireguard-go", options: "endpoint blackholed, pings retry the handshake", expected: "vpn", server: "silent", addr: silentAddr, seconds: 12,
			run: func(t *testing.T, l *lab, dir string) { l.WireGuard(t, dir, silentAddr, "51820", false) }},
		{file: "ssh-D", tool: "ssh -D", pkg: "openssh-client", options: "ssh -N -D 127.0.0.1:1080, curl through it", expected: "ssh", server: "answers", addr: "192.0.2.112", seconds: 4,
			run: func(t *testing.T, l *lab, dir string) { l.SSHD(t, dir, "192.0.2.112") }},
		{file: "squid-connect", tool: "curl -x (squid)", pkg: "squid", options: "HTTPS through squid's CONNECT on 3128", expected: "proxy", server: "answers", addr: "192.0.2.113", seconds: 3,
			run: func(t *testing.T, l *lab, dir string) { l.Squid(t, dir, "192.0.2.113") }},
		{file: "microsocks", tool: "curl --socks5 (microsocks)", pkg: "microsocks", options: "SOCKS5 on 1080", expected: "proxy", server: "answers", addr: "192.0.2.114", seconds: 3,
			run: func(t *testing.T, l *lab, dir string) {
				srv := l.Start(t, "internet", "microsocks", "-i", "192.0.2.114", "-p", "1080")
				l.WaitTCP(t, srv, "192.0.2.114:1080")
				l.Try(t, "pupil", "curl", "-sS", "--max-time", "5", "--socks5", "192.0.2.114:1080", "http://"+testbed.WebIP+"/")
			}},
		{file: "socks5-accepts-silent", tool: "curl --socks5", pkg: "curl", options: "SOCKS5 greeting to a listener that never answers", expected: "proxy", server: "accepts", addr: "192.0.2.115", seconds: 4,
			run: func(t *testing.T, l *lab, dir string) {
				l.Mute(t, "192.0.2.115", "1080")
				l.Try(t, "pupil", "curl", "-sS", "--max-time", "3", "--socks5", "192.0.2.115:1080", "http://"+testbed.WebIP+"/")
			}},
		{file: "doh-curl-cloudflare-name", tool: "curl --doh-url (dnsdist)", pkg: "dnsdist", options: "DoH to a server named cloudflare-dns.com", expected: "doh", server: "answers", addr: "192.0.2.116", seconds: 3,
			run: func(t *testing.T, l *lab, dir string) { l.DoH(t, dir, "192.0.2.116", "cloudflare-dns.com") }},
		{file: "doh-curl-unlisted-name", tool: "curl --doh-url (dnsdist)", pkg: "dnsdist", options: "DoH to dns.example.net, a resolver on no list, several lookups", expected: "doh", server: "answers", addr: "192.0.2.117", seconds: 4,
			run: func(t *testing.T, l *lab, dir string) { l.DoH(t, dir, "192.0.2.117", "dns.example.net") }},
		{file: "dot-kdig", tool: "kdig +tls (dnsdist)", pkg: "knot-dnsutils", options: "DoT on 853", expected: "dot", server: "answers", addr: "192.0.2.118", seconds: 3,
			run: func(t *testing.T, l *lab, dir string) { l.DoT(t, dir, "192.0.2.118") }},
		{file: "dot-kdig-closed", tool: "kdig +tls", pkg: "knot-dnsutils", options: "DoT to a server that refuses port 853", expected: "dot", server: "closed", addr: closedAddr, seconds: 3,
			run: func(t *testing.T, l *lab, dir string) {
				l.Try(t, "pupil", "kdig", "+tls", "+time=1", "+retry=2", "-p", "853", "@"+closedAddr, "www.example.com", "A")
			}},
		{file: "dot-kdig-silent", tool: "kdig +tls", pkg: "knot-dnsutils", options: "DoT to a blackholed server", expected: "dot", server: "silent", addr: silentAddr, seconds: 5,
			run: func(t *testing.T, l *lab, dir string) {
				l.Try(t, "pupil", "kdig", "+tls", "+time=4", "+retry=0", "-p", "853", "@"+silentAddr, "www.example.com", "A")
			}},
		{file: "shadowsocks-chacha20", tool: "ss-local/ss-server", pkg: "shadowsocks-libev", options: "-m chacha20-ietf-poly1305, curl through ss-local", expected: "proxy", server: "answers", addr: "192.0.2.119", seconds: 3,
			run: func(t *testing.T, l *lab, dir string) { l.Shadowsocks(t, "192.0.2.119", "chacha20-ietf-poly1305") }},
		{file: "shadowsocks-aes256gcm", tool: "ss-local/ss-server", pkg: "shadowsocks-libev", options: "-m aes-256-gcm, curl through ss-local", expected: "proxy", server: "answers", addr: "192.0.2.120", seconds: 3,
			run: func(t *testing.T, l *lab, dir string) { l.Shadowsocks(t, "192.0.2.120", "aes-256-gcm") }},
		{file: "tor-private-bridge", tool: "tor", pkg: "tor", options: "UseBridges to a private relay in the fake internet", expected: "tor", server: "answers", addr: "192.0.2.121", seconds: 8,
			run: func(t *testing.T, l *lab, dir string) { l.Tor(t, dir, "192.0.2.121", false) }},
		{file: "tor-obfs4-bridge", tool: "tor + obfs4proxy", pkg: "obfs4proxy", options: "UseBridges with an obfs4 bridge (iat-mode=0); obfs4 looks like any fully encrypted proxy", expected: "proxy", server: "answers", addr: "192.0.2.122", seconds: 8,
			run: func(t *testing.T, l *lab, dir string) { l.Tor(t, dir, "192.0.2.122", true) }},
		{file: "iodine", tool: "iodine/iodined", pkg: "iodine", options: "-r (DNS only, no raw UDP), tunnel domain t.example.net", expected: "tunnel", server: "answers", addr: "192.0.2.123", seconds: 6,
			run: func(t *testing.T, l *lab, dir string) { l.Iodine(t, "192.0.2.123") }},
		{file: "ptunnel-ng", tool: "ptunnel-ng", pkg: "ptunnel-ng", options: "ICMP echo tunnel to the web server's port 80", expected: "tunnel", server: "answers", addr: "192.0.2.124", seconds: 5,
			run: func(t *testing.T, l *lab, dir string) { l.PTunnel(t, "192.0.2.124") }},
		{file: "ikev2-strongswan-silent", tool: "strongswan (charon, swanctl)", pkg: "strongswan-charon", options: "IKEv2 PSK to a blackholed gateway", expected: "vpn", server: "silent", addr: silentAddr, seconds: 8,
			run: func(t *testing.T, l *lab, dir string) { l.IKESilent(t, dir, silentAddr) }},
		{file: "shadowsocks-udp", tool: "ss-tunnel/ss-server -u", pkg: "shadowsocks-libev", options: "-m chacha20-ietf-poly1305, DNS lookups relayed over UDP", expected: "proxy", server: "answers", addr: "192.0.2.125", seconds: 3,
			run: func(t *testing.T, l *lab, dir string) {
				srv := l.Start(t, "internet", "ss-server", "-s", "192.0.2.125", "-p", "8388", "-k", "correct-horse", "-m", "chacha20-ietf-poly1305", "-u")
				l.WaitUDP(t, srv, "internet", "192.0.2.125:8388")
				cli := l.Start(t, "pupil", "ss-tunnel", "-s", "192.0.2.125", "-p", "8388", "-b", "127.0.0.1", "-l", "5353", "-L", testbed.ResolverIP+":53", "-U",
					"-k", "correct-horse", "-m", "chacha20-ietf-poly1305")
				l.WaitUDP(t, cli, "pupil", "127.0.0.1:5353")
				for _, n := range []string{"www.example.com", "example.org", "debian.org"} {
					l.Try(t, "pupil", "dig", "+time=2", "+tries=1", "-p", "5353", "@127.0.0.1", n)
				}
			}},
		{file: "stunnel-socks", tool: "stunnel4 + microsocks", pkg: "stunnel4", options: "stunnel client wrapping SOCKS5 to a stunnel server on 443", expected: "proxy", server: "answers", addr: "192.0.2.126", seconds: 3,
			run: func(t *testing.T, l *lab, dir string) { l.StunnelSOCKS(t, dir, "192.0.2.126") }},
		{file: "openconnect-ocserv", tool: "openconnect/ocserv", pkg: "openconnect", options: "--protocol=anyconnect, password auth, TLS on 443 then DTLS on 443/udp", expected: "vpn", server: "answers", addr: "192.0.2.127", seconds: 6,
			run: func(t *testing.T, l *lab, dir string) { l.OpenConnect(t, dir, "192.0.2.127") }},
		{file: "tinc-1.0", tool: "tincd", pkg: "tinc", options: "tinc 1.0 meta-protocol on 655/tcp, RSA keys, switch mode", expected: "vpn", server: "answers", addr: "192.0.2.128", seconds: 4,
			run: func(t *testing.T, l *lab, dir string) { l.Tinc(t, dir, "192.0.2.128") }},
		{file: "v2ray-vmess-tcp", tool: "v2ray", pkg: "v2ray", options: "VMess (AEAD) over raw TCP, curl through the client's SOCKS inbound", expected: "proxy", server: "answers", addr: "192.0.2.132", seconds: 3,
			run: func(t *testing.T, l *lab, dir string) { l.V2Ray(t, dir, "192.0.2.132", "vmess", "tcp") }},
		{file: "v2ray-vmess-ws", tool: "v2ray", pkg: "v2ray", options: "VMess over WebSocket (no TLS) on port 80", expected: "proxy", server: "answers", addr: "192.0.2.133", seconds: 3,
			run: func(t *testing.T, l *lab, dir string) { l.V2Ray(t, dir, "192.0.2.133", "vmess", "ws") }},
		{file: "v2ray-vless-tls", tool: "v2ray", pkg: "v2ray", options: "VLESS over TCP+TLS on 443", expected: "proxy", server: "answers", addr: "192.0.2.134", seconds: 3,
			run: func(t *testing.T, l *lab, dir string) { l.V2Ray(t, dir, "192.0.2.134", "vless", "tls") }},
		{file: "v2ray-trojan", tool: "v2ray", pkg: "v2ray", options: "Trojan over TLS on 443, an HTTPS page fetched through it", expected: "proxy", server: "answers", addr: "192.0.2.135", seconds: 3,
			run: func(t *testing.T, l *lab, dir string) { l.V2Ray(t, dir, "192.0.2.135", "trojan", "tls") }},
		// Benign traffic: nothing may be raised.
		{file: "benign-curl-https", tool: "curl", pkg: "curl", options: "three HTTPS page loads from the testbed web server", expected: "none", server: "answers", addr: testbed.WebIP, seconds: 3,
			run: func(t *testing.T, l *lab, dir string) {
				for range 3 {
					l.Try(t, "pupil", "curl", "-sSk", "--max-time", "5", "https://"+testbed.WebIP+"/index.html")
				}
			}},
		{file: "benign-https-download", tool: "curl (openssl s_server -WWW)", pkg: "openssl", options: "a 3 MB HTTPS download, first packets", expected: "none", server: "answers", addr: "192.0.2.130", seconds: 4,
			run: func(t *testing.T, l *lab, dir string) { l.Download(t, dir, "192.0.2.130") }},
		{file: "benign-apt-http", tool: "curl as apt", pkg: "curl", options: "plain HTTP GETs with APT's user agent", expected: "none", server: "answers", addr: testbed.WebIP, seconds: 3,
			run: func(t *testing.T, l *lab, dir string) {
				for _, p := range []string{"/debian/dists/bookworm/InRelease", "/debian/pool/main/h/hello/hello_2.10-3_amd64.deb"} {
					l.Try(t, "pupil", "curl", "-sS", "-A", "Debian APT-HTTP/1.3 (2.6.1)", "--max-time", "5", "http://"+testbed.WebIP+p)
				}
			}},
		{file: "benign-ntp", tool: "chronyd", pkg: "chrony", options: "chronyd -q one-shot client against a chronyd server", expected: "none", server: "answers", addr: "192.0.2.131", seconds: 4,
			run: func(t *testing.T, l *lab, dir string) { l.NTP(t, dir, "192.0.2.131") }},
		{file: "benign-dns", tool: "dig", pkg: "dnsutils", options: "ordinary lookups through the testbed resolver", expected: "none", server: "answers", addr: testbed.ResolverIP, seconds: 2,
			run: func(t *testing.T, l *lab, dir string) {
				for _, n := range []string{"www.example.com", "example.org", "debian.org"} {
					l.Try(t, "pupil", "dig", "+time=1", "+tries=1", "@"+testbed.ResolverIP, n)
				}
			}},
	}, moreRecordings()...)
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
