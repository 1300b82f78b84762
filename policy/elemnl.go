package policy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// A transaction that only adds or deletes set elements (an admission, a
// DHCP group commit's lease bindings, an eviction) goes to the kernel
// through a netlink socket of its own, written and read with plain system
// calls on the caller's goroutine.
//
// Through github.com/google/nftables every send and every receive goes
// through github.com/mdlayher/socket, which starts a goroutine per call to
// watch for a cancellation that a call without a context can never get.
// Starting one wakes an idle P's thread, and on a loaded machine the
// kernel preempts the caller's thread for it: a scheduler trace of 200
// evictions counted 510 such preemptions in the futex call of that wakeup
// (2.5 an eviction, the first before the transaction was even sent), each
// a wait behind every other runnable task for a CPU, and another 200 on
// the way back from the system calls. The kernel does the whole
// transaction inside sendmsg and has queued its acknowledgements by the
// time sendmsg returns, so nothing here needs the poller: one sendmsg, one
// non-blocking recvmsg per acknowledgement, no goroutine, and the message
// built in a buffer kept from call to call.

// maxFastBytes bounds the transaction one fast send carries. Under it no
// element list can reach netlink's 64 KiB attribute limit, nor need
// setElements' split (elemMsgBytes), and the socket's default send buffer
// takes it; larger transactions (a rebuild's worth) take the library's
// path, which splits them.
const maxFastBytes = elemMsgBytes

// ackTimeout bounds the wait for the kernel's acknowledgements, which it
// queues before sendmsg returns: only a broken socket waits this long.
const ackTimeout = 5 * time.Second

// elemWriter owns the socket and its buffers. Its callers hold e.mu with
// no admission in flight (drainLocked), or the admission batcher's nl:
// the lock they take for e.cc too.
type elemWriter struct {
	conn *netlink.Conn // owns the socket; only its descriptor is used
	rc   syscall.RawConn
	seq  uint32
	// first is the sequence number of the transaction's first message
	// after its begin.
	first uint32
	out   []byte
	in    []byte
}

// dialElemWriter opens the socket in the namespace of netnsFd (the
// caller's when zero).
func dialElemWriter(netnsFd int) (*elemWriter, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: netnsFd})
	if err != nil {
		return nil, fmt.Errorf("policy: open netlink for set elements: %w", err)
	}
	rc, err := c.SyscallConn()
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("policy: netlink for set elements: %w", err)
	}
	// Acknowledgements of errors carry no copy of the message refused.
	_ = c.SetOption(netlink.CapAcknowledge, true)
	return &elemWriter{conn: c, rc: rc, in: make([]byte, 16<<10)}, nil
}

func (d *elemWriter) close() error { return d.conn.Close() }

// put appends a netlink header for a message of typ whose body is to follow;
// it returns where the header starts, for finish.
func (d *elemWriter) put(typ uint16, flags uint16) int {
	at := len(d.out)
	d.seq++
	d.out = binary.NativeEndian.AppendUint32(d.out, 0) // length, by finish
	d.out = binary.NativeEndian.AppendUint16(d.out, typ)
	d.out = binary.NativeEndian.AppendUint16(d.out, flags)
	d.out = binary.NativeEndian.AppendUint32(d.out, d.seq)
	d.out = binary.NativeEndian.AppendUint32(d.out, 0) // port: the kernel's
	return at
}

// finish sets the length of the message or attribute that starts at at
// (a 4-byte length for a message, 2 for an attribute) and pads to 4.
func (d *elemWriter) finish(at int, attr bool) {
	n := len(d.out) - at
	if attr {
		binary.NativeEndian.PutUint16(d.out[at:], uint16(n))
	} else {
		binary.NativeEndian.PutUint32(d.out[at:], uint32(n))
	}
	for len(d.out)%4 != 0 {
		d.out = append(d.out, 0)
	}
}

// attr appends an attribute header of typ whose value is to follow.
func (d *elemWriter) attr(typ uint16) int {
	at := len(d.out)
	d.out = binary.NativeEndian.AppendUint16(d.out, 0)
	d.out = binary.NativeEndian.AppendUint16(d.out, typ)
	return at
}

func (d *elemWriter) bytesAttr(typ uint16, v []byte, zero bool) {
	at := d.attr(typ)
	d.out = append(d.out, v...)
	if zero {
		d.out = append(d.out, 0)
	}
	d.finish(at, true)
}

func (d *elemWriter) stringAttr(typ uint16, v string) {
	at := d.attr(typ)
	d.out = append(d.out, v...)
	d.out = append(d.out, 0)
	d.finish(at, true)
}

func (d *elemWriter) genmsg(family uint8, resID uint16) {
	d.out = append(d.out, family, unix.NFNETLINK_V0)
	d.out = binary.BigEndian.AppendUint16(d.out, resID)
}

// begin starts a transaction in d.out.
func (d *elemWriter) begin() {
	if d.seq > math.MaxUint32-1<<20 {
		d.seq = 0 // so that first..last never wraps
	}
	d.out = d.out[:0]
	at := d.put(unix.NFNL_MSG_BATCH_BEGIN, unix.NLM_F_REQUEST)
	d.genmsg(unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES)
	d.finish(at, false)
	d.first = d.seq + 1
}

