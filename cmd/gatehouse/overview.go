package main

import (
	"context"

	"github.com/gatehouse-net/gatehouse/web/overview"
)

// wireOverview adds the network manager's overview page, reading the store
// and the record watch's disk status (so it comes after wireRecordWatch).
func wireOverview(_ context.Context, w *wiring) error {
	o := overview.Options{
		Source:   w.store,
		Location: w.cfg.Site.Location,
		Logger:   w.log.With("component", "overview"),
	}
	if rw := w.recordwatch; rw != nil {
		o.Health = func() overview.Health {
			st := rw.Status()
			return overview.Health{
				CheckedAt: st.CheckedAt,
				DiskTotal: st.Disk.Total,
				DiskFree:  st.Disk.Free,
				DiskLow:   st.DiskLow,
				DiskErr:   st.DiskErr,
				Alarms:    st.Alarms(),
			}
		}
	}
	overview.Register(w.web, o)
	return nil
}
