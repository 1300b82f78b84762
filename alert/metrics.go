package alert

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the alert pipeline's Prometheus series: findings by class,
// alerts by severity, the time from a finding to its notification, and the
// outbox's depth (read from the database at scrape time).
type Metrics struct {
	Findings *prometheus.CounterVec   // class
	Alerts   *prometheus.CounterVec   // severity
	Latency  *prometheus.HistogramVec // channel
	depth    *prometheus.Desc
	outbox   func(ctx context.Context) (map[string]int, error)
}

// NewMetrics returns the series; outboxDepth is usually
// (*store.Store).OutboxDepth. Register the result on the daemon's registry.
func NewMetrics(outboxDepth func(ctx context.Context) (map[string]int, error)) *Metrics {
	return &Metrics{
		Findings: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_alert_findings_total",
			Help: "Stored findings the alert pipeline handled, by class."}, []string{"class"}),
		Alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_alerts_total",
			Help: "New alerts, by severity (repeats fold into open alerts and are not counted)."}, []string{"severity"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gatehouse_alert_notification_seconds",
			Help:    "Time from a finding to the delivery of its alert's notification, by channel.",
			Buckets: []float64{1, 2, 5, 10, 30, 60, 120, 300, 900, 3600}}, []string{"channel"}),
		depth:  prometheus.NewDesc("gatehouse_alert_outbox_depth", "Notifications waiting in the outbox, by channel.", []string{"channel"}, nil),
		outbox: outboxDepth,
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.Findings.Describe(ch)
	m.Alerts.Describe(ch)
	m.Latency.Describe(ch)
	ch <- m.depth
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.Findings.Collect(ch)
	m.Alerts.Collect(ch)
	m.Latency.Collect(ch)
	if m.outbox == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	depth, err := m.outbox(ctx)
	if err != nil {
		return
	}
	for _, c := range []string{"email", "digest", "webhook", "syslog"} {
		ch <- prometheus.MustNewConstMetric(m.depth, prometheus.GaugeValue, float64(depth[c]), c)
	}
}
