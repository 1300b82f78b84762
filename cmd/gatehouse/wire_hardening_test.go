package main

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-net/gatehouse/policy/dnsguard"
	"github.com/gatehouse-net/gatehouse/policy/querylog"
	"github.com/gatehouse-net/gatehouse/store"
)

func TestHardeningCountersAreExported(t *testing.T) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "g.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	guard, err := dnsguard.New(dnsguard.Config{Upstreams: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	qlog, err := querylog.New(querylog.Options{Sink: st})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(hardeningCollectors(guard, qlog, st)...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		got[mf.GetName()] = true
	}
	for _, name := range []string{"gatehouse_dns_refused_outside_total", "gatehouse_dns_rate_limited_total", "gatehouse_dns_handler_panics_total",
		"gatehouse_dns_hit_log_dropped_total", "gatehouse_dns_overload_total",
		"gatehouse_dnslog_dropped_total", "gatehouse_dnslog_over_budget_total", "gatehouse_store_write_failures_total", "gatehouse_store_writes_failing"} {
		if !got[name] {
			t.Errorf("%s is not exported", name)
		}
	}
}
