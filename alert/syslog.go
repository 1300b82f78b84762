package alert

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
)

// Syslog sends each alert as one RFC 5424 message over TCP (optionally TLS,
// RFC 5425), framed by octet counting (RFC 6587), so a trust's SIEM can
// collect alerts from every school. One connection per message: alerts are
// rare and a fresh connection never writes into a half-dead one.
type Syslog struct {
	Server   string      // host:port
	TLS      *tls.Config // nil: plain TCP
	Hostname string      // default os.Hostname
	Link     func(int64) string
	// Dial opens the TCP connection; nil dials from the process's own
	// network namespace.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
}

// syslog facility local4 (20); severities by alert severity.
const syslogFacility = 20

// sdEscape escapes a PARAM-VALUE (RFC 5424 section 6.3.3).
func sdEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, `]`, `\]`).Replace(s)
}

// Message renders the RFC 5424 message for an alert (without framing).
func (s *Syslog) Message(a store.Alert, at time.Time) string {
	sev := 5 // notice
	switch a.Severity {
	case store.SeverityHigh:
		sev = 2 // critical
	case store.SeverityMedium:
		sev = 4 // warning
	}
	host := s.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	if host == "" {
		host = "-"
	}
	e := EventOf(a, s.Link)
	var sd strings.Builder
	sd.WriteString("[gatehouse@32473")
	for _, kv := range [][2]string{
		{"id", fmt.Sprint(e.ID)}, {"class", e.Class}, {"severity", e.Severity}, {"first_seen", e.FirstSeen.Format(time.RFC3339)},
		{"count", fmt.Sprint(e.Count)}, {"segment", e.Segment}, {"ip", e.IP}, {"mac", e.MAC}, {"device", e.DeviceName},
		{"person", e.Person}, {"group", e.PersonGroup}, {"room", e.Room}, {"ap", e.AccessPoint}, {"attributed_by", e.AttributedBy},
		{"destination", e.Destination},
	} {
		if kv[1] != "" {
			fmt.Fprintf(&sd, ` %s="%s"`, kv[0], sdEscape(kv[1]))
		}
	}
	sd.WriteString("]")
	msg := fmt.Sprintf("%s: %s; %s; %s", MeaningOf(a.Class).Title, WhoText(a), DeviceText(a), WhatText(a))
	return fmt.Sprintf("<%d>1 %s %s gatehouse - alert %s %s", syslogFacility*8+sev, at.UTC().Format(time.RFC3339Nano),
		host, sd.String(), oneLine(msg))
}

// Send implements Channel.
func (s *Syslog) Send(ctx context.Context, it store.OutboxItem, a *store.Alert) error {
	if a == nil {
		return errors.New("syslog: outbox item has no alert")
	}
	msg := s.Message(*a, time.Now())
	dial := s.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	conn, err := dial(ctx, "tcp", s.Server)
	if err != nil {
		return fmt.Errorf("syslog: connect %s: %w", s.Server, err)
	}
	if s.TLS != nil {
		tc := tls.Client(conn, s.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return fmt.Errorf("syslog: TLS with %s: %w", s.Server, err)
		}
		conn = tc
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if _, err := fmt.Fprintf(conn, "%d %s", len(msg), msg); err != nil {
		return fmt.Errorf("syslog: send to %s: %w", s.Server, err)
	}
	// A clean close flushes what was written; a receiver that reset the
	// connection shows here or on the write.
	if tc, ok := conn.(interface{ CloseWrite() error }); ok {
		if err := tc.CloseWrite(); err != nil {
			return fmt.Errorf("syslog: close to %s: %w", s.Server, err)
		}
	}
	return nil
}
