package events

import "github.com/prometheus/client_golang/prometheus"

// Collector exposes the hub's counters in Prometheus form.
type Collector struct {
	hub       *Hub
	published *prometheus.Desc
	dropped   *prometheus.Desc
	queued    *prometheus.Desc
}

// NewCollector returns a collector for hub; register it on the daemon's
// registry.
func NewCollector(hub *Hub) *Collector {
	return &Collector{
		hub:       hub,
		published: prometheus.NewDesc("gatehouse_events_published_total", "Events published on the hub.", nil, nil),
		dropped:   prometheus.NewDesc("gatehouse_events_dropped_total", "Event deliveries dropped because a subscriber's queue was full.", []string{"subscriber"}, nil),
		queued:    prometheus.NewDesc("gatehouse_events_queued", "Events waiting in a subscriber's queue.", []string{"subscriber"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.published
	ch <- c.dropped
	ch <- c.queued
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.published, prometheus.CounterValue, float64(c.hub.Published()))
	// Several subscriptions may share a name (one per worker); Prometheus
	// needs one series per label set, so sum them.
	dropped := map[string]uint64{}
	queued := map[string]int{}
	for _, s := range c.hub.Stats() {
		dropped[s.Name] += s.Dropped
		queued[s.Name] += s.Queued
	}
	for name, d := range dropped {
		ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(d), name)
		ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(queued[name]), name)
	}
}
