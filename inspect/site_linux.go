//go:build linux

package inspect

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Interface is one capture interface and the segment whose traffic it
// carries ("" when it serves none).
type Interface struct {
	Name    string
	Segment string
}

// SiteOptions describe a school's inspection: where to capture and what
// every engine shares.
type SiteOptions struct {
	Interfaces []Interface
	// InsideSubnets, DHCPServerIPs and KnownDevice are as in Options, the
	// same for every engine.
	InsideSubnets []netip.Prefix
	DHCPServerIPs []netip.Addr
	KnownDevice   func(mac net.HardwareAddr) (bool, error)
	// MinConfidence and Signatures are as in Options.
	MinConfidence map[string]Confidence
	Signatures    *Signatures
	// Sink gives the sink for one segment's findings.
	Sink func(segment string) Sink
	// OnFlow, when set, gives the flow callback (Options.OnFlow) for one
	// segment's engine.
	OnFlow  func(segment string) func(FlowRecord)
	Capture CaptureConfig
	// MaxFlows bounds each engine's flow table (Options.MaxFlows).
	MaxFlows int
	// StreamBuffers bounds the TCP reassembly buffers (8 KiB each) that
	// every engine of the site shares; default 1024 (8 MiB), allocated
	// only as flows need them.
	StreamBuffers int
	Logger        *slog.Logger
}

// Site is one engine per capture interface, all sharing one Resolutions
// (a TLS flow without a name to an address the client got from a VPN's
// name is that VPN, whichever interface saw the lookup) and one
// BufferPool (so reassembly memory is bounded for the site, not per
// interface). Its engines are fed only by Run's capture loops.
type Site struct {
	opt     SiteOptions
	log     *slog.Logger
	res     *Resolutions
	engines []*Engine
	// guard judges the queries the DNS guard hands over (NoteQuery), by
	// segment: an engine of its own per segment, beside the capture's,
	// because the guard's goroutines call in while the capture runs.
	guard map[string]*guardEngine
	// guardAny takes the queries of a segment no interface is named for.
	guardAny *guardEngine
}

// guardEngine is an engine that only ever judges handed-over queries,
// under its lock.
type guardEngine struct {
	mu sync.Mutex
	e  *Engine
}

// NewSite builds the engines; it opens no sockets.
func NewSite(opt SiteOptions) *Site {
	s := &Site{opt: opt, log: opt.Logger, res: NewResolutions(ResolutionsConfig{})}
	bufs := NewBufferPool(opt.StreamBuffers)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, ifc := range opt.Interfaces {
		var sink Sink
		if opt.Sink != nil {
			sink = opt.Sink(ifc.Segment)
		}
		var onFlow func(FlowRecord)
		if opt.OnFlow != nil {
			onFlow = opt.OnFlow(ifc.Segment)
		}
		if s.guard[ifc.Segment] == nil {
			if s.guard == nil {
				s.guard = map[string]*guardEngine{}
			}
			// No flows of its own: each handed-over query is one.
			s.guard[ifc.Segment] = &guardEngine{e: NewEngine(Options{
				InsideSubnets: opt.InsideSubnets,
				MinConfidence: opt.MinConfidence,
				Signatures:    opt.Signatures,
				Resolutions:   s.res,
				Buffers:       bufs,
				MaxFlows:      1,
				Sink:          sink,
				OnFlow:        onFlow,
			})}
			if s.guardAny == nil {
				s.guardAny = s.guard[ifc.Segment]
			}
		}
		name := ifc.Name
		s.engines = append(s.engines, NewEngine(Options{
			InsideSubnets: opt.InsideSubnets,
			DHCPServerIPs: opt.DHCPServerIPs,
			KnownDevice:   opt.KnownDevice,
			MinConfidence: opt.MinConfidence,
			Signatures:    opt.Signatures,
			Resolutions:   s.res,
			Buffers:       bufs,
			MaxFlows:      opt.MaxFlows,
			Sink:          sink,
			OnFlow:        onFlow,
			// Logged with the packet, so the bug can be replayed.
			OnPanic: func(v any, packet []byte) {
				s.log.Error("inspect: packet inspection panicked; packet skipped", "interface", name, "panic", fmt.Sprint(v), "packet", hex.EncodeToString(packet))
			},
		}))
	}
	return s
}

// NoteAnswer records what the DNS guard answered a client (its
// dnsguard.Config.Answers); it is safe to call from the guard's goroutines.
func (s *Site) NoteAnswer(client netip.Addr, name, answer string, at time.Time) {
	s.res.NoteAnswer(client, name, answer, at)
}

// NoteQuery judges a UDP query the DNS guard read from a client of segment
// (as the capture would have, had it not been told to leave the guard's
// queries out: CaptureConfig.OwnDNSClients); it is safe to call from the
// guard's goroutines. A segment no interface is captured for goes to the
// first interface's segment, so that no handed-over query goes unjudged.
func (s *Site) NoteQuery(segment string, q GuardQuery) {
	g := s.guard[segment]
	if g == nil {
		if g = s.guardAny; g == nil {
			return // nothing is captured: nothing was inspected before either
		}
	}
	g.mu.Lock()
	g.e.GuardQuery(q)
	g.mu.Unlock()
}

// Run captures on every interface until ctx is done. A capture that fails,
// or ends while ctx is live, stops the others and Run returns why: a
// segment that silently stopped being inspected is worse than a daemon
// that says so.
func (s *Site) Run(ctx context.Context) error {
	if len(s.engines) == 0 {
		<-ctx.Done()
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(s.engines))
	var wg sync.WaitGroup
	for i, eng := range s.engines {
		ifc := s.opt.Interfaces[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cancel()
			s.log.Info("inspecting", "interface", ifc.Name, "segment", ifc.Segment)
			err := eng.Capture(ctx, ifc.Name, s.opt.Capture)
			if err == nil && ctx.Err() != nil {
				return // stopped with the others
			}
			if err == nil {
				err = errors.New("capture ended")
			}
			errs[i] = fmt.Errorf("inspect %s: %w", ifc.Name, err)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ReloadSignatures reads and validates the signatures file at path (the
// shipped set when path is "") and, only when every line is good, has
// every engine apply it from its next handshake on, without a restart. A
// bad file changes nothing: the error names each bad line and the set in
// force stays.
func (s *Site) ReloadSignatures(path string) (*Signatures, error) {
	var sigs *Signatures
	var err error
	if path == "" {
		sigs, err = DefaultSignatures()
	} else {
		sigs, err = LoadSignatures(path)
	}
	if err != nil {
		return nil, err
	}
	for _, e := range s.engines {
		e.SetSignatures(sigs)
	}
	for _, g := range s.guard {
		g.e.SetSignatures(sigs)
	}
	return sigs, nil
}

// Signatures returns the set the site's engines apply now (nil when it
// has none).
func (s *Site) Signatures() *Signatures {
	if len(s.engines) == 0 {
		return nil
	}
	return s.engines[0].Signatures()
}
