package findingstore

import "github.com/prometheus/client_golang/prometheus"

// Collector exposes a sink's counters in Prometheus form.
type Collector struct {
	sink  *Sink
	descs [8]*prometheus.Desc
}

// NewCollector returns a collector for s; register it on the daemon's
// registry.
func NewCollector(s *Sink) *Collector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("gatehouse_findings_"+name, help, nil, nil)
	}
	return &Collector{sink: s, descs: [8]*prometheus.Desc{
		d("received_total", "Findings handed to the store sink by every source."),
		d("ignored_total", "Findings dropped as noise (the router's own addresses, strangers where they are welcome)."),
		d("dropped_total", "Findings lost because the sink's queue was full (0: a full queue spills to a direct write)."),
		d("spilled_total", "Findings that met a full queue and were written at once by their source (back-pressure)."),
		d("stored_total", "Findings written to the database."),
		d("write_errors_total", "Findings in batches the database refused."),
		d("purged_total", "Findings deleted by retention."),
		d("over_budget_total", "Findings not stored: their device went over its per-minute budget with nothing new."),
	}}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.sink.Stats()
	for i, v := range []uint64{st.Received, st.Ignored, st.Dropped, st.Spilled, st.Stored, st.WriteErrors, st.Purged, st.OverBudget} {
		ch <- prometheus.MustNewConstMetric(c.descs[i], prometheus.CounterValue, float64(v))
	}
}
