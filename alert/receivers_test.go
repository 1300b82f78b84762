package alert

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store/storetest"

	"github.com/gatehouse-net/gatehouse/alert/alerttest"
	"github.com/gatehouse-net/gatehouse/alert/finding"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
)

// TestEmailReachesARealSMTPServerAcrossAnOutage delivers alert emails over
// STARTTLS to aiosmtpd in the testbed's management namespace, then stops
// the server, queues another alert, and starts it again: the email still
// arrives, from the outbox in the database.
func TestEmailReachesARealSMTPServerAcrossAnOutage(t *testing.T) {
	s := testbed.New(t, testbed.Options{})
	srv := alerttest.StartSMTP(t, s, "mgmt", testbed.MgmtClientIP+":2525")
	st := storetest.Open(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pupilDeviceAt(t, st, "Sam Pupil", time.Now())

	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return s.DialContext(ctx, "router", network, addr)
	}
	m, err := NewMailer(MailOptions{Server: srv.Addr, From: "gatehouse@school.example", To: []string{"dsl@school.example"},
		StartTLS: StartTLSAlways, TLS: srv.TLSConfig(), Dial: dial, Location: time.UTC, Site: "Hillside",
		Link: func(id int64) string { return fmt.Sprintf("https://10.99.0.1:8443/alerts/%d", id) }})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Options{Store: st, Attributor: &Attributor{Records: st}, Immediate: []string{store.ChannelEmail}})
	if err != nil {
		t.Fatal(err)
	}
	o, err := NewOutbox(OutboxOptions{Store: st, Channels: map[string]Channel{store.ChannelEmail: m}, RetryMin: 200 * time.Millisecond, RetryMax: time.Second,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e.opt.Delivered = o.Poke
	done := make(chan struct{})
	go func() { defer close(done); o.Run(ctx) }()
	defer func() { cancel(); <-done }()

	now := time.Now()
	st.InsertFindings(ctx, []store.Finding{vpn(now)})
	if err := e.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	msg, ok := srv.WaitFor(30*time.Second, "Sam Pupil", "LAPTOP-0042", "VPN use")
	if !ok {
		for _, m := range srv.Messages() {
			t.Logf("delivered: %q\n%s", alerttest.Subject(m), m.Body)
		}
		t.Fatalf("no email naming the pupil and the device within 30s; server log:\n%s", srv.Log())
	}
	if !strings.Contains(alerttest.Subject(msg), "Sam Pupil") || !strings.Contains(msg.Body, "/alerts/") {
		t.Errorf("email %q:\n%s", alerttest.Subject(msg), msg.Body)
	}
	t.Logf("first email arrived %v after the finding", msg.Arrived.Sub(now))

	// Outage: the server goes away, an alert is raised, attempts fail.
	srv.Stop()
	st.InsertFindings(ctx, []store.Finding{{At: time.Now(), Source: "inspect", Class: "tor", Segment: "pupil", SrcIP: pupilIP}})
	if err := e.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		items, _ := st.DueOutbox(ctx, time.Now().Add(time.Hour), 10)
		if len(items) == 1 && items[0].Attempts >= 2 && items[0].LastError != "" {
			t.Logf("while the server is down: %d attempts, last error %q", items[0].Attempts, items[0].LastError)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the outbox did not retry while the server was down: %+v", items)
		}
		time.Sleep(100 * time.Millisecond)
	}
	srv.Start()
	if _, ok := srv.WaitFor(30*time.Second, "Tor use", "Sam Pupil"); !ok {
		t.Fatalf("the email raised during the outage never arrived; server log:\n%s", srv.Log())
	}
	// The message reaches the Maildir a moment before the outbox records
	// it sent: wait for that, bounded.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		d, _ := st.OutboxDepth(ctx)
		if d[store.ChannelEmail] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("outbox depth %v 10s after delivery", d)
			break
		}
	}
}

