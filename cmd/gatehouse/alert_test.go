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

	"github.com/gatehouse-net/gatehouse/alert"
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

// TestRADIUSAndPeopleAttributeAnAlert: an accounting session (as the RADIUS
// server records it) and a person in the people table, read through the
// daemon's adapters, name the pupil, the room and the SSID.
func TestRADIUSAndPeopleAttributeAnAlert(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().Truncate(time.Second)
	mac := net.HardwareAddr{0x00, 0x1c, 0xb3, 1, 2, 3}
	ap := net.HardwareAddr{0x00, 0x11, 0x22, 0x33, 0x44, 0x55}
	ip := netip.MustParseAddr("10.20.3.7")
	if _, err := st.CreatePerson(ctx, "test", store.Person{Kind: "pupil", UPN: "A123456789012", AdmissionNo: "S1042", Username: "sam.pupil",
		LegalForename: "Samuel", PreferredForename: "Sam", LegalSurname: "Pupil", YearGroup: "9", RegGroup: "9B"}, now); err != nil {
		t.Fatal(err)
	}
	if err := st.SetAPRoom(ctx, "test", ap, "B12 Science"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RecordAccounting(ctx, store.AccountingUpdate{Status: store.AcctStart, NAS: "aps", NASAddr: netip.MustParseAddr("10.99.0.10"),
		AcctSessionID: "s1", Username: "sam.pupil", Person: "sam.pupil", MAC: mac, IP: ip, AP: ap.String(), SSID: "School-Pupil", At: now.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	e, err := alert.New(alert.Options{Store: st, Attributor: &alert.Attributor{Records: st, Sessions: radiusSessions{st}, People: storePeople{st}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.InsertFindings(ctx, []store.Finding{{At: now, Source: "inspect", Class: "vpn", Segment: "pupil", SrcIP: ip}}); err != nil {
		t.Fatal(err)
	}
	if err := e.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	as, err := st.ListAlerts(ctx, store.AlertFilter{})
	if err != nil || len(as) != 1 {
		t.Fatalf("alerts %+v %v", as, err)
	}
	a := as[0]
	if a.AttributedBy != alert.ByRADIUS || a.PersonName != "Sam Pupil" || a.PersonGroup != "Year 9, 9B" || a.Room != "B12 Science" ||
		a.SSID != "School-Pupil" || a.SrcMAC.String() != mac.String() {
		t.Errorf("alert %+v", a)
	}
}
