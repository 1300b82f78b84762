package alert

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/smtp"
	"strings"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
)

// STARTTLS modes of a Mailer.
const (
	StartTLSAuto   = "auto"   // use it when the server offers it (default)
	StartTLSAlways = "always" // refuse to send without it
	StartTLSNever  = "never"
)

// MailOptions configure a Mailer.
type MailOptions struct {
	Server   string   // host:port
	From     string   // bare address
	To       []string // the DSL and deputies
	StartTLS string   // StartTLS*; "" means auto
	// TLS is the client configuration for STARTTLS; nil verifies the
	// server's certificate against the system roots for the server's host.
	TLS      *tls.Config
	Username string // "" sends without AUTH
	Password string
	// Hello is the name given in EHLO; default "gatehouse".
	Hello string
	// Link makes the address of an alert's page ("" when there is none).
	Link func(id int64) string
	// Location is the time zone times are written in; nil means time.Local.
	Location *time.Location
	Site     string // the school's name, for subjects
	// Dial opens the connection; nil dials from the process's own network
	// namespace (tests pass the testbed's).
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
}

// Mailer sends alert emails and digests over SMTP. It is a Channel for both
// store.ChannelEmail and store.ChannelDigest.
type Mailer struct {
	opt MailOptions
}

// NewMailer checks opt and returns a mailer.
func NewMailer(opt MailOptions) (*Mailer, error) {
	if opt.Server == "" || opt.From == "" || len(opt.To) == 0 {
		return nil, errors.New("alert: mailer: a server, a from address and at least one recipient are required")
	}
	if _, _, err := net.SplitHostPort(opt.Server); err != nil {
		return nil, fmt.Errorf("alert: mailer: server %q: %w", opt.Server, err)
	}
	switch opt.StartTLS {
	case "":
		opt.StartTLS = StartTLSAuto
	case StartTLSAuto, StartTLSAlways, StartTLSNever:
	default:
		return nil, fmt.Errorf("alert: mailer: starttls %q (want auto, always or never)", opt.StartTLS)
	}
	if opt.Hello == "" {
		opt.Hello = "gatehouse"
	}
	if opt.Location == nil {
		opt.Location = time.Local
	}
	return &Mailer{opt: opt}, nil
}

// digestPayload is a digest's outbox payload: the message, rendered when
// the digest was due, so a retry sends the same text.
type digestPayload struct {
	Subject string `json:"subject"`
	Body    string `json:"body"`
}

// Send implements Channel.
func (m *Mailer) Send(ctx context.Context, it store.OutboxItem, a *store.Alert) error {
	var subject, body string
	switch {
	case it.Channel == store.ChannelDigest:
		var p digestPayload
		if err := json.Unmarshal([]byte(it.Payload), &p); err != nil {
			return fmt.Errorf("digest %d payload: %w", it.ID, err)
		}
		subject, body = p.Subject, p.Body
	case a != nil:
		subject, body = m.AlertMessage(*a)
	default:
		return fmt.Errorf("outbox item %d has no alert", it.ID)
	}
	return m.SendMail(ctx, subject, body)
}

// when formats a time for people.
func (m *Mailer) when(t time.Time) string {
	return t.In(m.opt.Location).Format("Mon 2 Jan 2006 15:04:05 MST")
}