// TestSyslogReachesRsyslog sends an alert to Debian's rsyslogd, which must
// parse it as RFC 5424 with our structured data.
func TestSyslogReachesRsyslog(t *testing.T) {
	s := testbed.New(t, testbed.Options{})
	r := alerttest.StartRsyslog(t, s, "mgmt", testbed.MgmtClientIP+":5514")
	sl := &Syslog{Server: r.Addr, Hostname: "gatehouse-test", Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return s.DialContext(ctx, "router", network, addr)
	}}
	a := &store.Alert{ID: 42, Class: "vpn", Severity: "high", FirstSeen: t0, LastSeen: t0, Count: 3, PersonName: "Sam Pupil",
		PersonGroup: "Year 9, 9B", SrcMAC: pupilMAC, SrcIP: pupilIP, Room: "B12", AttributedBy: ByLease}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sl.Send(ctx, store.OutboxItem{ID: 1}, a); err != nil {
		t.Fatal(err)
	}
	line, ok := r.WaitFor(15*time.Second, `gatehouse|alert|[gatehouse@32473 id="42"`, `person="Sam Pupil"`, `room="B12"`, "VPN use")
	if !ok {
		t.Fatalf("rsyslog did not log the alert as RFC 5424 with its structured data; file:\n%s\nrsyslogd:\n%s", line, r.Log())
	}
}

// TestSyslogOverTLSReachesRsyslog sends an alert over TLS (RFC 5425) to
// rsyslogd's GnuTLS listener, with a certificate made for the test; a
// client that does not trust the certificate sends nothing.
func TestSyslogOverTLSReachesRsyslog(t *testing.T) {
	s := testbed.New(t, testbed.Options{})
	r := alerttest.StartRsyslogTLS(t, s, "mgmt", testbed.MgmtClientIP+":6514")
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return s.DialContext(ctx, "router", network, addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := &store.Alert{ID: 43, Class: "tor", Severity: "high", FirstSeen: t0, LastSeen: t0, Count: 1, PersonName: "Sam Pupil",
		PersonGroup: "Year 9, 9B", SrcMAC: pupilMAC, SrcIP: pupilIP, Room: "B12", AttributedBy: ByRADIUS}

	untrusted := &Syslog{Server: r.Addr, Hostname: "gatehouse-test", Dial: dial,
		TLS: &tls.Config{ServerName: r.TLSConfig().ServerName, MinVersion: tls.VersionTLS12}} // the system roots only
	if err := untrusted.Send(ctx, store.OutboxItem{ID: 1}, &store.Alert{ID: 44, Class: "vpn", Severity: "high", FirstSeen: t0, LastSeen: t0, Count: 1}); err == nil {
		t.Error("sent over TLS to a server whose certificate nobody trusts")
	}

	sl := &Syslog{Server: r.Addr, Hostname: "gatehouse-test", Dial: dial, TLS: r.TLSConfig()}
	if err := sl.Send(ctx, store.OutboxItem{ID: 2}, a); err != nil {
		t.Fatalf("send over TLS: %v\nrsyslogd:\n%s", err, r.Log())
	}
	line, ok := r.WaitFor(15*time.Second, `gatehouse|alert|[gatehouse@32473 id="43"`, `person="Sam Pupil"`, `room="B12"`, "Tor use")
	if !ok {
		t.Fatalf("rsyslog's TLS listener did not log the alert as RFC 5424; file:\n%s\nrsyslogd:\n%s", line, r.Log())
	}
	t.Logf("rsyslog over TLS logged: %s", line)
	if b, _ := os.ReadFile(r.File); strings.Contains(string(b), `id="44"`) {
		t.Error("the alert sent to an untrusted certificate was logged")
	}
}

// testWriter sends a logger's lines to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestEmailWithAUTHOverSTARTTLS authenticates to a real server that
// requires AUTH after STARTTLS; a wrong password is an error the outbox
// would retry.
func TestEmailWithAUTHOverSTARTTLS(t *testing.T) {
	s := testbed.New(t, testbed.Options{})
	srv := alerttest.StartAuthSMTP(t, s, "mgmt", testbed.MgmtClientIP+":2526", "gatehouse", "s3cret-pass")
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return s.DialContext(ctx, "router", network, addr)
	}
	opts := MailOptions{Server: srv.Addr, From: "gatehouse@school.example", To: []string{"dsl@school.example"}, StartTLS: StartTLSAlways,
		TLS: srv.TLSConfig(), Dial: dial, Username: "gatehouse", Password: "s3cret-pass"}
	m, err := NewMailer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := m.SendMail(ctx, "test with auth", "hello DSL"); err != nil {
		t.Fatalf("send with the right password: %v\n%s", err, srv.Log())
	}
	if _, ok := srv.WaitFor(10*time.Second, "test with auth", "hello DSL"); !ok {
		t.Fatalf("not delivered:\n%s", srv.Log())
	}
	opts.Password = "wrong"
	bad, _ := NewMailer(opts)
	// aiosmtpd does not answer a refused AUTH before our deadline; either
	// way it is an error at AUTH and nothing is delivered.
	bctx, bcancel := context.WithTimeout(ctx, 3*time.Second)
	err = bad.SendMail(bctx, "wrong password", "y")
	bcancel()
	if err == nil || !strings.Contains(err.Error(), "AUTH") {
		t.Errorf("wrong password: %v, want an AUTH error", err)
	}
	opts.Password, opts.StartTLS, opts.TLS = "s3cret-pass", StartTLSNever, nil
	plain, _ := NewMailer(opts)
	if err := plain.SendMail(ctx, "x", "y"); err == nil {
		t.Error("a password was sent without TLS")
	}
	for _, m := range srv.Messages() {
		if alerttest.Subject(m) != "test with auth" {
			t.Errorf("delivered without the right password over TLS: %q", alerttest.Subject(m))
		}
	}
}

