package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

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
	known := knownDevice(st)
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
			OnPanic: func(v any, packet []byte) {
				log.Error("inspect: packet inspection panicked; packet skipped", "interface", iface, "panic", fmt.Sprint(v), "packet", hex.EncodeToString(packet))
			},
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

// deviceLookup is the store as knownDevice uses it.
type deviceLookup interface {
	DeviceByMAC(ctx context.Context, mac net.HardwareAddr) (store.Device, error)
}

// knownDeviceTimeout bounds one lookup on the packet path.
const knownDeviceTimeout = 2 * time.Second

// knownDevice answers inspection's "is this MAC known": a MAC our DHCP
// server has never dealt with is a device that set its own address, which
// is worth a finding. Only "not found" means unknown; any other error is
// passed on, so the engine raises nothing for it.
func knownDevice(st deviceLookup) func(net.HardwareAddr) (bool, error) {
	return func(mac net.HardwareAddr) (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), knownDeviceTimeout)
		defer cancel()
		_, err := st.DeviceByMAC(ctx, mac)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, store.ErrNotFound):
			return false, nil
		}
		return false, fmt.Errorf("looking up device %s: %w", mac, err)
	}
}
