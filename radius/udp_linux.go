//go:build linux

package radius

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Why the RADIUS sockets are read and written with raw system calls:
// profiles of the daemon under radclient load showed Go's sysmon thread at
// 20-25% of its CPU and thread park/wake at another 15-20%, against about 6%
// for the RADIUS decision. Between requests the process goes idle and
// sysmon sleeps; net.UDPConn's recvfrom/sendto go through syscall.Syscall,
// whose entersyscall wakes a sleeping sysmon (runtime/proc.go,
// reentersyscall: sched.sysmonwait), and sysmon then polls every 20 µs
// before backing off: a burst of wake-ups per idle-to-busy transition,
// costing more than the answer.
//
// Go's sockets are non-blocking, so recvfrom and sendto never block: they
// are made here with unix.RawSyscall6 (no entersyscall) inside the
// socket's syscall.RawConn callbacks. EAGAIN makes the callback return
// false and the runtime's poller waits for the socket, exactly as
// net.UDPConn does. Nothing is allocated per packet: the callbacks are
// made once per reader and per pooled sender, the addresses are
// fixed-size structs in them.

// udpIO sends and receives on one bound UDP socket.
type udpIO struct {
	conn  *net.UDPConn
	rc    syscall.RawConn
	inet6 bool // the socket is AF_INET6 (IPv4 peers are v4-mapped)
	send  sync.Pool
}

func newUDPIO(c *net.UDPConn) (*udpIO, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("radius: raw socket of %s: %w", c.LocalAddr(), err)
	}
	var domain int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		domain, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
	}); err != nil {
		return nil, fmt.Errorf("radius: socket family of %s: %w", c.LocalAddr(), err)
	}
	if serr != nil {
		return nil, fmt.Errorf("radius: socket family of %s: %w", c.LocalAddr(), serr)
	}
	u := &udpIO{conn: c, rc: rc, inet6: domain == unix.AF_INET6}
	u.send.New = func() any { return u.newSender() }
	return u, nil
}

// nonblockingRead is a RawConn.Read callback's body around call, a receive
// on a non-blocking socket: call again on EINTR; false on EAGAIN, so the
// poller waits for the socket; else true with call's count in n and its
// error in errno.
func nonblockingRead(n *int, errno *syscall.Errno, call func() (uintptr, syscall.Errno)) bool {
	for {
		r, e := call()
		switch e {
		case 0:
			*n, *errno = int(r), 0
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			*n, *errno = 0, e
			return true
		}
	}
}

// udpReader receives for one goroutine (the read loop owns it).
type udpReader struct {
	rc      syscall.RawConn
	buf     []byte
	n       int
	from    unix.RawSockaddrAny
	fromLen uint32
	errno   syscall.Errno
	fn      func(fd uintptr) bool
}

func (u *udpIO) newReader() *udpReader {
	r := &udpReader{rc: u.rc}
	r.fn = func(fd uintptr) bool {
		return nonblockingRead(&r.n, &r.errno, func() (uintptr, syscall.Errno) {
			r.fromLen = unix.SizeofSockaddrAny
			var p unsafe.Pointer
			if len(r.buf) > 0 {
				p = unsafe.Pointer(&r.buf[0])
			}
			n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(p), uintptr(len(r.buf)), 0,
				uintptr(unsafe.Pointer(&r.from)), uintptr(unsafe.Pointer(&r.fromLen)))
			return n, e
		})
	}
	return r
}

// readFrom reads one datagram into b, like ReadFromUDPAddrPort.
func (r *udpReader) readFrom(b []byte) (int, netip.AddrPort, error) {
	r.buf = b
	err := r.rc.Read(r.fn)
	r.buf = nil
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	if r.errno != 0 {
		return 0, netip.AddrPort{}, os.NewSyscallError("recvfrom", r.errno)
	}
	return r.n, sockaddrAddrPort(&r.from), nil
}

func sockaddrAddrPort(sa *unix.RawSockaddrAny) netip.AddrPort {
	switch sa.Addr.Family {
	case unix.AF_INET:
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(s4.Addr), ntohs(s4.Port))
	case unix.AF_INET6:
		s6 := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
		a := netip.AddrFrom16(s6.Addr)
		if s6.Scope_id != 0 {
			// As net does: the zone by interface name (rare: link-local
			// peers only, so the lookup's allocation does not matter).
			if ifi, err := net.InterfaceByIndex(int(s6.Scope_id)); err == nil {
				a = a.WithZone(ifi.Name)
			} else {
				a = a.WithZone(strconv.FormatUint(uint64(s6.Scope_id), 10))
			}
		}
		return netip.AddrPortFrom(a, ntohs(s6.Port))
	}
	return netip.AddrPort{}
}

