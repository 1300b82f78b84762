package dhcp

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/store/storetest"
)

// Inspection asks whether a MAC is known; only "not found" may become an
// unapproved-device finding. A store that fails (here: closed, as when the
// disk went away) must come back as an error, which the engine counts and
// raises nothing for (inspect's TestUnapprovedDeviceNeverFromALookupError).
func TestKnownDeviceNeverTurnsAStoreErrorIntoUnknown(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t)
	approved := net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	stranger := net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
	if err := st.DecideDevice(ctx, "test", approved, store.DeviceDecision{Approved: true}, time.Now()); err != nil {
		t.Fatal(err)
	}
	known := KnownDevice(st)
	if ok, err := known(approved); !ok || err != nil {
		t.Errorf("a recorded device: known %v, %v; want true, nil", ok, err)
	}
	if ok, err := known(stranger); ok || err != nil {
		t.Errorf("a MAC the store has never seen: known %v, %v; want false, nil", ok, err)
	}
	st.Close()
	for _, mac := range []net.HardwareAddr{approved, stranger} {
		if ok, err := known(mac); err == nil {
			t.Errorf("%s with the store closed: known %v and no error; a failed lookup must not read as an answer", mac, ok)
		}
	}
}
