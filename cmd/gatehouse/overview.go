package main

import (
	"context"
	"math/big"
	"net/netip"

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
				out = append(out, overview.Pool{Segment: seg.Name, Size: rangeSize(seg.RangeStart, seg.RangeEnd)})
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

// rangeSize counts the addresses from start to end inclusive; 0 for an
// empty or mixed-family range. Capped so an IPv6 range cannot overflow.
func rangeSize(start, end netip.Addr) int {
	if !start.IsValid() || !end.IsValid() || start.Is4() != end.Is4() || end.Less(start) {
		return 0
	}
	n := new(big.Int).Sub(new(big.Int).SetBytes(end.AsSlice()), new(big.Int).SetBytes(start.AsSlice()))
	n.Add(n, big.NewInt(1))
	if !n.IsInt64() || n.Int64() > 1<<30 {
		return 1 << 30
	}
	return int(n.Int64())
}