// ntohs reads a port as the kernel stores it (network order).
func ntohs(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}

func htons(p uint16) uint16 {
	var v uint16
	b := (*[2]byte)(unsafe.Pointer(&v))
	b[0], b[1] = byte(p>>8), byte(p)
	return v
}

// udpSender is one send in progress; senders are pooled per socket so
// concurrent workers each use their own.
type udpSender struct {
	rc    syscall.RawConn
	buf   []byte
	to4   unix.RawSockaddrInet4
	to6   unix.RawSockaddrInet6
	to    unsafe.Pointer
	toLen uintptr
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

func (u *udpIO) newSender() *udpSender {
	s := &udpSender{rc: u.rc}
	s.fn = func(fd uintptr) bool {
		for {
			var p unsafe.Pointer
			if len(s.buf) > 0 {
				p = unsafe.Pointer(&s.buf[0])
			}
			_, _, e := unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(p), uintptr(len(s.buf)), 0,
				uintptr(s.to), s.toLen)
			switch e {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false // the poller waits until the socket is writable
			default:
				s.errno = e
				return true
			}
		}
	}
	return s
}

var errAddrFamily = errors.New("address family does not match the socket")

// writeTo sends b to to, like WriteToUDPAddrPort.
func (u *udpIO) writeTo(b []byte, to netip.AddrPort) error {
	a := to.Addr()
	if a.Zone() != "" {
		// A zone names an interface: leave its resolution to net.
		_, err := u.conn.WriteToUDPAddrPort(b, to)
		return err
	}
	s := u.send.Get().(*udpSender)
	defer u.send.Put(s)
	switch {
	case u.inet6:
		s.to6 = unix.RawSockaddrInet6{Family: unix.AF_INET6, Port: htons(to.Port()), Addr: a.As16()}
		s.to, s.toLen = unsafe.Pointer(&s.to6), unix.SizeofSockaddrInet6
	case a.Unmap().Is4():
		s.to4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Port: htons(to.Port()), Addr: a.Unmap().As4()}
		s.to, s.toLen = unsafe.Pointer(&s.to4), unix.SizeofSockaddrInet4
	default:
		return &net.OpError{Op: "write", Net: "udp", Addr: net.UDPAddrFromAddrPort(to), Err: errAddrFamily}
	}
	s.buf, s.errno = b, 0
	err := s.rc.Write(s.fn)
	s.buf = nil
	if err != nil {
		return err
	}
	if s.errno != 0 {
		return os.NewSyscallError("sendto", s.errno)
	}
	return nil
}

// batchLen is how many datagrams the read loop takes from the socket in
// one recvmmsg, and how many replies it sends in one sendmmsg. Under
// radclient's load (64 in flight) the read loop found about four requests
// queued at each wake-up (bench/radius.sh, perf stat of the daemon: 25,088
// recvfrom and 20,000 sendto for 20,000 requests): a system call each was
// the largest part of the answer after the kernel's own UDP work.
const batchLen = 16

// udpBatchReader receives up to batchLen datagrams per system call for one
// goroutine (the read loop owns it). Its buffers are reused by the next
// read: whatever outlives a batch is copied (receive's job path does).
type udpBatchReader struct {
	rc    syscall.RawConn
	bufs  [batchLen][]byte
	iov   [batchLen]unix.Iovec
	from  [batchLen]unix.RawSockaddrAny
	msgs  [batchLen]unix.Mmsghdr
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

// newBatchReader makes a reader whose buffers each hold size octets.
func (u *udpIO) newBatchReader(size int) *udpBatchReader {
	r := &udpBatchReader{rc: u.rc}
	for i := range r.msgs {
		r.bufs[i] = make([]byte, size)
		r.iov[i].Base = &r.bufs[i][0]
		r.iov[i].SetLen(size)
		r.msgs[i].Hdr.Iov = &r.iov[i]
		r.msgs[i].Hdr.SetIovlen(1)
		r.msgs[i].Hdr.Name = (*byte)(unsafe.Pointer(&r.from[i]))
	}
	r.fn = func(fd uintptr) bool {
		for i := range r.msgs {
			// The kernel writes these back: each call starts afresh.
			r.msgs[i].Hdr.Namelen = unix.SizeofSockaddrAny
			r.msgs[i].Hdr.Flags = 0
			r.msgs[i].Len = 0
		}
		// A non-blocking socket: what is queued, at least one
		// datagram, or EAGAIN.
		return nonblockingRead(&r.n, &r.errno, func() (uintptr, syscall.Errno) {
			n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.msgs[0])), batchLen, 0, 0, 0)
			return n, e
		})
	}
	return r
}

