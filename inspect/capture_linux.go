//go:build linux

package inspect

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/gopacket/afpacket"
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
type LiveCapture struct {
	iface string
	tp    *afpacket.TPacket
}

// pollTimeout bounds how long a read blocks, so that cancellation is seen.
const pollTimeout = 200 * time.Millisecond

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
		afpacket.OptPollTimeout(pollTimeout),
		afpacket.OptBlockTimeout(50*time.Millisecond),
		afpacket.TPacketVersion3,
	)
	if err != nil {
		return nil, fmt.Errorf("inspect: open AF_PACKET on %s: %w", iface, err)
	}
	return &LiveCapture{iface: iface, tp: tp}, nil
}

// Run feeds every frame to e until ctx is done or reading fails. The ring's
// frames are handed over without copying; the engine copies what it keeps.
func (c *LiveCapture) Run(ctx context.Context, e *Engine) error {
	for ctx.Err() == nil {
		data, ci, err := c.tp.ZeroCopyReadPacketData()
		switch {
		case errors.Is(err, afpacket.ErrTimeout):
			continue
		case err != nil:
			return fmt.Errorf("inspect: read AF_PACKET on %s: %w", c.iface, err)
		}
		e.HandlePacket(data, ci)
	}
	return nil
}

// Close releases the socket and its ring.
func (c *LiveCapture) Close() { c.tp.Close() }

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
