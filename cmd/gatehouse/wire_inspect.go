package main

import (
	"context"
	"fmt"

	"github.com/gatehouse-net/gatehouse/dhcp"
	"github.com/gatehouse-net/gatehouse/inspect"
)

// wireInspect builds packet inspection on every configured capture
// interface, each feeding the findings of the segment it belongs to.
func wireInspect(_ context.Context, w *wiring) error {
	opt := inspect.SiteOptions{
		KnownDevice: dhcp.KnownDevice(w.store),
		Sink:        w.alerts.sink.ForSegment,
		OnFlow:      w.alerts.flows.ForSegment,
		Logger:      w.log.With("component", "inspect"),
		Capture:     inspect.CaptureConfig{RingBytes: w.cfg.Inspect.CaptureRingKiB << 10},
		MaxFlows:    w.cfg.Inspect.MaxFlows,
	}
	for _, s := range w.cfg.Segments {
		opt.InsideSubnets = append(opt.InsideSubnets, s.Subnet)
		opt.DHCPServerIPs = append(opt.DHCPServerIPs, s.Gateway)
		// The DNS guard (wireDNS) answers each segment from its gateway
		// and tells the site every answer (Site.NoteAnswer) and hands it
		// every UDP query it reads from the segment (Site.NoteQuery), so
		// neither its replies nor the segment's queries to its address
		// need be captured. Queries to any other resolver still are: the
		// capture sees them before the redirect to the guard.
		opt.Capture.OwnDNS = append(opt.Capture.OwnDNS, s.Gateway)
		opt.Capture.OwnDNSClients = append(opt.Capture.OwnDNSClients, s.Subnet)
	}
	for _, iface := range w.cfg.Inspect.Interfaces {
		ifc := inspect.Interface{Name: iface}
		for _, s := range w.cfg.Segments {
			if s.Interface == iface {
				ifc.Segment = s.Name
			}
		}
		opt.Interfaces = append(opt.Interfaces, ifc)
	}
	if err := inspectSignals(w.cfg.Inspect.MinConfidence, w.cfg.Inspect.Signatures, &opt); err != nil {
		return err
	}
	w.site = inspect.NewSite(opt)
	w.run("inspection", w.site.Run)
	return nil
}

// inspectSignals converts the inspect section's thresholds and signatures
// file, refusing a class inspection does not know or a bad signature line
// (with its file and line).
func inspectSignals(minConf map[string]string, sigPath string, opt *inspect.SiteOptions) error {
	if len(minConf) > 0 {
		opt.MinConfidence = map[string]inspect.Confidence{}
		for class, level := range minConf {
			c, err := inspect.ParseConfidence(level)
			if err != nil {
				return fmt.Errorf("inspect.min_confidence.%s: %w", class, err)
			}
			opt.MinConfidence[class] = c
		}
		if err := inspect.CheckMinConfidence(opt.MinConfidence); err != nil {
			return fmt.Errorf("inspect.%w", err)
		}
	}
	if sigPath != "" {
		sigs, err := inspect.LoadSignatures(sigPath)
		if err != nil {
			return fmt.Errorf("inspect.signatures: %w", err)
		}
		opt.Signatures = sigs
	}
	return nil
}
