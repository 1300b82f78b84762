// Command dhcpdaemon sets up the deployed side of bench/dhcp.sh (DAEMON=1):
// the real `gatehouse run` in a testbed router, serving relayed DHCP the
// way a school with L3 switches gets it. The relay is perfdhcp, which
// bench/dhcp.sh runs in the testbed's management namespace: requests
// arrive on the router's management interface (a dhcp.relay_interfaces
// entry) from the relay address 10.64.255.254 (dhcp.trusted_relays), whose
// giaddr lies in the "relayed" segment (10.64.0.0/16, pool
// 10.64.1.0-10.64.250.250). The whole daemon runs as configured
// otherwise: inspection on every segment, the policy enforcer binding each
// lease in nftables before its ACK, the admin page, RADIUS, the DNS guard.
//
// The flood limits are raised above what perfdhcp sends (every request
// from one relay, most from MACs never seen): dhcp.packets_per_second and
// the segment's new_devices_per_minute. They are still checked per packet.
//
// It prints one line, "ready NS SERVER RELAY PID" (the namespace to run
// perfdhcp in, the server address, the relay address, the daemon's pid),
// and keeps everything up until its standard input closes or it gets
// SIGTERM; then it stops the daemon and removes the testbed.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/gatehouse-net/gatehouse/bench/internal/daemon"
	"github.com/gatehouse-net/gatehouse/testbed"
)

const (
	relaySegment = "relayed"
	relayAddr    = "10.64.255.254"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "dhcpdaemon:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) != 3 {
		return errors.New("usage: dhcpdaemon GATEHOUSE-BINARY WORKDIR")
	}
	bin, dir := os.Args[1], os.Args[2]
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	segs := append(testbed.DefaultSegments(), testbed.Segment{
		Name: relaySegment, Subnet: netip.MustParsePrefix("10.64.0.0/16"),
		DHCPStart: netip.MustParseAddr("10.64.1.0"), DHCPEnd: netip.MustParseAddr("10.64.250.250"),
		Lease: time.Hour, UnknownDevices: "allow",
	})
	s, err := daemon.StartSchool(ctx, testbed.Options{Segments: segs})
	if err != nil {
		return err
	}
	defer s.Close()
	files, err := s.Config(dir)
	if err != nil {
		return err
	}
	if err := editConfig(files.Path); err != nil {
		return fmt.Errorf("edit %s: %w", files.Path, err)
	}
	// The relay's address lives in the management namespace; the router
	// reaches it over the management link, as it would a switch's.
	for _, c := range [][]string{
		{s.MgmtNS(), "ip", "addr", "add", relayAddr + "/32", "dev", testbed.ClientInterface},
		{s.RouterNS(), "ip", "route", "add", relayAddr + "/32", "dev", testbed.MgmtInterface},
	} {
		if out, err := s.Command(ctx, c[0], c[1], c[2:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(c[1:], " "), err, out)
		}
	}
	logPath := filepath.Join(dir, "daemon.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	gh, err := daemon.Run(s, s.RouterNS(), bin, files.Path, logf, 10*time.Second)
	if err != nil {
		return err
	}
	defer gh.Stop()
	cmd, exited := gh.Cmd, gh.Done
	if err := waitServing(ctx, s, logPath, exited); err != nil {
		return err
	}
	fmt.Printf("ready %s %s %s %d\n", s.MgmtNS(), testbed.MgmtRouterIP, relayAddr, cmd.Process.Pid)
	// Up until the script is done with it.
	eof := make(chan struct{})
	go func() {
		_, _ = bufio.NewReader(os.Stdin).ReadString(0)
		close(eof)
	}()
	select {
	case <-eof:
	case <-ctx.Done():
	case <-exited:
		return errors.New("the daemon exited during the run: see " + logPath)
	}
	return nil
}

// waitServing waits until the daemon listens on udp/67 on the relay
// interface, or exits, or 90 s pass.
func waitServing(ctx context.Context, s *testbed.School, logPath string, exited <-chan struct{}) error {
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-exited:
			b, _ := os.ReadFile(logPath)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			return fmt.Errorf("the daemon exited during start:\n%s", strings.Join(lines[max(0, len(lines)-15):], "\n"))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the daemon did not serve DHCP within 90 s: see %s", logPath)
		}
		out, err := s.Command(ctx, s.RouterNS(), "ss", "-Hlun", "sport = :67").Output()
		if err == nil && strings.Contains(string(out), "%"+testbed.MgmtInterface) {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// editConfig adds the relay settings and raises the flood limits.
func editConfig(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var c map[string]any
	if err := yaml.Unmarshal(b, &c); err != nil {
		return err
	}
	c["dhcp"] = map[string]any{
		"relay_interfaces":   []string{testbed.MgmtInterface},
		"trusted_relays":     []string{relayAddr},
		"packets_per_second": 10000000,
	}
	segs, _ := c["segments"].([]any)
	found := false
	for _, sg := range segs {
		m, _ := sg.(map[string]any)
		if m["name"] != relaySegment {
			continue
		}
		d, _ := m["dhcp"].(map[string]any)
		if d == nil {
			return errors.New("the relayed segment has no dhcp section")
		}
		d["new_devices_per_minute"] = 100000
		found = true
	}
	if !found {
		return errors.New("no relayed segment in the configuration")
	}
	out, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o600)
}
