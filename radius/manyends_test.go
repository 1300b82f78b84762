package radius

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
)

// approvedRecords is an ApprovedDeviceRecords over a fixed list.
type approvedRecords []store.ApprovedRADIUSDevice

func (a approvedRecords) DeviceForRADIUS(_ context.Context, mac net.HardwareAddr) (store.DeviceForRADIUS, error) {
	for _, d := range a {
		if slices.Equal(d.MAC, mac) {
			return d.DeviceForRADIUS, nil
		}
	}
	return store.DeviceForRADIUS{}, nil
}

func (a approvedRecords) ApprovedDevicesForRADIUS(_ context.Context, limit int) ([]store.ApprovedRADIUSDevice, error) {
	return a[:min(limit, len(a))], nil
}

// oneEnds is a DeviceEnds only, counting its calls; manyEnds adds
// DeviceEnds over the same answers.
type oneEnds struct {
	ends  map[string]time.Time
	calls *int
}

func (o oneEnds) DeviceEnd(_ context.Context, mac net.HardwareAddr) (time.Time, error) {
	*o.calls++
	return o.ends[mac.String()], nil
}

type manyEnds struct {
	oneEnds
	bulk *int
}

func (m manyEnds) DeviceEnds(_ context.Context, macs []net.HardwareAddr) ([]time.Time, error) {
	*m.bulk++
	out := make([]time.Time, len(macs))
	for i, mac := range macs {
		out[i] = m.ends[mac.String()]
	}
	return out, nil
}

// The preload reads the owned devices' ends in one DeviceEnds call when
// the DeviceEnds has it, with the same DeviceInfos as DeviceEnd per device.
func TestApprovedReadsDeviceEndsInOneCall(t *testing.T) {
	ctx := context.Background()
	end := time.Date(2027, 7, 17, 0, 0, 0, 0, time.UTC)
	var recs approvedRecords
	ends := map[string]time.Time{}
	for i, owner := range []string{"17", "", "the governors' projector", "18", "19"} {
		mac := net.HardwareAddr{0x02, 0, 0, 0, 8, byte(i)}
		recs = append(recs, store.ApprovedRADIUSDevice{MAC: mac, DeviceForRADIUS: store.DeviceForRADIUS{Known: true, Approved: true, Name: "laptop", Owner: owner}})
		if owner == "17" || owner == "19" {
			ends[mac.String()] = end.Add(time.Duration(i) * time.Hour)
		}
	}
	var perDevice, calls, bulk int
	wantMACs, want, ok, err := StoreDevices{Store: recs, Ends: oneEnds{ends, &perDevice}}.approved(ctx, 100)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	gotMACs, got, ok, err := StoreDevices{Store: recs, Ends: manyEnds{oneEnds{ends, &calls}, &bulk}}.approved(ctx, 100)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if !slices.Equal(gotMACs, wantMACs) || len(got) != len(want) {
		t.Fatalf("devices %v, want %v", gotMACs, wantMACs)
	}
	for i := range want {
		if !got[i].Until.Equal(want[i].Until) || got[i].Name != want[i].Name || got[i].Owner != want[i].Owner {
			t.Errorf("device %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if perDevice != 4 || calls != 0 || bulk != 1 {
		t.Errorf("DeviceEnd per device %d times; with DeviceEnds: DeviceEnd %d, DeviceEnds %d; want 4, 0, 1", perDevice, calls, bulk)
	}
	if got[0].Until.IsZero() || got[4].Until.IsZero() {
		t.Errorf("owned devices' ends not read: %v, %v", got[0].Until, got[4].Until)
	}
}
