package dhcp

import (
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRaiseReadBuffer: a relay socket's receive buffer holds udpReadBuffer
// (the kernel reports double what was set, its overhead included), not
// the kernel's default, so a stalled reader does not lose requests.
func TestRaiseReadBuffer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SO_RCVBUFFORCE past net.core.rmem_max needs CAP_NET_ADMIN")
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	get := func() int {
		rc, err := c.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var v int
		var gerr error
		if err := rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF) }); err != nil {
			t.Fatal(err)
		}
		if gerr != nil {
			t.Fatal(gerr)
		}
		return v
	}
	before := get()
	if err := raiseReadBuffer(c, udpReadBuffer); err != nil {
		t.Fatal(err)
	}
	if got := get(); got < udpReadBuffer || got <= before {
		t.Fatalf("receive buffer %d bytes after raising (was %d), want at least %d", got, before, udpReadBuffer)
	}
}
