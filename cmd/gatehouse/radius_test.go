package main

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"layeh.com/radius"

	grad "github.com/gatehouse-net/gatehouse/radius"
	"github.com/gatehouse-net/gatehouse/store"
)

// TestPeoplesDisconnectsReachTheNAS checks the link between people and
// RADIUS: blocking or revoking a device (people.Service.Decide and the
// leavers engine call their Disconnector) sends a Disconnect-Request to the
// NAS holding the device's session.
func TestPeoplesDisconnectsReachTheNAS(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const secret = "nas-secret"
	nas, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer nas.Close()
	got := make(chan radius.Code, 4)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := nas.ReadFromUDP(buf)
			if err != nil {
				return
			}
			req, err := radius.Parse(buf[:n], []byte(secret))
			if err != nil || !radius.IsAuthenticRequest(buf[:n], []byte(secret)) {
				continue
			}
			got <- req.Code
			if out, err := req.Response(radius.CodeDisconnectACK).Encode(); err == nil {
				nas.WriteToUDP(out, from)
			}
		}
	}()
	rs, err := grad.New(grad.Options{
		Clients:     []grad.Client{{Name: "aps", Prefix: netip.MustParsePrefix("127.0.0.0/8"), Secret: []byte(secret), CoAPort: nas.LocalAddr().(*net.UDPAddr).Port, RequireMessageAuthenticator: true}},
		Devices:     grad.StoreDevices{Store: st},
		Sessions:    st,
		CoATimeouts: []time.Duration{2 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	mac, _ := net.ParseMAC("02:00:00:00:00:07")
	if _, err := st.RecordAccounting(ctx, store.AccountingUpdate{Status: store.AcctStart, NAS: "aps", NASAddr: netip.MustParseAddr("127.0.0.1"),
		AcctSessionID: "B1", MAC: mac, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	links := &peopleWiring{}
	// Before the RADIUS server is linked there is nothing to disconnect.
	if err := links.Disconnect(ctx, mac); err != nil {
		t.Fatalf("disconnect before RADIUS is linked: %v", err)
	}
	links.radius.Store(rs)
	if err := links.Disconnect(ctx, mac); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-got:
		if code != radius.CodeDisconnectRequest {
			t.Fatalf("NAS got %v", code)
		}
	default:
		t.Fatal("no Disconnect-Request reached the NAS")
	}
}
