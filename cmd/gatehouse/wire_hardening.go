package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-net/gatehouse/policy/dnsguard"
	"github.com/gatehouse-net/gatehouse/policy/querylog"
	"github.com/gatehouse-net/gatehouse/store"
)

// hardeningCollectors export the counters that say a hostile client is at
// work or records are being lost: queries refused to the uplink side, over
// a client's rate, before admission, handler panics, DNS log records left
// out or dropped, and the database failing to store writes. Each is an
// alarm a scrape can alert on.
func hardeningCollectors(guard *dnsguard.Guard, qlog *querylog.Log, st *store.Store) []prometheus.Collector {
	counter := func(name, help string, f func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f()) })
	}
	return []prometheus.Collector{
		counter("gatehouse_dns_refused_outside_total", "DNS queries refused because the client is in no segment (the uplink side).",
			func() uint64 { return guard.Stats().Outside }),
		counter("gatehouse_dns_rate_limited_total", "DNS queries refused over a client's rate.",
			func() uint64 { return guard.Stats().Limited }),
		counter("gatehouse_dns_not_admitted_total", "DNS queries answered NXDOMAIN because the visitor has not redeemed a code.",
			func() uint64 { return guard.Stats().NotAdmitted }),
		counter("gatehouse_dns_handler_panics_total", "DNS queries whose handling panicked (answered SERVFAIL; the guard kept serving).",
			func() uint64 { return guard.Stats().Panics }),
		counter("gatehouse_dnslog_dropped_total", "DNS log records dropped because the write queue was full.",
			func() uint64 { return qlog.Stats().Dropped }),
		counter("gatehouse_dns_hit_log_dropped_total", "Cached DNS answers sent but not recorded because the guard's hit log was full.",
			func() uint64 { return guard.Stats().LogDropped }),
		counter("gatehouse_dns_overload_total", "DNS queries over UDP dropped unanswered because too many were already waiting for an upstream.",
			func() uint64 { return guard.Stats().Overload }),
		counter("gatehouse_dnslog_over_budget_total", "Routine DNS lookups not stored because their client went over its budget for the minute.",
			func() uint64 { return qlog.Stats().OverBudget }),
		counter("gatehouse_store_write_failures_total", "Write transactions the database failed to store (disk full, I/O error).",
			func() uint64 { return st.WriteHealth().Failures }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gatehouse_store_writes_failing",
			Help: "1 while the database's last write failed to store and none has succeeded since."}, func() float64 {
			if st.WriteHealth().Failing {
				return 1
			}
			return 0
		}),
	}
}
