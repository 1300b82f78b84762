package dhcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
)

// DeviceLookup is the part of the store KnownDevice reads: the device
// inventory this server keeps.
type DeviceLookup interface {
	DeviceByMAC(ctx context.Context, mac net.HardwareAddr) (store.Device, error)
}

// knownDeviceTimeout bounds one lookup on the packet path.
const knownDeviceTimeout = 2 * time.Second

// KnownDevice answers packet inspection's "is this MAC known"
// (inspect.SiteOptions.KnownDevice): a MAC this server has never dealt with
// is a device that set its own address, which is worth a finding. Only "not
// found" means unknown; any other error is passed on, so the engine raises
// nothing for it (never an error turned into a finding).
func KnownDevice(st DeviceLookup) func(net.HardwareAddr) (bool, error) {
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
