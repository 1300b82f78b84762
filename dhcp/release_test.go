package dhcp

import (
	"context"
	"testing"
)

func TestReleaseMACEndsTheDevicesLeases(t *testing.T) {
	st := newMemStore()
	h := newHarness(t, st, nil)
	const mac, other = "00:1c:b3:00:00:31", "00:1c:b3:00:00:32"
	ip := h.dora("v0", mac)
	ip2 := h.dora("v0", other)
	if err := h.s.ReleaseMAC(context.Background(), hw(t, mac)); err != nil {
		t.Fatal(err)
	}
	h.eventually(func() bool { l, _ := st.lease("visitor", ip); return l.State == StateReleased }, "release stored")
	if l, _ := st.lease("visitor", ip2); l.State != StateBound {
		t.Fatalf("another device's lease is %v", l.State)
	}
	// Releasing a device with no lease changes nothing.
	if err := h.s.ReleaseMAC(context.Background(), hw(t, "00:1c:b3:00:00:99")); err != nil {
		t.Fatal(err)
	}
}
