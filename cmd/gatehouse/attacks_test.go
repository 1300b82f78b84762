package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/miekg/dns"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
)

// buildGatehouseWithFaults builds the daemon with the gatehouse_faults tag:
// the product as shipped, plus handlers that panic on marker input (see
// faults_inject.go).
func buildGatehouseWithFaults(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gatehouse")
	cmd := exec.Command("go", "build", "-tags", "gatehouse_faults", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestProvedAttacksAgainstTheDaemon runs the rest of issue 13's proved
// attacks against `gatehouse run` in a testbed router (the others are in
// TestHostileClientsAgainstTheDaemon): each played with real clients
// (udhcpc, curl, raw DHCP and DNS packets from the segment's namespace), and
// each checked in what the daemon wrote to the kernel or the database.
//
// The visitor namespace plays several devices in turn by changing its
// interface's MAC: the victim (who leases, redeems a code with a quota and
// is admitted) and the attacker (another MAC on the same segment).
func TestProvedAttacksAgainstTheDaemon(t *testing.T) {
	testbed.Require(t)
	for _, tool := range []string{"udhcpc", "curl", "ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("this test needs %s (see build/deps): %v", tool, err)
		}
	}
	bin := buildGatehouseWithFaults(t)
	segs := testbed.DefaultSegments()
	for i := range segs {
		// The visitor takes its address from the daemon; every other
		// client keeps the static address nobody reserved.
		segs[i].Unconfigured = segs[i].Name == "visitor"
		if segs[i].Name == "visitor" {
			segs[i].DHCPStart = netip.MustParseAddr("10.40.0.50")
			segs[i].DHCPEnd = netip.MustParseAddr("10.40.0.70")
		}
	}
	school := testbed.New(t, testbed.Options{Segments: segs})
	files, err := school.Config(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, school, bin, files.Path)
	code, stdout, stderr := cli(t, "", "voucher", "issue", "--config", files.Path, "--duration", "2h", "--devices", "1", "--quota-mb", "1")
	if code != 0 {
		t.Fatalf("voucher issue: exit %d: %s", code, stderr)
	}
	u := &unknownRig{t: t, school: school, d: d, dir: t.TempDir(), codes: []string{strings.TrimSpace(stdout)}}
	visitor, _ := school.Segment("visitor")
	victim := net.HardwareAddr{0x00, 0x16, 0x3e, 0x13, 0x00, 0x01}
	attacker := net.HardwareAddr{0x00, 0x16, 0x3e, 0x13, 0x00, 0x66}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	st, err := store.Open(ctx, files.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	// staticAddr gives the visitor namespace's interface a static address.
	staticAddr := func(t *testing.T, ip string) {
		u.t = t
		u.must(visitor, "ip", "addr", "add", ip+"/23", "dev", testbed.ClientInterface)
		u.must(visitor, "ip", "route", "replace", "default", "via", visitor.Gateway.String())
	}

	t.Run("a static address on any segment gets nothing through the router", func(t *testing.T) {
		u.t = t
		for _, seg := range school.Segments() {
			if seg.Name == "visitor" {
				continue
			}
			if out, ok := u.internet(seg); ok {
				t.Errorf("the %s client's static, unreserved address %s reached the internet:\n%s", seg.Name, seg.ClientAddr, out)
			}
		}
		// A visitor with an address it gave itself: not even a valid code
		// opens it (the code is refused, and is not used up).
		u.become(visitor, victim)
		staticAddr(t, "10.40.0.99")
		if out, err := u.redeem(visitor); err != nil || !strings.Contains(out, "identify your device") {
			t.Errorf("redeeming a code from a static address: %v\n%s", err, out)
		}
		u.used = 0
		if out, ok := u.internet(visitor); ok {
			t.Errorf("the visitor's static address reached the internet:\n%s", out)
		}
		if strings.Contains(admittedSet(t, school), victim.String()) {
			t.Errorf("a static address was admitted:\n%s", admittedSet(t, school))
		}
	})

	var victimIP string
	t.Run("the victim leases, redeems a code with a 1 MB quota and is admitted", func(t *testing.T) {
		u.t = t
		u.become(visitor, victim)
		ip, ok := u.lease(visitor)
		if !ok {
			t.Fatal("the victim got no lease")
		}
		victimIP = ip
		if out, err := u.redeem(visitor); err != nil || !regexp.MustCompile(`\n(200|303) `).MatchString(out) {
			t.Fatalf("redeeming the code: %v\n%s", err, out)
		}
		if out, ok := u.internet(visitor); !ok {
			t.Fatalf("the admitted victim does not reach the internet:\n%s", out)
		}
	})
	if victimIP == "" {
		t.FailNow()
	}

	t.Run("quota theft: another MAC on the victim's address charges nothing to the victim's budget", func(t *testing.T) {
		u.t = t
		before := quotaUsed(t, school, victimIP)
		u.become(visitor, attacker)
		staticAddr(t, victimIP)
		pc, err := school.ListenPacket("visitor", "udp4", victimIP+":0")
		if err != nil {
			t.Fatal(err)
		}
		dst := &net.UDPAddr{IP: net.ParseIP(testbed.WebIP), Port: 9}
		buf := make([]byte, 1200)
		for range 300 {
			// ICMP refusals make some writes fail; those that leave
			// are what the attack needs.
			_, _ = pc.WriteTo(buf, dst)
		}
		pc.Close()
		if out, ok := u.internet(visitor); ok {
			t.Errorf("the attacker reached the internet on the victim's address:\n%s", out)
		}
		time.Sleep(300 * time.Millisecond) // let the last packets cross the router
		after := quotaUsed(t, school, victimIP)
		t.Logf("the victim's quota: %d bytes used before the attack, %d after", before, after)
		if after != before {
			t.Errorf("the victim's budget went from %d to %d bytes used by the attacker's packets (360 kB sent)", before, after)
		}
	})

	t.Run("a MAC-copying device on an address it was not given gets nothing", func(t *testing.T) {
		u.t = t
		u.become(visitor, victim)
		staticAddr(t, "10.40.0.98")
		if out, ok := u.internet(visitor); ok {
			t.Errorf("the victim's MAC on another address reached the internet:\n%s", out)
		}
		if out, err := u.redeem(visitor); err != nil || !strings.Contains(out, "identify your device") {
			t.Errorf("redeeming from the copied MAC on an address it was not given: %v\n%s", err, out)
		}
		u.used = 0
		if n := strings.Count(admittedSet(t, school), victim.String()); n != 1 {
			t.Errorf("%d admissions of the victim's MAC, want 1:\n%s", n, admittedSet(t, school))
		}
	})

	t.Run("one code on many addresses: a device that moves keeps one admission", func(t *testing.T) {
		u.t = t
		// The device gives its address back (a DECLINE from its own
		// MAC and address, as after a conflict) and leases another.
		u.become(visitor, victim)
		staticAddr(t, victimIP)
		pc, err := school.ListenPacket("visitor", "udp4", victimIP+":68")
		if err != nil {
			t.Fatal(err)
		}
		decline, err := dhcpv4.New(dhcpv4.WithHwAddr(victim), dhcpv4.WithMessageType(dhcpv4.MessageTypeDecline),
			dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP(victimIP).To4())), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IP(visitor.Gateway.AsSlice()))))
		if err != nil {
			t.Fatal(err)
		}
		_, err = pc.WriteTo(decline.ToBytes(), &net.UDPAddr{IP: net.IP(visitor.Gateway.AsSlice()), Port: dhcpv4.ServerPort})
		pc.Close()
		if err != nil {
			t.Fatal(err)
		}
		u.become(visitor, victim)
		var m []string
		waitFor(t, "a lease of another address", func() bool {
			ip, ok := u.lease(visitor)
			m = []string{"", ip}
			return ok && ip != victimIP
		})
		t.Logf("the device moved from %s to %s", victimIP, m[1])
		waitFor(t, "the admission on the new address", func() bool {
			return strings.Contains(admittedSet(t, school), victim.String()+" . "+m[1])
		})
		set := admittedSet(t, school)
		if n := strings.Count(set, victim.String()); n != 1 {
			t.Errorf("after the device leased %s (was %s): %d admissions of its MAC, want 1:\n%s", m[1], victimIP, n, set)
		}
		if m[1] != victimIP && strings.Contains(set, victimIP+" ") {
			t.Errorf("the old address %s is still admitted:\n%s", victimIP, set)
		}
		victimIP = m[1]
		// A second device cannot use the one-device code.
		u.become(visitor, attacker)
		if _, ok := u.lease(visitor); !ok {
			t.Fatal("the second device got no lease")
		}
		if out, err := u.redeem(visitor); err != nil || !strings.Contains(out, "as many devices") {
			t.Errorf("a second device redeeming a one-device code: %v\n%s", err, out)
		}
		u.used = 0
		if strings.Contains(admittedSet(t, school), attacker.String()) {
			t.Errorf("a second device was admitted on a one-device code:\n%s", admittedSet(t, school))
		}
	})

	t.Run("a forged DECLINE and DISCOVER with the victim's MAC end neither its lease nor its admission", func(t *testing.T) {
		u.t = t
		u.become(visitor, attacker)
		staticAddr(t, "10.40.0.97")
		pc, err := school.ListenPacket("visitor", "udp4", "10.40.0.97:68")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		gw := &net.UDPAddr{IP: net.IP(visitor.Gateway.AsSlice()), Port: dhcpv4.ServerPort}
		vip := net.ParseIP(victimIP).To4()
		decline, err := dhcpv4.New(dhcpv4.WithHwAddr(victim), dhcpv4.WithMessageType(dhcpv4.MessageTypeDecline),
			dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(vip)), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IP(visitor.Gateway.AsSlice()))))
		if err != nil {
			t.Fatal(err)
		}
		discover, err := dhcpv4.New(dhcpv4.WithHwAddr(victim), dhcpv4.WithMessageType(dhcpv4.MessageTypeDiscover))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []*dhcpv4.DHCPv4{decline, discover} {
			if _, err := pc.WriteTo(m.ToBytes(), gw); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Second) // a decline honoured would have ended the lease by now
		leases, err := st.DHCPLeases(ctx)
		if err != nil {
			t.Fatal(err)
		}
		active := false
		for _, l := range leases {
			if l.MAC.String() == victim.String() && l.IP.String() == victimIP && l.State == "bound" && time.Now().Before(l.Expires) {
				active = true
			}
		}
		if !active {
			t.Errorf("the victim's lease of %s ended after the forged DECLINE: %+v", victimIP, leases)
		}
		if !strings.Contains(admittedSet(t, school), victim.String()+" . "+victimIP) {
			t.Errorf("the victim's admission ended after the forgeries:\n%s", admittedSet(t, school))
		}
		// The victim renews: ACKed, not NAKed.
		u.become(visitor, victim)
		out, err := u.sh(visitor, "udhcpc", "-f", "-q", "-n", "-i", testbed.ClientInterface, "-s", filepath.Join(u.dir, "udhcpc.sh"), "-t", "4", "-T", "1", "-r", victimIP)
		if m := leaseOf.FindStringSubmatch(out); err != nil || m == nil || m[1] != victimIP {
			t.Errorf("the victim's renewal of %s after the forgeries: %v\n%s", victimIP, err, out)
		}
	})

	t.Run("the attempt-row flood: 300 wrong codes cost a few rows", func(t *testing.T) {
		u.t = t
		hc := school.HTTPClient("visitor")
		hc.Timeout = 5 * time.Second
		hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		for i := range 300 {
			resp, err := hc.PostForm("http://"+visitor.Gateway.String()+":8080/login",
				url.Values{"code": {fmt.Sprintf("ZZZZZ-%05d", i)}, "accept": {"yes"}, "lang": {"en"}})
			if err != nil {
				t.Fatalf("attempt %d: %v", i, err)
			}
			resp.Body.Close()
		}
		as, err := st.VoucherAttempts(ctx, 5000)
		if err != nil {
			t.Fatal(err)
		}
		rows, tries := 0, int64(0)
		for _, a := range as {
			if a.IP.String() == victimIP {
				rows++
				tries += a.Count
			}
		}
		if tries < 300 {
			t.Errorf("%d attempts recorded for %s, want every one of the 300 counted", tries, victimIP)
		}
		t.Logf("300 wrong codes: %d attempts counted in %d rows", tries, rows)
		if rows > 10 {
			t.Errorf("300 wrong codes wrote %d attempt rows, want them aggregated per device, outcome and minute", rows)
		}
	})

	t.Run("the DNS-log flood keeps the first and the unusual lookups", func(t *testing.T) {
		pupil, _ := school.Segment("pupil")
		conn, err := school.DialContext(ctx, "pupil", "udp", pupil.Gateway.String()+":53")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		c := &dns.Conn{Conn: conn}
		ask := func(name string) {
			m := new(dns.Msg)
			m.SetQuestion(dns.Fqdn(name), dns.TypeA)
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			if err := c.WriteMsg(m); err != nil {
				t.Fatal(err)
			}
			_, _ = c.ReadMsg()
		}
		since := time.Now().Add(-time.Second)
		ask("www.example.org") // the pupil's real first lookup
		for range 450 {
			ask("example.com")
			time.Sleep(25 * time.Millisecond) // under the guard's 50 a second
		}
		ask("www.google.com") // SafeSearch: unusual, kept whatever came before
		var qs []store.DNSQuery
		waitFor(t, "the SafeSearch lookup in the log", func() bool {
			qs, err = st.DNSQueries(ctx, store.DNSQueryFilter{Client: pupil.ClientAddr, Since: since, Limit: 5000})
			return err == nil && slicesContainsName(qs, "www.google.com")
		})
		junk := 0
		for _, q := range qs {
			if q.Name == "example.com" {
				junk++
			}
		}
		t.Logf("%d of the 450 junk lookups stored", junk)
		if !slicesContainsName(qs, "www.example.org") {
			t.Error("the pupil's first lookup is not in the log")
		}
		if junk > 300 {
			t.Errorf("%d of the 450 junk lookups were stored, want at most the budget of 300 a minute", junk)
		}
	})

	t.Run("a code's quota is the code's: two devices, one budget", func(t *testing.T) {
		u.t = t
		code, stdout, stderr := cli(t, "", "voucher", "issue", "--config", files.Path, "--duration", "2h", "--devices", "2", "--quota-mb", "1")
		if code != 0 {
			t.Fatalf("voucher issue: exit %d: %s", code, stderr)
		}
		shared := &unknownRig{t: t, school: school, d: d, dir: u.dir, codes: []string{strings.TrimSpace(stdout)}}
		for _, m := range []net.HardwareAddr{attacker, {0x00, 0x16, 0x3e, 0x13, 0x00, 0x77}} {
			shared.become(visitor, m)
			if _, ok := shared.lease(visitor); !ok {
				t.Fatalf("%s got no lease", m)
			}
			if out, err := shared.redeem(visitor); err != nil || !regexp.MustCompile(`\n(200|303) `).MatchString(out) {
				t.Fatalf("%s redeeming the two-device code: %v\n%s", m, err, out)
			}
			shared.used = 0
		}
		out, err := school.Command(ctx, "router", "nft", "list", "quotas", "table", "inet", "gatehouse").CombinedOutput()
		if err != nil {
			t.Fatalf("nft list quotas: %v\n%s", err, out)
		}
		// The victim's code and the shared code: two budgets for three
		// admitted devices.
		if n := strings.Count(string(out), "quota quota_"); n != 2 {
			t.Errorf("%d quota objects for two codes (one of them on two devices), want 2:\n%s", n, out)
		}
	})

	t.Run("panicking packets and requests stop none of DHCP, DNS and the portal", func(t *testing.T) {
		u.t = t
		// DHCP: the marker MAC's lease panics in the handler.
		u.become(visitor, faultMACForTest)
		if _, ok := u.lease(visitor); ok {
			t.Error("the marker MAC got a lease; the fault was not injected")
		}
		// DNS: the marker name panics while it is answered.
		staff, _ := school.Segment("staff")
		out, _ := school.Command(ctx, "staff", "dig", "+time=2", "+tries=1", "@"+staff.Gateway.String(), "panic.fault.test", "A").CombinedOutput()
		if !strings.Contains(string(out), "SERVFAIL") {
			t.Errorf("the marker lookup was not answered SERVFAIL:\n%s", out)
		}
		// The portal: any request from the marker address panics.
		u.become(visitor, attacker)
		staticAddr(t, "10.40.0.250")
		if out, _ := u.curl(visitor, "--interface", "10.40.0.250", "http://"+visitor.Gateway.String()+":8080/"); !strings.Contains(out, "\n500 ") {
			t.Errorf("the marker request was not answered 500:\n%s", out)
		}
		for _, what := range []string{"dhcp: handler panic", "dnsguard: handler panic", "panic"} {
			if !strings.Contains(d.log.String(), what) {
				t.Errorf("no %q in the daemon's log", what)
			}
		}
		// Everything goes on serving.
		u.become(visitor, victim)
		if _, ok := u.lease(visitor); !ok {
			t.Error("DHCP stopped serving after the panic")
		}
		out, err = school.Command(ctx, "staff", "dig", "+time=2", "+tries=2", "@"+staff.Gateway.String(), "www.example.com", "A").CombinedOutput()
		if err != nil || !strings.Contains(string(out), testbed.WebIP) {
			t.Errorf("DNS stopped answering after the panic: %v\n%s", err, out)
		}
		if out, err := u.curl(visitor, "http://"+visitor.Gateway.String()+":8080/"); err != nil || !strings.Contains(out, "\n200 ") {
			t.Errorf("the portal stopped serving after the panic: %v\n%s", err, out)
		}
		if !d.healthy() {
			t.Errorf("the daemon is not healthy after the panics:\n%s", d.log.String())
		}
	})
}

