package flowlog

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store/storetest"

	"github.com/gatehouse-net/gatehouse/inspect"
	"github.com/gatehouse-net/gatehouse/store"
)

func run(t *testing.T, l *Log) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	return func() { cancel(); <-done }
}

// A replayed OpenVPN session lands in the flow log as one row with its
// class, counts and MAC, on the segment of the engine that saw it.
func TestReplayedFlowsLandInTheLog(t *testing.T) {
	st := storetest.Open(t)
	l, err := New(Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, l)
	e := inspect.NewEngine(inspect.Options{OnFlow: l.ForSegment("pupil")})
	if err := e.ReplayFile(context.Background(), "../../inspect/testdata/recorded/openvpn-udp.pcap"); err != nil {
		t.Fatal(err)
	}
	e.Reset()
	stop()
	c := netip.MustParseAddr("10.20.0.10")
	fs, err := st.DeviceFlows(context.Background(), c, nil, time.Now().Add(-10*365*24*time.Hour), time.Now().Add(365*24*time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	var vpn []store.Flow
	for _, f := range fs {
		if f.Class == inspect.ClassVPN {
			vpn = append(vpn, f)
		}
	}
	if len(vpn) != 1 || !vpn[0].Ended || vpn[0].Segment != "pupil" || vpn[0].ServerPort != 1194 || vpn[0].BytesIn == 0 || len(vpn[0].MAC) != 6 {
		t.Fatalf("vpn flows in the log: %+v (all %d: %+v)", vpn, len(fs), fs)
	}
	t.Logf("flow log: %+v; stats %+v", vpn[0], l.Stats())
}

// One client's flood is bounded per minute (classified flows still kept);
// the client table is bounded.
func TestFlowLogIsBoundedPerClient(t *testing.T) {
	st := storetest.Open(t)
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	l, err := New(Options{Store: st, ClientBudget: 50, ClientTable: 100, Queue: 100000, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	flow := func(i int, class string) store.Flow {
		return store.Flow{Start: now, Last: now, MAC: mac, Client: netip.MustParseAddr("10.20.0.10"), ClientPort: uint16(i),
			Server: netip.MustParseAddr("192.0.2.1"), ServerPort: 80, Proto: "tcp", Class: class}
	}
	for i := range 5000 {
		l.Handle(flow(i, ""))
	}
	l.Handle(flow(6000, "vpn"))
	for i := range 1000 { // many clients, one flow each
		l.Handle(store.Flow{Start: now, Client: netip.AddrFrom4([4]byte{10, 20, byte(i >> 8), byte(i)}), Server: netip.MustParseAddr("192.0.2.1")})
	}
	s := l.Stats()
	t.Logf("5000 flows of one client, 1 classified, 1000 clients: %+v, %d clients tracked", s, l.Clients())
	if s.OverBudget != 5000-50 || l.Clients() > 100 {
		t.Errorf("stats %+v with %d clients tracked, want %d over budget and at most 100 clients", s, l.Clients(), 5000-50)
	}
	stop := run(t, l)
	stop()
	fs, err := st.DeviceFlows(context.Background(), netip.Addr{}, mac, now.Add(-time.Minute), now.Add(time.Minute), 1000)
	if err != nil {
		t.Fatal(err)
	}
	classified := 0
	for _, f := range fs {
		if f.Class == "vpn" {
			classified++
		}
	}
	if len(fs) != 51 || classified != 1 {
		t.Errorf("%d flows of the flooding client stored (%d classified), want 50 and the classified one", len(fs), classified)
	}
}

// Retention purges old flows.
func TestFlowRetention(t *testing.T) {
	st := storetest.Open(t)
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	c, s := netip.MustParseAddr("10.20.0.10"), netip.MustParseAddr("192.0.2.1")
	if err := st.SaveFlows(context.Background(), []store.Flow{{Start: now.Add(-15 * 24 * time.Hour), Client: c, Server: s}, {Start: now.Add(-time.Hour), Client: c, Server: s, ClientPort: 1}}); err != nil {
		t.Fatal(err)
	}
	l, err := New(Options{Store: st, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, l)
	for deadline := time.Now().Add(10 * time.Second); l.Stats().Purged == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if l.Stats().Purged != 1 {
		t.Errorf("stats %+v, want the 15-day-old flow purged", l.Stats())
	}
}
