package dhcp

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
)

func crashSegment(bridge string) Segment {
	// Rapid commit on and no new-device cap: this test is about durability
	// under a burst, not about the flood limits.
	return Segment{Name: "pupil", Interface: bridge, Subnet: netip.MustParsePrefix("10.20.0.0/21"), Gateway: netip.MustParseAddr("10.20.0.1"),
		RangeStart: netip.MustParseAddr("10.20.0.50"), RangeEnd: netip.MustParseAddr("10.20.7.250"), Lease: 8 * time.Hour,
		RapidCommit: true, NewDevicesPerMinute: 100000}
}

// TestCrashHelperProcess is the server that TestSIGKILLMidBurstLosesNoAck
// kills; it does nothing unless started by that test.
func TestCrashHelperProcess(t *testing.T) {
	ns, db, bridge := os.Getenv("GH_DHCP_CRASH_NS"), os.Getenv("GH_DHCP_CRASH_DB"), os.Getenv("GH_DHCP_CRASH_BRIDGE")
	if ns == "" {
		t.Skip("helper process for TestSIGKILLMidBurstLosesNoAck")
	}
	// A plain UDP socket: the burst's made-up MACs all come from one
	// client interface, which the link socket would (rightly) refuse.
	b := &bed{t: t, nsh: testbed.JoinNS(t, ns), open: ListenUDP}
	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Segments: []Segment{crashSegment(bridge)}, Store: NewSQLStore(st), Listen: b.listen, PacketsPerSecond: 100000})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		<-s.Ready()
		os.Stdout.WriteString("ready\n")
	}()
	// Runs until killed; the bound keeps a stray helper from living forever.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// clientConn opens a broadcast-capable socket on port 68 bound to eth0 in ns.
func clientConn(t *testing.T, ns string) net.PacketConn {
	t.Helper()
	var c net.PacketConn
	if err := testbed.JoinNS(t, ns).Do(func() error {
		var err error
		c, err = server4.NewIPv4UDPConn("eth0", &net.UDPAddr{Port: dhcpv4.ClientPort})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSIGKILLMidBurstLosesNoAck kills the server process while a burst of
// rapid-commit DISCOVERs is being acknowledged, then checks that every
// address a client saw acknowledged is still leased to that client.
func TestSIGKILLMidBurstLosesNoAck(t *testing.T) {
	requireNetAdmin(t)
	b := newBed(t)
	bridge := "ghk" + b.id[:4]
	b.segment(bridge, "10.20.0.1/21")
	ns := b.client(bridge, "02:00:00:20:00:01")
	// An address outside the pool gives the client's broadcasts a route.
	sh(t, "ip", "-n", ns, "addr", "add", "10.20.7.254/21", "dev", "eth0")
	db := filepath.Join(b.dir, "crash.db")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "GH_DHCP_CRASH_NS="+b.router, "GH_DHCP_CRASH_DB="+db, "GH_DHCP_CRASH_BRIDGE="+bridge)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "ready" {
				ready <- true
				break
			}
		}
		for sc.Scan() {
		}
	}()
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		t.Fatal("helper server not ready")
	}

	conn := clientConn(t, ns)
	const total = 1500
	const killAfter = 150
	var mu sync.Mutex
	acked := map[string]netip.Addr{}
	killed := make(chan struct{})
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		buf := make([]byte, 1500)
		var once sync.Once
		for {
			conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return // quiet for 2s: the server is dead and the queue drained
			}
			r, err := dhcpv4.FromBytes(buf[:n])
			if err != nil || r.MessageType() != dhcpv4.MessageTypeAck {
				continue
			}
			mu.Lock()
			acked[r.ClientHWAddr.String()] = addr4(r.YourIPAddr)
			count := len(acked)
			mu.Unlock()
			if count >= killAfter {
				once.Do(func() {
					cmd.Process.Signal(syscall.SIGKILL)
					close(killed)
				})
			}
		}
	}()
	dst := &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ServerPort}
	sent := 0
send:
	for i := 0; i < total; i++ {
		select {
		case <-killed:
			break send
		default:
		}
		mac := net.HardwareAddr{0x02, 0x00, 0x5e, 0x10, byte(i >> 8), byte(i)}
		m, err := dhcpv4.New(dhcpv4.WithHwAddr(mac), dhcpv4.WithMessageType(dhcpv4.MessageTypeDiscover),
			dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionRapidCommit, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.WriteTo(m.ToBytes(), dst); err != nil {
			t.Fatal(err)
		}
		sent++
		if i%50 == 49 {
			time.Sleep(2 * time.Millisecond) // let the socket buffers breathe
		}
	}
	select {
	case <-killed:
	case <-time.After(20 * time.Second):
		t.Fatalf("never saw %d ACKs (got %d of %d sent)", killAfter, len(acked), sent)
	}
	cmd.Wait()
	<-recvDone

	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	leases, err := NewSQLStore(st).LoadLeases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	held := map[string]Lease{}
	for _, l := range leases {
		held[l.MAC.String()] = l
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("sent %d DISCOVERs, saw %d ACKs before and after SIGKILL, %d leases on disk", sent, len(acked), len(leases))
	for mac, ip := range acked {
		l, ok := held[mac]
		if !ok || l.IP != ip || l.State != StateBound {
			t.Errorf("%s was acknowledged %v but after the crash holds %+v", mac, ip, l)
		}
	}
}
