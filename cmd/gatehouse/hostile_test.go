package main

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
)

// TestHostileClientsAgainstTheDaemon runs the attacks of issue 13 that were
// proved against the running daemon, against `gatehouse run` in a testbed
// router: each failed on the code the issue was filed against.
func TestHostileClientsAgainstTheDaemon(t *testing.T) {
	testbed.Require(t)
	bin := buildGatehouse(t)
	segs := testbed.DefaultSegments()
	for i := range segs {
		if segs[i].Name == "visitor" {
			// A pool of 21 addresses, as in the proved exhaustion.
			segs[i].DHCPStart = netip.MustParseAddr("10.40.0.50")
			segs[i].DHCPEnd = netip.MustParseAddr("10.40.0.70")
		}
	}
	school := testbed.New(t, testbed.Options{Segments: segs})
	dir := t.TempDir()
	files, err := school.Config(dir)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(files.Path)
	if err != nil {
		t.Fatal(err)
	}
	// The visitor client's address is a trusted relay's: the forged relay
	// packet below claims to come from it.
	conf = append(conf, []byte("dhcp:\n  trusted_relays: [10.40.0.10]\n")...)
	if err := os.WriteFile(files.Path, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	const pw = "a long staff passphrase"
	if code, _, stderr := cli(t, pw+"\n", "user", "add", "--config", files.Path, "--role", "network", "--name", "amy"); code != 0 {
		t.Fatalf("user add: %s", stderr)
	}
	d := startDaemon(t, school, bin, files.Path)
	visitor, _ := school.Segment("visitor")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	t.Run("the DNS guard is no open resolver for the uplink side", func(t *testing.T) {
		out, _ := school.Command(ctx, "internet", "dig", "+time=2", "+tries=1", "@198.51.100.1", "school.example", "A").CombinedOutput()
		if strings.Contains(string(out), "ANSWER SECTION") || strings.Contains(string(out), "status: NOERROR") {
			t.Errorf("a query from the uplink side was answered:\n%s", out)
		}
		// The staff segment is still answered (SafeSearch's CNAME).
		out, err := school.Command(ctx, "staff", "dig", "+time=2", "+tries=2", "@10.10.0.1", "www.google.com", "A").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "forcesafesearch.google.com") {
			t.Errorf("staff lookup: %v\n%s", err, out)
		}
	})

	t.Run("a static address nobody reserved gets nothing through the router", func(t *testing.T) {
		out, err := school.Command(ctx, "staff", "curl", "-s", "-S", "-k", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}", "https://"+testbed.WebIP+"/").CombinedOutput()
		if err == nil {
			t.Errorf("the staff client's static, unreserved address reached the internet: %s", out)
		}
	})

	t.Run("reverse-path filtering is on for the segments", func(t *testing.T) {
		out, err := school.Command(ctx, "router", "cat", "/proc/sys/net/ipv4/conf/"+visitor.Interface+"/rp_filter").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "1" {
			t.Errorf("rp_filter on %s: %q (%v), want 1", visitor.Interface, out, err)
		}
	})

	t.Run("the portal is not reachable from the uplink side", func(t *testing.T) {
		conn, err := school.DialContext(ctx, "internet", "tcp", "198.51.100.1:8080")
		if err == nil {
			conn.Close()
			t.Error("the portal port answered the uplink side")
		}
	})

	t.Run("a TAB in next is no open redirect", func(t *testing.T) {
		b := d.browser(t)
		resp := b.Post("/login", url.Values{"csrf": {b.CSRFFrom("/login")}, "name": {"amy"}, "password": {pw}, "next": {"/\t/evil.example/phish"}})
		// A network manager with no usable next lands on the overview.
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/overview" {
			t.Errorf("login with a TAB in next: %d to %q, want 303 to /overview", resp.StatusCode, loc)
		}
		// A name the school did not configure is refused (DNS rebinding).
		req, _ := http.NewRequest(http.MethodGet, d.admin+"/login", nil)
		req.Host = "rebind.evil.example"
		if resp := b.Do(req); resp.StatusCode != http.StatusMisdirectedRequest {
			t.Errorf("Host rebind.evil.example: %d, want 421", resp.StatusCode)
		}
	})

	t.Run("made-up MACs do not empty the visitor pool, and a forged relay gets no staff address", func(t *testing.T) {
		pc, err := school.ListenPacket("visitor", "udp4", visitor.ClientAddr.String()+":67")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		gw := &net.UDPAddr{IP: net.IP(visitor.Gateway.AsSlice()), Port: dhcpv4.ServerPort}
		for i := range 25 {
			m, err := dhcpv4.New(dhcpv4.WithHwAddr(net.HardwareAddr{0x02, 0x66, 0, 0, 0, byte(i)}), dhcpv4.WithMessageType(dhcpv4.MessageTypeDiscover),
				dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionRapidCommit, nil)))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := pc.WriteTo(m.ToBytes(), gw); err != nil {
				t.Fatal(err)
			}
		}
		relayed, err := dhcpv4.New(dhcpv4.WithHwAddr(net.HardwareAddr{0x02, 0x66, 0, 0, 1, 1}), dhcpv4.WithMessageType(dhcpv4.MessageTypeDiscover),
			dhcpv4.WithGatewayIP(net.IPv4(10, 10, 0, 1)), dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionRapidCommit, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pc.WriteTo(relayed.ToBytes(), gw); err != nil {
			t.Fatal(err)
		}
		// The real visitor still gets an address.
		out, err := school.Command(ctx, "visitor", "udhcpc", "-q", "-n", "-f", "-i", "eth0", "-s", "/bin/true", "-t", "10", "-T", "1").CombinedOutput()
		if err != nil || !regexp.MustCompile(`lease of 10\.40\.0\.\d+ obtained`).Match(out) {
			t.Fatalf("the real visitor got no lease after the made-up MACs: %v\n%s", err, out)
		}
		st, err := store.Open(ctx, files.Database)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		leases, err := st.DHCPLeases(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range leases {
			if l.MAC != nil && l.MAC[0] == 0x02 && l.MAC[1] == 0x66 {
				t.Errorf("a made-up MAC holds a lease: %+v", l)
			}
		}
	})

	if !d.healthy() {
		t.Fatalf("the daemon stopped serving:\n%s", d.log.String())
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}
