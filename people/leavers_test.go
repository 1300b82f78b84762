package people

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/internal/testkit"
	"github.com/gatehouse-net/gatehouse/password"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/store"
)

type fakeMailer struct {
	mu    sync.Mutex
	sent  []string
	bodys []string
}

func (m *fakeMailer) SendMailTo(_ context.Context, _ []string, subject, body string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, subject)
	m.bodys = append(m.bodys, body)
	return nil
}

// school is a service with the sample school imported at sampleNow and
// the term dates loaded.
func school(t *testing.T, opts Options) (*Service, *testkit.Clock) {
	t.Helper()
	s, c := newService(t, sampleNow, opts)
	if _, err := s.ImportTerms(context.Background(), "test", readMIS(t, "term-dates-2026-27.csv")); err != nil {
		t.Fatal(err)
	}
	importFile(t, s, "pupils-sims.csv")
	importFile(t, s, "staff.csv")
	return s, c
}

func state(t *testing.T, s *Service, key string) store.Person {
	t.Helper()
	p, err := s.st.PersonByKey(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func tick(t *testing.T, s *Service, c *testkit.Clock, at time.Time) TickResult {
	t.Helper()
	c.Set(at)
	res, err := s.Tick(context.Background())
	if err != nil {
		t.Fatalf("tick at %v: %v", at, err)
	}
	return res
}

// keysOf returns the keys of people in a state.
func keysOf(t *testing.T, s *Service, st string) map[string]bool {
	t.Helper()
	ps, err := s.st.ListPeople(context.Background(), store.PeopleFilter{States: []string{st}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, p := range ps {
		out[Key(p)] = true
	}
	return out
}

func TestEndOfAutumnTermRevokesExactlyTheLeaversAtLocalMidnight(t *testing.T) {
	s, c := school(t, Options{})
	before := keysOf(t, s, store.PersonRevoked)
	if len(before) != 1 {
		t.Fatalf("revoked before the end of term: %v", before)
	}
	// 2026-12-18 is the last day of the autumn term (GMT: local = UTC).
	if r := tick(t, s, c, time.Date(2026, 12, 18, 23, 59, 59, 0, time.UTC)); r.Revoked != 0 {
		t.Fatalf("revoked %d before the end of the leaving day", r.Revoked)
	}
	r := tick(t, s, c, time.Date(2026, 12, 19, 0, 0, 0, 0, time.UTC))
	got := keysOf(t, s, store.PersonRevoked)
	// Three pupils leave at the end of the autumn term (SIMS: one each in
	// Years 7, 10 and 11), and the seven supply staff.
	want := 1 + 3 + 7
	if r.Revoked != want-1 || len(got) != want || !got["SIP07"] || !got["MAR55"] {
		t.Fatalf("revoked %d, now %d: %v", r.Revoked, len(got), got)
	}
	for k := range got {
		p := state(t, s, k)
		if p.LeavesOn > "2026-12-18" {
			t.Fatalf("%s revoked early: leaves %s", k, p.LeavesOn)
		}
	}
	if p := state(t, s, "MAT05"); p.State != store.PersonLeaving {
		t.Fatalf("MAT05 (leaves 31 Dec) is %s", p.State)
	}
}

func TestLeavingDaysAcrossTheOctoberClockChange(t *testing.T) {
	ctx := context.Background()
	s, c := newService(t, time.Date(2026, 10, 20, 12, 0, 0, 0, time.UTC), Options{})
	mk := func(upn, day string) {
		if _, err := s.st.CreatePerson(ctx, "test", store.Person{Kind: "pupil", UPN: upn, LegalForename: "A", LegalSurname: upn,
			YearGroup: "Year 9", LeavesOn: day, State: store.PersonLeaving}, c.Now()); err != nil {
			t.Fatal(err)
		}
	}
	mk("SAT24", "2026-10-24") // a BST day: ends 23:00 UTC
	mk("SUN25", "2026-10-25") // clocks go back at 02:00 BST: ends 00:00 UTC on the 26th
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{time.Date(2026, 10, 24, 22, 59, 59, 0, time.UTC), ""},
		{time.Date(2026, 10, 24, 23, 0, 0, 0, time.UTC), "SAT24"},
		// One hour after a naive "UTC+1" midnight: still the 25th locally.
		{time.Date(2026, 10, 25, 23, 0, 0, 0, time.UTC), "SAT24"},
		{time.Date(2026, 10, 25, 23, 59, 59, 0, time.UTC), "SAT24"},
		{time.Date(2026, 10, 26, 0, 0, 0, 0, time.UTC), "SAT24 SUN25"},
	} {
		tick(t, s, c, tc.at)
		var got []string
		for _, k := range []string{"SAT24", "SUN25"} {
			if state(t, s, k).State == store.PersonRevoked {
				got = append(got, k)
			}
		}
		if strings.Join(got, " ") != tc.want {
			t.Fatalf("at %v (%v local): revoked %v, want %q", tc.at, tc.at.In(s.loc), got, tc.want)
		}
	}
}

func TestPostponeHoldGraceAndRetention(t *testing.T) {
	ctx := context.Background()
	mail := &fakeMailer{}
	s, c := school(t, Options{Mailer: mail, DSL: []string{"dsl@bars-academy.sch.uk"}, Grace: map[string]time.Duration{"13B": 7 * 24 * time.Hour}})
	var y13 []store.Person
	ps, _ := s.st.ListPeople(ctx, store.PeopleFilter{Group: "Year 13"})
	for _, p := range ps {
		if p.RegGroup != "13B" {
			y13 = append(y13, p)
		}
	}
	postponed, held := y13[0], y13[1]
	c.Set(time.Date(2027, 7, 1, 9, 0, 0, 0, time.UTC))
	if _, err := s.Postpone(ctx, "web:nm", postponed.ID, "2027-07-23", "summer school; MIS date wrong"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Postpone(ctx, "web:nm", postponed.ID, "2027-06-01", "past"); err == nil {
		t.Fatal("a postponement into the past was accepted")
	}
	if _, err := s.Hold(ctx, "web:dsl", held.ID, true, "open safeguarding case"); err != nil {
		t.Fatal(err)
	}

	// T-14: the preview goes out once, naming the Year 13 leavers.
	r := tick(t, s, c, time.Date(2027, 7, 2, 23, 30, 0, 0, time.UTC)) // 00:30 BST on 3 July
	if r.Notified == 0 || len(mail.sent) != 1 || !strings.Contains(mail.bodys[0], DisplayName(held)) {
		t.Fatalf("notified %d, mails %v", r.Notified, mail.sent)
	}
	if strings.Contains(mail.bodys[0], DisplayName(postponed)) {
		t.Fatal("the postponed pupil is announced for the old date")
	}
	tick(t, s, c, time.Date(2027, 7, 3, 8, 0, 0, 0, time.UTC))
	if len(mail.sent) != 1 {
		t.Fatalf("the preview went out %d times", len(mail.sent))
	}

	// End of the summer term: 16 July ends at 23:00 UTC (BST).
	tick(t, s, c, time.Date(2027, 7, 16, 23, 0, 0, 0, time.UTC))
	if st := state(t, s, Key(held)).State; st != store.PersonRevoked {
		t.Fatalf("the held pupil kept access: %s", st)
	}
	if st := state(t, s, Key(postponed)).State; st != store.PersonLeaving {
		t.Fatalf("the postponed pupil is %s", st)
	}
	grace := 0
	for _, p := range ps {
		if p.RegGroup == "13B" {
			grace++
			if st := state(t, s, Key(p)).State; st != store.PersonLeaving {
				t.Fatalf("13B (a week's grace) is %s", st)
			}
		}
	}
	if grace == 0 {
		t.Fatal("no 13B pupils to test grace with")
	}
	// The Year 11s staying on keep access all summer.
	y11, _ := s.Members(ctx, "Year 11")
	for _, p := range y11 {
		if p.LeavesOn == "" && p.State != store.PersonActive {
			t.Fatalf("Year 11 stayer %s is %s", Key(p), p.State)
		}
	}
	tick(t, s, c, time.Date(2027, 7, 23, 22, 59, 0, 0, time.UTC))
	if st := state(t, s, Key(postponed)).State; st != store.PersonLeaving {
		t.Fatalf("the postponed pupil lost access early: %s", st)
	}
	tick(t, s, c, time.Date(2027, 7, 23, 23, 0, 0, 0, time.UTC))
	if st := state(t, s, Key(postponed)).State; st != store.PersonRevoked {
		t.Fatalf("the postponed pupil kept access after the new date: %s", st)
	}
	for _, p := range ps {
		if p.RegGroup == "13B" {
			if st := state(t, s, Key(p)).State; st != store.PersonRevoked {
				t.Fatalf("13B after its grace: %s", st)
			}
		}
	}

	// A year after its postponed day, the postponed pupil is still kept.
	tick(t, s, c, time.Date(2028, 7, 20, 12, 0, 0, 0, time.UTC))
	if _, err := s.st.PersonByID(ctx, postponed.ID); err != nil {
		t.Fatalf("the postponed leaver was purged before a year had passed: %v", err)
	}
	// A year after leaving, retention purges everyone but the held pupil.
	r = tick(t, s, c, time.Date(2028, 7, 25, 12, 0, 0, 0, time.UTC))
	if r.Purged == 0 {
		t.Fatal("nothing purged")
	}
	if _, err := s.st.PersonByID(ctx, held.ID); err != nil {
		t.Fatalf("the held pupil's record was purged: %v", err)
	}
	if _, err := s.st.PersonByID(ctx, y13[2].ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an unheld leaver survived retention: %v", err)
	}
	if _, err := s.st.PersonByID(ctx, postponed.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the postponed leaver survived retention: %v", err)
	}
}

func TestInterruptedRevocationFinishesOnTheNextStart(t *testing.T) {
	ctx := context.Background()
	k := newFakeKernel()
	rad := &fakeRADIUS{}
	s, c := school(t, Options{Kernel: k, Disconnector: rad})
	sip := state(t, s, "SIP07")
	mac, _ := net.ParseMAC("02:00:00:00:00:07")
	if _, err := s.Decide(ctx, "web:nm", mac, store.DeviceDecision{Approved: true, Owner: "SIP07"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.st.CreateUser(ctx, "test", store.User{Name: "SIP07", Role: store.RoleNetwork, PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	// The kernel refuses at T0 (the daemon dies between the database and
	// the kernel, as far as the record goes).
	k.fail = errors.New("netlink: no buffer space")
	c.Set(time.Date(2026, 12, 19, 0, 0, 1, 0, time.UTC))
	if _, err := s.Tick(ctx); err == nil {
		t.Fatal("a failed kernel revoke was not reported")
	}
	if p := state(t, s, "SIP07"); p.State != store.PersonRevoked {
		t.Fatalf("the database side did not happen: %s", p.State)
	}
	if u, _ := s.st.UserByName(ctx, "SIP07"); !u.Disabled {
		t.Fatal("the supply teacher's admin account is still enabled")
	}
	if pend, _ := s.st.PendingRevocations(ctx); len(pend) != 1 || pend[0].PersonID != sip.ID {
		t.Fatalf("pending %+v", pend)
	}
	if k.isRevoked(mac) {
		t.Fatal("the kernel was told despite failing")
	}
	// Restart: a new service over the same database and a working kernel.
	k2 := newFakeKernel()
	s2, err := New(Options{Store: s.st, Kernel: k2, Disconnector: rad, Location: s.loc, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s2.Restore(ctx, c.Now()); err != nil {
		t.Fatal(err)
	}
	if !k2.isRevoked(mac) {
		t.Fatal("restore did not put the revoked device in the kernel's revoked set")
	}
	r, err := s2.Tick(ctx)
	if err != nil || r.Finished != 1 {
		t.Fatalf("resume: %+v %v", r, err)
	}
	if pend, _ := s.st.PendingRevocations(ctx); len(pend) != 0 {
		t.Fatalf("still pending %+v", pend)
	}
	if len(rad.macs) != 1 || rad.macs[0] != mac.String() {
		t.Fatalf("disconnects %v", rad.macs)
	}
}

func TestRevokeNowAndReinstate(t *testing.T) {
	ctx := context.Background()
	k := newFakeKernel()
	s, _ := school(t, Options{Kernel: k})
	p := state(t, s, "WOO08")
	mac, _ := net.ParseMAC("02:00:00:00:00:08")
	if _, err := s.Decide(ctx, "web:nm", mac, store.DeviceDecision{Approved: true, Owner: "o.wood8@bars-academy.sch.uk"}); err != nil {
		t.Fatal(err)
	}
	if devs, _ := s.DevicesOfPerson(ctx, p.ID); len(devs) != 1 {
		t.Fatalf("owner by email not linked: %v", devs)
	}
	if _, err := s.RevokeNow(ctx, "web:nm", p.ID, "dismissed"); err != nil {
		t.Fatal(err)
	}
	if !k.isRevoked(mac) || state(t, s, "WOO08").State != store.PersonRevoked {
		t.Fatal("revoke now did not revoke")
	}
	if err := s.Reinstate(ctx, "web:nm", p.ID); err != nil {
		t.Fatal(err)
	}
	if k.isRevoked(mac) || state(t, s, "WOO08").State != store.PersonActive {
		t.Fatal("reinstate did not lift the revocation")
	}
	if _, approved, blocked, _ := s.st.DeviceStatus(ctx, mac); !approved || blocked {
		t.Fatal("reinstate did not restore the device")
	}
}

func TestTermCalendar(t *testing.T) {
	s, _ := newService(t, sampleNow, Options{})
	if _, err := s.ImportTerms(context.Background(), "test", readMIS(t, "term-dates-2026-27.csv")); err != nil {
		t.Fatal(err)
	}
	loc := s.loc
	for _, tc := range []struct {
		day  string
		want bool
	}{
		{"2026-09-02", false}, {"2026-09-03", true}, {"2026-10-26", false}, {"2026-10-30", false}, {"2026-11-02", true},
		{"2026-11-28", false}, {"2026-12-18", true}, {"2026-12-21", false}, {"2027-02-17", false}, {"2027-07-16", true},
	} {
		d, _ := time.ParseInLocation(dayLayout, tc.day, loc)
		if got := s.InTerm(d.Add(10 * time.Hour)); got != tc.want {
			t.Errorf("InTerm(%s) = %v, want %v", tc.day, got, tc.want)
		}
	}
	if _, _, err := ParseTermDates([]byte("name,x\n")); err == nil {
		t.Error("a file without the columns was accepted")
	}
	_, probs, _ := ParseTermDates([]byte("term,starts,ends,half_term_starts,half_term_ends\nA,2026-09-03,2026-08-01,,\nB,2026-09-03,2026-12-18,2026-12-20,2026-12-21\n"))
	if len(probs) != 2 || probs[0].Line != 2 || probs[1].Line != 3 {
		t.Errorf("problems %v", probs)
	}
}

func TestCustomGroupsResolveForRules(t *testing.T) {
	ctx := context.Background()
	s, _ := school(t, Options{})
	if _, err := s.CreateGroup(ctx, "web:nm", "Year 9", ""); err == nil {
		t.Fatal("a custom group took a year group's name")
	}
	gid, err := s.CreateGroup(ctx, "web:nm", "Chess club", "Tuesday lunch")
	if err != nil {
		t.Fatal(err)
	}
	mac, _ := net.ParseMAC("02:00:00:00:00:99")
	if _, err := s.Decide(ctx, "web:nm", mac, store.DeviceDecision{Approved: true, Owner: "1002jacc"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetMember(ctx, "web:nm", gid, "1002jacc", true); err != nil {
		t.Fatal(err)
	}
	devs, err := s.Devices(ctx, policy.Who{Kind: policy.Group, ID: "chess club"})
	if err != nil || len(devs) != 1 || devs[0].MAC.String() != mac.String() {
		t.Fatalf("chess club devices %v %v", devs, err)
	}
	if _, err := s.Devices(ctx, policy.Who{Kind: policy.Group, ID: "Chess clubb"}); !errors.Is(err, ErrNoSuchGroup) {
		t.Fatalf("a misspelt group: %v", err)
	}
	if devs, _ := s.Devices(ctx, policy.Who{Kind: policy.Person, ID: "C00223272516A"}); len(devs) != 1 {
		t.Fatalf("person rule devices %v", devs)
	}
	if _, err := s.SetMember(ctx, "web:nm", gid, "nobody", true); err == nil {
		t.Fatal("an unknown person was added")
	}
	if err := s.DeleteGroup(ctx, "web:nm", gid); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Devices(ctx, policy.Who{Kind: policy.Group, ID: "Chess club"}); !errors.Is(err, ErrNoSuchGroup) {
		t.Fatalf("a deleted group: %v", err)
	}
}

func TestWiFiPasswordEndsWithAccess(t *testing.T) {
	ctx := context.Background()
	s, _ := school(t, Options{})
	p := state(t, s, "1002jacc")
	if err := s.SetWiFiPassword(ctx, "web:nm", p.ID, "short"); err == nil {
		t.Fatal("a short password was accepted")
	}
	if err := s.SetWiFiPassword(ctx, "web:nm", p.ID, "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	id, err := s.Identity(ctx, "1002JACC")
	if err != nil || !id.Active || id.PasswordHash == "" || id.PersonID != p.ID {
		t.Fatalf("identity %+v %v", id, err)
	}
	if ok, _ := password.Verify(id.PasswordHash, "correct horse battery"); !ok {
		t.Fatal("the stored hash does not verify")
	}
	for _, e := range auditOf(t, s, p.ID) {
		if strings.Contains(e.After, id.PasswordHash) {
			t.Fatal("the hash is in the audit log")
		}
	}
	if _, err := s.RevokeNow(ctx, "web:nm", p.ID, "test"); err != nil {
		t.Fatal(err)
	}
	id, err = s.Identity(ctx, "1002jacc")
	if err != nil || id.Active || id.PasswordHash != "" {
		t.Fatalf("after revocation %+v %v", id, err)
	}
	if _, err := s.Identity(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown login: %v", err)
	}
}

func auditOf(t *testing.T, s *Service, id int64) []store.AuditEntry {
	t.Helper()
	es, err := s.st.AuditFor(context.Background(), fmt.Sprintf("person:%d", id), 100)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// TestRunWakesAtTheDepartureByItsOwnClock: the scheduler's clock may not
// read what the system's does (a test build of the daemon starts it at a
// chosen instant). Run must wake at a departure by that clock, not wait
// for its interval (an hour here) because the system's clock is far from
// it.
func TestRunWakesAtTheDepartureByItsOwnClock(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	loc := london(t)
	// Two seconds before midnight at the end of 25 June 2027, whatever the
	// system's clock says, and running on from there.
	start, base := time.Date(2027, 6, 25, 23, 59, 58, 0, loc), time.Now()
	shifted := func() time.Time { return start.Add(time.Since(base)) }
	s, _ := newService(t, start, Options{})
	s.now = shifted
	p, err := s.st.CreatePerson(ctx, "test", store.Person{Kind: "pupil", UPN: "R100000000001", LegalForename: "Rae", LegalSurname: "Run",
		YearGroup: "Year 11", LeavesOn: "2027-06-25", State: store.PersonLeaving}, start)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, time.Hour) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := s.st.PersonByID(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State == store.PersonRevoked {
			t.Logf("revoked at %v by the scheduler's clock", got.RevokedAt.In(loc))
			if got.RevokedAt.Before(time.Date(2027, 6, 26, 0, 0, 0, 0, loc)) {
				t.Fatalf("revoked before T0: %v", got.RevokedAt)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the scheduler did not wake at the departure (it waits for its interval by the system's clock)")
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	<-done
}
