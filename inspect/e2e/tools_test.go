//go:build linux

package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/gatehouse-net/gatehouse/inspect"
	"github.com/gatehouse-net/gatehouse/internal/tooltest"
	"github.com/gatehouse-net/gatehouse/testbed"
)

// toolPackages names, for each program the test runs, the Debian package
// that provides it, so a missing tool fails with the install line.
var toolPackages = map[string]string{
	"openvpn":      "openvpn",
	"wireguard-go": "wireguard-go",
	"wg":           "wireguard-tools",
	"sshd":         "openssh-server",
	"ssh":          "openssh-client",
	"ssh-keygen":   "openssh-client",
	"squid":        "squid",
	"microsocks":   "microsocks",
	"dnsdist":      "dnsdist",
	"kdig":         "knot-dnsutils",
	"dnsmasq":      "dnsmasq-base",
	"curl":         "curl",
	"nft":          "nftables",
	"ip":           "iproute2",
	"ss":           "iproute2",
	"ping":         "iputils-ping",
	"sysctl":       "procps",
}

// Fake-internet addresses, one per tool, so each finding is told apart by
// its destination (and none is suppressed as a repeat of another).
var (
	openvpnUDPAddr = netip.MustParseAddr("192.0.2.11")
	openvpnTCPAddr = netip.MustParseAddr("192.0.2.12")
	wireguardAddr  = netip.MustParseAddr("192.0.2.13")
	sshAddr        = netip.MustParseAddr("192.0.2.14")
	squidAddr      = netip.MustParseAddr("192.0.2.15")
	socksAddr      = netip.MustParseAddr("192.0.2.16")
	dohAddr        = netip.MustParseAddr("192.0.2.17")
	dotAddr        = netip.MustParseAddr("192.0.2.18")
)

// dohName is the name the DoH server's certificate carries and the client
// asks for. DoH to an unknown resolver by name looks like any HTTPS site;
// what makes it detectable is the name of a public resolver, so the fake
// internet plays one.
const dohName = "cloudflare-dns.com"

// findingWait bounds how long a tool's finding may take to show up after
// the tool did its thing.
const findingWait = 10 * time.Second

// collector gathers the engine's findings; the engine calls it from the
// capture goroutine.
type collector struct {
	mu     sync.Mutex
	fs     []inspect.Finding
	notify chan struct{}
}

func (c *collector) HandleFinding(f inspect.Finding) {
	c.mu.Lock()
	c.fs = append(c.fs, f)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

func (c *collector) all() []inspect.Finding {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]inspect.Finding(nil), c.fs...)
}

// wait returns the first finding match accepts, waiting up to d.
func (c *collector) wait(d time.Duration, match func(inspect.Finding) bool) (inspect.Finding, bool) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		for _, f := range c.all() {
			if match(f) {
				return f, true
			}
		}
		select {
		case <-c.notify:
		case <-deadline.C:
			return inspect.Finding{}, false
		}
	}
}

// lab is the testbed with an engine capturing on the router's pupil
// interface.
type lab struct {
	*tooltest.Lab // the tool launchers, shared with cmd/gatehouse's daemon test
	t             *testing.T
	got           *collector
}

