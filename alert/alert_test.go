package alert

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store/storetest"

	"github.com/gatehouse-net/gatehouse/alert/finding"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/store"
)

var (
	t0        = time.Date(2026, 3, 2, 10, 41, 7, 0, time.UTC)
	pupilMAC  = net.HardwareAddr{0x00, 0x1c, 0xb3, 0, 0x20, 0x0a}
	pupilIP   = netip.MustParseAddr("10.20.0.10")
	routerIP  = netip.MustParseAddr("10.20.0.1")
	routerMAC = net.HardwareAddr{2, 0, 0, 0, 0, 1}
)

// pupilDevice gives the pupil's laptop a lease and an owner.
func pupilDevice(t *testing.T, st *store.Store, owner string) {
	t.Helper()
	pupilDeviceAt(t, st, owner, t0)
}

// pupilDeviceAt is pupilDevice with the lease running around at.
func pupilDeviceAt(t *testing.T, st *store.Store, owner string, t0 time.Time) {
	t.Helper()
	ctx := context.Background()
	if err := st.SaveDHCP(ctx, []store.DHCPLease{{Segment: "pupil", IP: pupilIP, MAC: pupilMAC, Hostname: "sams-laptop", State: "bound",
		Start: t0.Add(-time.Hour), Expires: t0.Add(time.Hour)}},
		[]store.Device{{MAC: pupilMAC, FirstSeen: t0.Add(-time.Hour), LastSeen: t0, Segment: "pupil", IP: pupilIP, Hostname: "sams-laptop",
			Manufacturer: "Apple, Inc."}}); err != nil {
		t.Fatal(err)
	}
	if err := st.DecideDevice(ctx, "test", pupilMAC, store.DeviceDecision{Approved: true, Name: "LAPTOP-0042", Owner: owner}, t0); err != nil {
		t.Fatal(err)
	}
}

type fakePeople map[string]Person

func (p fakePeople) Person(_ context.Context, ref string) (Person, bool, error) {
	if ref == "broken" {
		return Person{}, false, errors.New("directory down")
	}
	v, ok := p[ref]
	return v, ok, nil
}

type fakeSessions struct{ s map[netip.Addr]Session }

func (f fakeSessions) WhoHeld(_ context.Context, ip netip.Addr, _ net.HardwareAddr, _ time.Time) (Session, bool, error) {
	s, ok := f.s[ip]
	return s, ok, nil
}

func vpn(at time.Time) store.Finding {
	return store.Finding{At: at, Source: finding.SourceInspect, Class: finding.ClassVPN, Segment: "pupil", SrcIP: pupilIP,
		DstIP: netip.MustParseAddr("192.0.2.11"), DstPort: 1194, Proto: "udp", Detail: "openvpn", Evidence: "OpenVPN P_CONTROL_HARD_RESET_CLIENT_V2"}
}

