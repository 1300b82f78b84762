package testbed

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// hostIsIP rejects host names: resolving one would run on other threads,
// in the caller's namespace, and may dial several addresses in parallel.
func hostIsIP(address string) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("testbed: address %q: %w", address, err)
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return fmt.Errorf("testbed: address %q: host must be an IP address", address)
	}
	return nil
}

// DialContext dials address (an IP literal and port) from namespace ns.
// The socket is created and connected on a thread inside ns; ctx bounds
// the connect.
func (s *School) DialContext(ctx context.Context, ns, network, address string) (net.Conn, error) {
	if err := hostIsIP(address); err != nil {
		return nil, err
	}
	var c net.Conn
	err := s.Do(ns, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("testbed: dial %s %s from %s: %w", network, address, ns, err)
	}
	return c, nil
}

// Listen opens a stream listener in namespace ns. In the internet
// namespace any address of 192.0.2.0/24 can be used.
func (s *School) Listen(ns, network, address string) (net.Listener, error) {
	if err := hostIsIP(address); err != nil {
		return nil, err
	}
	var l net.Listener
	err := s.Do(ns, func() error {
		var err error
		l, err = net.Listen(network, address)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("testbed: listen %s %s in %s: %w", network, address, ns, err)
	}
	return l, nil
}

// ListenPacket opens a packet socket in namespace ns.
func (s *School) ListenPacket(ns, network, address string) (net.PacketConn, error) {
	if err := hostIsIP(address); err != nil {
		return nil, err
	}
	var pc net.PacketConn
	err := s.Do(ns, func() error {
		var err error
		pc, err = net.ListenPacket(network, address)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("testbed: listen %s %s in %s: %w", network, address, ns, err)
	}
	return pc, nil
}

// HTTPClient returns a client whose connections are made from namespace
// ns. URLs must use IP addresses (set Request.Host for a name); it trusts
// the web server's certificate, and keeps no idle connections, so nothing
// outlives a request.
func (s *School) HTTPClient(ns string) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return s.DialContext(ctx, ns, network, addr)
			},
			TLSClientConfig:   &tls.Config{RootCAs: s.WebCertPool()},
			DisableKeepAlives: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Ping sends ICMP echo requests from namespace ns to dst, one every 200 ms,
// until a matching reply arrives or ctx is done (3 seconds when ctx has no
// deadline).
func (s *School) Ping(ctx context.Context, ns string, dst netip.Addr) error {
	if !dst.Is4() {
		return fmt.Errorf("testbed: ping %v: IPv4 only", dst)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
	}
	var conn *icmp.PacketConn
	err := s.Do(ns, func() error {
		var err error
		conn, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	})
	if err != nil {
		return fmt.Errorf("testbed: ping from %s: open raw socket: %w", ns, err)
	}
	defer conn.Close()
	var idb [2]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return fmt.Errorf("testbed: ping: %w", err)
	}
	id := int(binary.BigEndian.Uint16(idb[:]))
	payload := []byte("gatehouse testbed ping")
	buf := make([]byte, 1500)
	for seq := 1; ; seq++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("testbed: ping %v from %s: no reply: %w", dst, ns, err)
		}
		msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: payload}}
		b, err := msg.Marshal(nil)
		if err != nil {
			return fmt.Errorf("testbed: ping: %w", err)
		}
		if _, err := conn.WriteTo(b, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
			return fmt.Errorf("testbed: ping %v from %s: send: %w", dst, ns, err)
		}
		wait := time.Now().Add(200 * time.Millisecond)
		if d, _ := ctx.Deadline(); d.Before(wait) {
			wait = d
		}
		conn.SetReadDeadline(wait)
		for {
			n, peer, err := conn.ReadFrom(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				return fmt.Errorf("testbed: ping %v from %s: receive: %w", dst, ns, err)
			}
			m, err := icmp.ParseMessage(1, buf[:n])
			if err != nil || m.Type != ipv4.ICMPTypeEchoReply {
				continue
			}
			echo, ok := m.Body.(*icmp.Echo)
			pa, _ := netip.ParseAddr(peer.String())
			if ok && echo.ID == id && string(echo.Data) == string(payload) && pa == dst {
				return nil
			}
		}
	}
}
