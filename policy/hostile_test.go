package policy

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The kernel-side attacks of issue 13, in namespaces with the real ruleset.

// TestQuotaTheftBySpoofedAddressIsRefusedBeforeCounting is the proved
// attack: a visitor who never redeemed a code sent UDP from the victim's
// address with their own MAC, and the victim's budget paid for it.
func TestQuotaTheftBySpoofedAddressIsRefusedBeforeCounting(t *testing.T) {
	s := newSchool(t)
	e := newEnforcer(t, s.router, testNetwork(), time.Now)
	ctx := context.Background()
	if err := e.Apply(ctx); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	// The victim is admitted with the visitor namespace's own MAC...
	victim := Device{MAC: mac("02:00:00:00:40:0a"), IP: netip.MustParseAddr("10.40.0.10")}
	if err := e.AdmitWith(ctx, victim, time.Now().Add(time.Hour), Limits{QuotaBytes: 1_000_000}); err != nil {
		t.Fatalf("AdmitWith: %v", err)
	}
	// ...then the attacker takes that interface with another MAC and the
	// victim's address.
	nsRun(t, s.visitorNS, "ip", "link", "set", "eth0", "address", "02:00:00:00:66:66")
	inNS(t, s.visitor, func() {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP("10.40.0.10")})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, 1200)
		dst := &net.UDPAddr{IP: net.ParseIP("198.51.100.2"), Port: 9}
		for range 200 {
			// The router's ICMP refusals make some writes fail; the
			// packets that do leave are what matters.
			_, _ = c.WriteTo(buf, dst)
		}
	})
	time.Sleep(200 * time.Millisecond) // let the packets cross the router
	used, err := e.QuotaUsed(ctx, victim)
	if err != nil {
		t.Fatal(err)
	}
	if used != 0 {
		t.Errorf("the victim's budget was charged %d bytes for the attacker's packets", used)
	}
}

// TestOneAdmissionPerMAC: a code limited to one device ended up with 4 live
// admissions, one per address the device claimed.
func TestOneAdmissionPerMAC(t *testing.T) {
	ns, fd := newNS(t)
	e := newEnforcer(t, fd, testNetwork(), time.Now)
	ctx := context.Background()
	if err := e.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	m := mac("02:00:00:00:40:0a")
	until := time.Now().Add(time.Hour)
	for i := 10; i < 14; i++ {
		d := Device{MAC: m, IP: netip.AddrFrom4([4]byte{10, 40, 0, byte(i)})}
		if err := e.AdmitWith(ctx, d, until, Limits{QuotaBytes: 500_000}); err != nil {
			t.Fatalf("admit %v: %v", d, err)
		}
	}
	got := listSet(t, ns, SetAdmitted)
	if n := strings.Count(got, "02:00:00:00:40:0a . "); n != 1 || !strings.Contains(got, "10.40.0.13") {
		t.Errorf("admitted set after the device claimed 4 addresses:\n%s\nwant one admission, on 10.40.0.13", got)
	}
	if !e.Admitted(netip.MustParseAddr("10.40.0.13"), m) || e.Admitted(netip.MustParseAddr("10.40.0.10"), nil) {
		t.Error("Admitted does not follow the move")
	}
	if budgets := nsRun(t, ns, "nft", "list", "map", "inet", TableName, SetBudget); strings.Count(budgets, "quota_") != 1 {
		t.Errorf("budget map after the moves holds more than one budget:\n%s", budgets)
	}
}

// TestRouterServicesOnlyForTheSegments: the DNS guard, DHCP and the portal
// answered the uplink side (an open resolver).
func TestRouterServicesOnlyForTheSegments(t *testing.T) {
	s := newSchool(t)
	n := testNetwork()
	e := newEnforcer(t, s.router, n, time.Now)
	ctx := context.Background()
	if err := e.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	bannerServer(t, s.router, fmt.Sprintf(":%d", n.PortalPort), "portal")
	bannerServer(t, s.router, fmt.Sprintf(":%d", n.DNSPort), "dns")
	if got := banner(t, s.staff, fmt.Sprintf("10.10.0.1:%d", n.DNSPort)); got != "dns" {
		t.Errorf("DNS (tcp) from the staff segment: %q", got)
	}
	if got := banner(t, s.visitor, fmt.Sprintf("10.40.0.1:%d", n.PortalPort)); got != "portal" {
		t.Errorf("portal from the visitor segment: %q", got)
	}
	for _, port := range []uint16{n.DNSPort, n.PortalPort} {
		inNS(t, s.internet, func() {
			d := net.Dialer{Timeout: time.Second}
			c, err := d.Dial("tcp4", fmt.Sprintf("198.51.100.1:%d", port))
			if err == nil {
				c.Close()
				t.Errorf("port %d on the router reached from the uplink side", port)
				return
			}
			if isErrno(err, syscall.ECONNREFUSED) {
				t.Errorf("port %d from the uplink: refused by the service, want dropped by the input chain", port)
			}
		})
	}
}

