package policy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/testbed"
)

// inNS runs f on an OS thread switched into the namespace of fd; sockets f
// creates stay in that namespace.
func inNS(t testing.TB, fd *testbed.NS, f func()) {
	t.Helper()
	if err := fd.Do(func() error { f(); return nil }); err != nil {
		t.Fatal(err)
	}
}

// serveTCP listens on addr inside fd's namespace and hands every
// connection to handle on its own goroutine, until the test ends. handle
// owns the connection and closes it.
func serveTCP(t testing.TB, fd *testbed.NS, addr string, handle func(net.Conn)) {
	t.Helper()
	var ln net.Listener
	var err error
	inNS(t, fd, func() { ln, err = net.Listen("tcp4", addr) })
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
}

// echoServer echoes what every connection on addr sends.
func echoServer(t testing.TB, fd *testbed.NS, addr string) {
	t.Helper()
	serveTCP(t, fd, addr, func(c net.Conn) {
		defer c.Close()
		_, _ = io.Copy(c, c)
	})
}

// bannerServer writes its banner to every connection on addr and closes it.
func bannerServer(t *testing.T, fd *testbed.NS, addr, text string) {
	t.Helper()
	serveTCP(t, fd, addr, func(c net.Conn) {
		defer c.Close()
		_, _ = c.Write([]byte(text))
	})
}

