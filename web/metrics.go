package web

import (
	"fmt"

	"github.com/gatehouse-net/gatehouse/web/httpx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the web's own Prometheus series.
type metrics struct {
	logins   *prometheus.CounterVec // result: success | failure
	lockouts prometheus.Counter
}

// newMetrics creates the series and registers them on reg (when not nil).
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_web_logins_total",
			Help: "Admin login attempts by result (success or failure; failures include locked accounts and throttled addresses).",
		}, []string{"result"}),
		lockouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_web_account_lockouts_total",
			Help: "Admin accounts locked after repeated bad passwords.",
		}),
	}
	// Both results exist from the start, so a rate() over them is defined
	// before the first failure.
	m.logins.WithLabelValues("success")
	m.logins.WithLabelValues("failure")
	if reg != nil {
		for _, c := range []prometheus.Collector{m.logins, m.lockouts} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("web: register metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (s *Server) metricsHandler() httpx.HandlerFunc {
	h := promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      promErrorLog{s},
	})
	return func(c *httpx.Context) { h.ServeHTTP(c.Writer, c.Request) }
}

// promErrorLog sends promhttp's gathering errors to the server's logger.
type promErrorLog struct{ s *Server }

func (l promErrorLog) Println(v ...any) { l.s.log.Warn("web: metrics", "err", fmt.Sprint(v...)) }
