package radius

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store/storetest"
)

// StoreDevices reads what the devices page and people decided: an approved
// device, its segment and name and its sealed key; a MAC nobody recorded is
// unknown, not an error.
func TestStoreDevicesReadsTheDevicesTable(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t)
	mac := net.HardwareAddr{0x00, 0x1c, 0xb3, 0, 0, 0x42}
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	if err := st.ApproveDevice(ctx, "test", mac, "staff", "Library printer", now); err != nil {
		t.Fatal(err)
	}
	if err := st.SetDeviceKey(ctx, "test", mac, []byte("sealed-key"), now); err != nil {
		t.Fatal(err)
	}
	d, err := StoreDevices{Store: st}.Lookup(ctx, mac)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Known || !d.Approved || d.Blocked || d.Segment != "staff" || d.Name != "Library printer" || !d.SealedKeyRead || string(d.SealedKey) != "sealed-key" {
		t.Errorf("approved device read as %+v", d)
	}
	d, err = StoreDevices{Store: st}.Lookup(ctx, net.HardwareAddr{0x02, 0, 0, 0, 0, 1})
	if err != nil || d.Known || d.Approved {
		t.Errorf("a MAC nobody recorded: %+v, %v; want unknown and no error", d, err)
	}
}