// AlertMessage renders the immediate email about one alert: who, which
// device, where, when and what, in words, and a link to the page with the
// evidence. It holds nothing more: the DNS history and evidence stay on the
// admin page.
func (m *Mailer) AlertMessage(a store.Alert) (subject, body string) {
	mean := MeaningOf(a.Class)
	who := WhoText(a)
	subject = fmt.Sprintf("[%s] %s: %s by %s at %s", strings.ToUpper(a.Severity[:1])+a.Severity[1:], siteOr(m.opt.Site), mean.Title, who,
		a.FirstSeen.In(m.opt.Location).Format("15:04 Mon 2 Jan"))
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", mean.Title)
	fmt.Fprintf(&b, "Who:      %s\n", who)
	fmt.Fprintf(&b, "Device:   %s\n", DeviceText(a))
	if room := RoomText(a); room != "" {
		fmt.Fprintf(&b, "Where:    %s\n", room)
	}
	fmt.Fprintf(&b, "When:     %s\n", m.when(a.FirstSeen))
	fmt.Fprintf(&b, "What:     %s\n", WhatText(a))
	fmt.Fprintf(&b, "Severity: %s\n", a.Severity)
	fmt.Fprintf(&b, "Named by: %s\n\n", HowText(a.AttributedBy))
	fmt.Fprintf(&b, "%s\n\n", wrap(mean.Paragraph, 72))
	if m.opt.Link != nil {
		fmt.Fprintf(&b, "The evidence, the device's activity around that time and the triage form:\n%s\n\n", m.opt.Link(a.ID))
	}
	b.WriteString("Repeats of this from the same person or device are added to the same alert and are not emailed again.\n")
	return subject, b.String()
}

func siteOr(s string) string {
	if s == "" {
		return "Gatehouse"
	}
	return s
}

// SendMail sends one plain-text message to every recipient.
func (m *Mailer) SendMail(ctx context.Context, subject, body string) error {
	return m.SendMailTo(ctx, m.opt.To, subject, body)
}

// SendMailTo sends one plain-text message to the recipients given instead
// of the configured ones, through the same server and with the same From,
// for mail that is not an alert (package people's leavers preview goes to
// the network manager as well as the DSL).
func (m *Mailer) SendMailTo(ctx context.Context, to []string, subject, body string) error {
	if len(to) == 0 {
		return errors.New("smtp: no recipients")
	}
	msg, err := m.compose(to, subject, body)
	if err != nil {
		return err
	}
	dial := m.opt.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	conn, err := dial(ctx, "tcp", m.opt.Server)
	if err != nil {
		return fmt.Errorf("smtp: connect %s: %w", m.opt.Server, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	host, _, _ := net.SplitHostPort(m.opt.Server)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return fmt.Errorf("smtp: greeting from %s: %w", m.opt.Server, err)
	}
	defer c.Close()
	if err := c.Hello(m.opt.Hello); err != nil {
		return fmt.Errorf("smtp: EHLO: %w", err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok && m.opt.StartTLS != StartTLSNever {
		cfg := m.opt.TLS
		if cfg == nil {
			cfg = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		}
		if err := c.StartTLS(cfg); err != nil {
			return fmt.Errorf("smtp: STARTTLS: %w", err)
		}
	} else if m.opt.StartTLS == StartTLSAlways {
		return fmt.Errorf("smtp: %s does not offer STARTTLS and starttls is always", m.opt.Server)
	}
	if m.opt.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", m.opt.Username, m.opt.Password, host)); err != nil {
			return fmt.Errorf("smtp: AUTH as %s: %w", m.opt.Username, err)
		}
	}
	if err := c.Mail(m.opt.From); err != nil {
		return fmt.Errorf("smtp: MAIL FROM: %w", err)
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt); err != nil {
			return fmt.Errorf("smtp: RCPT TO %s: %w", rcpt, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp: DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("smtp: write message: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp: end of message: %w", err)
	}
	if err := c.Quit(); err != nil {
		return fmt.Errorf("smtp: QUIT: %w", err)
	}
	return nil
}

// compose builds the RFC 5322 message: UTF-8 text, quoted-printable, the
// subject encoded, no header injection from any field (they are ours, but a
// device's hostname is a client's text).
func (m *Mailer) compose(to []string, subject, body string) ([]byte, error) {
	id := make([]byte, 12)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	domain := "gatehouse.invalid"
	if i := strings.LastIndexByte(m.opt.From, '@'); i >= 0 {
		domain = m.opt.From[i+1:]
	}
	var b bytes.Buffer
	h := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	h("From", m.opt.From)
	h("To", oneLine(strings.Join(to, ", ")))
	h("Subject", mime.QEncoding.Encode("utf-8", oneLine(subject)))
	h("Date", time.Now().Format(time.RFC1123Z))
	h("Message-ID", "<"+hex.EncodeToString(id)+"@"+domain+">")
	h("MIME-Version", "1.0")
	h("Content-Type", `text/plain; charset="utf-8"`)
	h("Content-Transfer-Encoding", "quoted-printable")
	h("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(strings.ReplaceAll(body, "\n", "\r\n"))); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r < 0x20 {
			return ' '
		}
		return r
	}, s)
}