// read receives at least one datagram (waiting for it) and at most
// batchLen; packet gives each.
func (r *udpBatchReader) read() (int, error) {
	if err := r.rc.Read(r.fn); err != nil {
		return 0, err
	}
	if r.errno != 0 {
		return 0, os.NewSyscallError("recvmmsg", r.errno)
	}
	return r.n, nil
}

// packet is datagram i of the last read and where it came from.
func (r *udpBatchReader) packet(i int) ([]byte, netip.AddrPort) {
	return r.bufs[i][:r.msgs[i].Len], sockaddrAddrPort(&r.from[i])
}

// udpReplies gathers the replies the read loop decides during one batch
// and sends them in one sendmmsg (flush). The octets are not copied: a
// reply is the duplicate cache's, never changed once made. It is locked
// because a round about to wait long, on whatever goroutine, flushes every
// loop's queued replies first (readers.handOver), so that the answers a
// loop already decided do not wait for an argon2id.
type udpReplies struct {
	mu    sync.Mutex
	io    *udpIO
	n     int
	bufs  [batchLen][]byte
	iov   [batchLen]unix.Iovec
	to4   [batchLen]unix.RawSockaddrInet4
	to6   [batchLen]unix.RawSockaddrInet6
	msgs  [batchLen]unix.Mmsghdr
	off   int // the first message not sent yet (flush)
	sent  int
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

func (u *udpIO) newReplies() *udpReplies {
	w := &udpReplies{io: u}
	for i := range w.msgs {
		w.msgs[i].Hdr.Iov = &w.iov[i]
		w.msgs[i].Hdr.SetIovlen(1)
	}
	w.fn = func(fd uintptr) bool {
		for {
			n, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&w.msgs[w.off])), uintptr(w.n-w.off), 0, 0, 0)
			switch e {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false // the poller waits until the socket is writable
			default:
				w.sent, w.errno = int(n), e
				return true
			}
		}
	}
	return w
}

// add queues b for to; false when it cannot be queued (the batch is full,
// a zoned address, left to writeTo, or one of the wrong family): the
// caller sends it itself. The read loop flushes after each batch it read,
// and each datagram read makes at most one reply, so a batch never fills.
func (w *udpReplies) add(b []byte, to netip.AddrPort) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	a := to.Addr()
	if w.n == batchLen || a.Zone() != "" || len(b) == 0 {
		return false
	}
	i := w.n
	switch {
	case w.io.inet6:
		w.to6[i] = unix.RawSockaddrInet6{Family: unix.AF_INET6, Port: htons(to.Port()), Addr: a.As16()}
		w.msgs[i].Hdr.Name, w.msgs[i].Hdr.Namelen = (*byte)(unsafe.Pointer(&w.to6[i])), unix.SizeofSockaddrInet6
	case a.Unmap().Is4():
		w.to4[i] = unix.RawSockaddrInet4{Family: unix.AF_INET, Port: htons(to.Port()), Addr: a.Unmap().As4()}
		w.msgs[i].Hdr.Name, w.msgs[i].Hdr.Namelen = (*byte)(unsafe.Pointer(&w.to4[i])), unix.SizeofSockaddrInet4
	default:
		return false
	}
	w.bufs[i] = b
	w.iov[i].Base = &b[0]
	w.iov[i].SetLen(len(b))
	w.n++
	return true
}

// flush sends what add queued. A datagram the kernel refuses is skipped
// (as sendto's error would lose it); the first such error is returned.
func (w *udpReplies) flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var first error
	for w.off = 0; w.off < w.n; {
		w.sent, w.errno = 0, 0
		if err := w.io.rc.Write(w.fn); err != nil {
			first = err // the socket is closed: nothing more goes
			break
		}
		if w.errno != 0 {
			if first == nil {
				first = os.NewSyscallError("sendmmsg", w.errno)
			}
			w.off++ // the datagram the kernel refused
			continue
		}
		if w.sent <= 0 {
			w.sent = 1 // no progress and no error: never loop on it
		}
		w.off += w.sent
	}
	for i := range w.n {
		w.bufs[i], w.iov[i].Base = nil, nil // not kept alive by the batch
	}
	w.n, w.off = 0, 0
	return first
}
