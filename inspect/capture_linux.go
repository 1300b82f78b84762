//go:build linux

package inspect

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/gopacket/afpacket"
)

// CaptureConfig sizes the AF_PACKET ring. The zero value gives a 4 MiB
// ring, enough for bursts on a school uplink without pinning much memory.
type CaptureConfig struct {
	BlockSize int // bytes per ring block, a multiple of the page size; default 256 KiB
	NumBlocks int // default 16
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
	if cfg.BlockSize <= 0 {
		cfg.BlockSize = 256 << 10
	}
	if cfg.NumBlocks <= 0 {
		cfg.NumBlocks = 16
	}
	tp, err := afpacket.NewTPacket(
		afpacket.OptInterface(iface),
		afpacket.OptFrameSize(1<<11),
		afpacket.OptBlockSize(cfg.BlockSize),
		afpacket.OptNumBlocks(cfg.NumBlocks),
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
