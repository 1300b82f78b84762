//go:build !linux

package radius

import (
	"net"
	"net/netip"
)

// The portable fallback of udp_linux.go: net.UDPConn's own calls.

type udpIO struct{ conn *net.UDPConn }

func newUDPIO(c *net.UDPConn) (*udpIO, error) { return &udpIO{conn: c}, nil }

type udpReader struct{ conn *net.UDPConn }

func (u *udpIO) newReader() *udpReader { return &udpReader{conn: u.conn} }

func (r *udpReader) readFrom(b []byte) (int, netip.AddrPort, error) {
	return r.conn.ReadFromUDPAddrPort(b)
}

func (u *udpIO) writeTo(b []byte, to netip.AddrPort) error {
	_, err := u.conn.WriteToUDPAddrPort(b, to)
	return err
}
