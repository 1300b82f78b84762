package alert

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store/storetest"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gatehouse-net/gatehouse/store"
)

func TestMetricsCountFindingsAlertsAndOutboxDepth(t *testing.T) {
	st := storetest.Open(t)
	ctx := context.Background()
	pupilDevice(t, st, "Sam Pupil")
	m := NewMetrics(st.OutboxDepth)
	e, err := New(Options{Store: st, Attributor: &Attributor{Records: st}, Immediate: []string{store.ChannelEmail}, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	st.InsertFindings(ctx, []store.Finding{vpn(t0), vpn(t0.Add(time.Second))})
	if err := e.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	want := `
# HELP gatehouse_alert_findings_total Stored findings the alert pipeline handled, by class.
# TYPE gatehouse_alert_findings_total counter
gatehouse_alert_findings_total{class="vpn"} 2
# HELP gatehouse_alert_outbox_depth Notifications waiting in the outbox, by channel.
# TYPE gatehouse_alert_outbox_depth gauge
gatehouse_alert_outbox_depth{channel="digest"} 0
gatehouse_alert_outbox_depth{channel="email"} 1
gatehouse_alert_outbox_depth{channel="syslog"} 0
gatehouse_alert_outbox_depth{channel="webhook"} 0
# HELP gatehouse_alerts_total New alerts, by severity (repeats fold into open alerts and are not counted).
# TYPE gatehouse_alerts_total counter
gatehouse_alerts_total{severity="high"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "gatehouse_alert_findings_total", "gatehouse_alert_outbox_depth", "gatehouse_alerts_total"); err != nil {
		t.Error(err)
	}
}

// TestSyslogOverTLS checks the RFC 5425 path against a TLS listener that
// reads one octet-counted frame (rsyslog's TLS driver is not installed
// here; the plain TCP path is tested against rsyslogd itself).
func TestSyslogOverTLS(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "siem"}, DNSNames: []string{"siem.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- "accept: " + err.Error()
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		n, err := r.ReadString(' ')
		if err != nil {
			got <- "read length: " + err.Error()
			return
		}
		size, _ := strconv.Atoi(strings.TrimSpace(n))
		buf := make([]byte, size)
		if _, err := io.ReadFull(r, buf); err != nil {
			got <- "read frame: " + err.Error()
			return
		}
		got <- string(buf)
	}()
	s := &Syslog{Server: ln.Addr().String(), Hostname: "gh", TLS: &tls.Config{RootCAs: pool, ServerName: "siem.example"}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Send(ctx, store.OutboxItem{ID: 1}, &store.Alert{ID: 5, Class: "tor", Severity: "high", FirstSeen: t0, Count: 1}); err != nil {
		t.Fatal(err)
	}
	if msg := <-got; !strings.HasPrefix(msg, "<162>1 ") || !strings.Contains(msg, `id="5" class="tor"`) {
		t.Errorf("frame %q", msg)
	}
	bad := &Syslog{Server: ln.Addr().String(), TLS: &tls.Config{ServerName: "siem.example"}} // system roots: untrusted
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.(*tls.Conn).Handshake() // fails: the client hangs up on the certificate
			c.Close()
		}
	}()
	if err := bad.Send(ctx, store.OutboxItem{ID: 1}, &store.Alert{ID: 5, Class: "tor", Severity: "high", FirstSeen: t0}); err == nil {
		t.Error("an untrusted certificate was accepted")
	}
}
