package testbed

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// lookup asks the school resolver one question from namespace ns.
func lookup(t *testing.T, s *School, ns, name string, qtype uint16) *dns.Msg {
	t.Helper()
	c, err := s.DialContext(ctxFor(t, 10*time.Second), ns, "udp", s.ResolverAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	co := &dns.Conn{Conn: c}
	co.SetDeadline(time.Now().Add(3 * time.Second))
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	if err := co.WriteMsg(q); err != nil {
		t.Fatalf("dns query %s: %v", name, err)
	}
	r, err := co.ReadMsg()
	if err != nil {
		t.Fatalf("dns answer %s: %v", name, err)
	}
	return r
}

func get(t *testing.T, s *School, ns, url, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxFor(t, 10*time.Second), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := s.HTTPClient(ns).Do(req)
	if err != nil {
		t.Fatalf("GET %s from %s: %v", url, ns, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s from %s: read body: %v", url, ns, err)
	}
	return resp.StatusCode, string(b)
}

func TestSchoolIsWiredAsDesigned(t *testing.T) {
	hostForward, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	s := New(t, Options{})

	t.Run("namespaces are visible to ip netns", func(t *testing.T) {
		out, err := exec.Command("ip", "netns", "list").CombinedOutput()
		if err != nil {
			t.Fatalf("ip netns list: %v: %s", err, out)
		}
		for _, ns := range s.Namespaces() {
			if !strings.Contains(string(out), ns) {
				t.Errorf("ip netns list lacks %s:\n%s", ns, out)
			}
		}
		out, err = exec.Command("ip", "netns", "exec", s.RouterNS(), "ip", "-o", "-4", "addr").CombinedOutput()
		if err != nil {
			t.Fatalf("ip netns exec: %v: %s", err, out)
		}
		want := []string{"wan0    inet 198.51.100.1/24", "gh-mgmt    inet 10.99.0.1/24",
			"gh-staff    inet 10.10.0.1/22", "gh-pupil    inet 10.20.0.1/21",
			"gh-byod    inet 10.30.0.1/22", "gh-visitor    inet 10.40.0.1/23"}
		for _, w := range want {
			if !strings.Contains(string(out), w) {
				t.Errorf("router addresses lack %q:\n%s", w, out)
			}
		}
	})

	t.Run("segments carry no IPv6", func(t *testing.T) {
		for _, ns := range []string{"router", "staff", "internet"} {
			out, err := s.Command(ctxFor(t, 10*time.Second), ns, "ip", "-o", "-6", "addr").CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v: %s", ns, err, out)
			}
			if len(strings.TrimSpace(string(out))) != 0 {
				t.Errorf("%s has IPv6 addresses:\n%s", ns, out)
			}
		}
	})

	t.Run("OpenNS hands out a namespace for netlink", func(t *testing.T) {
		h, err := s.OpenNS("visitor")
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		nl, err := netlink.NewHandleAt(h)
		if err != nil {
			t.Fatal(err)
		}
		defer nl.Close()
		l, err := nl.LinkByName(ClientInterface)
		if err != nil {
			t.Fatal(err)
		}
		visitor, _ := s.Segment("visitor")
		if l.Attrs().HardwareAddr.String() != visitor.ClientMAC.String() {
			t.Errorf("visitor eth0 MAC %v, segment info says %v", l.Attrs().HardwareAddr, visitor.ClientMAC)
		}
	})

	t.Run("forwarding is on in the router only", func(t *testing.T) {
		for ns, want := range map[string]string{s.RouterNS(): "1", s.InternetNS(): "0", s.ClientNS("staff"): "0"} {
			out, err := s.Command(ctxFor(t, 10*time.Second), ns, "cat", "/proc/sys/net/ipv4/ip_forward").Output()
			if err != nil {
				t.Fatalf("%s: %v", ns, err)
			}
			if got := strings.TrimSpace(string(out)); got != want {
				t.Errorf("ip_forward in %s = %s, want %s", ns, got, want)
			}
		}
		now, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
		if err != nil {
			t.Fatal(err)
		}
		if string(now) != string(hostForward) {
			t.Errorf("host ip_forward changed from %q to %q", hostForward, now)
		}
	})

	t.Run("clients reach their gateway", func(t *testing.T) {
		for _, seg := range s.Segments() {
			if err := s.Ping(ctxFor(t, 10*time.Second), seg.ClientNS, seg.Gateway); err != nil {
				t.Errorf("segment %s: %v", seg.Name, err)
			}
		}
		if err := s.Ping(ctxFor(t, 10*time.Second), "mgmt", netip.MustParseAddr(MgmtRouterIP)); err != nil {
			t.Errorf("mgmt: %v", err)
		}
	})

	t.Run("ping of an absent address fails", func(t *testing.T) {
		if err := s.Ping(ctxFor(t, 700*time.Millisecond), "staff", netip.MustParseAddr("10.10.0.99")); err == nil {
			t.Error("ping of 10.10.0.99, which nobody holds, succeeded")
		}
	})

	t.Run("router reaches the web server over http and https", func(t *testing.T) {
		code, body := get(t, s, "router", "http://203.0.113.80/hello", "www.example.com")
		if code != http.StatusOK || !strings.HasPrefix(body, WebBanner) || !strings.Contains(body, "scheme: http\n") ||
			!strings.Contains(body, "host: www.example.com\n") || !strings.Contains(body, "client: 198.51.100.1:") {
			t.Errorf("http: %d %q", code, body)
		}
		code, body = get(t, s, "router", "https://203.0.113.80/", "")
		if code != http.StatusOK || !strings.Contains(body, "scheme: https\n") {
			t.Errorf("https: %d %q", code, body)
		}
		if code, _ := get(t, s, "router", "http://203.0.113.80/generate_204", "connectivitycheck.gstatic.com"); code != http.StatusNoContent {
			t.Errorf("generate_204: status %d", code)
		}
		if _, body := get(t, s, "router", "http://203.0.113.80/hotspot-detect.html", "captive.apple.com"); !strings.Contains(body, "<BODY>Success</BODY>") {
			t.Errorf("hotspot-detect: %q", body)
		}
	})

	t.Run("router resolves through the school resolver", func(t *testing.T) {
		r := lookup(t, s, "router", "WWW.Example.com", dns.TypeA)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Fatalf("A www.example.com: %v", r)
		}
		if a, ok := r.Answer[0].(*dns.A); !ok || a.A.String() != WebIP {
			t.Errorf("A www.example.com = %v, want %s", r.Answer[0], WebIP)
		}
		if r := lookup(t, s, "router", "www.example.com", dns.TypeAAAA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
			t.Errorf("AAAA www.example.com: want empty NOERROR, got %v", r)
		}
		if r := lookup(t, s, "router", "no-such-host.example", dns.TypeA); r.Rcode != dns.RcodeNameError {
			t.Errorf("unknown name: rcode %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
		}
		s.SetDNSRecord("added.example", netip.MustParseAddr("192.0.2.9"))
		r = lookup(t, s, "router", "added.example", dns.TypeA)
		if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.9" {
			t.Errorf("added record: %v", r)
		}
		var seen bool
		for _, q := range s.DNSQueries() {
			if q.Name == "no-such-host.example." && q.Rcode == dns.RcodeNameError && q.From.Addr() == netip.MustParseAddr(RouterUplinkIP) {
				seen = true
			}
		}
		if !seen {
			t.Errorf("query log lacks the NXDOMAIN question from the router: %v", s.DNSQueries())
		}
	})

	t.Run("clients reach the internet through the router without NAT", func(t *testing.T) {
		for _, seg := range s.Segments() {
			_, body := get(t, s, seg.Name, "http://203.0.113.80/", "")
			if !strings.HasPrefix(body, WebBanner) || !strings.Contains(body, "client: "+seg.ClientAddr.String()+":") {
				t.Errorf("segment %s: %q", seg.Name, body)
			}
		}
		r := lookup(t, s, "pupil", "captive.apple.com", dns.TypeA)
		if len(r.Answer) != 1 {
			t.Errorf("pupil lookup: %v", r)
		}
	})

	t.Run("any fake server address can be bound in the internet", func(t *testing.T) {
		l, err := s.Listen("internet", "tcp4", "192.0.2.77:8080")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		accepted := make(chan string, 1)
		go func() {
			c, err := l.Accept()
			if err != nil {
				accepted <- err.Error()
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(3 * time.Second))
			b := make([]byte, 5)
			_, err = io.ReadFull(c, b)
			if err != nil {
				accepted <- err.Error()
				return
			}
			accepted <- string(b)
		}()
		c, err := s.DialContext(ctxFor(t, 10*time.Second), "byod", "tcp4", "192.0.2.77:8080")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		if got := <-accepted; got != "hello" {
			t.Errorf("server got %q", got)
		}
	})

	t.Run("clients share no link with each other", func(t *testing.T) {
		staff, _ := s.Segment("staff")
		pupil, _ := s.Segment("pupil")
		pc, err := s.ListenPacket(pupil.ClientNS, "udp4", netip.AddrPortFrom(pupil.ClientAddr, 9999).String())
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		c, err := s.DialContext(ctxFor(t, 10*time.Second), staff.ClientNS, "udp4", netip.AddrPortFrom(pupil.ClientAddr, 9999).String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// TTL 1 dies at the router; only a shared link would deliver it.
		// The routed datagram sent after it shows the path works.
		p := ipv4.NewConn(c)
		if err := p.SetTTL(1); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("ttl1")); err != nil {
			t.Fatal(err)
		}
		if err := p.SetTTL(64); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("routed")); err != nil {
			t.Fatal(err)
		}
		pc.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 64)
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("routed datagram did not arrive: %v", err)
		}
		if got := string(buf[:n]); got != "routed" {
			t.Errorf("first datagram at the pupil client = %q from %v, want only the routed one", got, from)
		}
		// The staff client reached the pupil through its gateway's MAC and
		// never resolved the pupil's address on its own link.
		err = s.Do(staff.ClientNS, func() error {
			neigh, err := netlink.NeighList(0, unix.AF_INET)
			if err != nil {
				return err
			}
			var gw bool
			for _, n := range neigh {
				switch n.IP.String() {
				case pupil.ClientAddr.String():
					return errors.New("staff client has a neighbour entry for the pupil client")
				case staff.Gateway.String():
					gw = true
					if n.HardwareAddr.String() != staff.RouterMAC.String() {
						return errors.New("gateway resolved to " + n.HardwareAddr.String() + ", not the router's " + staff.RouterMAC.String())
					}
				}
			}
			if !gw {
				return errors.New("staff client has no neighbour entry for its gateway")
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	})

	t.Run("config describes this school", func(t *testing.T) {
		testConfig(t, s)
	})
}

