//go:build linux

package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/gatehouse-net/gatehouse/inspect"
	"github.com/gatehouse-net/gatehouse/policy/dnsguard"
)

// TestGuardQueriesReachInspection: the daemon's capture leaves the
// segments' queries to the guard out (wireInspect's OwnDNSClients), so a
// bypass-looking query sent to the guard is only flagged if the guard
// hands it to inspection as wireDNS wires it (guardQueries). A pupil's
// iodine-style stream of NULL queries for encoded subdomains, sent to a
// real guard on loopback, must become a tunnel finding of the pupil's
// segment naming the pupil and the guard; without the hand-off (Queries
// unset) nothing is flagged and the test fails.
func TestGuardQueriesReachInspection(t *testing.T) {
	const pupil = "127.0.0.2"
	upstream := startNXDomainUpstream(t)

	var mu sync.Mutex
	var findings []inspect.Finding
	var segments []string
	site := inspect.NewSite(inspect.SiteOptions{
		Interfaces:    []inspect.Interface{{Name: "staff0", Segment: "staff"}, {Name: "pupil0", Segment: "pupil"}},
		InsideSubnets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Sink: func(segment string) inspect.Sink {
			return inspect.SinkFunc(func(f inspect.Finding) {
				mu.Lock()
				defer mu.Unlock()
				findings = append(findings, f)
				segments = append(segments, segment)
			})
		},
	})
	guard, err := dnsguard.New(dnsguard.Config{
		Upstreams: []netip.AddrPort{upstream},
		Segments: []dnsguard.SegmentPolicy{
			{Name: "pupil", Subnet: netip.MustParsePrefix(pupil + "/32")},
			{Name: "staff", Subnet: netip.MustParsePrefix("127.0.0.3/32")},
		},
		ClientQPS: -1,
		Queries:   guardQueries(site, map[string]netip.Addr{"pupil": netip.MustParseAddr("127.0.0.1")}),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- guard.ServeConns(ctx, pc, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeConns: %v", err)
		}
	}()

	c := &dns.Client{Net: "udp", Timeout: 5 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(pupil)}}}
	for i := range 12 {
		m := new(dns.Msg)
		m.SetQuestion(fmt.Sprintf("0%cr7vq2x4k9mz3tb8.t.pirate.sea.", 'a'+i), dns.TypeNULL)
		if _, _, err := c.Exchange(m, pc.LocalAddr().String()); err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		got, segs := append([]inspect.Finding(nil), findings...), append([]string(nil), segments...)
		mu.Unlock()
		for i, f := range got {
			if f.Class == inspect.ClassTunnel && f.SrcIP == netip.MustParseAddr(pupil) &&
				f.DstIP == netip.MustParseAddr("127.0.0.1") && f.DstPort == 53 && segs[i] == "pupil" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no tunnel finding of the pupil segment naming %s and the guard; findings: %v (segments %v)", pupil, got, segs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startNXDomainUpstream is a resolver on loopback that answers every name
// NXDOMAIN, as the school's would a tunnel's made-up names.
func startNXDomainUpstream(t *testing.T) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeNameError)
		_ = w.WriteMsg(m)
	})}
	go func() { _ = s.ActivateAndServe() }()
	t.Cleanup(func() { _ = s.Shutdown() })
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}