// wrap breaks text into lines of at most width characters at spaces.
func wrap(s string, width int) string {
	var b strings.Builder
	n := 0
	for i, w := range strings.Fields(s) {
		if i > 0 {
			if n+1+len(w) > width {
				b.WriteByte('\n')
				n = 0
			} else {
				b.WriteByte(' ')
				n++
			}
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}

// WhoText names the person (with group or role), the visitor, or says
// nobody could be named.
func WhoText(a store.Alert) string {
	switch {
	case a.PersonName != "" && a.PersonGroup != "":
		return a.PersonName + " (" + a.PersonGroup + ")"
	case a.PersonName != "":
		return a.PersonName
	case a.Visitor != "":
		return "a visitor (" + a.Visitor + ")"
	case a.DeviceName != "":
		return "the device " + a.DeviceName
	case len(a.SrcMAC) > 0:
		return "an unnamed device " + a.SrcMAC.String()
	case a.SrcIP.IsValid():
		return "the device at " + a.SrcIP.String()
	}
	if a.Segment != "" {
		return "the " + a.Segment + " network"
	}
	return "an unknown device"
}

// DeviceText is the device's name, ID (MAC), address and maker.
func DeviceText(a store.Alert) string {
	var parts []string
	if a.DeviceName != "" {
		parts = append(parts, a.DeviceName)
	} else if a.Hostname != "" {
		parts = append(parts, "calls itself "+a.Hostname)
	}
	if len(a.SrcMAC) > 0 {
		parts = append(parts, "MAC "+a.SrcMAC.String())
	}
	if a.SrcIP.IsValid() {
		parts = append(parts, "IP "+a.SrcIP.String())
	}
	if a.Manufacturer != "" {
		parts = append(parts, "made by "+a.Manufacturer)
	}
	if a.Segment != "" {
		parts = append(parts, "on the "+a.Segment+" network")
	}
	if len(parts) == 0 {
		return "not known"
	}
	return strings.Join(parts, ", ")
}

// RoomText is the room, access point and SSID, when RADIUS told us.
func RoomText(a store.Alert) string {
	var parts []string
	if a.Room != "" {
		parts = append(parts, a.Room)
	}
	if a.AccessPoint != "" {
		parts = append(parts, "access point "+a.AccessPoint)
	}
	if a.SSID != "" {
		parts = append(parts, "Wi-Fi "+a.SSID)
	}
	return strings.Join(parts, ", ")
}

// WhatText is what was attempted.
func WhatText(a store.Alert) string {
	s := MeaningOf(a.Class).Title
	if a.Class == "unapproved-device" {
		s += ": " + Label(store.Finding{Class: a.Class, Detail: a.Detail})
	} else if a.Detail != "" {
		s += " (" + a.Detail + ")"
	}
	if a.Destination != "" {
		s += " to " + a.Destination
	}
	return s
}

// HowText says in words how the alert was attributed.
func HowText(by string) string {
	switch by {
	case ByRADIUS:
		return "the Wi-Fi login (RADIUS session) that held the address then"
	case ByPortal:
		return "the visitor code redeemed on the device"
	case ByLease:
		return "the address the school's DHCP server had given the device, and the device's owner"
	case ByDevice:
		return "the device's record (no address lease at that time)"
	}
	return "nothing: no login, visitor code or lease matched"
}
