package policy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/gatehouse-net/gatehouse/testbed"
)

// rstWatch sees, on one end's interface, the TCP resets that claim to come
// from the other end (peer), with the kernel's receive timestamp: the
// moment the router refused a packet of the connection and answered it in
// the peer's name, whenever anyone's goroutines next run. The router
// answers whichever end's packet it refused: the visitor's own, or the
// server's reply on its way to the visitor (the server is reset then, and
// the visitor only when its own TCP next sends, after a retransmission
// timeout if its data was in flight). BenchmarkEvictDropsConnection
// watches both ends.
type rstWatch struct {
	fd      int
	portOff int // offset in the TCP header of the watched end's port
}

// newRSTWatch watches resets from peer (any sender when peer is the zero
// Addr) arriving at ifname in ns; dstPort says whether the port passed to
// next is the packets' destination port (the watched end's) or their
// source port.
func newRSTWatch(t testing.TB, ns *testbed.NS, ifname string, peer netip.Addr, dstPort bool) *rstWatch {
	t.Helper()
	// SOCK_DGRAM: the filter and the reader see the IP packet.
	fd := packetSocket(t, ns, ifname, unix.ETH_P_IP, 0)
	w := &rstWatch{fd: fd}
	if dstPort {
		w.portOff = 2
	}
	// TCP with RST set (from peer, when given), nothing else.
	var from []bpf.Instruction
	if peer.IsValid() {
		a := peer.As4()
		from = []bpf.Instruction{bpf.LoadAbsolute{Off: 12, Size: 4}, bpf.JumpIf{Cond: bpf.JumpEqual, Val: binary.BigEndian.Uint32(a[:]), SkipFalse: 4}}
	}
	prog, err := bpf.Assemble(append(append([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 9, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.IPPROTO_TCP, SkipFalse: uint8(4 + len(from))},
	}, from...), []bpf.Instruction{
		bpf.LoadMemShift{Off: 0},
		bpf.LoadIndirect{Off: 13, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x04, SkipFalse: 1},
		bpf.RetConstant{Val: 0xffff},
		bpf.RetConstant{Val: 0},
	}...))
	if err != nil {
		t.Fatal(err)
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}); err != nil {
		t.Fatalf("filter: %v", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		t.Fatalf("timestamps: %v", err)
	}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100000}); err != nil {
		t.Fatal(err)
	}
	return w
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// next returns the kernel's timestamp of the first reset of the
// connection with port (see newRSTWatch) received at or after since,
// waiting up to wait.
func (w *rstWatch) next(port uint16, since time.Time, wait time.Duration) (time.Time, error) {
	buf := make([]byte, 256)
	oob := make([]byte, 128)
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		n, oobn, _, _, err := unix.Recvmsg(w.fd, buf, oob, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return time.Time{}, err
		}
		if n < 20 {
			continue
		}
		ihl := int(buf[0]&0x0f) * 4
		if n < ihl+4 || binary.BigEndian.Uint16(buf[ihl+w.portOff:]) != port {
			continue
		}
		at, ok, err := kernelTimestamp(oob[:oobn])
		if err != nil {
			return time.Time{}, err
		}
		if ok && !at.Before(since) {
			return at, nil
		}
	}
	return time.Time{}, fmt.Errorf("no reset of port %d within %v", port, wait)
}

// packetSocket opens an AF_PACKET SOCK_DGRAM socket (flags added to the
// type) for protocol proto bound to ifname in ns, closed when the test
// ends.
func packetSocket(t testing.TB, ns *testbed.NS, ifname string, proto int, flags int) int {
	t.Helper()
	var fd int
	var err error
	inNS(t, ns, func() {
		var ifi *net.Interface
		if ifi, err = net.InterfaceByName(ifname); err != nil {
			return
		}
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|flags, int(htons(uint16(proto)))); err != nil {
			return
		}
		err = unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(uint16(proto)), Ifindex: ifi.Index})
	})
	if err != nil {
		t.Fatalf("packet socket on %s: %v", ifname, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// kernelTimestamp is the kernel's receive time (SO_TIMESTAMPNS) in a
// packet socket's control messages oob; ok is false when none is there.
func kernelTimestamp(oob []byte) (at time.Time, ok bool, err error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}, false, err
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
			return time.Unix(int64(binary.NativeEndian.Uint64(m.Data[0:])), int64(binary.NativeEndian.Uint64(m.Data[8:]))), true, nil
		}
	}
	return time.Time{}, false, nil
}
