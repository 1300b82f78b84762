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
	if srv := w.dhcp; srv != nil {
		o.Pools = func() []overview.Pool {
			var out []overview.Pool
			for _, seg := range srv.Segments() {
				out = append(out, overview.Pool{Segment: seg.Name, Size: seg.PoolSize()})
			}
			return out
		}
	}
	if enf := w.enf; enf != nil {
		o.KernelCheck = func() overview.KernelCheck {
			st := enf.LastCheck()
			k := overview.KernelCheck{At: st.At, Repairs: st.Repairs, Total: st.Total}
			if st.Err != nil {
				k.Err = st.Err.Error()
			}
			return k
		}
	}
	overview.Register(w.web, o)
	return nil
}
