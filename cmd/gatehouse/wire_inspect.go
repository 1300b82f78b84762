package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/gatehouse-net/gatehouse/inspect"
	"github.com/gatehouse-net/gatehouse/store"
)

// wireInspect builds packet inspection on every configured capture
// interface, each feeding the findings of the segment it belongs to.
func wireInspect(_ context.Context, w *wiring) error {
	opt := inspect.SiteOptions{
		KnownDevice: knownDevice(w.store),
		Sink:        w.alerts.sink.ForSegment,
		Logger:      w.log.With("component", "inspect"),
		Capture:     inspect.CaptureConfig{RingBytes: w.cfg.Inspect.CaptureRingKiB << 10},
		MaxFlows:    w.cfg.Inspect.MaxFlows,
	}
	for _, s := range w.cfg.Segments {
		opt.InsideSubnets = append(opt.InsideSubnets, s.Subnet)
		opt.DHCPServerIPs = append(opt.DHCPServerIPs, s.Gateway)
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
	w.site = inspect.NewSite(opt)
	w.run("inspection", w.site.Run)
	return nil
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
