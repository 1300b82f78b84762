//go:build linux

// Package tooltest launches the real bypass tools a pupil might run (VPN,
// proxy, tunnel and DNS-over-TLS/HTTPS clients, with their servers in the
// fake internet) inside a testbed school, for the end-to-end tests of
// inspection: the recorder and engine tests in inspect/e2e and the daemon
// test in cmd/gatehouse share these launchers so a tool is started one way.
//
// It owns starting and stopping those programs only; what the tests expect
// of the traffic (which finding, stored where) stays with each test.
package tooltest

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
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/internal/testkit"
	"github.com/gatehouse-net/gatehouse/testbed"
)

// Lab is a testbed school with a pupil client namespace ("pupil") and the
// fake internet ("internet") where the servers run.
type Lab struct {
	S     *testbed.School
	Pupil testbed.SegmentInfo
}

// Proc is a long-running program (a server or a tunnel client).
type Proc struct {
	name string
	Out  *testkit.SyncBuffer
	done chan struct{}
	err  error
}

// Exited reports whether the program has ended, and how.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Start runs a program in namespace ns until the test ends; its output is
// logged when the test fails.
func (l *Lab) Start(t *testing.T, ns, name string, args ...string) *Proc {
	t.Helper()
	return l.StartEnv(t, ns, nil, name, args...)
}

// StartEnv is Start with extra environment variables for the program.
func (l *Lab) StartEnv(t *testing.T, ns string, env []string, name string, args ...string) *Proc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := l.S.Command(ctx, ns, name, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	p := &Proc{name: name, Out: &testkit.SyncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.Out, p.Out
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 3 * time.Second // then SIGKILL
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s in %s: %v", name, ns, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-p.done
		if t.Failed() {
			t.Logf("%s %s output:\n%s", name, strings.Join(args, " "), p.Out.String())
		}
	})
	return p
}

// Run runs a short command in namespace ns and returns its output, failing
// the test if it fails.
func (l *Lab) Run(t *testing.T, ns, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := l.S.Command(ctx, ns, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s in %s: %v\n%s", name, strings.Join(args, " "), ns, err, out)
	}
	return string(out)
}