func TestUnconfiguredClientIsLeftForDHCP(t *testing.T) {
	t.Parallel()
	s := New(t, Options{Segments: []Segment{
		{Name: "lab", Subnet: netip.MustParsePrefix("10.77.0.0/24"), Unconfigured: true, Interface: "gh-lab0"},
	}})
	out, err := s.Command(ctxFor(t, 10*time.Second), "lab", "ip", "-o", "-4", "addr", "show", "dev", ClientInterface).Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "inet ") {
		t.Errorf("unconfigured client has an address: %s", out)
	}
	out, err = s.Command(ctxFor(t, 10*time.Second), "lab", "ip", "-o", "link", "show", "dev", ClientInterface).Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "state UP") {
		t.Errorf("unconfigured client interface is not up: %s", out)
	}
	out, err = s.Command(ctxFor(t, 10*time.Second), "router", "ip", "-o", "-4", "addr", "show", "dev", "gh-lab0").Output()
	if err != nil || !strings.Contains(string(out), "10.77.0.1/24") {
		t.Errorf("router side: %v %s", err, out)
	}
	if s.ClientNS("staff") != "" {
		t.Error("custom segments still include staff")
	}
}

func TestParallelSchoolsDoNotClash(t *testing.T) {
	ids := make(chan string, 2)
	for _, name := range []string{"first", "second"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := New(t, Options{})
			ids <- s.ID()
			for _, seg := range s.Segments() {
				if err := s.Ping(ctxFor(t, 10*time.Second), seg.ClientNS, seg.Gateway); err != nil {
					t.Errorf("%s: %v", seg.Name, err)
				}
			}
			if _, body := get(t, s, "visitor", "http://203.0.113.80/", ""); !strings.HasPrefix(body, WebBanner) {
				t.Errorf("visitor: %q", body)
			}
		})
	}
	t.Cleanup(func() {
		close(ids)
		var got []string
		for id := range ids {
			got = append(got, id)
		}
		if len(got) == 2 && got[0] == got[1] {
			t.Errorf("two schools share the id %s", got[0])
		}
	})
}

