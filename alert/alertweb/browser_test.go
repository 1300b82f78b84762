package alertweb

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse-net/gatehouse/alert"
	"github.com/gatehouse-net/gatehouse/alert/alerttest"
	"github.com/gatehouse-net/gatehouse/password"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
	"github.com/gatehouse-net/gatehouse/testbed/browser"
	"github.com/gatehouse-net/gatehouse/web"
)

// TestChromiumDSLFollowsTheEmailToTheIncidentLog: a finding goes through
// the real pipeline to a real SMTP server; the DSL opens the link in the
// email in Debian's chromium (headless, in the testbed's management
// namespace), signs in, lands on the alert, marks it triaged as a true
// positive with a note, and finds it in the incident log.
func TestChromiumDSLFollowsTheEmailToTheIncidentLog(t *testing.T) {
	chromium, s, profile := browser.Prepare(t, testbed.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	dir := t.TempDir()
	st, err := store.Open(ctx, filepath.Join(dir, "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const user, pass = "dsl", "correct horse battery staple"
	hash, err := password.Hash(pass)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateUser(ctx, "test", store.User{Name: user, Role: web.RoleDSL, PasswordHash: hash, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	srv, err := web.New(web.Options{Store: st, Site: "Testbed School", Auto: true,
		CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")})
	if err != nil {
		t.Fatal(err)
	}
	if err := Register(srv, Options{Store: st, Location: time.UTC}); err != nil {
		t.Fatal(err)
	}
	adminURL := browser.Serve(t, s, "mgmt", srv.Handler())

	// The pipeline: a stored finding, the engine, the outbox, a real mail
	// server.
	mailbox := alerttest.StartPlainSMTP(t, s, "mgmt", testbed.MgmtClientIP+":2525")
	mailer, err := alert.NewMailer(alert.MailOptions{Server: mailbox.Addr, From: "gatehouse@school.example", To: []string{"dsl@school.example"},
		StartTLS: alert.StartTLSNever, Location: time.UTC, Link: func(id int64) string { return adminURL + Link(id) },
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return s.DialContext(ctx, "mgmt", network, addr)
		}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := st.InsertFindings(ctx, []store.Finding{{At: now, Source: "inspect", Class: "vpn", Segment: "pupil", SrcIP: netip.MustParseAddr("10.20.0.10"),
		SrcMAC: pupilMAC, DstIP: netip.MustParseAddr("192.0.2.11"), DstPort: 1194, Proto: "udp", Detail: "openvpn", Evidence: "OpenVPN hard reset"}}); err != nil {
		t.Fatal(err)
	}
	if err := st.DecideDevice(ctx, "test", pupilMAC, store.DeviceDecision{Approved: true, Name: "LAPTOP-0042", Owner: "Sam Pupil"}, now); err != nil {
		t.Fatal(err)
	}
	e, err := alert.New(alert.Options{Store: st, Attributor: &alert.Attributor{Records: st}, Immediate: []string{store.ChannelEmail}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	o, err := alert.NewOutbox(alert.OutboxOptions{Store: st, Channels: map[string]alert.Channel{store.ChannelEmail: mailer}})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Deliver(ctx); err != nil {
		t.Fatal(err)
	}
	msg, ok := mailbox.WaitFor(30*time.Second, "Sam Pupil", "VPN use")
	if !ok {
		t.Fatalf("no email; SMTP log:\n%s", mailbox.Log())
	}
	link := regexp.MustCompile(`http://127\.0\.0\.1:\d+/alerts/view\?id=\d+`).FindString(msg.Body)
	if link == "" {
		t.Fatalf("no link to the alert in the email:\n%s", msg.Body)
	}

	tab := browser.Start(t, ctx, s, "mgmt", chromium, profile,
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		"--window-size=390,900") // a phone
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(tab, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	location := func() string {
		t.Helper()
		loc, err := chromedp.Run(tab, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		return loc
	}
	text := func(sel chromedp.CSS) string {
		t.Helper()
		s, err := chromedp.Run(tab, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	submit := func(what string, button chromedp.CSS) int64 {
		t.Helper()
		res, err := chromedp.RunResponse(tab, chromedp.Click(button))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return res.Status
	}

	// A phone's viewport (a window cannot be made that narrow).
	do("emulate a phone", chromedp.EmulateViewport(390, 844))
	do("open the email's link", chromedp.Navigate(link))
	if loc := location(); !strings.HasPrefix(loc, adminURL+"/login") {
		t.Fatalf("the link without a session went to %s, want the sign-in page", loc)
	}
	do("sign in", chromedp.SendKeys(chromedp.ID("name"), user), chromedp.SendKeys(chromedp.ID("password"), pass))
	if st := submit("sign in", chromedp.CSS(`form button[type=submit]`)); st != http.StatusOK || location() != link {
		t.Fatalf("sign-in: %d at %s, want the alert %s", st, location(), link)
	}
	if body := text("body"); !strings.Contains(body, "Sam Pupil") || !strings.Contains(body, "A VPN hides") || !strings.Contains(body, "OpenVPN hard reset") {
		t.Fatalf("the alert page does not show the person, the meaning and the evidence:\n%s", body)
	}
	// A phone's width: the page's content must not scroll sideways (wide
	// tables scroll inside their own box). The shell's header is package
	// web's and not checked here.
	if w, err := chromedp.Run(tab, chromedp.Evaluate[float64](`Math.max(...Array.from(document.querySelectorAll('main *')).map(e => e.getBoundingClientRect().right))`)); err != nil || w > 390 {
		wide, _ := chromedp.Run(tab, chromedp.Evaluate[string](`Array.from(document.querySelectorAll('main *')).filter(e => e.getBoundingClientRect().right > 390).map(e => e.tagName + '.' + e.className).join(' ')`))
		t.Errorf("the alert's content reaches %v px (%v) in a 390 px window: %s", w, err, wide)
	}
	const note = "Spoke to Sam with his head of year; the VPN app is removed."
	do("triage", chromedp.SetValue(chromedp.ID("state"), store.AlertTriaged), chromedp.SetValue(chromedp.ID("outcome"), store.OutcomeTruePositive),
		chromedp.SendKeys(chromedp.ID("note"), note))
	if st := submit("save the triage", chromedp.CSS(`form[action="/alerts/change"] button[type=submit]`)); st != http.StatusOK {
		t.Fatalf("saving the triage: status %d", st)
	}
	if body := text("body"); !strings.Contains(body, "Saved.") || !strings.Contains(body, note) {
		t.Fatalf("after saving, the alert page does not show the note:\n%s", body)
	}
	do("open the incident log", chromedp.Navigate(adminURL+IncidentsPath))
	if body := text("body"); !strings.Contains(body, note) || !strings.Contains(body, "Sam Pupil") || !strings.Contains(body, "LAPTOP-0042") {
		t.Fatalf("the incident log does not have the triaged alert:\n%s", body)
	}
}
