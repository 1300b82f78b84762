package inspect

import (
	"context"
	"testing"
)

// TestFlowsAreReportedOnceInspectedAndOnceEnded replays a recorded OpenVPN
// session: its flow is reported when it is classified (with the class) and
// again, ended, when its slot is released; every other flow ends once.
func TestFlowsAreReportedOnceInspectedAndOnceEnded(t *testing.T) {
	var got []FlowRecord
	e := NewEngine(Options{OnFlow: func(r FlowRecord) { got = append(got, r) }})
	if err := e.ReplayFile(context.Background(), "testdata/recorded/openvpn-udp.pcap"); err != nil {
		t.Fatal(err)
	}
	e.Reset() // releases every flow
	type key struct {
		c, s  string
		start int64
	}
	ended := map[key]int{}
	vpnOpen, vpnEnded := false, false
	for _, r := range got {
		if !r.Client.IsValid() || !r.Server.IsValid() || r.Start.IsZero() || r.Last.Before(r.Start) || r.Proto == "" {
			t.Errorf("incomplete flow record %+v", r)
		}
		if r.Ended {
			ended[key{r.Client.String(), r.Server.String(), r.Start.UnixNano()}]++
		}
		if r.Class == ClassVPN {
			vpnOpen = vpnOpen || !r.Ended
			vpnEnded = vpnEnded || r.Ended && r.BytesOut > 0 && r.BytesIn > 0 && r.PacketsOut > 0 && len(r.ClientMAC) == 6
		}
	}
	for k, n := range ended {
		if n != 1 {
			t.Errorf("flow %v reported ended %d times", k, n)
		}
	}
	if !vpnOpen || !vpnEnded {
		t.Errorf("the OpenVPN flow was not reported classified (%v) and ended with counts and MAC (%v): %+v", vpnOpen, vpnEnded, got)
	}
	t.Logf("%d flow records, %d flows ended", len(got), len(ended))
}
