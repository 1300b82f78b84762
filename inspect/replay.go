package inspect

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// packetSource is what both pcap readers offer.
type packetSource interface {
	ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

// openCapture opens a pcap or pcapng file, telling them apart by magic
// number rather than by name.
func openCapture(r io.Reader) (packetSource, layers.LinkType, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	magic, err := br.Peek(4)
	if err != nil {
		return nil, 0, fmt.Errorf("read magic: %w", err)
	}
	if string(magic) == "\x0a\x0d\x0d\x0a" {
		ng, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{SkipUnknownVersion: true})
		if err != nil {
			return nil, 0, fmt.Errorf("pcapng header: %w", err)
		}
		return ng, ng.LinkType(), nil
	}
	pr, err := pcapgo.NewReader(br)
	if err != nil {
		return nil, 0, fmt.Errorf("pcap header: %w", err)
	}
	return pr, pr.LinkType(), nil
}

// ReplayFile feeds every packet of one capture file to the engine. Findings
// carry the file's base name. A truncated last packet ends the file quietly,
// as captures cut off by a full disk often are.
func (e *Engine) ReplayFile(ctx context.Context, path string) error {
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("inspect: open %s: %w", path, err)
	}
	defer fh.Close()
	src, lt, err := openCapture(fh)
	if err != nil {
		return fmt.Errorf("inspect: %s: %w", path, err)
	}
	e.file = filepath.Base(path)
	defer func() { e.file = "" }()
	for n := 0; ; n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		// The reader's buffer is reused for the next packet, as the live
		// capture's ring is: the engine copies whatever it keeps.
		data, ci, err := src.ZeroCopyReadPacketData()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			// Whoever is still waiting for a server's answer got none.
			e.flushAttempts()
			return nil
		}
		if err != nil {
			return fmt.Errorf("inspect: read %s packet %d: %w", path, n+1, err)
		}
		e.HandlePacketLink(lt, data, ci)
	}
}

// ReplayFiles replays the files in order, forgetting flows and per-host
// state between files (flows of one capture must not meet those of
// another). Findings go to emit when it is not nil, else to the Sink.
func (e *Engine) ReplayFiles(ctx context.Context, files []string, emit func(Finding)) error {
	if emit != nil {
		saved := e.opt.Sink
		e.opt.Sink = SinkFunc(emit)
		defer func() { e.opt.Sink = saved }()
	}
	for _, path := range files {
		e.Reset()
		if err := e.ReplayFile(ctx, path); err != nil {
			return err
		}
	}
	return nil
}

// RunReplay is `gatehouse inspect replay`: it replays the files with
// default options and prints one line per finding, as text or as JSON
// objects. Findings are not an error.
func RunReplay(ctx context.Context, w io.Writer, jsonOut bool, files []string) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	var werr error
	e := NewEngine(Options{MaxFlows: 16384})
	err := e.ReplayFiles(ctx, files, func(f Finding) {
		if werr != nil {
			return
		}
		if jsonOut {
			werr = enc.Encode(f)
		} else {
			_, werr = fmt.Fprintln(bw, f.String())
		}
	})
	if ferr := bw.Flush(); werr == nil {
		werr = ferr
	}
	if err != nil {
		return err
	}
	if werr != nil {
		return fmt.Errorf("inspect: write findings: %w", werr)
	}
	return nil
}
