//go:build linux

package dhcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// LinkAddr is where a request read by a link socket came from: the UDP
// source and the Ethernet source of its frame. The handler compares the
// frame's source with chaddr, the MAC written inside the packet, which a
// client can set to anything.
type LinkAddr struct {
	net.UDPAddr
	HW net.HardwareAddr
}

// linkConn is a DHCP server socket that reads through AF_PACKET, so each
// request comes with its frame's source MAC, and writes through an ordinary
// UDP socket (bound to the same interface, port 67), so replies take the
// kernel's routing and ARP as before. The UDP socket's own copy of every
// request is read and thrown away.
type linkConn struct {
	udp net.PacketConn
	pkt *os.File
	raw interface {
		Read(func(uintptr) bool) error
	}
	done  chan struct{} // closed when the drain goroutine has returned
	once  sync.Once
	frame []byte // ReadFrom's buffer: the server has one reader per socket
}

// dhcpFilter passes unfragmented IPv4 UDP to port 67. The socket is
// SOCK_DGRAM, so offsets count from the IP header.
var dhcpFilter = []bpf.Instruction{
	bpf.LoadAbsolute{Off: 9, Size: 1}, // protocol
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.IPPROTO_UDP, SkipFalse: 6},
	bpf.LoadAbsolute{Off: 6, Size: 2},                           // flags, fragment offset
	bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x1fff, SkipTrue: 4}, // a later fragment
	bpf.LoadMemShift{Off: 0},                                    // X = IP header length
	bpf.LoadIndirect{Off: 2, Size: 2},                           // UDP destination port
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: 67, SkipFalse: 1},
	bpf.RetConstant{Val: 0xffff},
	bpf.RetConstant{Val: 0},
}

// ListenLink opens the server socket for iface that reports each request's
// Ethernet source (see LinkAddr); it is the default Config.Listen on Linux.
func ListenLink(iface string) (net.PacketConn, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("dhcp: listen on %s: %w", iface, err)
	}
	prog, err := bpf.Assemble(dhcpFilter)
	if err != nil {
		return nil, fmt.Errorf("dhcp: listen on %s: assemble filter: %w", iface, err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_IP)))
	if err != nil {
		return nil, fmt.Errorf("dhcp: listen on %s: packet socket: %w", iface, err)
	}
	f := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		f[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	// The filter goes on before the bind, so no unfiltered frame is queued.
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("dhcp: listen on %s: attach filter: %w", iface, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("dhcp: listen on %s: bind packet socket: %w", iface, err)
	}
	pf := os.NewFile(uintptr(fd), "dhcp-packet-"+iface)
	rc, err := pf.SyscallConn()
	if err != nil {
		pf.Close()
		return nil, fmt.Errorf("dhcp: listen on %s: %w", iface, err)
	}
	udp, err := ListenUDP(iface)
	if err != nil {
		pf.Close()
		return nil, err
	}
	// The UDP socket only sends: a filter that accepts nothing has the
	// kernel drop its copy of every request, instead of queueing it for
	// drain to read and throw away (a wake-up and a read per request).
	if err := rejectAll(udp); err != nil {
		pf.Close()
		udp.Close()
		return nil, fmt.Errorf("dhcp: listen on %s: %w", iface, err)
	}
	c := &linkConn{udp: udp, pkt: pf, raw: rc, done: make(chan struct{}), frame: make([]byte, 65536)}
	go c.drain()
	return c, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// rejectAll attaches a socket filter that passes nothing to c.
func rejectAll(c net.PacketConn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return errors.New("UDP socket without a file descriptor")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	f := []unix.SockFilter{{Code: 0x06, K: 0}} // BPF_RET|BPF_K 0: drop
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: 1, Filter: &f[0]})
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("attach reject-all filter: %w", serr)
	}
	return nil
}

// drain discards anything the UDP socket still receives (its filter
// rejects everything; this is in case a kernel queued some before the
// filter went on): requests are read from the packet socket. It returns
// when the socket is closed.
func (c *linkConn) drain() {
	defer close(c.done)
	buf := make([]byte, 2048)
	for {
		if _, _, err := c.udp.ReadFrom(buf); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// ReadFrom returns the next request's UDP payload and a *LinkAddr.
func (c *linkConn) ReadFrom(b []byte) (int, net.Addr, error) {
	frame := c.frame
	for {
		var n int
		var from unix.Sockaddr
		var rerr error
		err := c.raw.Read(func(fd uintptr) bool {
			n, from, rerr = unix.Recvfrom(int(fd), frame, 0)
			return rerr != unix.EAGAIN
		})
		if err != nil {
			return 0, nil, fmt.Errorf("dhcp: read packet socket: %w", net.ErrClosed)
		}
		if rerr != nil {
			return 0, nil, fmt.Errorf("dhcp: read packet socket: %w", rerr)
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok || ll.Pkttype == unix.PACKET_OUTGOING || ll.Halen != 6 {
			continue
		}
		src, payload, ok := udpPayload(frame[:n])
		if !ok {
			continue
		}
		m := copy(b, payload)
		hw := make(net.HardwareAddr, 6)
		copy(hw, ll.Addr[:6])
		return m, &LinkAddr{UDPAddr: *net.UDPAddrFromAddrPort(src), HW: hw}, nil
	}
}

// udpPayload takes the UDP source and payload out of an IPv4 packet.
func udpPayload(p []byte) (netip.AddrPort, []byte, bool) {
	if len(p) < 20 || p[0]>>4 != 4 {
		return netip.AddrPort{}, nil, false
	}
	ihl := int(p[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(p[2:4]))
	if ihl < 20 || total < ihl+8 || total > len(p) || p[9] != unix.IPPROTO_UDP {
		return netip.AddrPort{}, nil, false
	}
	udp := p[ihl:total]
	ulen := int(binary.BigEndian.Uint16(udp[4:6]))
	if ulen < 8 || ulen > len(udp) {
		return netip.AddrPort{}, nil, false
	}
	src := netip.AddrPortFrom(netip.AddrFrom4([4]byte(p[12:16])), binary.BigEndian.Uint16(udp[0:2]))
	return src, udp[8:ulen], true
}

func (c *linkConn) WriteTo(b []byte, addr net.Addr) (int, error) { return c.udp.WriteTo(b, addr) }

// Close closes both sockets and waits for the drain goroutine.
func (c *linkConn) Close() error {
	var err error
	c.once.Do(func() {
		err = errors.Join(c.pkt.Close(), c.udp.Close())
		<-c.done
	})
	return err
}

func (c *linkConn) LocalAddr() net.Addr                { return c.udp.LocalAddr() }
func (c *linkConn) SetDeadline(t time.Time) error      { return c.udp.SetDeadline(t) }
func (c *linkConn) SetReadDeadline(t time.Time) error  { return c.udp.SetReadDeadline(t) }
func (c *linkConn) SetWriteDeadline(t time.Time) error { return c.udp.SetWriteDeadline(t) }