func newLab(t *testing.T) *lab {
	t.Helper()
	var missing []string
	for prog, pkg := range toolPackages {
		if _, err := exec.LookPath(prog); err != nil {
			missing = append(missing, pkg)
		}
	}
	if len(missing) > 0 {
		msg := "tools missing; apt-get install -y " + strings.Join(missing, " ")
		if testing.Short() {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
	s := testbed.New(t, testbed.Options{})
	pupil, ok := s.Segment("pupil")
	if !ok {
		t.Fatal("testbed has no pupil segment")
	}
	var inside []netip.Prefix
	for _, seg := range s.Segments() {
		inside = append(inside, seg.Subnet)
	}
	l := &lab{Lab: &tooltest.Lab{S: s, Pupil: pupil}, t: t, got: &collector{notify: make(chan struct{}, 1)}}
	e := inspect.NewEngine(inspect.Options{
		InsideSubnets:  inside,
		DHCPServerIPs:  []netip.Addr{pupil.Gateway},
		DHCPServerMACs: []net.HardwareAddr{pupil.RouterMAC},
		Sink:           l.got,
		MaxFlows:       4096,
	})
	var capt *inspect.LiveCapture
	if err := s.Do("router", func() error {
		var err error
		capt, err = inspect.OpenCapture(pupil.Interface, inspect.CaptureConfig{})
		return err
	}); err != nil {
		t.Fatalf("open capture on the router's %s: %v", pupil.Interface, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- capt.Run(ctx, e) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("capture: %v", err)
		}
		capt.Close()
		if t.Failed() {
			t.Logf("engine stats: %+v", e.Stats())
			for _, f := range l.got.all() {
				t.Logf("finding: %s", f)
			}
		}
	})
	return l
}

// expect waits for a finding of class to dst (any destination when dst
// is invalid) and checks that it names the pupil device.
func (l *lab) expect(t *testing.T, class string, dst netip.Addr) inspect.Finding {
	t.Helper()
	f, ok := l.got.wait(findingWait, func(f inspect.Finding) bool {
		return f.Class == class && (!dst.IsValid() || f.DstIP == dst)
	})
	if !ok {
		var seen []string
		for _, f := range l.got.all() {
			seen = append(seen, f.String())
		}
		t.Fatalf("no %s finding to %v within %v; findings so far:\n%s", class, dst, findingWait, strings.Join(seen, "\n"))
	}
	if f.SrcIP != l.Pupil.ClientAddr || f.SrcMAC.String() != l.Pupil.ClientMAC.String() {
		t.Errorf("%s finding names %v (%v), want the pupil %v (%v): %s", class, f.SrcIP, f.SrcMAC, l.Pupil.ClientAddr, l.Pupil.ClientMAC, f)
	}
	t.Logf("%s", f)
	return f
}

// TestRealToolsFromPupilRaiseFindings drives each bypass tool from the
// pupil namespace to a server in the fake internet and expects the engine
// on the router's pupil interface to raise the tool's class, naming the
// pupil's address and MAC.
func TestRealToolsFromPupilRaiseFindings(t *testing.T) {
	l := newLab(t)
	pupilIP := l.Pupil.ClientAddr.String()

	for _, c := range []struct{ name, proto, addr, port, serverProto, clientProto string }{
		{"openvpn-udp", "udp", openvpnUDPAddr.String(), "1194", "udp", "udp"},
		{"openvpn-tcp-443", "tcp", openvpnTCPAddr.String(), "443", "tcp-server", "tcp-client"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			p := tooltest.NewPKI(t, dir, "vpn.example.net")
			common := []string{"--verb", "3", "--disable-dco", "--dev", "tun", "--dh", "none", "--ca", p.CA,
				"--data-ciphers", "AES-256-GCM", "--connect-timeout", "10", "--connect-retry", "1", "1"}
			srv := l.Start(t, "internet", "openvpn", append(common, "--tls-server", "--proto", c.serverProto,
				"--local", c.addr, "--lport", c.port, "--cert", p.ServerCert, "--key", p.ServerKey,
				"--ifconfig", "10.250.0.1", "10.250.0.2")...)
			if c.proto == "tcp" {
				l.WaitTCP(t, srv, c.addr+":"+c.port)
			} else {
				l.WaitUDP(t, srv, "internet", c.addr+":"+c.port)
			}
			cli := l.Start(t, "pupil", "openvpn", append(common, "--tls-client", "--proto", c.clientProto,
				"--remote", c.addr, c.port, "--nobind", "--cert", p.ClientCert, "--key", p.ClientKey,
				"--ifconfig", "10.250.0.2", "10.250.0.1")...)
			tooltest.WaitOutput(t, cli, "Initialization Sequence Completed", 20*time.Second)
			f := l.expect(t, inspect.ClassVPN, netip.MustParseAddr(c.addr))
			if f.Detail != "openvpn" || f.Proto != c.proto {
				t.Errorf("detail %q proto %q, want openvpn over %s", f.Detail, f.Proto, c.proto)
			}
		})
	}

	t.Run("wireguard-go", func(t *testing.T) {
		dir := t.TempDir()
		// wireguard-go's control socket is /var/run/wireguard/<name>.sock,
		// shared by every namespace: the names must not clash.
		suffix := fmt.Sprint(os.Getpid() % 100000)
		srvIf, cliIf := "wgs"+suffix, "wgc"+suffix
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
			tooltest.WriteFile(t, filepath.Join(dir, side+".key"), priv+"\n")
		}
		env := "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1"
		up := func(ns, ifname string) *tooltest.Proc {
			p := l.StartEnv(t, ns, []string{env}, "wireguard-go", "-f", ifname)
			sock := "/var/run/wireguard/" + ifname + ".sock"
			if !tooltest.WaitFor(10*time.Second, func() bool { _, err := os.Stat(sock); return err == nil }) {
				t.Fatalf("wireguard-go in %s made no %s within 10s\n%s", ns, sock, p.Out.String())
			}
			return p
		}
		up("internet", srvIf)
		l.Run(t, "internet", "wg", "set", srvIf, "listen-port", "51820", "private-key", filepath.Join(dir, "server.key"),
			"peer", keys["client"], "allowed-ips", "10.251.0.2/32")
		l.Run(t, "internet", "ip", "addr", "add", "10.251.0.1/24", "dev", srvIf)
		l.Run(t, "internet", "ip", "link", "set", srvIf, "up")
		up("pupil", cliIf)
		l.Run(t, "pupil", "wg", "set", cliIf, "private-key", filepath.Join(dir, "client.key"),
			"peer", keys["server"], "allowed-ips", "10.251.0.1/32", "endpoint", wireguardAddr.String()+":51820")
		l.Run(t, "pupil", "ip", "addr", "add", "10.251.0.2/24", "dev", cliIf)
		l.Run(t, "pupil", "ip", "link", "set", cliIf, "up")
		// A ping through the tunnel makes the handshake and proves it works.
		l.Run(t, "pupil", "ping", "-c", "3", "-i", "0.3", "-w", "10", "10.251.0.1")
		f := l.expect(t, inspect.ClassVPN, wireguardAddr)
		if f.Detail != "wireguard" {
			t.Errorf("detail %q, want wireguard", f.Detail)
		}
	})

	t.Run("ssh-D", func(t *testing.T) {
		dir := t.TempDir()
		l.Run(t, "internet", "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "host"))
		l.Run(t, "internet", "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "id"))
		pub, err := os.ReadFile(filepath.Join(dir, "id.pub"))
		if err != nil {
			t.Fatal(err)
		}
		tooltest.WriteFile(t, filepath.Join(dir, "authorized_keys"), string(pub))
		tooltest.WriteFile(t, filepath.Join(dir, "sshd_config"), strings.Join([]string{
			"ListenAddress " + sshAddr.String() + ":22",
			"HostKey " + filepath.Join(dir, "host"),
			"PidFile none",
			"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
			"PermitRootLogin prohibit-password",
			"PasswordAuthentication no",
			"KbdInteractiveAuthentication no",
			"UsePAM no",
			"StrictModes no",
			"AllowTcpForwarding yes",
			"LogLevel VERBOSE",
		}, "\n")+"\n")
		// sshd refuses to start without its privilege separation
		// directory, which systemd's tmpfiles make at boot.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatal(err)
		}
		sshd, err := exec.LookPath("sshd")
		if err != nil {
			t.Fatal(err)
		}
		srv := l.Start(t, "internet", sshd, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
		l.WaitTCP(t, srv, sshAddr.String()+":22")
		cli := l.Start(t, "pupil", "ssh", "-N", "-D", "127.0.0.1:1080", "-i", filepath.Join(dir, "id"),
			"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
			"-o", "ConnectTimeout=5", "-o", "ExitOnForwardFailure=yes", "root@"+sshAddr.String())
		// The dynamic forward works: fetch a page through it.
		var out string
		if !tooltest.WaitFor(10*time.Second, func() bool {
			if done, _ := cli.Exited(); done {
				return true
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			b, err := l.S.Command(ctx, "pupil", "curl", "-sS", "--max-time", "4", "--socks5", "127.0.0.1:1080", "http://"+testbed.WebIP+"/").CombinedOutput()
			out = string(b)
			return err == nil
		}) || !strings.Contains(out, testbed.WebBanner) {
			_, err := cli.Exited()
			t.Fatalf("curl through ssh -D failed (ssh: %v):\n%s\nssh output:\n%s", err, out, cli.Out.String())
		}
		f := l.expect(t, inspect.ClassSSH, sshAddr)
		if f.DstPort != 22 {
			t.Errorf("dst port %d, want 22", f.DstPort)
		}
	})

	t.Run("squid-connect", func(t *testing.T) {
		// squid drops to the proxy user, who must be able to read its
		// configuration.
		dir, err := os.MkdirTemp("", "gh-squid-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		conf := filepath.Join(dir, "squid.conf")
		if err := os.WriteFile(conf, []byte(strings.Join([]string{
			"http_port " + squidAddr.String() + ":3128",
			"http_access allow all",
			"cache deny all",
			"cache_effective_user proxy",
			"pid_filename none",
			"cache_log /dev/null",
			"access_log none",
			"cache_store_log none",
			"netdb_filename none",
			"pinger_enable off",
			"shutdown_lifetime 0 seconds",
			"visible_hostname gatehouse-test-squid",
			"dns_nameservers " + testbed.ResolverIP,
		}, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		srv := l.Start(t, "internet", "squid", "-N", "-d", "1", "-f", conf)
		l.WaitTCP(t, srv, squidAddr.String()+":3128")
		out := l.Run(t, "pupil", "curl", "-sS", "-k", "--max-time", "10", "-x", "http://"+squidAddr.String()+":3128", "https://"+testbed.WebIP+"/")
		if !strings.Contains(out, testbed.WebBanner) {
			t.Fatalf("curl through squid got:\n%s", out)
		}
		f := l.expect(t, inspect.ClassProxy, squidAddr)
		if f.Detail != "http-connect" {
			t.Errorf("detail %q, want http-connect", f.Detail)
		}
	})

	t.Run("socks5-microsocks", func(t *testing.T) {
		srv := l.Start(t, "internet", "microsocks", "-i", socksAddr.String(), "-p", "1080")
		l.WaitTCP(t, srv, socksAddr.String()+":1080")
		out := l.Run(t, "pupil", "curl", "-sS", "--max-time", "10", "--socks5", socksAddr.String()+":1080", "http://"+testbed.WebIP+"/")
		if !strings.Contains(out, testbed.WebBanner) {
			t.Fatalf("curl through microsocks got:\n%s", out)
		}
		f := l.expect(t, inspect.ClassProxy, socksAddr)
		if f.Detail != "socks5" {
			t.Errorf("detail %q, want socks5", f.Detail)
		}
	})

	// One dnsdist serves both DoH and DoT, forwarding to the testbed's
	// resolver.
	dnsDir := t.TempDir()
	dnsPKI := tooltest.NewPKI(t, dnsDir, dohName)
	dnsConf := filepath.Join(dnsDir, "dnsdist.conf")
	tooltest.WriteFile(t, dnsConf, strings.Join([]string{
		`setSecurityPollSuffix("")`,
		`setACL({"0.0.0.0/0"})`,
		fmt.Sprintf(`newServer({address=%q})`, testbed.ResolverIP+":53"),
		fmt.Sprintf(`addDOHLocal(%q, %q, %q, "/dns-query")`, dohAddr.String()+":443", dnsPKI.ServerCert, dnsPKI.ServerKey),
		fmt.Sprintf(`addTLSLocal(%q, %q, %q)`, dotAddr.String()+":853", dnsPKI.ServerCert, dnsPKI.ServerKey),
	}, "\n")+"\n")
	dnsdist := l.Start(t, "internet", "dnsdist", "--supervised", "--disable-syslog", "-C", dnsConf)
	l.WaitTCP(t, dnsdist, dohAddr.String()+":443")
	l.WaitTCP(t, dnsdist, dotAddr.String()+":853")

	t.Run("doh-curl-dnsdist", func(t *testing.T) {
		// --resolve points the DoH server's name at the fake internet; the
		// page's own name is then resolved over DoH.
		out := l.Run(t, "pupil", "curl", "-sS", "--max-time", "10",
			"--resolve", dohName+":443:"+dohAddr.String(),
			"--doh-url", "https://"+dohName+"/dns-query", "--doh-insecure",
			"http://www.example.com/")
		if !strings.Contains(out, testbed.WebBanner) {
			t.Fatalf("curl over DoH got:\n%s", out)
		}
		f := l.expect(t, inspect.ClassDoH, dohAddr)
		if f.Detail != "doh:cloudflare" {
			t.Errorf("detail %q, want doh:cloudflare", f.Detail)
		}
	})

	t.Run("dot-kdig", func(t *testing.T) {
		out := l.Run(t, "pupil", "kdig", "+tls", "+time=3", "+retry=1", "-p", "853", "@"+dotAddr.String(), "www.example.com", "A")
		if !strings.Contains(out, testbed.WebIP) {
			t.Fatalf("kdig over DoT got:\n%s", out)
		}
		f := l.expect(t, inspect.ClassDoT, dotAddr)
		if f.DstPort != 853 {
			t.Errorf("dst port %d, want 853", f.DstPort)
		}
	})

	t.Run("tethering-behind-nat", func(t *testing.T) {
		// A phone's hotspot: a second device behind the pupil device, which
		// forwards and masquerades, so its packets reach the router one
		// hop older than the pupil device's own.
		phone := testbed.NewNS(t).Name
		l.Run(t, "pupil", "ip", "link", "add", "hotspot0", "type", "veth", "peer", "name", "wlan0", "netns", phone)
		l.Run(t, "pupil", "ip", "addr", "add", "10.201.0.1/24", "dev", "hotspot0")
		l.Run(t, "pupil", "ip", "link", "set", "hotspot0", "up")
		l.Run(t, "pupil", "sysctl", "-qw", "net.ipv4.ip_forward=1")
		nat := filepath.Join(t.TempDir(), "nat.nft")
		tooltest.WriteFile(t, nat, "table ip ghtether {\n chain post {\n  type nat hook postrouting priority srcnat; policy accept;\n  oifname \""+testbed.ClientInterface+"\" masquerade\n }\n}\n")
		l.Run(t, "pupil", "nft", "-f", nat)
		for _, args := range [][]string{
			{"-n", phone, "addr", "add", "10.201.0.2/24", "dev", "wlan0"},
			{"-n", phone, "link", "set", "wlan0", "up"},
			{"-n", phone, "link", "set", "lo", "up"},
			{"-n", phone, "route", "add", "default", "via", "10.201.0.1"},
		} {
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "ip", "netns", "exec", phone, "ping", "-c", "12", "-i", "0.2", "-w", "10", testbed.WebIP).CombinedOutput()
		if err != nil {
			t.Fatalf("ping from behind the hotspot: %v\n%s", err, out)
		}
		f := l.expect(t, inspect.ClassTethering, netip.Addr{})
		if f.Detail != "ttl" {
			t.Errorf("detail %q, want ttl", f.Detail)
		}
	})

	t.Run("rogue-dhcp-dnsmasq", func(t *testing.T) {
		dir := t.TempDir()
		// The pupil device runs its own DHCP server on the segment.
		srv := l.Start(t, "pupil", "dnsmasq", "--keep-in-foreground", "--log-facility=-", "--conf-file=/dev/null",
			"--port=0", "--user=root", "--interface="+testbed.ClientInterface, "--bind-interfaces",
			"--dhcp-range=10.20.0.100,10.20.0.150,255.255.248.0,5m", "--dhcp-authoritative",
			"--dhcp-leasefile="+filepath.Join(dir, "leases"), "--pid-file="+filepath.Join(dir, "pid"), "--log-dhcp")
		l.WaitUDP(t, srv, "pupil", "0.0.0.0%"+testbed.ClientInterface+":67") // bound to the device
		offer := l.discover(t)
		if got := offer.ServerIdentifier(); !got.Equal(net.IP(l.Pupil.ClientAddr.AsSlice())) {
			t.Fatalf("offer from server %v, want dnsmasq on %v", got, l.Pupil.ClientAddr)
		}
		f := l.expect(t, inspect.ClassRogueDHCP, netip.Addr{})
		if !strings.Contains(f.Evidence, "OFFER") {
			t.Errorf("evidence %q does not name the OFFER", f.Evidence)
		}
	})

	if findings := l.got.all(); !t.Failed() {
		for _, f := range findings {
			if f.SrcIP.String() != pupilIP {
				t.Errorf("finding from somewhere other than the pupil: %s", f)
			}
		}
	}
}

// discover sends DHCPDISCOVERs from the router's pupil interface, as a
// client on the segment would, and returns the first OFFER.
func (l *lab) discover(t *testing.T) *dhcpv4.DHCPv4 {
	t.Helper()
	var conn net.PacketConn
	err := l.S.Do("router", func() error {
		lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1); serr != nil {
					return
				}
				serr = syscall.BindToDevice(int(fd), l.Pupil.Interface)
			})
			return errors.Join(err, serr)
		}}
		var err error
		conn, err = lc.ListenPacket(context.Background(), "udp4", "0.0.0.0:68")
		return err
	})
	if err != nil {
		t.Fatalf("dhcp client socket in the router: %v", err)
	}
	defer conn.Close()
	disc, err := dhcpv4.NewDiscovery(l.Pupil.RouterMAC, dhcpv4.WithBroadcast(true))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	for try := 0; try < 5; try++ {
		if _, err := conn.WriteTo(disc.ToBytes(), &net.UDPAddr{IP: net.IPv4bcast, Port: 67}); err != nil {
			t.Fatalf("send DHCPDISCOVER: %v", err)
		}
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				break // timeout: send again
			}
			m, err := dhcpv4.FromBytes(buf[:n])
			if err == nil && m.TransactionID == disc.TransactionID && m.MessageType() == dhcpv4.MessageTypeOffer {
				return m
			}
		}
	}
	t.Fatal("no DHCPOFFER from dnsmasq after 5 DISCOVERs")
	return nil
}
