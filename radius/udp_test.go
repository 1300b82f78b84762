package radius

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

// The raw reader and writer against ordinary sockets on loopback, both
// families, and the EAGAIN path: a read started before anything is sent
// must wait on the poller and then return the datagram.
func TestUDPIORoundTrip(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{
		{"udp4", "127.0.0.1:0"},
		{"udp6", "[::1]:0"},
		{"udp", ":0"}, // dual-stack AF_INET6, IPv4 peers v4-mapped
	} {
		t.Run(tc.network+" "+tc.addr, func(t *testing.T) {
			srv, err := net.ListenUDP(tc.network, mustUDPAddr(t, tc.addr))
			if err != nil {
				t.Skipf("listening on %s: %v", tc.addr, err)
			}
			defer srv.Close()
			u, err := newUDPIO(srv)
			if err != nil {
				t.Fatal(err)
			}
			peerAddr := "127.0.0.1:0"
			if tc.network == "udp6" {
				peerAddr = "[::1]:0"
			}
			peer, err := net.ListenUDP("udp", mustUDPAddr(t, peerAddr))
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			port := srv.LocalAddr().(*net.UDPAddr).AddrPort().Port()
			dst := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
			if tc.network == "udp6" {
				dst = netip.AddrPortFrom(netip.IPv6Loopback(), port)
			}

			r := u.newReader()
			buf := make([]byte, 64)
			type got struct {
				n   int
				src netip.AddrPort
				err error
			}
			done := make(chan got, 1)
			go func() { // nothing queued yet: the first recvfrom gets EAGAIN
				n, src, err := r.readFrom(buf)
				done <- got{n, src, err}
			}()
			time.Sleep(20 * time.Millisecond)
			msg := []byte("access-request")
			if _, err := peer.WriteToUDPAddrPort(msg, dst); err != nil {
				t.Fatal(err)
			}
			var g got
			select {
			case g = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("no datagram read")
			}
			if g.err != nil {
				t.Fatal(g.err)
			}
			if !bytes.Equal(buf[:g.n], msg) {
				t.Fatalf("read %q, want %q", buf[:g.n], msg)
			}
			want := peer.LocalAddr().(*net.UDPAddr).AddrPort()
			if netip.AddrPortFrom(g.src.Addr().Unmap(), g.src.Port()) != want {
				t.Fatalf("source %v, want %v", g.src, want)
			}

			reply := []byte("access-accept")
			if err := u.writeTo(reply, g.src); err != nil {
				t.Fatal(err)
			}
			peer.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := peer.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf[:n], reply) || from.Port() != port {
				t.Fatalf("peer got %q from %v", buf[:n], from)
			}
			// Unmapped IPv4 destinations work on a dual-stack socket too.
			if err := u.writeTo(reply, want); tc.network != "udp6" && err != nil {
				t.Fatal(err)
			}
			if testing.AllocsPerRun(50, func() {
				if err := u.writeTo(reply, g.src); err != nil {
					t.Fatal(err)
				}
				if _, _, err := peer.ReadFromUDPAddrPort(buf); err != nil {
					t.Fatal(err)
				}
			}) > 0 {
				t.Error("writeTo allocates")
			}
			if testing.AllocsPerRun(50, func() {
				if _, err := peer.WriteToUDPAddrPort(msg, dst); err != nil {
					t.Fatal(err)
				}
				if _, _, err := r.readFrom(buf); err != nil {
					t.Fatal(err)
				}
			}) > 0 {
				t.Error("readFrom allocates")
			}
		})
	}
}

// A closed socket ends a read with net.ErrClosed, as the read loop expects.
func TestUDPIOClosed(t *testing.T) {
	c, err := net.ListenUDP("udp4", mustUDPAddr(t, "127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	u, err := newUDPIO(c)
	if err != nil {
		t.Fatal(err)
	}
	r := u.newReader()
	errc := make(chan error, 1)
	go func() {
		_, _, err := r.readFrom(make([]byte, 16))
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read on closed socket: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("read did not end on close")
	}
}

func mustUDPAddr(t *testing.T, s string) *net.UDPAddr {
	t.Helper()
	a, err := net.ResolveUDPAddr("udp", s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// The read loop's batch forms: several queued datagrams come in one read,
// each with its source and length (an oversize one truncated to the
// buffer, as recvfrom does), and the replies queued for them all arrive,
// both families, without allocating.
func TestUDPBatchRoundTrip(t *testing.T) {
	for _, tc := range []struct{ network, addr, peer string }{
		{"udp4", "127.0.0.1:0", "127.0.0.1:0"},
		{"udp6", "[::1]:0", "[::1]:0"},
		{"udp", ":0", "127.0.0.1:0"}, // dual-stack, IPv4 peers v4-mapped
	} {
		t.Run(tc.network+" "+tc.addr, func(t *testing.T) {
			srv, err := net.ListenUDP(tc.network, mustUDPAddr(t, tc.addr))
			if err != nil {
				t.Skipf("listening on %s: %v", tc.addr, err)
			}
			defer srv.Close()
			u, err := newUDPIO(srv)
			if err != nil {
				t.Fatal(err)
			}
			port := srv.LocalAddr().(*net.UDPAddr).AddrPort().Port()
			var peers []*net.UDPConn
			for range 3 {
				p, err := net.ListenUDP("udp", mustUDPAddr(t, tc.peer))
				if err != nil {
					t.Fatal(err)
				}
				defer p.Close()
				peers = append(peers, p)
			}
			dst := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
			if tc.network == "udp6" {
				dst = netip.AddrPortFrom(netip.IPv6Loopback(), port)
			}
			r := u.newBatchReader(16)
			out := u.newReplies()
			msgs := [][]byte{[]byte("one"), []byte("two, longer"), []byte("three is longer than sixteen")}
			round := func() {
				for i, p := range peers {
					if _, err := p.WriteToUDPAddrPort(msgs[i], dst); err != nil {
						t.Fatal(err)
					}
				}
				got := 0
				for got < len(peers) {
					n, err := r.read()
					if err != nil {
						t.Fatal(err)
					}
					for i := range n {
						b, src := r.packet(i)
						want := msgs[got+i]
						if len(want) > 16 {
							want = want[:16]
						}
						if !bytes.Equal(b, want) {
							t.Fatalf("datagram %d: %q, want %q", got+i, b, want)
						}
						if !out.add(b, src) {
							t.Fatalf("reply to %v not queued", src)
						}
					}
					if err := out.flush(); err != nil {
						t.Fatal(err)
					}
					got += n
				}
				buf := make([]byte, 64)
				for i, p := range peers {
					p.SetReadDeadline(time.Now().Add(5 * time.Second))
					n, from, err := p.ReadFromUDPAddrPort(buf)
					if err != nil {
						t.Fatalf("peer %d: %v", i, err)
					}
					want := msgs[i]
					if len(want) > 16 {
						want = want[:16]
					}
					if !bytes.Equal(buf[:n], want) || from.Port() != port {
						t.Fatalf("peer %d got %q from %v", i, buf[:n], from)
					}
				}
			}
			round()
			if a := testing.AllocsPerRun(20, round); a > 1 { // the round's own reply buffer
				t.Errorf("a batch round allocates %v times", a)
			}
		})
	}
}