func newEngine(t *testing.T, st *store.Store, people People, sessions Sessions) *Engine {
	t.Helper()
	e, err := New(Options{Store: st, Attributor: &Attributor{Records: st, People: people, Sessions: sessions},
		Immediate: []string{store.ChannelEmail}, Every: []string{store.ChannelWebhook}, Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestLeaseOwnerPersonAttributionAndRollUp(t *testing.T) {
	st := storetest.Open(t)
	ctx := context.Background()
	pupilDevice(t, st, "S1042")
	// The finding names the address only; the lease gives the MAC.
	fs := []store.Finding{vpn(t0), vpn(t0.Add(time.Minute)), vpn(t0.Add(50 * time.Minute))}
	if err := st.InsertFindings(ctx, fs); err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, st, fakePeople{"S1042": {Name: "Sam Pupil", Group: "Year 9, 9B"}}, nil)
	if err := e.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	as, err := st.ListAlerts(ctx, store.AlertFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 {
		t.Fatalf("%d alerts, want one roll-up: %+v", len(as), as)
	}
	a := as[0]
	if a.Count != 3 || a.PersonName != "Sam Pupil" || a.PersonGroup != "Year 9, 9B" || a.DeviceName != "LAPTOP-0042" ||
		a.Manufacturer != "Apple, Inc." || a.SrcMAC.String() != pupilMAC.String() || a.AttributedBy != ByLease ||
		a.Severity != store.SeverityHigh || a.Destination != "192.0.2.11:1194/udp" || !a.FirstSeen.Equal(t0) || !a.LastSeen.Equal(t0.Add(50*time.Minute)) {
		t.Errorf("alert %+v", a)
	}
	ev, err := st.AlertEvidence(ctx, a.ID, 0)
	if err != nil || len(ev) != 3 {
		t.Errorf("evidence %d %v", len(ev), err)
	}
	due, err := st.DueOutbox(ctx, t0.Add(2*time.Hour), 10)
	if err != nil || len(due) != 2 {
		t.Errorf("outbox %+v %v: want one email and one webhook for the one alert", due, err)
	}
	// A second drain finds nothing new: progress is in the database.
	if err := e.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if a2, _ := st.AlertByID(ctx, a.ID); a2.Count != 3 {
		t.Errorf("count %d after a second drain", a2.Count)
	}
	// Without a people directory, the owner text is the person.
	st2 := storetest.Open(t)
	pupilDevice(t, st2, "Sam Pupil")
	st2.InsertFindings(ctx, []store.Finding{vpn(t0)})
	if err := newEngine(t, st2, nil, nil).Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if as, _ := st2.ListAlerts(ctx, store.AlertFilter{}); len(as) != 1 || as[0].PersonName != "Sam Pupil" {
		t.Errorf("without people: %+v", as)
	}
}

func TestRADIUSSessionComesFirstAndNamesTheRoom(t *testing.T) {
	st := storetest.Open(t)
	ctx := context.Background()
	pupilDevice(t, st, "S1042")
	sessions := fakeSessions{map[netip.Addr]Session{pupilIP: {Username: "sam.pupil", MAC: pupilMAC, AccessPoint: "ap-b12", Room: "B12 Science", SSID: "School-Pupil"}}}
	st.InsertFindings(ctx, []store.Finding{vpn(t0)})
	e := newEngine(t, st, fakePeople{"sam.pupil": {Name: "Sam Pupil", Group: "Year 9, 9B"}}, sessions)
	if err := e.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	as, _ := st.ListAlerts(ctx, store.AlertFilter{})
	if len(as) != 1 || as[0].AttributedBy != ByRADIUS || as[0].Room != "B12 Science" || as[0].PersonName != "Sam Pupil" || as[0].DeviceName != "LAPTOP-0042" {
		t.Fatalf("alerts %+v", as)
	}
}

func TestPortalSessionNamesTheVisitor(t *testing.T) {
	st := storetest.Open(t)
	ctx := context.Background()
	guestMAC := net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 7}
	guestIP := netip.MustParseAddr("10.40.0.50")
	vs, err := st.IssueVouchers(ctx, "web:reception", "", []store.Voucher{{CodeHash: strings.Repeat("ab", 32), CreatedAt: t0.Add(-2 * time.Hour),
		Duration: 8 * time.Hour, StartOnFirstUse: true, MaxDevices: 1, Note: "governors' meeting"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.RedeemVoucher(ctx, store.Redemption{CodeHash: vs[0].CodeHash, MAC: guestMAC, IP: guestIP, At: t0.Add(-time.Hour),
		Name: "Pat Visitor", AUPVersion: "v1"}, func(store.Voucher, bool) error { return nil }); err != nil {
		t.Fatal(err)
	}
	st.InsertFindings(ctx, []store.Finding{{At: t0, Source: finding.SourceInspect, Class: finding.ClassTor, Segment: "visitor", SrcIP: guestIP, SrcMAC: guestMAC}})
	if err := newEngine(t, st, nil, nil).Drain(ctx); err != nil {
		t.Fatal(err)
	}
	as, _ := st.ListAlerts(ctx, store.AlertFilter{})
	if len(as) != 1 || as[0].AttributedBy != ByPortal || !strings.Contains(as[0].Visitor, "Pat Visitor") || !strings.Contains(as[0].Visitor, "governors") {
		t.Fatalf("alerts %+v", as)
	}
}

func TestSuppressionAndUnattributed(t *testing.T) {
	st := storetest.Open(t)
	ctx := context.Background()
	pupilDevice(t, st, "S1042")
	if _, err := st.AddSuppression(ctx, "web:dsl", store.Suppression{MAC: pupilMAC, Class: finding.ClassVPN, Reason: "school-issued VPN for the exam board",
		Until: t0.Add(24 * time.Hour), CreatedAt: t0.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	stranger := store.Finding{At: t0, Source: finding.SourceInspect, Class: finding.ClassSSH, SrcIP: netip.MustParseAddr("10.20.7.7")}
	st.InsertFindings(ctx, []store.Finding{vpn(t0), stranger})
	e := newEngine(t, st, nil, nil)
	if err := e.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	as, _ := st.ListAlerts(ctx, store.AlertFilter{})
	if len(as) != 1 || as[0].Class != finding.ClassSSH || as[0].AttributedBy != ByNobody {
		t.Fatalf("alerts %+v: want only the unattributed ssh one", as)
	}
	if s := e.Stats(); s.Suppressed != 1 || s.Unattributed != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestNoiseIsNeverAFinding(t *testing.T) {
	n := &Noise{OwnIPs: []netip.Addr{routerIP}, OwnMACs: []net.HardwareAddr{routerMAC},
		UnknownDevices: map[string]policy.UnknownDevices{"pupil": policy.UnknownAlert, "visitor": policy.UnknownAllow}}
	for _, c := range []struct {
		name  string
		f     finding.Finding
		noise bool
	}{
		{"router address", finding.Finding{Class: finding.ClassTethering, SrcIP: routerIP}, true},
		{"router MAC", finding.Finding{Class: finding.ClassUnapprovedDevice, Segment: "pupil", SrcMAC: routerMAC}, true},
		{"visitor stranger", finding.Finding{Class: finding.ClassUnapprovedDevice, Segment: "visitor", SrcMAC: pupilMAC}, true},
		{"pupil stranger", finding.Finding{Class: finding.ClassUnapprovedDevice, Segment: "pupil", SrcMAC: pupilMAC}, false},
		{"visitor vpn", finding.Finding{Class: finding.ClassVPN, Segment: "visitor", SrcMAC: pupilMAC}, false},
	} {
		if got := n.Ignore(c.f) != ""; got != c.noise {
			t.Errorf("%s: noise %v, want %v", c.name, got, c.noise)
		}
	}
}

// failingRecords fails every lookup, as a locked or broken database would.
type failingRecords struct{}

func (failingRecords) LeaseFor(context.Context, netip.Addr, time.Time) (store.DHCPLease, error) {
	return store.DHCPLease{}, errors.New("database is locked")
}
func (failingRecords) DeviceByMAC(context.Context, net.HardwareAddr) (store.Device, error) {
	return store.Device{}, errors.New("database is locked")
}
func (failingRecords) GuestAt(context.Context, net.HardwareAddr, netip.Addr, time.Time) (store.GuestHolder, error) {
	return store.GuestHolder{}, errors.New("database is locked")
}

func TestAttributionFailureKeepsTheFinding(t *testing.T) {
	st := storetest.Open(t)
	ctx := context.Background()
	st.InsertFindings(ctx, []store.Finding{vpn(t0)})
	e, err := New(Options{Store: st, Attributor: &Attributor{Records: failingRecords{}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if as, _ := st.ListAlerts(ctx, store.AlertFilter{}); len(as) != 1 || as[0].AttributedBy != ByNobody {
		t.Fatalf("alerts %+v", as)
	}
}

func TestLabelsSayWhatWasSeen(t *testing.T) {
	never := Label(store.Finding{Class: finding.ClassUnapprovedDevice, Detail: finding.DetailNeverLeased})
	notApproved := Label(store.Finding{Class: finding.ClassUnapprovedDevice, Detail: finding.DetailNotApproved})
	if never != "a device that never asked our DHCP server for an address" || notApproved != "a device nobody approved" {
		t.Errorf("labels %q / %q", never, notApproved)
	}
	for _, c := range finding.Classes {
		if _, ok := meanings[c]; !ok {
			t.Errorf("class %s has no plain-English meaning", c)
		}
		if _, ok := DefaultSeverity[c]; !ok {
			t.Errorf("class %s has no default severity", c)
		}
	}
}

func TestSeverityIsConfigurable(t *testing.T) {
	st := storetest.Open(t)
	if _, err := New(Options{Store: st, Attributor: &Attributor{Records: st}, Severity: map[string]string{"ssh": "urgent"}}); err == nil {
		t.Error("a bad severity was accepted")
	}
	e, err := New(Options{Store: st, Attributor: &Attributor{Records: st}, Severity: map[string]string{"ssh": "high"}})
	if err != nil {
		t.Fatal(err)
	}
	if e.Severity("ssh") != "high" || e.Severity("vpn") != "high" || e.Severity("doh") != "medium" || e.Severity("new-thing") != "medium" {
		t.Error("severities wrong")
	}
}

// flaky fails its first n sends.
type flaky struct {
	mu    sync.Mutex
	fails int
	sent  []int64
}

func (f *flaky) Send(_ context.Context, it store.OutboxItem, a *store.Alert) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fails > 0 {
		f.fails--
		return fmt.Errorf("connection refused")
	}
	f.sent = append(f.sent, a.ID)
	return nil
}

func TestOutboxRetriesWithBackoffAndSurvivesARestart(t *testing.T) {
	st := storetest.Open(t)
	ctx := context.Background()
	pupilDevice(t, st, "S1042")
	st.InsertFindings(ctx, []store.Finding{vpn(t0)})
	if err := newEngine(t, st, nil, nil).Drain(ctx); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Hour) // when the engine queued the notifications
	clock := func() time.Time { return now }
	mail := &flaky{fails: 3}
	o, err := NewOutbox(OutboxOptions{Store: st, Channels: map[string]Channel{store.ChannelEmail: mail}, Now: clock,
		RetryMin: 10 * time.Second, RetryMax: 25 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if o.Backoff(1) != 10*time.Second || o.Backoff(2) != 20*time.Second || o.Backoff(5) != 25*time.Second {
		t.Errorf("backoff %v %v %v", o.Backoff(1), o.Backoff(2), o.Backoff(5))
	}
	// The webhook channel is not configured: its item waits, never lost.
	for _, step := range []time.Duration{0, 10 * time.Second, 20 * time.Second, 25 * time.Second} {
		now = now.Add(step)
		if err := o.Deliver(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(mail.sent) != 1 {
		t.Fatalf("sent %v after three failures and a success", mail.sent)
	}
	depth, _ := st.OutboxDepth(ctx)
	if depth[store.ChannelEmail] != 0 || depth[store.ChannelWebhook] != 1 {
		t.Errorf("depth %v", depth)
	}
	// A new outbox (a restart) with the webhook configured delivers it.
	hook := &flaky{}
	o2, _ := NewOutbox(OutboxOptions{Store: st, Channels: map[string]Channel{store.ChannelWebhook: hook}, Now: func() time.Time { return now.Add(time.Hour) }})
	if err := o2.Deliver(ctx); err != nil {
		t.Fatal(err)
	}
	if len(hook.sent) != 1 {
		t.Errorf("webhook after restart: %v", hook.sent)
	}
	a, _ := st.AlertByID(ctx, mail.sent[0])
	if a.NotifiedAt.IsZero() {
		t.Error("alert not marked notified")
	}
}

func TestScheduleNext(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Skip(err)
	}
	s, err := ParseSchedule("weekly Mon 07:30", london)
	if err != nil {
		t.Fatal(err)
	}
	// Sunday 25 Oct 2026 is the day the clocks go back.
	from := time.Date(2026, 10, 24, 12, 0, 0, 0, london)
	if got := s.Next(from); !got.Equal(time.Date(2026, 10, 26, 7, 30, 0, 0, london)) {
		t.Errorf("next %v", got)
	}
	d, _ := ParseSchedule("daily 07:30", london)
	if got := d.Next(time.Date(2026, 10, 26, 7, 30, 0, 0, london)); !got.Equal(time.Date(2026, 10, 27, 7, 30, 0, 0, london)) {
		t.Errorf("daily next %v", got)
	}
	for _, bad := range []string{"", "weekly Funday 07:30", "daily 25:00", "monthly 1 07:30"} {
		if _, err := ParseSchedule(bad, london); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDigestQueuesOncePerPeriod(t *testing.T) {
	st := storetest.Open(t)
	ctx := context.Background()
	pupilDevice(t, st, "Sam Pupil")
	st.InsertFindings(ctx, []store.Finding{{At: t0, Source: finding.SourceInspect, Class: finding.ClassDoH, Segment: "pupil", SrcIP: pupilIP, Detail: "cloudflare-dns.com"}})
	if err := newEngine(t, st, nil, nil).Drain(ctx); err != nil {
		t.Fatal(err)
	}
	m, err := NewMailer(MailOptions{Server: "mail.example:25", From: "gatehouse@school.example", To: []string{"dsl@school.example"}, Location: time.UTC,
		Link: func(id int64) string { return fmt.Sprintf("https://gatehouse.example/alerts/%d", id) }})
	if err != nil {
		t.Fatal(err)
	}
	d := &Digest{Store: st, Mailer: m}
	if err := d.Queue(ctx, t0.Add(-time.Hour), t0.Add(time.Hour), t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	items, err := st.DueOutbox(ctx, t0.Add(2*time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	var digests []store.OutboxItem
	for _, it := range items {
		if it.Channel == store.ChannelDigest {
			digests = append(digests, it)
		}
	}
	if len(digests) != 1 || !strings.Contains(digests[0].Payload, "Sam Pupil") || !strings.Contains(digests[0].Payload, "Encrypted DNS") ||
		!strings.Contains(digests[0].Payload, "https://gatehouse.example/alerts/") {
		t.Fatalf("digests %+v", digests)
	}
	if p, _ := st.AlertProgress(ctx, digestProgress); p != t0.Add(time.Hour).Format(time.RFC3339Nano) {
		t.Errorf("digest progress %q", p)
	}
}

func TestAlertEmailNamesWhoWhatWhereWhen(t *testing.T) {
	m, _ := NewMailer(MailOptions{Server: "mail.example:25", From: "gatehouse@school.example", To: []string{"dsl@school.example"},
		Location: time.UTC, Site: "Hillside", Link: func(id int64) string { return fmt.Sprintf("https://gh/alerts/%d", id) }})
	a := store.Alert{ID: 7, Class: "vpn", Severity: "high", FirstSeen: t0, PersonName: "Sam Pupil", PersonGroup: "Year 9, 9B",
		DeviceName: "LAPTOP-0042", SrcMAC: pupilMAC, SrcIP: pupilIP, Room: "B12 Science", Detail: "openvpn", Destination: "192.0.2.11:1194/udp",
		AttributedBy: ByRADIUS, Evidence: "SECRET-EVIDENCE"}
	subject, body := m.AlertMessage(a)
	for _, want := range []string{"High", "VPN use", "Sam Pupil (Year 9, 9B)", "10:41"} {
		if !strings.Contains(subject, want) {
			t.Errorf("subject %q lacks %q", subject, want)
		}
	}
	for _, want := range []string{"LAPTOP-0042", "B12 Science", "Mon 2 Mar 2026 10:41:07", "openvpn", "https://gh/alerts/7", "A VPN hides"} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "SECRET-EVIDENCE") {
		t.Error("the email carries the technical evidence; it belongs on the page")
	}
	msg, err := m.compose(m.opt.To, "a\r\nBcc: evil@example.com", body)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(msg), "\r\nBcc:") {
		t.Error("a header was injected through the subject")
	}
}

// TestDigestCatchesUpAfterTheRouterWasOff: the last digest went out two
// weeks ago; on start the digest queues each missed Monday's period once
// (an empty period queues nothing but still counts as sent), then waits.
func TestDigestCatchesUpAfterTheRouterWasOff(t *testing.T) {
	st := storetest.Open(t)
	ctx := context.Background()
	mon := time.Date(2026, 3, 2, 7, 30, 0, 0, time.UTC) // a Monday
	pupilDevice(t, st, "Sam Pupil")
	st.InsertFindings(ctx, []store.Finding{{At: mon.Add(24 * time.Hour), Source: finding.SourceInspect, Class: finding.ClassDoH, Segment: "pupil", SrcIP: pupilIP}})
	if err := newEngine(t, st, nil, nil).Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.EnqueueDigest(ctx, "", digestProgress, mon.Format(time.RFC3339Nano), mon); err != nil {
		t.Fatal(err)
	}
	m, _ := NewMailer(MailOptions{Server: "mail.example:25", From: "gatehouse@school.example", To: []string{"dsl@school.example"}, Location: time.UTC})
	now := mon.Add(15 * 24 * time.Hour) // Tuesday, two Mondays later
	rctx, cancel := context.WithCancel(ctx)
	queued := make(chan struct{}, 4)
	d := &Digest{Store: st, Mailer: m, Schedule: Schedule{Weekday: time.Monday, Hour: 7, Minute: 30, Location: time.UTC},
		Now: func() time.Time { return now }, Queued: func() { queued <- struct{}{} }}
	done := make(chan error, 1)
	go func() { done <- d.Run(rctx) }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if p, _ := st.AlertProgress(ctx, digestProgress); p == mon.Add(14*24*time.Hour).Format(time.RFC3339Nano) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the digest did not catch up to the last Monday")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	items, _ := st.OutboxItems(ctx, 0, 10)
	if len(items) != 1 || !strings.Contains(items[0].Payload, "Encrypted DNS") || len(queued) != 1 {
		t.Errorf("digests %+v (queued %d), want exactly one, for the week with the alert", items, len(queued))
	}
}
