package main

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-net/gatehouse/alert/finding"
	"github.com/gatehouse-net/gatehouse/config"
	"github.com/gatehouse-net/gatehouse/policy/dnsguard"
	"github.com/gatehouse-net/gatehouse/policy/querylog"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
)

// TestEverySourceBecomesAnAlert wires the pipeline as the daemon does and
// publishes what each source publishes: DHCP's unapproved-device and pool
// findings, the portal's brute-force breaker, a refused bypass lookup from
// the DNS guard and RADIUS's unapproved-device. Each becomes an alert; the
// router's own address and a stranger on a segment that allows strangers do
// not.
func TestEverySourceBecomesAnAlert(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(ctx, filepath.Join(dir, "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg, err := config.Parse(filepath.Join(dir, "gatehouse.yaml"), []byte(`site: { name: Test }
database: `+filepath.Join(dir, "gatehouse.db")+`
uplink: { interface: gh-wan-none }
segments:
  - { name: pupil, vlan: 20, interface: gh-pupil-none, subnet: 10.20.0.0/21, gateway: 10.20.0.1 }
  - { name: visitor, vlan: 40, interface: gh-visitor-none, subnet: 10.40.0.0/22, gateway: 10.40.0.1 }
`))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := web.New(web.Options{Store: st, Listen: "127.0.0.1:0", Auto: true, CertFile: filepath.Join(dir, "c.pem"), KeyFile: filepath.Join(dir, "k.pem")})
	if err != nil {
		t.Fatal(err)
	}
	n, err := policyNetwork(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, err := newAlerting(slog.New(slog.DiscardHandler), cfg, n, st, srv, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, c := range a.components() {
		wg.Go(func() {
			if err := c.run(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("%s: %v", c.name, err)
			}
		})
	}

	now := time.Now()
	mac := func(b byte) net.HardwareAddr { return net.HardwareAddr{2, 0, 0, 0, 0, b} }
	a.findings().Offer(finding.NotApproved(finding.SourceDHCP, now, "pupil", mac(1), netip.MustParseAddr("10.20.0.50"), "asked for an address"))
	a.findings().Offer(finding.Finding{Time: now, Source: finding.SourceDHCP, Class: finding.ClassPoolExhausted, Segment: "pupil", Evidence: "no free address"})
	// DHCP, the portal (its breaker) and RADIUS offer to the sink they
	// are constructed with (Options.Findings).
	a.findings().Offer(finding.Finding{Time: now, Source: finding.SourcePortal, Class: finding.ClassCodeGuessing, SrcMAC: mac(2),
		SrcIP: netip.MustParseAddr("10.40.0.60"), Evidence: "30 wrong codes in a minute"})
	// The DNS guard's query log, wired as wireDNS does, turns a refused
	// bypass lookup into a finding and a routine one into none.
	qlog, err := querylog.New(querylog.Options{Sink: st, Findings: a.findings()})
	if err != nil {
		t.Fatal(err)
	}
	qlog.Record(dnsguard.Query{Time: now, Client: netip.MustParseAddr("10.20.0.51"), MAC: mac(3), Segment: "pupil", Name: "dns.google", Type: "A", Action: dnsguard.Blocked})
	qlog.Record(dnsguard.Query{Time: now, Client: netip.MustParseAddr("10.20.0.51"), MAC: mac(3), Segment: "pupil", Name: "example.com", Type: "A", Action: dnsguard.Forwarded})
	a.findings().Offer(finding.NotApproved(finding.SourceRADIUS, now, "pupil", mac(4), netip.Addr{}, "MAB request from an unknown device"))
	// Noise: the router itself, and a stranger where strangers are welcome.
	a.findings().Offer(finding.Finding{Time: now, Source: finding.SourceInspect, Class: finding.ClassTethering, Segment: "pupil", SrcIP: netip.MustParseAddr("10.20.0.1")})
	a.findings().Offer(finding.NotApproved(finding.SourceDHCP, now, "visitor", mac(5), netip.MustParseAddr("10.40.0.70"), "a visitor's phone"))

	want := map[string]string{"unapproved-device|dhcp": "", "pool-exhausted|dhcp": "", "code-guessing|portal": "", "blocked-lookup|dnsguard": "", "unapproved-device|radius": ""}
	deadline := time.Now().Add(20 * time.Second)
	var as []store.Alert
	for {
		as, err = st.ListAlerts(ctx, store.AlertFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(as) >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(as) != len(want) {
		t.Fatalf("%d alerts, want %d (one per source): %+v", len(as), len(want), as)
	}
	fs, err := st.Findings(ctx, store.FindingFilter{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range fs {
		got[f.Class+"|"+f.Source] = true
		if f.SrcIP == netip.MustParseAddr("10.20.0.1") || f.Segment == "visitor" && f.Class == finding.ClassUnapprovedDevice {
			t.Errorf("noise stored as a finding: %+v", f)
		}
	}
	for k := range want {
		if !got[k] {
			t.Errorf("no finding %s stored; stored %v", k, got)
		}
	}
	cancel()
	wg.Wait()
}