// banner reads what the server at addr says first (at most 16 bytes).
func banner(t *testing.T, fd *testbed.NS, addr string) string {
	t.Helper()
	c, err := dialFrom(t, fd, addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	b, _ := io.ReadAll(io.LimitReader(c, 16))
	return string(b)
}

func dialFrom(t testing.TB, fd *testbed.NS, addr string) (net.Conn, error) {
	t.Helper()
	var c net.Conn
	var err error
	inNS(t, fd, func() { c, err = net.DialTimeout("tcp4", addr, 2*time.Second) })
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// school wires a router namespace to client namespaces and a fake internet:
// one veth per segment, as on a router with one interface per VLAN.
type school struct {
	router, pupil, staff, visitor, internet  *testbed.NS
	routerNS, visitorNS, staffNS, internetNS string
}

func newSchool(t testing.TB) school {
	var s school
	var names [5]string
	fds := []**testbed.NS{&s.router, &s.pupil, &s.staff, &s.visitor, &s.internet}
	for i, p := range fds {
		names[i], *p = newNS(t)
	}
	s.routerNS, s.visitorNS, s.staffNS, s.internetNS = names[0], names[3], names[2], names[4]
	link := func(clientNS, clientIf, routerIf, clientAddr, routerAddr, mac string) {
		run(t, "ip", "link", "add", routerIf, "netns", names[0], "type", "veth", "peer", "name", clientIf, "netns", clientNS)
		nsRun(t, clientNS, "ip", "link", "set", clientIf, "address", mac, "up")
		nsRun(t, clientNS, "ip", "addr", "add", clientAddr, "dev", clientIf)
		nsRun(t, names[0], "ip", "addr", "add", routerAddr, "dev", routerIf)
		nsRun(t, names[0], "ip", "link", "set", routerIf, "up")
		nsRun(t, clientNS, "ip", "link", "set", "lo", "up")
	}
	link(names[1], "eth0", "lan20", "10.20.0.10/21", "10.20.0.1/21", "02:00:00:00:20:0a")
	link(names[2], "eth0", "lan10", "10.10.0.10/22", "10.10.0.1/22", "02:00:00:00:10:0a")
	link(names[3], "eth0", "lan40", "10.40.0.10/23", "10.40.0.1/23", "02:00:00:00:40:0a")
	link(names[4], "eth0", "wan0", "198.51.100.2/24", "198.51.100.1/24", "02:00:00:00:99:02")
	for _, ns := range names[1:4] {
		gw := map[string]string{names[1]: "10.20.0.1", names[2]: "10.10.0.1", names[3]: "10.40.0.1"}[ns]
		nsRun(t, ns, "ip", "route", "add", "default", "via", gw)
	}
	nsRun(t, names[4], "ip", "addr", "add", "203.0.113.53/32", "dev", "lo")
	nsRun(t, names[0], "ip", "route", "add", "default", "via", "198.51.100.2")
	nsRun(t, names[0], "ip", "link", "set", "lo", "up")
	nsRun(t, names[0], "sysctl", "-qw", "net.ipv4.ip_forward=1")
	return s
}

func isErrno(err error, want syscall.Errno) bool { return errors.Is(err, want) }

func TestTrafficFollowsSegmentDefaults(t *testing.T) {
	s := newSchool(t)
	n := testNetwork()
	e := newEnforcer(t, s.router, n, time.Now)
	ctx := context.Background()
	if err := e.Apply(ctx); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	echoServer(t, s.internet, "198.51.100.2:443")
	echoServer(t, s.internet, "198.51.100.2:853")
	echoServer(t, s.internet, "198.51.100.2:80")
	echoServer(t, s.staff, "10.10.0.10:2222")
	bannerServer(t, s.router, fmt.Sprintf(":%d", n.PortalPort), "portal")

	// A DNS "guard" on the router that answers with a fixed word, to show
	// where a query sent to an outside resolver really ends up.
	var pc net.PacketConn
	var err error
	inNS(t, s.router, func() { pc, err = net.ListenPacket("udp4", fmt.Sprintf(":%d", n.DNSPort)) })
	if err != nil {
		t.Fatalf("listen guard: %v", err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte("guard"), from)
		}
	}()

	t.Run("pupil reaches the internet", func(t *testing.T) {
		c, err := dialFrom(t, s.pupil, "198.51.100.2:443")
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		echo(t, c)
	})
	t.Run("pupil cannot reach the staff subnet", func(t *testing.T) {
		if _, err := dialFrom(t, s.pupil, "10.10.0.10:2222"); err == nil {
			t.Fatal("pupil connected to a staff device")
		}
	})
	t.Run("staff reach the internet", func(t *testing.T) {
		c, err := dialFrom(t, s.staff, "198.51.100.2:443")
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		echo(t, c)
	})
	t.Run("pupil's query to an outside resolver is answered by the guard", func(t *testing.T) {
		var got string
		inNS(t, s.pupil, func() {
			c, err := net.Dial("udp4", "203.0.113.53:53")
			if err != nil {
				t.Errorf("dial udp: %v", err)
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(3 * time.Second))
			if _, err := c.Write([]byte("q")); err != nil {
				t.Errorf("write: %v", err)
				return
			}
			b := make([]byte, 16)
			k, err := c.Read(b)
			if err != nil {
				t.Errorf("read: %v", err)
				return
			}
			got = string(b[:k])
		})
		if got != "guard" {
			t.Fatalf("answer %q, want the guard's", got)
		}
	})
	t.Run("DNS over TLS is reset on every segment", func(t *testing.T) {
		if _, err := dialFrom(t, s.staff, "198.51.100.2:853"); !isErrno(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial 853 from staff: %v, want connection refused (reset)", err)
		}
	})

	visitor := Device{MAC: mac("02:00:00:00:40:0a"), IP: netip.MustParseAddr("10.40.0.10")}
	t.Run("visitor web goes to the portal before admission", func(t *testing.T) {
		if got := banner(t, s.visitor, "198.51.100.2:80"); got != "portal" {
			t.Fatalf("tcp/80 answered by %q, want the portal", got)
		}
	})
	t.Run("visitor TLS is reset before admission", func(t *testing.T) {
		if _, err := dialFrom(t, s.visitor, "198.51.100.2:443"); !isErrno(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial: %v, want connection refused (reset)", err)
		}
	})
	var open net.Conn
	outer := t // the connection outlives this step: the next one cuts it
	t.Run("visitor passes after Admit", func(t *testing.T) {
		if err := e.Admit(ctx, visitor, time.Now().Add(time.Hour)); err != nil {
			t.Fatalf("Admit: %v", err)
		}
		c, err := dialFrom(outer, s.visitor, "198.51.100.2:443")
		if err != nil {
			t.Fatalf("dial after admit: %v", err)
		}
		echo(t, c)
		open = c
		web, err := dialFrom(t, s.visitor, "198.51.100.2:80")
		if err != nil {
			t.Fatalf("dial :80 after admit: %v", err)
		}
		echo(t, web) // the internet's echo server, no longer the portal
	})
	t.Run("Evict cuts the open connection", func(t *testing.T) {
		if open == nil {
			t.Skip("no connection from the previous step")
		}
		if err := e.Evict(ctx, visitor); err != nil {
			t.Fatalf("Evict: %v", err)
		}
		_ = open.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := open.Write([]byte("after")); err != nil && !isErrno(err, syscall.ECONNRESET) {
			t.Fatalf("write after evict: %v", err)
		}
		_, err := io.ReadFull(open, make([]byte, 5))
		if !isErrno(err, syscall.ECONNRESET) {
			t.Fatalf("read after evict: %v, want connection reset", err)
		}
	})
}

func TestTrafficMembershipAndRouterServices(t *testing.T) {
	s := newSchool(t)
	n := testNetwork()
	e := newEnforcer(t, s.router, n, time.Now)
	ctx := context.Background()
	if err := e.Apply(ctx); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	echoServer(t, s.internet, "198.51.100.2:443")
	echoServer(t, s.internet, "198.51.100.2:80")
	bannerServer(t, s.router, fmt.Sprintf(":%d", n.PortalPort), "portal")
	echoServer(t, s.router, fmt.Sprintf(":%d", n.AdminAddr.Port()))
	staff := Device{MAC: mac("02:00:00:00:10:0a"), IP: netip.MustParseAddr("10.10.0.10")}
	reset := func(t *testing.T, addr string) {
		t.Helper()
		if _, err := dialFrom(t, s.staff, addr); !isErrno(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial %s: %v, want connection refused (reset)", addr, err)
		}
	}
	t.Run("admin port refused from a segment, open on loopback", func(t *testing.T) {
		reset(t, fmt.Sprintf("10.10.0.1:%d", n.AdminAddr.Port()))
		c, err := dialFrom(t, s.router, fmt.Sprintf("127.0.0.1:%d", n.AdminAddr.Port()))
		if err != nil {
			t.Fatalf("loopback dial: %v", err)
		}
		echo(t, c)
	})
	t.Run("Block refuses an endpoint and Unblock restores it", func(t *testing.T) {
		if err := e.Block(ctx, netip.MustParseAddr("198.51.100.2")); err != nil {
			t.Fatalf("Block: %v", err)
		}
		reset(t, "198.51.100.2:443")
		if err := e.Unblock(ctx, netip.MustParseAddr("198.51.100.2")); err != nil {
			t.Fatalf("Unblock: %v", err)
		}
		c, err := dialFrom(t, s.staff, "198.51.100.2:443")
		if err != nil {
			t.Fatalf("dial after unblock: %v", err)
		}
		echo(t, c)
	})
	t.Run("Quarantine cuts connections and sends the web to the portal", func(t *testing.T) {
		open, err := dialFrom(t, s.staff, "198.51.100.2:443")
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		echo(t, open)
		if err := e.Quarantine(ctx, staff); err != nil {
			t.Fatalf("Quarantine: %v", err)
		}
		_ = open.SetDeadline(time.Now().Add(3 * time.Second))
		_, _ = open.Write([]byte("after"))
		if _, err := io.ReadFull(open, make([]byte, 5)); !isErrno(err, syscall.ECONNRESET) {
			t.Fatalf("read after quarantine: %v, want connection reset", err)
		}
		reset(t, "198.51.100.2:443")
		// tcp/80 to anywhere lands on the router's portal, which
		// introduces itself; the internet's server would echo.
		if got := banner(t, s.staff, "198.51.100.2:80"); got != "portal" {
			t.Fatalf("quarantined tcp/80 answered by %q, want the portal", got)
		}
		if err := e.Release(ctx, staff); err != nil {
			t.Fatalf("Release: %v", err)
		}
		c, err := dialFrom(t, s.staff, "198.51.100.2:443")
		if err != nil {
			t.Fatalf("dial after release: %v", err)
		}
		echo(t, c)
	})
	t.Run("Revoke refuses every device of a person", func(t *testing.T) {
		if err := e.Revoke(ctx, staff); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		reset(t, "198.51.100.2:443")
		if err := e.Reinstate(ctx, staff); err != nil {
			t.Fatalf("Reinstate: %v", err)
		}
		c, err := dialFrom(t, s.staff, "198.51.100.2:443")
		if err != nil {
			t.Fatalf("dial after reinstate: %v", err)
		}
		echo(t, c)
	})
}

func echo(t testing.TB, c net.Conn) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatalf("write: %v", err)
	}
	b := make([]byte, 5)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "hello" {
		t.Fatalf("echo: %q, %v", b, err)
	}
	_ = c.SetDeadline(time.Time{})
}