func TestCommandRunsInTheNamespace(t *testing.T) {
	t.Parallel()
	s := New(t, Options{Segments: DefaultSegments()[:1]})
	out, err := s.Command(ctxFor(t, 10*time.Second), s.ClientNS("staff"), "ip", "-o", "-4", "addr").CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.Contains(string(out), "10.10.0.10/22") || strings.Contains(string(out), "198.51.100") {
		t.Errorf("staff client addresses: %s", out)
	}
	_, err = s.Command(ctxFor(t, 10*time.Second), "internet", "sh", "-c", "echo oops >&2; exit 3").Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || strings.TrimSpace(string(ee.Stderr)) != "oops" {
		t.Errorf("failing command: err %v", err)
	}
	if err := s.Command(context.Background(), "nowhere", "true").Run(); err == nil {
		t.Error("command in an unknown namespace started")
	}
	// A daemon the command leaves behind is killed by Close.
	cmd := s.Command(context.Background(), "internet", "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Error("sleep in the internet namespace survived Close")
	}
}

func TestDoReportsMisuse(t *testing.T) {
	t.Parallel()
	s := New(t, Options{Segments: DefaultSegments()[:1]})
	if err := s.Do("nowhere", func() error { return nil }); err == nil {
		t.Error("Do in an unknown namespace succeeded")
	}
	want := errors.New("from fn")
	if err := s.Do("router", func() error { return want }); !errors.Is(err, want) {
		t.Errorf("Do returned %v, want fn's error", err)
	}
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v, want the panic from fn", p)
			}
		}()
		s.Do("router", func() error { panic("boom") })
	}()
	// The caller's thread never left the host namespace.
	var hostLinks, routerLinks []string
	for _, l := range mustLinks(t) {
		hostLinks = append(hostLinks, l.Attrs().Name)
	}
	s.Do("router", func() error {
		links, err := netlink.LinkList()
		for _, l := range links {
			routerLinks = append(routerLinks, l.Attrs().Name)
		}
		return err
	})
	if !slices.Contains(routerLinks, UplinkInterface) || slices.Contains(hostLinks, UplinkInterface) {
		t.Errorf("host links %v, router links %v", hostLinks, routerLinks)
	}
	s.Close()
	if err := s.Do("router", func() error { return nil }); err == nil {
		t.Error("Do after Close succeeded")
	}
}

func mustLinks(t *testing.T) []netlink.Link {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	return links
}

// NewNS gives a test its own empty namespace and takes it away afterwards.
func TestNewNSIsOwnAndRemoved(t *testing.T) {
	var name string
	t.Run("inner", func(t *testing.T) {
		n := NewNS(t)
		name = n.Name
		if !nsNameRE.MatchString(n.Name) {
			t.Errorf("name %q is not a testbed name, so a leftover would not be cleaned", n.Name)
		}
		if _, err := os.Stat(netnsDir + "/" + n.Name); err != nil {
			t.Fatalf("namespace not bound: %v", err)
		}
		var links []string
		if err := n.Do(func() error {
			ifs, err := net.Interfaces()
			for _, i := range ifs {
				links = append(links, i.Name)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if len(links) != 1 || links[0] != "lo" {
			t.Errorf("interfaces %v inside, want only lo: not a fresh namespace", links)
		}
	})
	if _, err := os.Stat(netnsDir + "/" + name); !os.IsNotExist(err) {
		t.Errorf("namespace %s still bound after the test: %v", name, err)
	}
}
