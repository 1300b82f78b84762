//go:build linux

package inspect

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"syscall"
	"time"

	"github.com/google/gopacket/afpacket"
	"golang.org/x/sys/unix"
)

// CaptureConfig sizes the AF_PACKET ring. The ring is memory the kernel
// fills and the daemon maps, resident once the traffic has gone round it,
// for every interface, from the moment it is opened: the zero value gives
// 256 KiB (four 64 KiB blocks), which holds a few milliseconds of a busy
// gigabit segment while the engine catches up and keeps four segments
// within the router's memory budget (issue 17: 1 MiB each was a tenth of
// the idle daemon); RingBytes sizes it from the configuration
// (inspect.capture_ring_kib) for a site that sees drops.
type CaptureConfig struct {
	// RingBytes, when set, is the ring's size: blocks of 128 KiB (a
	// quarter of the ring, at least 16 KiB, for rings under 512 KiB).
	// It overrides BlockSize and NumBlocks.
	RingBytes int
	BlockSize int // bytes per ring block, a multiple of the page size; default 64 KiB
	NumBlocks int // default 4
	// OwnDNS, when set, are the addresses the router's own DNS guard
	// answers clients from, and the guard tells the engines what it
	// answered (Site.NoteAnswer): its replies from them are then left out
	// of the capture by a kernel filter (see ownDNSReplyFilter for exactly
	// what, and why nothing a bypass could use is).
	OwnDNS []netip.Addr
	// OwnDNSClients, when set with OwnDNS, are the addresses the guard
	// hands every UDP query it reads from to inspection (Site.NoteQuery):
	// their queries to port 53 of OwnDNS are left out of the capture too
	// (see ownDNSFilter). Should the filter not fit (too many addresses
	// for its jumps) the queries are captured as well: judged twice,
	// never missed.
	OwnDNSClients []netip.Prefix
}

// MinCaptureRing and MaxCaptureRing bound CaptureConfig.RingBytes.
const (
	MinCaptureRing = 64 << 10
	MaxCaptureRing = 256 << 20
)

// blocks works out the ring's geometry.
func (cfg CaptureConfig) blocks() (size, n int, err error) {
	if r := cfg.RingBytes; r > 0 {
		if r < MinCaptureRing || r > MaxCaptureRing {
			return 0, 0, fmt.Errorf("inspect: capture ring of %d bytes: want %d to %d", r, MinCaptureRing, MaxCaptureRing)
		}
		size = 128 << 10
		if r < 512<<10 {
			size = max(r/4/4096*4096, 16<<10)
		}
		return size, r / size, nil
	}
	size, n = cfg.BlockSize, cfg.NumBlocks
	if size <= 0 {
		size = 64 << 10
	}
	if n <= 0 {
		n = 4
	}
	return size, n, nil
}

// LiveCapture is an open AF_PACKET (TPACKET_V3, memory-mapped ring)
// socket on one interface.
//
// The ring is read without blocking, and the wait for its next block is
// the Go runtime's network poller's (a copy of the socket's descriptor in
// an *os.File), not a poll(2) that holds a thread in a system call: a
// capture thread blocked there for milliseconds at a time, hundreds of
// times a second on a busy segment, had the runtime hand its processor
// over each time and its monitor thread waking every 20 µs, which cost
// the DNS guard beside it a tenth of its CPU (bench/results.md).
type LiveCapture struct {
	iface string
	tp    *afpacket.TPacket
	wake  *os.File        // a dup of the socket, for the poller; nil: poll(2)
	rc    syscall.RawConn // wake's
}

// OpenCapture opens a capture socket on iface in the calling thread's
// network namespace.
func OpenCapture(iface string, cfg CaptureConfig) (*LiveCapture, error) {
	size, n, err := cfg.blocks()
	if err != nil {
		return nil, err
	}
	tp, err := afpacket.NewTPacket(
		afpacket.OptInterface(iface),
		afpacket.OptFrameSize(1<<11),
		afpacket.OptBlockSize(size),
		afpacket.OptNumBlocks(n),
		// Poll without waiting: Run waits on the runtime's poller.
		afpacket.OptPollTimeout(0),
		afpacket.OptBlockTimeout(50*time.Millisecond),
		afpacket.TPacketVersion3,
	)
	if err != nil {
		return nil, fmt.Errorf("inspect: open AF_PACKET on %s: %w", iface, err)
	}
	if len(cfg.OwnDNS) > 0 {
		prog, err := ownDNSFilter(cfg.OwnDNS, cfg.OwnDNSClients)
		if err != nil && len(cfg.OwnDNSClients) > 0 {
			prog, err = ownDNSReplyFilter(cfg.OwnDNS)
		}
		if err == nil {
			err = tp.SetBPF(prog)
		}
		if err != nil {
			tp.Close()
			return nil, fmt.Errorf("inspect: filter on %s: %w", iface, err)
		}
	}
	c := &LiveCapture{iface: iface, tp: tp}
	if err := c.openWake(); err != nil {
		tp.Close()
		return nil, fmt.Errorf("inspect: open AF_PACKET on %s: %w", iface, err)
	}
	return c, nil
}

