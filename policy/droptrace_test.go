package policy

import (
	"encoding/binary"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gatehouse-net/gatehouse/testbed"
)

// tcpTrace records, with the kernel's timestamps, every TCP packet of one
// connection that crosses one end's interface, in both directions. It
// lets BenchmarkEvictDropsConnection tell apart when the kernel stopped
// forwarding and when the connection next tried to send: the router can
// only refuse a packet someone sends.
// Packets sent by this end reach a packet socket only when it listens to
// ETH_P_ALL.
type tcpTrace struct{ fd int }

type tracedPacket struct {
	at       time.Time
	outgoing bool // sent by this end
	rst      bool
	data     bool // carries payload
}

func newTCPTrace(t testing.TB, ns *testbed.NS, ifname string) *tcpTrace {
	t.Helper()
	fd := packetSocket(t, ns, ifname, unix.ETH_P_ALL, unix.SOCK_NONBLOCK)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		t.Fatal(err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	return &tcpTrace{fd: fd}
}

// drain returns the packets of the connection between port and
// service port 443 queued so far, received at or after since.
func (w *tcpTrace) drain(t testing.TB, port uint16, since time.Time) []tracedPacket {
	var out []tracedPacket
	buf := make([]byte, 256)
	oob := make([]byte, 128)
	for {
		n, oobn, _, from, err := unix.Recvmsg(w.fd, buf, oob, 0)
		if errors.Is(err, unix.EAGAIN) {
			return out
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok || ll.Protocol != htons(unix.ETH_P_IP) {
			continue
		}
		if n < 20 || buf[9] != unix.IPPROTO_TCP {
			continue
		}
		ihl := int(buf[0]&0x0f) * 4
		if n < ihl+14 {
			continue
		}
		sp, dp := binary.BigEndian.Uint16(buf[ihl:]), binary.BigEndian.Uint16(buf[ihl+2:])
		if !(sp == port && dp == 443) && !(sp == 443 && dp == port) {
			continue
		}
		tot := int(binary.BigEndian.Uint16(buf[2:]))
		doff := int(buf[ihl+12]>>4) * 4
		p := tracedPacket{rst: buf[ihl+13]&0x04 != 0, data: tot > ihl+doff, outgoing: ll.Pkttype == unix.PACKET_OUTGOING}
		at, ok, err := kernelTimestamp(oob[:oobn])
		if err != nil {
			t.Fatal(err)
		}
		p.at = at
		if ok && !p.at.Before(since) {
			out = append(out, p)
		}
	}
}

// streamGap is the time between two segments of streamServer's stream:
// the visitor acknowledges every segment or two, so the router sees one
// of its packets at least every two gaps.
const streamGap = 100 * time.Microsecond

// streamLowat is how much the visitor lets arrive before its reader wakes
// (SO_RCVLOWAT): the kernel acknowledges without it, and its goroutine
// wakes a few dozen times a second, not at every segment.
const streamLowat = 256 << 10

// streamServer sends data to every connection on addr in fd's namespace
// until it fails, at the rate of one 1448-byte segment per streamGap,
// paced by the kernel's TCP, and hands each connection to the caller on
// the returned channel (to close) first.
func streamServer(t testing.TB, fd *testbed.NS, addr string) <-chan net.Conn {
	t.Helper()
	conns := make(chan net.Conn, 1)
	serveTCP(t, fd, addr, func(c net.Conn) {
		defer c.Close()
		rate := uint64(1448 * time.Second / streamGap)
		if err := setsockopt(c, func(fd int) error {
			return unix.SetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_MAX_PACING_RATE, rate)
		}); err != nil {
			t.Errorf("pacing: %v", err)
			return
		}
		conns <- c
		buf := make([]byte, 64<<10)
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
	return conns
}

// dialStream connects from fd's namespace to a streamServer at addr with
// room for a second of its stream in the receive buffer.
func dialStream(t testing.TB, fd *testbed.NS, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 2 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 32<<20)
		}); err != nil {
			return err
		}
		return serr
	}}
	var c net.Conn
	var err error
	inNS(t, fd, func() { c, err = d.Dial("tcp4", addr) })
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	if err := setsockopt(c, func(fd int) error {
		return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVLOWAT, streamLowat)
	}); err != nil {
		t.Fatalf("low-water mark: %v", err)
	}
	return c
}

// setsockopt runs f on c's socket.
func setsockopt(c net.Conn, f func(fd int) error) error {
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// closeAbort closes c with a reset, so that it does not linger
// retransmitting to a peer the router no longer forwards.
func closeAbort(c net.Conn) {
	_ = c.(*net.TCPConn).SetLinger(0)
	_ = c.Close()
}