// stepClock is a clock the test moves on; After fires when it is moved.
type stepClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []chan time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) After(time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, ch)
	return ch
}

func (c *stepClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	for _, ch := range c.waiters {
		ch <- t
	}
	c.waiters = nil
}

// TestDigestReachesARealSMTPServerAtItsTime: lower-severity alerts
// accumulate over a Sunday; nothing is mailed for them until the schedule's
// Monday 07:30 comes on the digest's clock, when one digest listing them
// (and not the high-severity alert, which was mailed at once) arrives in
// aiosmtpd's Maildir.
func TestDigestReachesARealSMTPServerAtItsTime(t *testing.T) {
	s := testbed.New(t, testbed.Options{})
	srv := alerttest.StartSMTP(t, s, "mgmt", testbed.MgmtClientIP+":2527")
	st := storetest.Open(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sunday := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := &stepClock{now: sunday}
	pupilDeviceAt(t, st, "Sam Pupil", sunday.Add(2*time.Hour))

	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return s.DialContext(ctx, "router", network, addr)
	}
	m, err := NewMailer(MailOptions{Server: srv.Addr, From: "gatehouse@school.example", To: []string{"dsl@school.example"},
		StartTLS: StartTLSAlways, TLS: srv.TLSConfig(), Dial: dial, Location: time.UTC, Site: "Hillside",
		Link: func(id int64) string { return fmt.Sprintf("https://10.99.0.1:8443/alerts/%d", id) }})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	o, err := NewOutbox(OutboxOptions{Store: st, Channels: map[string]Channel{store.ChannelEmail: m, store.ChannelDigest: m},
		RetryMin: 200 * time.Millisecond, RetryMax: time.Second, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Options{Store: st, Attributor: &Attributor{Records: st}, Immediate: []string{store.ChannelEmail},
		Now: clock.Now, Delivered: o.Poke})
	if err != nil {
		t.Fatal(err)
	}
	d := &Digest{Store: st, Mailer: m, Schedule: Schedule{Weekday: time.Monday, Hour: 7, Minute: 30, Location: time.UTC},
		Now: clock.Now, After: clock.After, Queued: o.Poke, Logger: log}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); o.Run(ctx) }()
	go func() { defer wg.Done(); d.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()

	// The digest's first start records Sunday noon as the period's start.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if p, _ := st.AlertProgress(ctx, digestProgress); p != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the digest did not start its first period")
		}
	}
	// Sunday afternoon: two medium and one low alert, and one high.
	at := sunday.Add(2 * time.Hour)
	lower := []store.Finding{
		{At: at, Source: finding.SourceInspect, Class: finding.ClassDoH, Segment: "pupil", SrcIP: pupilIP, DstIP: netip.MustParseAddr("192.0.2.53"), DstPort: 443, Proto: "tcp", Detail: "dns.example"},
		{At: at.Add(time.Minute), Source: finding.SourceInspect, Class: finding.ClassSSH, Segment: "pupil", SrcIP: pupilIP, DstIP: netip.MustParseAddr("192.0.2.22"), DstPort: 22, Proto: "tcp"},
		{At: at.Add(2 * time.Minute), Source: finding.SourceDNSGuard, Class: finding.ClassBlockedLookup, Segment: "pupil", SrcIP: pupilIP, Proto: "dns", Detail: "vpn.example"},
	}
	for i, f := range append(lower, vpn(at.Add(3*time.Minute))) {
		clock.mu.Lock()
		clock.now = f.At
		clock.mu.Unlock()
		if err := st.InsertFindings(ctx, []store.Finding{f}); err != nil {
			t.Fatal(err)
		}
		if err := e.Drain(ctx); err != nil {
			t.Fatalf("finding %d: %v", i, err)
		}
	}
	if _, ok := srv.WaitFor(30*time.Second, "VPN use", "Sam Pupil"); !ok {
		t.Fatalf("the high-severity alert was not mailed at once; server log:\n%s", srv.Log())
	}
	for _, msg := range srv.Messages() {
		if strings.Contains(alerttest.Subject(msg), "[Digest]") {
			t.Fatalf("a digest was mailed before its time: %q", alerttest.Subject(msg))
		}
	}

	// Monday 07:30 comes on the digest's clock.
	monday := time.Date(2026, 3, 2, 7, 30, 1, 0, time.UTC)
	clock.Set(monday)
	msg, ok := srv.WaitFor(30*time.Second, "[Digest]", "Sam Pupil")
	if !ok {
		for _, m := range srv.Messages() {
			t.Logf("delivered: %q\n%s", alerttest.Subject(m), m.Body)
		}
		t.Fatalf("no digest within 30s of Monday 07:30; server log:\n%s", srv.Log())
	}
	t.Logf("digest %q:\n%s", alerttest.Subject(msg), msg.Body)
	for _, c := range []string{finding.ClassDoH, finding.ClassSSH, finding.ClassBlockedLookup} {
		if !strings.Contains(msg.Body, MeaningOf(c).Title) {
			t.Errorf("the digest does not list the %s alert (%q)", c, MeaningOf(c).Title)
		}
	}
	if strings.Contains(msg.Body, MeaningOf(finding.ClassVPN).Title) {
		t.Error("the digest repeats the high-severity alert that was mailed at once")
	}
	if !strings.Contains(alerttest.Subject(msg), "3 alert(s)") || strings.Count(msg.Body, "/alerts/") != 3 {
		t.Errorf("digest %q should list exactly the 3 lower-severity alerts", alerttest.Subject(msg))
	}
	n := 0
	for _, m := range srv.Messages() {
		if strings.Contains(alerttest.Subject(m), "[Digest]") {
			n++
		}
	}
	fmt.Printf("digest: %d lower-severity alerts accumulated on Sunday arrived in one digest at Monday 07:30 (digest clock); %d digest(s) in the Maildir\n", 3, n)
}
