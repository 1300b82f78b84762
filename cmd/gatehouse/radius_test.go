package main

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"layeh.com/radius"

	"github.com/gatehouse-net/gatehouse/dhcp/devicesweb"
	grad "github.com/gatehouse-net/gatehouse/radius"
	"github.com/gatehouse-net/gatehouse/store"
)

// TestBlockingADeviceDisconnectsItsWiFiSession checks the devices page's
// block hook: the kernel hook runs, then a Disconnect-Request reaches the
// NAS holding the device's session.
func TestBlockingADeviceDisconnectsItsWiFiSession(t *testing.T) {
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
		Devices:     storeDevices{st},
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
	kernel := false
	h := disconnectOnBlock(devicesweb.Hooks{OnBlock: func(context.Context, store.Device) error { kernel = true; return nil }}, rs, slog.New(slog.DiscardHandler))
	if err := h.OnBlock(ctx, store.Device{MAC: mac}); err != nil {
		t.Fatal(err)
	}
	if !kernel {
		t.Fatal("the kernel hook did not run")
	}
	select {
	case code := <-got:
		if code != radius.CodeDisconnectRequest {
			t.Fatalf("NAS got %v", code)
		}
	default:
		t.Fatal("no Disconnect-Request reached the NAS")
	}
	// Without RADIUS the hooks are left as they were.
	if h2 := disconnectOnBlock(devicesweb.Hooks{}, nil, nil); h2.OnBlock != nil {
		t.Fatal("a hook appeared without a RADIUS server")
	}
}