// WaitFor polls cond every 50 ms for up to d.
func WaitFor(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); ; {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitTCP waits until a TCP socket listens on addr in the internet
// namespace (where the servers run). It looks at the socket table rather
// than connecting, because some servers (OpenVPN's tcp-server) take a
// probe connection for their one client and restart.
func (l *Lab) WaitTCP(t *testing.T, p *Proc, addr string) {
	t.Helper()
	l.WaitSocket(t, p, "internet", "-Hltn", addr)
}

// WaitUDP waits until a UDP socket is bound to addr in namespace ns.
func (l *Lab) WaitUDP(t *testing.T, p *Proc, ns, addr string) {
	t.Helper()
	l.WaitSocket(t, p, ns, "-Hlun", addr)
}

// WaitSocket waits until ss, run in ns with ssFlags, lists a socket on addr,
// failing the test if p exits first or 10 s pass.
func (l *Lab) WaitSocket(t *testing.T, p *Proc, ns, ssFlags, addr string) {
	t.Helper()
	ok := WaitFor(10*time.Second, func() bool {
		if done, _ := p.Exited(); done {
			return true
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		out, err := l.S.Command(ctx, ns, "ss", ssFlags).Output()
		return err == nil && strings.Contains(string(out), " "+addr+" ")
	})
	if done, err := p.Exited(); done {
		t.Fatalf("%s exited before listening on %s: %v\n%s", p.name, addr, err, p.Out.String())
	}
	if !ok {
		t.Fatalf("%s not listening on %s within 10s\n%s", p.name, addr, p.Out.String())
	}
}

// WaitOutput waits until the program printed want.
func WaitOutput(t *testing.T, p *Proc, want string, d time.Duration) {
	t.Helper()
	ok := WaitFor(d, func() bool {
		done, _ := p.Exited()
		return done || strings.Contains(p.Out.String(), want)
	})
	if !ok || !strings.Contains(p.Out.String(), want) {
		_, err := p.Exited()
		t.Fatalf("%s did not print %q within %v (exit: %v)\n%s", p.name, want, d, err, p.Out.String())
	}
}

// PKI is a throwaway CA with a server and a client certificate, as PEM
// files in dir.
type PKI struct{ CA, ServerCert, ServerKey, ClientCert, ClientKey string }

// NewPKI writes a throwaway CA with a server certificate (for serverNames)
// and a client certificate into dir.
func NewPKI(t *testing.T, dir string, serverNames ...string) PKI {
	t.Helper()
	now := time.Now()
	caKey := mustKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Gatehouse test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	p := PKI{CA: filepath.Join(dir, "ca.pem")}
	writePEM(t, p.CA, "CERTIFICATE", caDER)
	leaf := func(name string, serial int64, eku x509.ExtKeyUsage, dns []string) (string, string) {
		key := mustKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement, ExtKeyUsage: []x509.ExtKeyUsage{eku},
			DNSNames: dns,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		cert, keyFile := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
		writePEM(t, cert, "CERTIFICATE", der)
		writePEM(t, keyFile, "PRIVATE KEY", kder)
		return cert, keyFile
	}
	p.ServerCert, p.ServerKey = leaf("server", 2, x509.ExtKeyUsageServerAuth, serverNames)
	p.ClientCert, p.ClientKey = leaf("client", 3, x509.ExtKeyUsageClientAuth, nil)
	return p
}

func mustKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// WriteFile writes content to path (mode 0600), failing the test on error.
func WriteFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Tcpdump captures packets to and from addr on the router's pupil
// interface into path until the returned stop is called.
func (l *Lab) Tcpdump(t *testing.T, path, addr string) (stop func()) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := l.S.Command(ctx, "router", "tcpdump", "-i", l.Pupil.Interface, "-U", "--immediate-mode", "-n", "-s", "2048", "-c", "400",
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
	if !WaitFor(5*time.Second, func() bool { return strings.Contains(out.String(), "listening on") }) {
		t.Fatalf("tcpdump did not start:\n%s", out.String())
	}
	return func() {
		cancel()
		<-done
		t.Logf("tcpdump: %s", strings.TrimSpace(out.String()))
	}
}

// Try runs a client command that may fail (the server never answers);
// its output is logged.
func (l *Lab) Try(t *testing.T, ns, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := l.S.Command(ctx, ns, name, args...).CombinedOutput()
	t.Logf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	return string(out)
}

// Mute listens on addr:port in the fake internet, accepting connections and
// never saying anything.
func (l *Lab) Mute(t *testing.T, addr, port string) {
	t.Helper()
	p := l.Start(t, "internet", "socat", "TCP-LISTEN:"+port+",bind="+addr+",reuseaddr,fork", "SYSTEM:sleep 30")
	l.WaitTCP(t, p, addr+":"+port)
}

// WriteTemp writes content to a new file in a test temporary directory
// and returns its path.
func WriteTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	WriteFile(t, p, content)
	return p
}

// OpenVPN runs a client (and, when serve, a server) for one session.
func (l *Lab) OpenVPN(t *testing.T, dir, proto, addr, port string, serve bool, extra func(dir string) ([]string, []string)) {
	p := NewPKI(t, dir, "vpn.example.net")
	common := []string{"--verb", "3", "--disable-dco", "--dev", "tun", "--dh", "none", "--ca", p.CA,
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
		srv := l.Start(t, "internet", "openvpn", append(append(common, "--tls-server", "--proto", sp,
			"--local", addr, "--lport", port, "--cert", p.ServerCert, "--key", p.ServerKey,
			"--ifconfig", "10.250.0.1", "10.250.0.2"), srvExtra...)...)
		if proto == "tcp" {
			l.WaitTCP(t, srv, addr+":"+port)
		} else {
			l.WaitUDP(t, srv, "internet", addr+":"+port)
		}
	}
	cli := l.Start(t, "pupil", "openvpn", append(append(common, "--tls-client", "--proto", cp,
		"--remote", addr, port, "--nobind", "--cert", p.ClientCert, "--key", p.ClientKey,
		"--ifconfig", "10.250.0.2", "10.250.0.1"), cliExtra...)...)
	if serve {
		WaitOutput(t, cli, "Initialization Sequence Completed", 20*time.Second)
	} else {
		time.Sleep(7 * time.Second)
	}
}

// WireGuard brings up a wireguard-go client (and server when serve) and
// pings through the tunnel.
func (l *Lab) WireGuard(t *testing.T, dir, addr, port string, serve bool) {
	suffix := fmt.Sprint(os.Getpid()%10000) + port[:2]
	srvIf, cliIf := "wrs"+suffix, "wrc"+suffix
	keys := map[string]string{}
	for _, side := range []string{"server", "client"} {
		priv := strings.TrimSpace(l.Run(t, "internet", "wg", "genkey"))
		cmd := exec.Command("wg", "pubkey")
		cmd.Stdin = strings.NewReader(priv + "\n")
		pub, err := cmd.Output()
		if err != nil {
			t.Fatalf("wg pubkey: %v", err)
		}
		keys[side] = strings.TrimSpace(string(pub))
		WriteFile(t, filepath.Join(dir, side+".key"), priv+"\n")
	}
	up := func(ns, ifname string) {
		ctx, cancel := context.WithCancel(context.Background())
		cmd := l.S.Command(ctx, ns, "wireguard-go", "-f", ifname)
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
		if !WaitFor(10*time.Second, func() bool { _, err := os.Stat(sock); return err == nil }) {
			t.Fatalf("wireguard-go in %s made no %s\n%s", ns, sock, out.String())
		}
	}
	if serve {
		up("internet", srvIf)
		l.Run(t, "internet", "wg", "set", srvIf, "listen-port", port, "private-key", filepath.Join(dir, "server.key"),
			"peer", keys["client"], "allowed-ips", "10.251.1.2/32")
		l.Run(t, "internet", "ip", "addr", "add", "10.251.1.1/24", "dev", srvIf)
		l.Run(t, "internet", "ip", "link", "set", srvIf, "up")
	}
	up("pupil", cliIf)
	l.Run(t, "pupil", "wg", "set", cliIf, "private-key", filepath.Join(dir, "client.key"),
		"peer", keys["server"], "allowed-ips", "10.251.1.1/32", "endpoint", addr+":"+port)
	l.Run(t, "pupil", "ip", "addr", "add", "10.251.1.2/24", "dev", cliIf)
	l.Run(t, "pupil", "ip", "link", "set", cliIf, "up")
	if serve {
		l.Run(t, "pupil", "ping", "-c", "3", "-i", "0.3", "-w", "10", "10.251.1.1")
	} else {
		l.Try(t, "pupil", "ping", "-c", "12", "-i", "1", "-w", "12", "10.251.1.1")
	}
}

// SSHServer starts sshd on listen (addr:port) in the fake internet, with
// TCP forwarding and tunnel devices allowed, and returns the path of the
// client key it accepts (for root).
func (l *Lab) SSHServer(t *testing.T, dir, listen string) (key string) {
	t.Helper()
	l.Run(t, "internet", "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "host"))
	l.Run(t, "internet", "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "id"))
	pub, err := os.ReadFile(filepath.Join(dir, "id.pub"))
	if err != nil {
		t.Fatal(err)
	}
	WriteFile(t, filepath.Join(dir, "authorized_keys"), string(pub))
	WriteFile(t, filepath.Join(dir, "sshd_config"), strings.Join([]string{
		"ListenAddress " + listen, "HostKey " + filepath.Join(dir, "host"), "PidFile none",
		"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"), "PermitRootLogin prohibit-password",
		"PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
		"AllowTcpForwarding yes", "PermitTunnel yes",
	}, "\n")+"\n")
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		t.Fatal(err)
	}
	srv := l.Start(t, "internet", sshd, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	l.WaitTCP(t, srv, listen)
	return filepath.Join(dir, "id")
}

// SSHD runs sshd in the fake internet and ssh -D (a SOCKS proxy over SSH)
// on the pupil's laptop, and fetches a page through it.
func (l *Lab) SSHD(t *testing.T, dir, addr string) {
	l.SSHServer(t, dir, addr+":22")
	l.Start(t, "pupil", "ssh", "-N", "-D", "127.0.0.1:1082", "-i", filepath.Join(dir, "id"),
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "root@"+addr)
	WaitFor(10*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return l.S.Command(ctx, "pupil", "curl", "-sS", "--max-time", "2", "--socks5", "127.0.0.1:1082", "http://"+testbed.WebIP+"/").Run() == nil
	})
}

// Squid runs squid on addr:3128 and fetches an HTTPS page through it
// (HTTP CONNECT).
func (l *Lab) Squid(t *testing.T, dir, addr string) {
	conf := filepath.Join(dir, "squid.conf")
	WriteFile(t, conf, strings.Join([]string{
		"http_port " + addr + ":3128", "http_access allow all", "cache deny all", "cache_effective_user proxy",
		"pid_filename none", "cache_log /dev/null", "access_log none", "cache_store_log none", "netdb_filename none",
		"pinger_enable off", "shutdown_lifetime 0 seconds", "visible_hostname gatehouse-test-squid",
		"dns_nameservers " + testbed.ResolverIP,
	}, "\n")+"\n")
	os.Chmod(conf, 0o644)
	srv := l.Start(t, "internet", "squid", "-N", "-d", "1", "-f", conf)
	l.WaitTCP(t, srv, addr+":3128")
	l.Try(t, "pupil", "curl", "-sS", "-k", "--max-time", "10", "-x", "http://"+addr+":3128", "https://"+testbed.WebIP+"/")
}

// DNSDist starts dnsdist with DoH on addr:443 (certificate for name) and
// DoT on addr:853.
func (l *Lab) DNSDist(t *testing.T, dir, addr, name string) {
	p := NewPKI(t, dir, name)
	conf := filepath.Join(dir, "dnsdist.conf")
	WriteFile(t, conf, strings.Join([]string{
		`setSecurityPollSuffix("")`, `setACL({"0.0.0.0/0"})`,
		fmt.Sprintf(`newServer({address=%q})`, testbed.ResolverIP+":53"),
		fmt.Sprintf(`addDOHLocal(%q, %q, %q, "/dns-query")`, addr+":443", p.ServerCert, p.ServerKey),
		fmt.Sprintf(`addTLSLocal(%q, %q, %q)`, addr+":853", p.ServerCert, p.ServerKey),
	}, "\n")+"\n")
	srv := l.Start(t, "internet", "dnsdist", "--supervised", "--disable-syslog", "-C", conf)
	l.WaitTCP(t, srv, addr+":443")
	l.WaitTCP(t, srv, addr+":853")
}

// DoH starts dnsdist and resolves several names with curl --doh-url
// over one DoH connection.
func (l *Lab) DoH(t *testing.T, dir, addr, name string) {
	l.DNSDist(t, dir, addr, name)
	// One curl resolving several names over one DoH connection.
	l.Try(t, "pupil", "curl", "-sS", "--max-time", "10", "--resolve", name+":443:"+addr,
		"--doh-url", "https://"+name+"/dns-query", "--doh-insecure",
		"http://www.example.com/", "http://example.org/", "http://debian.org/", "http://www.example.net/", "http://example.com/")
}

// DoT starts dnsdist and resolves a name with kdig +tls.
func (l *Lab) DoT(t *testing.T, dir, addr string) {
	l.DNSDist(t, dir, addr, "dot.example.net")
	l.Try(t, "pupil", "kdig", "+tls", "+time=3", "+retry=1", "-p", "853", "@"+addr, "www.example.com", "A")
}

// Shadowsocks runs ss-server and ss-local with method and fetches a page
// through ss-local's SOCKS port.
func (l *Lab) Shadowsocks(t *testing.T, addr, method string) {
	srv := l.Start(t, "internet", "ss-server", "-s", addr, "-p", "8388", "-k", "correct-horse", "-m", method, "-u")
	l.WaitTCP(t, srv, addr+":8388")
	port := map[string]string{"aes-256-gcm": "1084"}[method]
	if port == "" {
		port = "1083"
	}
	cli := l.Start(t, "pupil", "ss-local", "-s", addr, "-p", "8388", "-b", "127.0.0.1", "-l", port, "-k", "correct-horse", "-m", method)
	l.WaitSocket(t, cli, "pupil", "-Hltn", "127.0.0.1:"+port)
	l.Try(t, "pupil", "curl", "-sS", "--max-time", "5", "--socks5-hostname", "127.0.0.1:"+port, "http://"+testbed.WebIP+"/")
}

// Tor runs a private relay (with an obfs4 transport when obfs) and a tor
// client that uses it as its bridge.
func (l *Lab) Tor(t *testing.T, dir, addr string, obfs bool) {
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
	WriteFile(t, filepath.Join(dir, "relay.torrc"), strings.Join(srvConf, "\n")+"\n")
	srv := l.Start(t, "internet", "tor", "-f", filepath.Join(dir, "relay.torrc"))
	l.WaitTCP(t, srv, addr+":9001")
	bridge := addr + ":9001"
	if obfs {
		line := filepath.Join(sdir, "pt_state", "obfs4_bridgeline.txt")
		var cert string
		WaitFor(15*time.Second, func() bool {
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
			t.Fatalf("no obfs4 bridge line in %s\n%s", line, srv.Out.String())
		}
		l.WaitTCP(t, srv, addr+":443")
		bridge = "obfs4 " + addr + ":443 cert=" + cert + " iat-mode=0"
	}
	cliConf := []string{"DataDirectory " + cdir, "SocksPort 127.0.0.1:9055", "UseBridges 1", "Bridge " + bridge, "Log notice stdout"}
	if obfs {
		cliConf = append(cliConf, "ClientTransportPlugin obfs4 exec /usr/bin/obfs4proxy")
	}
	WriteFile(t, filepath.Join(dir, "client.torrc"), strings.Join(cliConf, "\n")+"\n")
	l.Start(t, "pupil", "tor", "-f", filepath.Join(dir, "client.torrc"))
	time.Sleep(8 * time.Second)
}

// Iodine runs iodined for t.example.net on addr and an iodine client
// that talks to it directly, and pings through the DNS tunnel.
func (l *Lab) Iodine(t *testing.T, addr string) {
	srv := l.Start(t, "internet", "iodined", "-f", "-c", "-P", "correct-horse", "-l", addr, "10.252.0.1", "t.example.net")
	l.WaitUDP(t, srv, "internet", addr+":53")
	l.Start(t, "pupil", "iodine", "-f", "-r", "-P", "correct-horse", addr, "t.example.net")
	time.Sleep(5 * time.Second)
	l.Try(t, "pupil", "ping", "-c", "3", "-i", "0.3", "-w", "4", "10.252.0.1")
}

// PTunnel runs a ptunnel-ng proxy and client (TCP over ICMP echo) and
// fetches a page through it twice.
func (l *Lab) PTunnel(t *testing.T, addr string) {
	l.Start(t, "internet", "ptunnel-ng", "-r"+testbed.WebIP, "-R80")
	time.Sleep(500 * time.Millisecond)
	cli := l.Start(t, "pupil", "ptunnel-ng", "-p"+addr, "-l2223", "-r"+testbed.WebIP, "-R80")
	l.WaitSocket(t, cli, "pupil", "-Hltn", "0.0.0.0:2223")
	for range 2 {
		l.Try(t, "pupil", "curl", "-sS", "--max-time", "4", "http://127.0.0.1:2223/")
	}
}

// IKESilent starts charon in the pupil namespace (its own sockets and
// configuration) and initiates an IKEv2 connection to a gateway that never
// answers.
func (l *Lab) IKESilent(t *testing.T, dir, addr string) {
	vici := "unix://" + filepath.Join(dir, "charon.vici")
	WriteFile(t, filepath.Join(dir, "strongswan.conf"), "charon {\n  port = 0\n  port_nat_t = 0\n  install_routes = no\n  retransmit_tries = 3\n  retransmit_timeout = 2.0\n  plugins {\n    vici {\n      socket = "+vici+"\n    }\n  }\n  filelog {\n    stdout {\n      path = /dev/stdout\n      default = 1\n    }\n  }\n}\n")
	WriteFile(t, filepath.Join(dir, "swanctl.conf"), `connections {
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
	cmd := l.S.Command(ctx, "pupil", "/usr/lib/ipsec/charon")
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
	if !WaitFor(10*time.Second, func() bool { _, err := os.Stat(filepath.Join(dir, "charon.vici")); return err == nil }) {
		t.Fatalf("charon made no vici socket\n%s", out.String())
	}
	l.Try(t, "pupil", "swanctl", "--load-all", "--uri", vici, "--file", filepath.Join(dir, "swanctl.conf"))
	l.Try(t, "pupil", "timeout", "7", "swanctl", "--initiate", "--uri", vici, "--child", "net", "--timeout", "6")
}

// Download serves a 3 MB file with openssl s_server -WWW and fetches it.
func (l *Lab) Download(t *testing.T, dir, addr string) {
	p := NewPKI(t, dir, "updates.example.net")
	blob := make([]byte, 3<<20)
	rand.Read(blob)
	if err := os.WriteFile(filepath.Join(dir, "update.bin"), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := l.S.Command(ctx, "internet", "openssl", "s_server", "-WWW", "-accept", addr+":443", "-cert", p.ServerCert, "-key", p.ServerKey, "-quiet")
	cmd.Dir = dir
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	time.Sleep(time.Second)
	l.Try(t, "pupil", "curl", "-sSk", "--max-time", "10", "-o", "/dev/null", "--resolve", "updates.example.net:443:"+addr, "https://updates.example.net/update.bin")
}

// StunnelSOCKS wraps a SOCKS proxy in stunnel TLS and uses it.
func (l *Lab) StunnelSOCKS(t *testing.T, dir, addr string) {
	p := NewPKI(t, dir, "proxy.example.net")
	socks := l.Start(t, "internet", "microsocks", "-i", "127.0.0.1", "-p", "1085")
	l.WaitTCP(t, socks, "127.0.0.1:1085")
	WriteFile(t, filepath.Join(dir, "server.conf"), "foreground = yes\npid =\n[socks]\naccept = "+addr+":443\nconnect = 127.0.0.1:1085\ncert = "+p.ServerCert+"\nkey = "+p.ServerKey+"\n")
	srv := l.Start(t, "internet", "stunnel4", filepath.Join(dir, "server.conf"))
	l.WaitTCP(t, srv, addr+":443")
	WriteFile(t, filepath.Join(dir, "client.conf"), "foreground = yes\npid =\n[socks]\nclient = yes\naccept = 127.0.0.1:1086\nconnect = "+addr+":443\n")
	cli := l.Start(t, "pupil", "stunnel4", filepath.Join(dir, "client.conf"))
	l.WaitSocket(t, cli, "pupil", "-Hltn", "127.0.0.1:1086")
	l.Try(t, "pupil", "curl", "-sS", "--max-time", "5", "--socks5", "127.0.0.1:1086", "http://"+testbed.WebIP+"/")
}

// OpenConnect runs ocserv and an openconnect client (TLS, then DTLS).
func (l *Lab) OpenConnect(t *testing.T, dir, addr string) {
	p := NewPKI(t, dir, "vpn.example.net")
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
	WriteFile(t, filepath.Join(dir, "ocserv.conf"), strings.Join([]string{
		`auth = "plain[passwd=` + pw + `]"`, "tcp-port = 443", "udp-port = 443", "listen-host = " + addr,
		"run-as-user = nobody", "run-as-group = nogroup", "socket-file = " + filepath.Join(sockDir, "ocserv.sock"),
		"server-cert = " + p.ServerCert, "server-key = " + p.ServerKey, "isolate-workers = false", "max-clients = 4",
		"keepalive = 30", "dpd = 60", "mobile-dpd = 300", "try-mtu-discovery = false", "device = vpns",
		"ipv4-network = 10.253.0.0/24", "dns = " + testbed.ResolverIP, "pid-file = " + filepath.Join(dir, "ocserv.pid"),
		"cert-user-oid = 0.9.2342.19200300.100.1.1", "compression = false", "predictable-ips = true",
	}, "\n")+"\n")
	srv := l.Start(t, "internet", "ocserv", "-f", "-d", "1", "-c", filepath.Join(dir, "ocserv.conf"))
	l.WaitTCP(t, srv, addr+":443")
	ctx, cancel := context.WithCancel(context.Background())
	c := l.S.Command(ctx, "pupil", "openconnect", "--protocol=anyconnect", "--cafile", p.CA, "--resolve", "vpn.example.net:"+addr,
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
	WaitFor(10*time.Second, func() bool {
		return strings.Contains(out.String(), "DTLS") && strings.Contains(out.String(), "onnected")
	})
	time.Sleep(2 * time.Second)
	cancel()
	<-done
	t.Logf("openconnect:\n%s", out.String())
	t.Logf("ocserv:\n%s", srv.Out.String())
}

// NTP serves time with one chronyd in the fake internet and sets the
// clock once (without touching it: -x) with another in the pupil.
func (l *Lab) NTP(t *testing.T, dir, addr string) {
	conf := filepath.Join(dir, "server.conf")
	WriteFile(t, conf, "bindaddress "+addr+"\nallow all\nlocal stratum 8\ncmdport 0\npidfile "+filepath.Join(dir, "srv.pid")+"\ndriftfile "+filepath.Join(dir, "drift")+"\n")
	srv := l.Start(t, "internet", "chronyd", "-d", "-x", "-f", conf)
	l.WaitUDP(t, srv, "internet", addr+":123")
	cconf := filepath.Join(dir, "client.conf")
	WriteFile(t, cconf, "server "+addr+" iburst\ncmdport 0\npidfile "+filepath.Join(dir, "cli.pid")+"\n")
	l.Try(t, "pupil", "timeout", "10", "chronyd", "-q", "-x", "-f", cconf)
}

// Blackhole makes addr a server that never answers: the fake
// internet drops everything sent to it, as a firewall would.
func (l *Lab) Blackhole(t *testing.T, addr string) {
	l.Run(t, "internet", "nft", "-f", WriteTemp(t, "table ip ghsilent {\n chain in {\n  type filter hook input priority 0; policy accept;\n  ip daddr "+addr+" drop\n }\n}\n"))
}

// Tinc runs a tinc 1.0 node in the fake internet and one on the pupil's
// laptop that connects to it.
func (l *Lab) Tinc(t *testing.T, dir, addr string) {
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
		WriteFile(t, filepath.Join(d, "tinc.conf"), conf)
		WriteFile(t, filepath.Join(d, "hosts", name), host)
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
		WriteFile(t, filepath.Join(d, "hosts", other), string(b))
	}
	srv := l.Start(t, "internet", "tincd", "-c", nodes["gw"], "-D", "-d1", "--pidfile", filepath.Join(dir, "gw.pid"))
	l.WaitTCP(t, srv, addr+":655")
	l.Start(t, "pupil", "tincd", "-c", nodes["laptop"], "-D", "-d1", "--pidfile", filepath.Join(dir, "laptop.pid"))
	time.Sleep(4 * time.Second)
}

// V2Ray runs a v2ray server in the fake internet and a v2ray client on the
// pupil's laptop with a SOCKS inbound, and fetches a page through it (an
// HTTPS one over TLS transports, so that a TLS handshake runs inside).
func (l *Lab) V2Ray(t *testing.T, dir, addr, proto, transport string) {
	const id = "b831381d-6324-4d53-ad4f-8cda48b30811"
	port := map[string]int{"tcp": 10086, "ws": 80, "tls": 443}[transport]
	p := NewPKI(t, dir, "cdn.example.net")
	stream := map[string]any{"network": "tcp"}
	switch transport {
	case "ws":
		stream = map[string]any{"network": "ws", "wsSettings": map[string]any{"path": "/ray"}}
	case "tls":
		stream = map[string]any{"network": "tcp", "security": "tls", "tlsSettings": map[string]any{
			"serverName": "cdn.example.net", "allowInsecure": true,
			"certificates": []any{map[string]any{"certificateFile": p.ServerCert, "keyFile": p.ServerKey}}}}
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
		WriteFile(t, filepath.Join(dir, name), string(b))
	}
	srv := l.Start(t, "internet", "v2ray", "-config", filepath.Join(dir, "server.json"))
	l.WaitTCP(t, srv, fmt.Sprintf("%s:%d", addr, port))
	cli := l.Start(t, "pupil", "v2ray", "-config", filepath.Join(dir, "client.json"))
	l.WaitSocket(t, cli, "pupil", "-Hltn", "127.0.0.1:1087")
	url := "http://" + testbed.WebIP + "/"
	if transport == "tls" {
		url = "https://" + testbed.WebIP + "/"
	}
	l.Try(t, "pupil", "curl", "-sSk", "--max-time", "5", "--socks5", "127.0.0.1:1087", url)
}

// Microsocks runs a SOCKS5 proxy on addr:1080 in the fake internet and
// fetches a page through it.
func (l *Lab) Microsocks(t *testing.T, addr string) {
	srv := l.Start(t, "internet", "microsocks", "-i", addr, "-p", "1080")
	l.WaitTCP(t, srv, addr+":1080")
	l.Try(t, "pupil", "curl", "-sS", "--max-time", "10", "--socks5", addr+":1080", "http://"+testbed.WebIP+"/")
}