// elements appends the message that nftables.Conn.SetAddElements (or
// SetDeleteElements, when del) queues for els, byte for byte. It reports
// false for what it does not write (an anonymous set; an interval, a
// map's plain data or a comment, which the enforcer never sends) and
// when the transaction outgrows maxFastBytes: the transaction is then to
// go the library's way.
func (d *elemWriter) elements(s *nftables.Set, del bool, els []nftables.SetElement) bool {
	if s.Anonymous {
		return false
	}
	typ := uint16(unix.NFT_MSG_NEWSETELEM)
	if del {
		typ = unix.NFT_MSG_DELSETELEM
	}
	at := d.put(unix.NFNL_SUBSYS_NFTABLES<<8|typ, unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE)
	d.genmsg(uint8(s.Table.Family), 0)
	d.stringAttr(unix.NFTA_SET_ELEM_LIST_SET, s.Name)
	d.bytesAttr(unix.NFTA_SET_ELEM_LIST_SET_ID, binary.BigEndian.AppendUint32(nil, s.ID), false)
	d.stringAttr(unix.NFTA_SET_ELEM_LIST_TABLE, s.Table.Name)
	list := d.attr(unix.NFTA_SET_ELEM_LIST_ELEMENTS | unix.NLA_F_NESTED)
	for i, el := range els {
		if el.IntervalEnd || len(el.KeyEnd) > 0 || len(el.Val) > 0 || el.Comment != "" {
			return false
		}
		item := d.attr(uint16(i+1) | unix.NLA_F_NESTED)
		key := d.attr(unix.NFTA_SET_ELEM_KEY | unix.NLA_F_NESTED)
		d.bytesAttr(unix.NFTA_DATA_VALUE, el.Key, false)
		d.finish(key, true)
		if s.HasTimeout && el.Timeout != 0 {
			d.bytesAttr(unix.NFTA_SET_ELEM_TIMEOUT, binary.BigEndian.AppendUint64(nil, uint64(el.Timeout.Milliseconds())), false)
		}
		if v := el.VerdictData; v != nil {
			// The library's nesting: element data, verdict, then the
			// verdict's code and chain.
			data := d.attr(unix.NFTA_SET_ELEM_DATA | unix.NLA_F_NESTED)
			verdict := d.attr(unix.NFTA_DATA_VERDICT | unix.NLA_F_NESTED)
			d.bytesAttr(unix.NFTA_VERDICT_CODE, binary.BigEndian.AppendUint32(nil, uint32(v.Kind)), false)
			if v.Chain != "" {
				d.stringAttr(unix.NFTA_VERDICT_CHAIN, v.Chain)
			}
			d.finish(verdict, true)
			d.finish(data, true)
		}
		d.finish(item, true)
		if len(d.out) > maxFastBytes {
			return false
		}
	}
	d.finish(list, true)
	d.finish(at, false)
	return true
}

// end closes the transaction in d.out and returns the sequence numbers of
// its first and last message that the kernel acknowledges.
func (d *elemWriter) end() (first, last uint32) {
	first, last = d.first, d.seq
	at := d.put(unix.NFNL_MSG_BATCH_END, unix.NLM_F_REQUEST)
	d.genmsg(unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES)
	d.finish(at, false)
	return first, last
}

// send sends d.out and reads the acknowledgements of messages first to
// last.
func (d *elemWriter) send(first, last uint32) error {
	var serr, errs error
	waiting := int(last - first + 1)
	if err := d.rc.Control(func(fd uintptr) {
		serr = unix.Sendto(int(fd), d.out, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
	}); err != nil {
		return fmt.Errorf("send set elements: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("send set elements: %w", serr)
	}
	for waiting > 0 {
		var n int
		var rerr error
		read := func(fd uintptr) bool {
			n, _, rerr = unix.Recvfrom(int(fd), d.in, unix.MSG_DONTWAIT)
			return !errors.Is(rerr, unix.EAGAIN)
		}
		// The kernel queued its answers before sendmsg returned; the
		// poller is only for a kernel that did not.
		if err := d.rc.Control(func(fd uintptr) { read(fd) }); err != nil {
			return fmt.Errorf("receive set element acknowledgements: %w", err)
		}
		if errors.Is(rerr, unix.EAGAIN) {
			// A kernel that never answers must not hold the enforcer's
			// lock for ever.
			if err := d.conn.SetReadDeadline(time.Now().Add(ackTimeout)); err != nil {
				return fmt.Errorf("receive set element acknowledgements: %w", err)
			}
			if err := d.rc.Read(read); err != nil {
				return fmt.Errorf("receive set element acknowledgements: %w", err)
			}
		}
		if errors.Is(rerr, unix.EINTR) {
			continue
		}
		if rerr != nil {
			return fmt.Errorf("receive set element acknowledgements: %w", rerr)
		}
		for b := d.in[:n]; len(b) >= unix.NLMSG_HDRLEN; {
			l := int(binary.NativeEndian.Uint32(b))
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				return errors.New("receive set element acknowledgements: truncated message")
			}
			typ, seq := binary.NativeEndian.Uint16(b[4:]), binary.NativeEndian.Uint32(b[8:])
			msg := b[:l]
			b = b[min(len(b), (l+3)&^3):]
			// first-1 is the batch's begin message: the kernel answers it
			// (and nothing else) when it refuses the whole batch (no
			// CAP_NET_ADMIN, out of memory).
			if seq < first-1 || seq > last {
				continue // an answer to an earlier call, cut short
			}
			if typ != unix.NLMSG_ERROR || len(msg) < unix.NLMSG_HDRLEN+4 {
				continue
			}
			code := int32(binary.NativeEndian.Uint32(msg[unix.NLMSG_HDRLEN:]))
			if seq == first-1 {
				if code == 0 {
					continue
				}
				return fmt.Errorf("set elements: the kernel refused the transaction: %w", syscall.Errno(-code))
			}
			waiting--
			if code == 0 {
				continue
			}
			err := syscall.Errno(-code)
			if err == unix.EPERM || err == unix.ENOBUFS {
				// The kernel sends this one error only.
				return fmt.Errorf("set elements: %w", err)
			}
			errs = errors.Join(errs, fmt.Errorf("set elements: %w", err))
		}
	}
	return errs
}
