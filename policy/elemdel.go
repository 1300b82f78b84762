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

// A transaction that only deletes set elements (an eviction, above all)
// goes to the kernel through a netlink socket of its own, written and read
// with plain system calls on the caller's goroutine.
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

// maxFastDeletes bounds the elements one fast transaction carries: larger
// deletes (a rebuild's worth) take the library's path, which splits them
// into messages under netlink's attribute limit.
const maxFastDeletes = 64

// ackTimeout bounds the wait for the kernel's acknowledgements, which it
// queues before sendmsg returns: only a broken socket waits this long.
const ackTimeout = 5 * time.Second

// elemDeleter owns the socket and its buffers. Its callers hold e.mu.
type elemDeleter struct {
	conn *netlink.Conn // owns the socket; only its descriptor is used
	rc   syscall.RawConn
	seq  uint32
	out  []byte
	in   []byte
}

// dialElemDeleter opens the socket in the namespace of netnsFd (the
// caller's when zero).
func dialElemDeleter(netnsFd int) (*elemDeleter, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: netnsFd})
	if err != nil {
		return nil, fmt.Errorf("policy: open netlink for element deletes: %w", err)
	}
	rc, err := c.SyscallConn()
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("policy: netlink for element deletes: %w", err)
	}
	// Acknowledgements of errors carry no copy of the message refused.
	_ = c.SetOption(netlink.CapAcknowledge, true)
	return &elemDeleter{conn: c, rc: rc, in: make([]byte, 16<<10)}, nil
}

func (d *elemDeleter) close() error { return d.conn.Close() }

// setDeletes is one set's keys to delete.
type setDeletes struct {
	set  *nftables.Set
	keys [][]byte
}

// put appends a netlink header for a message of typ whose body is to follow;
// it returns where the header starts, for finish.
func (d *elemDeleter) put(typ uint16, flags uint16) int {
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
func (d *elemDeleter) finish(at int, attr bool) {
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
func (d *elemDeleter) attr(typ uint16) int {
	at := len(d.out)
	d.out = binary.NativeEndian.AppendUint16(d.out, 0)
	d.out = binary.NativeEndian.AppendUint16(d.out, typ)
	return at
}

func (d *elemDeleter) bytesAttr(typ uint16, v []byte, zero bool) {
	at := d.attr(typ)
	d.out = append(d.out, v...)
	if zero {
		d.out = append(d.out, 0)
	}
	d.finish(at, true)
}

// deletes sends one transaction deleting every key of sets and reads the
// kernel's answer to each message: the same messages, flags and outcome
// as nftables.Conn.SetDeleteElements and Flush.
func (d *elemDeleter) deletes(sets []setDeletes) error {
	first, last := d.build(sets)
	return d.send(first, last)
}

// build writes the transaction into d.out and returns the sequence
// numbers of its first and last message that the kernel acknowledges.
func (d *elemDeleter) build(sets []setDeletes) (first, last uint32) {
	if d.seq > math.MaxUint32-1<<20 {
		d.seq = 0 // so that first..last never wraps
	}
	d.out = d.out[:0]
	genmsg := func(family uint8, resID uint16) {
		d.out = append(d.out, family, unix.NFNETLINK_V0)
		d.out = binary.BigEndian.AppendUint16(d.out, resID)
	}
	at := d.put(unix.NFNL_MSG_BATCH_BEGIN, unix.NLM_F_REQUEST)
	genmsg(unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES)
	d.finish(at, false)
	first = d.seq + 1
	for _, s := range sets {
		at := d.put(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_DELSETELEM, unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE)
		genmsg(uint8(s.set.Table.Family), 0)
		d.bytesAttr(unix.NFTA_SET_ELEM_LIST_SET, []byte(s.set.Name), true)
		d.bytesAttr(unix.NFTA_SET_ELEM_LIST_SET_ID, binary.BigEndian.AppendUint32(nil, s.set.ID), false)
		d.bytesAttr(unix.NFTA_SET_ELEM_LIST_TABLE, []byte(s.set.Table.Name), true)
		list := d.attr(unix.NFTA_SET_ELEM_LIST_ELEMENTS | unix.NLA_F_NESTED)
		for i, k := range s.keys {
			item := d.attr(uint16(i+1) | unix.NLA_F_NESTED)
			key := d.attr(unix.NFTA_SET_ELEM_KEY | unix.NLA_F_NESTED)
			d.bytesAttr(unix.NFTA_DATA_VALUE, k, false)
			d.finish(key, true)
			d.finish(item, true)
		}
		d.finish(list, true)
		d.finish(at, false)
	}
	last = d.seq
	at = d.put(unix.NFNL_MSG_BATCH_END, unix.NLM_F_REQUEST)
	genmsg(unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES)
	d.finish(at, false)
	return first, last
}

// send sends d.out and reads the acknowledgements of messages first to
// last.
func (d *elemDeleter) send(first, last uint32) error {
	var serr, errs error
	waiting := int(last - first + 1)
	if err := d.rc.Control(func(fd uintptr) {
		serr = unix.Sendto(int(fd), d.out, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
	}); err != nil {
		return fmt.Errorf("send element deletes: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("send element deletes: %w", serr)
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
			return fmt.Errorf("receive element delete acknowledgements: %w", err)
		}
		if errors.Is(rerr, unix.EAGAIN) {
			// A kernel that never answers must not hold the enforcer's
			// lock for ever.
			if err := d.conn.SetReadDeadline(time.Now().Add(ackTimeout)); err != nil {
				return fmt.Errorf("receive element delete acknowledgements: %w", err)
			}
			if err := d.rc.Read(read); err != nil {
				return fmt.Errorf("receive element delete acknowledgements: %w", err)
			}
		}
		if errors.Is(rerr, unix.EINTR) {
			continue
		}
		if rerr != nil {
			return fmt.Errorf("receive element delete acknowledgements: %w", rerr)
		}
		for b := d.in[:n]; len(b) >= unix.NLMSG_HDRLEN; {
			l := int(binary.NativeEndian.Uint32(b))
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				return errors.New("receive element delete acknowledgements: truncated message")
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
				return fmt.Errorf("delete elements: the kernel refused the transaction: %w", syscall.Errno(-code))
			}
			waiting--
			if code == 0 {
				continue
			}
			err := syscall.Errno(-code)
			if err == unix.EPERM || err == unix.ENOBUFS {
				// The kernel sends this one error only.
				return fmt.Errorf("delete elements: %w", err)
			}
			errs = errors.Join(errs, fmt.Errorf("delete elements: %w", err))
		}
	}
	return errs
}
