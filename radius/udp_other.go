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

// The batch forms: one datagram per read, replies sent at once.

type udpBatchReader struct {
	conn *net.UDPConn
	buf  []byte
	n    int
	src  netip.AddrPort
}

func (u *udpIO) newBatchReader(size int) *udpBatchReader {
	return &udpBatchReader{conn: u.conn, buf: make([]byte, size)}
}

func (r *udpBatchReader) read() (int, error) {
	var err error
	r.n, r.src, err = r.conn.ReadFromUDPAddrPort(r.buf)
	if err != nil {
		return 0, err
	}
	return 1, nil
}

func (r *udpBatchReader) packet(int) ([]byte, netip.AddrPort) { return r.buf[:r.n], r.src }

type udpReplies struct{}

func (u *udpIO) newReplies() *udpReplies { return &udpReplies{} }

func (w *udpReplies) add([]byte, netip.AddrPort) bool { return false }

func (w *udpReplies) flush() error { return nil }