// TestStaticAddressGetsNothingUntilBound: on a binding segment a device
// with a static address, or with someone else's, is dropped before any
// rule; a bound pair (a lease) goes through.
func TestStaticAddressGetsNothingUntilBound(t *testing.T) {
	s := newSchool(t)
	n := testNetwork()
	n.Segments[0].BindMACIP = true // staff
	e := newEnforcer(t, s.router, n, time.Now)
	ctx := context.Background()
	if err := e.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	echoServer(t, s.internet, "198.51.100.2:443")
	staff := Device{MAC: mac("02:00:00:00:10:0a"), IP: netip.MustParseAddr("10.10.0.10")}
	dial := func() error {
		c, err := dialFrom(t, s.staff, "198.51.100.2:443")
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(); err == nil {
		t.Fatal("a static address nobody handed out reached the internet")
	}
	if e.Bound(staff) {
		t.Error("Bound reports a pair nobody bound (the portal would admit it)")
	}
	if !e.Bound(Device{MAC: mac("02:00:00:00:20:0a"), IP: netip.MustParseAddr("10.20.0.10")}) {
		t.Error("Bound refuses a pair on a segment without binding")
	}
	if err := e.Bind(ctx, staff, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := dial(); err != nil {
		t.Fatalf("the bound pair: %v", err)
	}
	if !e.Bound(staff) || e.Bound(Device{MAC: mac("02:00:00:00:66:10"), IP: staff.IP}) {
		t.Error("Bound does not follow the bound set")
	}
	if got := listSet(t, s.routerNS, SetBound); !strings.Contains(got, "02:00:00:00:10:0a . 10.10.0.10") {
		t.Errorf("bound set:\n%s", got)
	}
	// The same address from another MAC is someone else's.
	nsRun(t, s.staffNS, "ip", "link", "set", "eth0", "address", "02:00:00:00:66:10")
	if err := dial(); err == nil {
		t.Error("the bound address from another MAC reached the internet")
	}
	nsRun(t, s.staffNS, "ip", "link", "set", "eth0", "address", "02:00:00:00:10:0a")
	if err := e.Unbind(ctx, staff); err != nil {
		t.Fatal(err)
	}
	if err := dial(); err == nil {
		t.Error("an unbound pair reached the internet")
	}
}

// TestACodesDevicesShareOneBudget: a code's quota belongs to the code, not
// to each address: two devices admitted with the same QuotaKey count
// against one quota object, which lasts while either is admitted.
func TestACodesDevicesShareOneBudget(t *testing.T) {
	s := newSchool(t)
	e := newEnforcer(t, s.router, testNetwork(), time.Now)
	ctx := context.Background()
	if err := e.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(time.Hour)
	phone := Device{MAC: mac("02:00:00:00:40:0a"), IP: netip.MustParseAddr("10.40.0.10")} // the visitor namespace
	laptop := Device{MAC: mac("02:00:00:00:40:0b"), IP: netip.MustParseAddr("10.40.0.11")}
	lone := Device{MAC: mac("02:00:00:00:40:0c"), IP: netip.MustParseAddr("10.40.0.12")}
	for _, d := range []Device{phone, laptop} {
		if err := e.AdmitWith(ctx, d, until, Limits{QuotaBytes: 1_000_000, QuotaKey: "v7"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.AdmitWith(ctx, lone, until, Limits{QuotaBytes: 1_000_000}); err != nil {
		t.Fatal(err)
	}
	inNS(t, s.visitor, func() {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP("10.40.0.10")})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, 1000)
		for range 100 {
			_, _ = c.WriteTo(buf, &net.UDPAddr{IP: net.ParseIP("198.51.100.2"), Port: 9})
		}
	})
	time.Sleep(200 * time.Millisecond) // let the packets cross the router
	pu, err := e.QuotaUsed(ctx, phone)
	if err != nil {
		t.Fatal(err)
	}
	lu, err := e.QuotaUsed(ctx, laptop)
	if err != nil {
		t.Fatal(err)
	}
	if pu < 50_000 || lu != pu {
		t.Errorf("the phone used %d bytes; the code's budget as the laptop sees it: %d; want the same, over 50 kB", pu, lu)
	}
	if ou, err := e.QuotaUsed(ctx, lone); err != nil || ou != 0 {
		t.Errorf("a device with its own budget was charged %d (%v)", ou, err)
	}
	objs := nsRun(t, s.routerNS, "nft", "list", "quotas", "table", "inet", TableName)
	if strings.Count(objs, "quota quota_k_v7 ") != 1 || strings.Count(objs, "quota quota_") != 2 {
		t.Errorf("quota objects, want one for the code and one for the lone device:\n%s", objs)
	}
	if n, err := e.Check(ctx); err != nil || n != 0 {
		t.Errorf("a check after sharing repaired %d (%v), want nothing", n, err)
	}
	// The budget lasts while any of the code's devices is admitted.
	if err := e.Evict(ctx, phone); err != nil {
		t.Fatal(err)
	}
	if lu2, err := e.QuotaUsed(ctx, laptop); err != nil || lu2 != pu {
		t.Errorf("after the phone left the laptop's budget reads %d (%v), want %d", lu2, err, pu)
	}
	if err := e.Evict(ctx, laptop); err != nil {
		t.Fatal(err)
	}
	if objs := nsRun(t, s.routerNS, "nft", "list", "quotas", "table", "inet", TableName); strings.Contains(objs, "quota_k_v7") {
		t.Errorf("the code's quota object outlived its devices:\n%s", objs)
	}
	if err := e.AdmitWith(ctx, lone, until, Limits{QuotaBytes: 1, QuotaKey: "bad key!"}); err == nil {
		t.Error("a quota key that cannot name an object was accepted")
	}
}
