package radius

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"layeh.com/radius"
)

// Drop reasons, the values of the "reason" label.
const (
	dropUnknownClient   = "unknown_client"
	dropShort           = "short"
	dropOversize        = "oversize"
	dropBadLength       = "bad_length"
	dropBadAttribute    = "bad_attribute"
	dropUnexpectedCode  = "unexpected_code"
	dropNoMA            = "no_message_authenticator"
	dropBadMA           = "bad_message_authenticator"
	dropBadAuthenticatr = "bad_authenticator" // an accounting request signed with another secret
	dropDuplicate       = "duplicate_in_progress"
	dropOverload        = "overload"
	dropPanic           = "panic"
	dropStoreError      = "store_error"
	dropRejectQueueFull = "reject_queue_full"
	dropBadEAPOLKey     = "bad_eapol_key" // a malformed 4-way handshake (wpa_psk_radius=3)
)

// unknownClient labels what came from no configured client.
const unknownClient = "(unknown)"

// metrics counts per client. Labels are bounded: client names come from the
// configuration (plus unknownClient), the other labels from this package's
// constants.
type metrics struct {
	requests  *prometheus.CounterVec
	responses *prometheus.CounterVec
	drops     *prometheus.CounterVec
	retrans   *prometheus.CounterVec
	coa       *prometheus.CounterVec
	passwords *prometheus.CounterVec
	inFlight  prometheus.GaugeFunc
	// cachedPasswords is passwords{how="cached"}, resolved once: it counts
	// every cached PAP answer, where WithLabelValues hashed the label each
	// time.
	cachedPasswords prometheus.Counter
}

// passwordCached counts a password decided by the credential cache.
func (m *metrics) passwordCached() { m.cachedPasswords.Inc() }

func newMetrics(inFlight func() float64) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_radius_requests_total", Help: "RADIUS requests received, by client and code.",
		}, []string{"client", "code"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_radius_responses_total", Help: "RADIUS responses sent (first time, not replays), by client and code.",
		}, []string{"client", "code"}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_radius_drops_total", Help: "RADIUS datagrams dropped without an answer, by client and reason.",
		}, []string{"client", "reason"}),
		retrans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_radius_retransmissions_total", Help: "Retransmitted requests answered from the duplicate cache, by client.",
		}, []string{"client"}),
		coa: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_radius_coa_total", Help: "Disconnect and CoA requests sent, by client and outcome (ack, nak, timeout, error).",
		}, []string{"client", "outcome"}),
		passwords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_radius_password_checks_total",
			Help: "PAP and TTLS-PAP password checks, by how they were decided: argon2id (a full verification), cached (the same password verified against the same hash within the credential cache's expiry).",
		}, []string{"how"}),
		inFlight: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gatehouse_radius_in_flight", Help: "RADIUS requests being handled now.",
		}, inFlight),
	}
	m.cachedPasswords = m.passwords.WithLabelValues("cached")
	return m
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.responses, m.drops, m.retrans, m.coa, m.passwords, m.inFlight}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

// hotCounters are one client's counters of the common case (an
// Access-Request received, an Access-Accept or Access-Reject sent), each
// resolved from its vector on first use and kept: WithLabelValues hashes
// the labels and searches the vector on every call, which on the daemon
// under MAB load was about 2% of its CPU (bench/radius.sh, PERF). Resolved
// lazily, so a client that never sends shows no series, as before.
type hotCounters struct {
	accessRequests atomic.Pointer[prometheus.Counter]
	accepts        atomic.Pointer[prometheus.Counter]
	rejects        atomic.Pointer[prometheus.Counter]
	// challenges: every EAP round but a login's last answers with one
	// (seven per PEAP login), so it is as hot as the others.
	challenges atomic.Pointer[prometheus.Counter]
}

// hotCounter returns *slot, resolving it from v with the labels first.
// Two goroutines resolving at once get the same counter from v.
func hotCounter(slot *atomic.Pointer[prometheus.Counter], v *prometheus.CounterVec, client, code string) prometheus.Counter {
	if c := slot.Load(); c != nil {
		return *c
	}
	c := v.WithLabelValues(client, code)
	slot.Store(&c)
	return c
}

// request is c's counter of requests with code. c is one of the server's
// clients (New gives each its hot counters).
func (m *metrics) request(c *Client, code radius.Code) prometheus.Counter {
	if code == radius.CodeAccessRequest {
		return hotCounter(&c.hot.accessRequests, m.requests, c.Name, code.String())
	}
	return m.requests.WithLabelValues(c.Name, code.String())
}

// response is c's counter of responses with code.
func (m *metrics) response(c *Client, code radius.Code) prometheus.Counter {
	switch code {
	case radius.CodeAccessAccept:
		return hotCounter(&c.hot.accepts, m.responses, c.Name, code.String())
	case radius.CodeAccessReject:
		return hotCounter(&c.hot.rejects, m.responses, c.Name, code.String())
	case radius.CodeAccessChallenge:
		return hotCounter(&c.hot.challenges, m.responses, c.Name, code.String())
	}
	return m.responses.WithLabelValues(c.Name, code.String())
}
