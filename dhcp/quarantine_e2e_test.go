package dhcp

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
)

// findings collects unapproved-device findings.
type findings struct {
	mu  sync.Mutex
	got []Device
}

func (f *findings) add(_ Segment, d Device) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, d)
}

func (f *findings) macs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, d := range f.got {
		out = append(out, d.MAC.String())
	}
	return out
}

// TestQuarantineEndToEnd runs the real enforcer in a testbed school: on the
// pupil segment (unknown_devices: quarantine) a device nobody approved
// gets a lease, raises the finding and then reaches nothing on the
// internet (its web traffic lands on the router's portal), while an
// approved device on the same wire browses normally.
func TestQuarantineEndToEnd(t *testing.T) {
	requireNetAdmin(t, "udhcpc", "curl")
	sch := testbed.New(t, testbed.Options{Segments: []testbed.Segment{
		{Name: "pupil", Subnet: netip.MustParsePrefix("10.20.0.0/21"), Unconfigured: true, Lease: 8 * time.Hour},
	}})
	pupil, _ := sch.Segment("pupil")
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()

	fd, err := sch.OpenNS("router")
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	enf, err := policy.New(policy.Options{NetNSFd: int(fd)}, policy.Network{
		Uplink:     testbed.UplinkInterface,
		Segments:   []policy.SegmentSpec{policy.Defaults("pupil", pupil.Interface, pupil.Subnet, pupil.Gateway, false).WithUnknownDevices(policy.UnknownQuarantine)},
		AdminAddr:  netip.AddrPortFrom(netip.MustParseAddr(testbed.MgmtRouterIP), testbed.AdminPort),
		PortalPort: 8080,
		DNSPort:    53,
	}, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer enf.Close()
	if err := enf.Apply(ctx); err != nil {
		t.Fatalf("apply the ruleset: %v", err)
	}
	// The portal stand-in: what a quarantined device's web traffic meets.
	pln, err := sch.Listen("router", "tcp4", "0.0.0.0:8080")
	if err != nil {
		t.Fatal(err)
	}
	portal := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "gatehouse portal stand-in\n")
	}), ReadHeaderTimeout: 5 * time.Second}
	go portal.Serve(pln)
	defer portal.Close()

	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// The testbed's own client is the approved device, in the database
	// and, as the daemon restores it at start, in the kernel: a
	// quarantine segment forwards approved devices only.
	if err := st.DecideDevice(ctx, "test", pupil.ClientMAC, store.DeviceDecision{Approved: true}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := enf.Approve(ctx, policy.Device{MAC: pupil.ClientMAC}); err != nil {
		t.Fatal(err)
	}
	var found findings
	srv, err := New(Config{
		Segments: []Segment{{Name: "pupil", Interface: pupil.Interface, Subnet: pupil.Subnet, Gateway: pupil.Gateway,
			RangeStart: pupil.DHCPStart, RangeEnd: pupil.DHCPEnd, Lease: pupil.Lease, Unknown: policy.UnknownQuarantine}},
		Store:              NewSQLStore(st),
		Enforcer:           enf,
		OnUnapprovedDevice: found.add,
		Listen: func(iface string) (net.PacketConn, error) {
			var c net.PacketConn
			err := sch.Do("router", func() error {
				var err error
				c, err = ListenUDP(iface)
				return err
			})
			return c, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(sctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	}()
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("server: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server not ready")
	}

	// The stranger shares the pupil wire through a macvlan on the
	// testbed client's interface, in a namespace of its own.
	stranger := testbed.NewNS(t).Name
	const strangerMAC = "00:16:3e:20:00:66"
	sh(t, "ip", "-n", pupil.ClientNS, "link", "add", "link", testbed.ClientInterface, "name", "mv0", "address", strangerMAC, "type", "macvlan", "mode", "bridge")
	sh(t, "ip", "-n", pupil.ClientNS, "link", "set", "mv0", "netns", stranger)
	sh(t, "ip", "-n", stranger, "link", "set", "mv0", "up")
	sh(t, "ip", "-n", stranger, "link", "set", "lo", "up")

	dir := t.TempDir()
	configure := "case \"$1\" in bound|renew) ip addr flush dev \"$interface\"; ip addr add \"$ip/$subnet\" dev \"$interface\"; ip route replace default via \"$router\";; esac\n"
	lease := func(ns, iface, name string) string {
		t.Helper()
		out := filepath.Join(dir, name+".log")
		body := "#!/bin/sh\n{ echo \"event=$1\"; env; echo --; } >> " + out + "\n" + configure
		script := filepath.Join(dir, name+".sh")
		if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
		if o, err := shErr(20*time.Second, "ip", "netns", "exec", ns, "udhcpc", "-f", "-q", "-n", "-i", iface, "-s", script, "-t", "5", "-T", "1"); err != nil {
			t.Fatalf("udhcpc for %s: %v\n%s", name, err, o)
		}
		bound := last(hookEvents(t, out), "event", "bound")
		if bound == nil || !inRange(bound["ip"], pupil.DHCPStart.String(), pupil.DHCPEnd.String()) || bound["router"] != pupil.Gateway.String() {
			t.Fatalf("%s's lease: %v", name, bound)
		}
		return bound["ip"]
	}
	curl := func(ns, url string) (string, error) {
		return shErr(15*time.Second, "ip", "netns", "exec", ns, "curl", "-sS", "-k", "--connect-timeout", "3", "-m", "5", url)
	}
	web := "http://" + testbed.WebIP + "/"

	strangerIP := lease(stranger, "mv0", "stranger")
	approvedIP := lease(pupil.ClientNS, testbed.ClientInterface, "approved")
	if strangerIP == approvedIP {
		t.Fatalf("both devices got %s", strangerIP)
	}

	t.Run("the stranger raised the finding and was quarantined", func(t *testing.T) {
		if got := found.macs(); len(got) != 1 || got[0] != strangerMAC {
			t.Errorf("findings for %v, want only %s", got, strangerMAC)
		}
		if n := srv.Metrics().Quarantined.Load(); n != 1 {
			t.Errorf("%d quarantined leases, want 1", n)
		}
		d, err := st.DeviceByMAC(ctx, mustParseMAC(strangerMAC))
		if err != nil || d.Approved || d.IP.String() != strangerIP || d.Segment != "pupil" {
			t.Errorf("device record %+v %v", d, err)
		}
	})
	t.Run("the approved device reaches the internet", func(t *testing.T) {
		out, err := curl(pupil.ClientNS, web)
		if err != nil || !strings.Contains(out, testbed.WebBanner) {
			t.Fatalf("curl %s from the approved device: %v\n%s", web, err, out)
		}
	})
	t.Run("the quarantined device does not", func(t *testing.T) {
		out, err := curl(stranger, web)
		if strings.Contains(out, testbed.WebBanner) {
			t.Fatalf("quarantined device reached the web server: %s", out)
		}
		if err != nil || !strings.Contains(out, "portal stand-in") {
			t.Errorf("quarantined tcp/80 should land on the portal: %v\n%s", err, out)
		}
		if out, err := curl(stranger, "https://"+testbed.WebIP+"/"); err == nil || strings.Contains(out, testbed.WebBanner) {
			t.Errorf("quarantined device reached https://%s: %v\n%s", testbed.WebIP, err, out)
		}
	})
}

func mustParseMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}
