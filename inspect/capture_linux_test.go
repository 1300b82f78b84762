//go:build linux

package inspect

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/testbed"
	"github.com/vishvananda/netlink"
)

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestCaptureOnVethRaisesSSHFinding opens AF_PACKET on a veth inside a
// namespace, connects from a peer namespace to an SSH-speaking listener and
// expects the finding to name the peer's address and MAC.
//
// The capture is left idle first, well past the ring's block timeout, so
// it is parked in the runtime's poller with no timer (waitBlock): only the
// kernel's wake-up when it hands a block over brings the connection's
// packets in. Cancelling must end Run at once, with no timer either.
func TestCaptureOnVethRaisesSSHFinding(t *testing.T) {
	srvNS, cliNS := testbed.NewNS(t), testbed.NewNS(t)
	testbed.RequireTools(t, "ip")
	srv, cli := srvNS.Name, cliNS.Name
	run(t, "ip", "-n", srv, "link", "add", "vsrv", "type", "veth", "peer", "name", "vcli", "netns", cli)
	run(t, "ip", "-n", srv, "addr", "add", "10.99.0.1/24", "dev", "vsrv")
	run(t, "ip", "-n", cli, "addr", "add", "10.99.0.5/24", "dev", "vcli")
	run(t, "ip", "-n", srv, "link", "set", "vsrv", "up")
	run(t, "ip", "-n", cli, "link", "set", "vcli", "up")

	var capt *LiveCapture
	var ln net.Listener
	if err := srvNS.Do(func() error {
		var err error
		if capt, err = OpenCapture("vsrv", CaptureConfig{}); err != nil {
			return err
		}
		ln, err = net.Listen("tcp", "10.99.0.1:22")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer capt.Close()
	defer ln.Close()

	findings := make(chan Finding, 16)
	e := NewEngine(Options{MaxFlows: 256, Sink: SinkFunc(func(f Finding) {
		select {
		case findings <- f:
		default: // never block the capture loop
		}
	})})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- capt.Run(ctx, e) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("capture: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Run did not return within 5 s of its context ending")
		}
	}()
	time.Sleep(500 * time.Millisecond) // idle: parked, no block handed over

	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "SSH-2.0-OpenSSH_9.6 gatehouse-test\r\n")
		bufio.NewReader(c).ReadString('\n')
	}()

	var cliMAC net.HardwareAddr
	if err := cliNS.Do(func() error {
		l, err := netlink.LinkByName("vcli")
		if err != nil {
			return err
		}
		cliMAC = l.Attrs().HardwareAddr
		c, err := net.DialTimeout("tcp", "10.99.0.1:22", 3*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			return err
		}
		_, err = fmt.Fprintf(c, "SSH-2.0-client\r\n")
		return err
	}); err != nil {
		t.Fatal(err)
	}

	select {
	case f := <-findings:
		if f.Class != ClassSSH || f.SrcIP != netip.MustParseAddr("10.99.0.5") || f.DstPort != 22 || f.SrcMAC.String() != cliMAC.String() {
			t.Errorf("finding = %+v, want ssh from 10.99.0.5 (%s) to port 22", f, cliMAC)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no finding within 10s; engine stats %+v", e.Stats())
	}
}