// faultMACForTest is faults_inject.go's marker MAC.
var faultMACForTest = net.HardwareAddr{0x02, 0xde, 0xad, 0, 0, 0x01}

func slicesContainsName(qs []store.DNSQuery, name string) bool {
	for _, q := range qs {
		if q.Name == name {
			return true
		}
	}
	return false
}

// admittedSet is the router's admitted set as nft prints it.
func admittedSet(t *testing.T, school *testbed.School) string {
	t.Helper()
	out, err := school.Command(context.Background(), "router", "nft", "list", "set", "inet", "gatehouse", "admitted").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list set admitted: %v\n%s", err, out)
	}
	return expires.ReplaceAllString(string(out), "")
}

// quotaUsed reads the used count of the quota the victim's address is
// charged to, from the router's ruleset.
func quotaUsed(t *testing.T, school *testbed.School, ip string) uint64 {
	t.Helper()
	out, err := school.Command(context.Background(), "router", "nft", "list", "quotas", "table", "inet", "gatehouse").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list quotas: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`quota quota_\w+ \{\s*over \d+ bytes(?: used (\d+) bytes)?`).FindAllStringSubmatch(string(out), -1)
	if len(m) != 1 {
		t.Fatalf("want the one visitor's quota in the router, %s has:\n%s", ip, out)
	}
	n, _ := strconv.ParseUint(m[0][1], 10, 64) // nft leaves out "used 0 bytes"
	return n
}