// openWake puts a duplicate of the capture socket's descriptor in the
// runtime's poller. afpacket keeps the descriptor to itself, so it is
// read from its (unexported) field.
func (c *LiveCapture) openWake() error {
	f := reflect.ValueOf(c.tp).Elem().FieldByName("fd")
	if !f.IsValid() || !f.CanInt() {
		return fmt.Errorf("afpacket.TPacket has no fd field to wait on (version %T changed)", c.tp)
	}
	fd, err := unix.Dup(int(f.Int()))
	if err != nil {
		return fmt.Errorf("dup the capture socket: %w", err)
	}
	// Non-blocking is what puts an *os.File in the poller; the ring is
	// read from memory and afpacket polls without waiting, so the flag
	// (shared with afpacket's descriptor) changes nothing for it.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return fmt.Errorf("capture socket non-blocking: %w", err)
	}
	c.wake = os.NewFile(uintptr(fd), "afpacket:"+c.iface)
	rc, err := c.wake.SyscallConn()
	if err != nil {
		c.wake.Close()
		return fmt.Errorf("capture socket: %w", err)
	}
	c.rc = rc
	return nil
}

// waitBlock waits until the ring may have a block for the reader (the
// socket is readable) or Run's context ends (its deadline, set then).
//
// There is no timeout. The kernel wakes the socket's readers whenever it
// hands a block over (a full block, or a partly filled one when the
// block timeout retires it), and a block handed over before the poller
// watches is seen by the look below. A wait bounded by a timer, as it
// once was (200 ms, so that cancellation was seen), woke every capture
// five times a second on an idle segment, and each timer's expiry also
// woke the runtime's monitor thread into a millisecond of 20 µs sleeps:
// on the idle daemon those were about half of its CPU, which every
// CPU-per-request figure in bench/ counts (radius.sh, eap.sh).
func (c *LiveCapture) waitBlock() error {
	first := true
	err := c.rc.Read(func(fd uintptr) bool {
		if !first {
			return true // woken: readable, or a deadline
		}
		first = false
		// A block may have been handed over before the poller was
		// asked to watch: look without waiting.
		p := [1]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, _ := unix.Poll(p[:], 0)
		return n > 0
	})
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	return err
}

// Run feeds every frame to e until ctx is done or reading fails. The ring's
// frames are handed over without copying; the engine copies what it keeps.
func (c *LiveCapture) Run(ctx context.Context, e *Engine) error {
	// Ending ctx ends a wait at once: a deadline in the past makes the
	// poller return, and the loop sees ctx done.
	_ = c.wake.SetReadDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { _ = c.wake.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	for ctx.Err() == nil {
		data, ci, err := c.tp.ZeroCopyReadPacketData()
		switch {
		case errors.Is(err, afpacket.ErrTimeout):
			// No block for the reader yet.
			if err := c.waitBlock(); err != nil {
				return fmt.Errorf("inspect: wait on AF_PACKET on %s: %w", c.iface, err)
			}
			continue
		case err != nil:
			return fmt.Errorf("inspect: read AF_PACKET on %s: %w", c.iface, err)
		}
		e.HandlePacket(data, ci)
	}
	return nil
}

// Close releases the socket and its ring.
func (c *LiveCapture) Close() {
	c.wake.Close()
	c.tp.Close()
}

// Capture inspects iface until ctx is done: OpenCapture, then Run, then
// Close. It returns nil on cancellation.
func (e *Engine) Capture(ctx context.Context, iface string, cfg CaptureConfig) error {
	c, err := OpenCapture(iface, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Run(ctx, e)
}
