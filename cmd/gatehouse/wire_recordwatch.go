package main

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-net/gatehouse/internal/recordwatch"
)

// wireRecordWatch raises the alarm when records are lost or the database's
// disk is nearly full: a log line, a finding through the alert pipeline,
// lines on the admin home page and gauges for a scrape.
func wireRecordWatch(_ context.Context, w *wiring) error {
	sources := []recordwatch.Source{
		{Name: "DNS log queue full", Dropped: func() uint64 { return w.qlog.Stats().Dropped }},
		{Name: "DNS log writes failed", Dropped: func() uint64 { return w.qlog.Stats().Failed }},
		{Name: "findings queue full", Dropped: func() uint64 { return w.alerts.sink.Stats().Dropped }},
		{Name: "findings writes failed", Dropped: func() uint64 { return w.alerts.sink.Stats().WriteErrors }},
		{Name: "database writes failed", Dropped: func() uint64 { return w.store.WriteHealth().Failures }},
	}
	rw, err := recordwatch.New(recordwatch.Options{Path: w.cfg.Database, Sources: sources, Findings: w.alerts.findings(), Logger: w.log.With("component", "recordwatch")})
	if err != nil {
		return err
	}
	w.web.AddAlarms(func() []string { return rw.Status().Alarms() })
	w.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gatehouse_disk_free_bytes", Help: "Free space on the database's file system."},
			func() float64 { return float64(rw.Status().Disk.Free) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gatehouse_disk_low", Help: "1 while the database's disk is under the free-space threshold."},
			func() float64 {
				if rw.Status().DiskLow {
					return 1
				}
				return 0
			}),
	)
	w.recordwatch = rw
	w.run("record watch", rw.Run)
	return nil
}
