package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/gatehouse-net/gatehouse/alert/findingstore"
	"github.com/gatehouse-net/gatehouse/config"
	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/inspect"
	"github.com/gatehouse-net/gatehouse/policy/dnsguard"
	"github.com/gatehouse-net/gatehouse/policy/querylog"
	"github.com/gatehouse-net/gatehouse/store"
)

// inspectors builds one inspection engine per configured capture
// interface, each feeding sink with the segment the interface belongs to,
// and all of them sharing what the DNS guard told each client (a TLS flow
// without a name to an address the client got from a VPN's name is that
// VPN). It returns the runners for the daemon to own.
func inspectors(log *slog.Logger, cfg *config.Config, st *store.Store, hub *events.Hub, sink *findingstore.Sink) []func(context.Context) error {
	var inside []netip.Prefix
	var ours []netip.Addr
	for _, s := range cfg.Segments {
		inside = append(inside, s.Subnet)
		ours = append(ours, s.Gateway)
	}
	// A MAC our DHCP server has never dealt with is a device that set its
	// own address: that is worth a finding.
	// Only "no such device" is a stranger: a store that cannot answer
	// (busy, closed, a disk error) must never turn into a finding.
	known := func(mac net.HardwareAddr) bool {
		_, err := st.DeviceByMAC(context.Background(), mac)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			log.Warn("inspect: device lookup failed; not raising unapproved-device", "mac", mac, "err", err)
			return true
		}
		return err == nil
	}
	res := inspect.NewResolutions(inspect.ResolutionsConfig{})
	lookups := hub.Subscribe("inspect-resolutions", 4096, querylog.EventKind)
	runs := []func(context.Context) error{func(ctx context.Context) error {
		lookups.Run(ctx, func(_ context.Context, ev events.Event) {
			if q, ok := ev.Data.(dnsguard.Query); ok {
				res.NoteAnswer(q.Client, q.Name, q.Answer, q.Time)
			}
		})
		return nil
	}}
	for _, iface := range cfg.Inspect.Interfaces {
		segment := ""
		for _, s := range cfg.Segments {
			if s.Interface == iface {
				segment = s.Name
			}
		}
		eng := inspect.NewEngine(inspect.Options{
			InsideSubnets: inside,
			DHCPServerIPs: ours,
			KnownDevice:   known,
			Resolutions:   res,
			Sink:          sink.ForSegment(segment),
		})
		runs = append(runs, func(ctx context.Context) error {
			log.Info("inspecting", "interface", iface, "segment", segment)
			if err := eng.Capture(ctx, iface, inspect.CaptureConfig{}); err != nil {
				return fmt.Errorf("inspect %s: %w", iface, err)
			}
			return nil
		})
	}
	return runs
}
