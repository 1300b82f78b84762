package people_test

import (
	"context"
	"net"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/alert"
	"github.com/gatehouse-net/gatehouse/alert/alerttest"
	"github.com/gatehouse-net/gatehouse/internal/testkit"
	"github.com/gatehouse-net/gatehouse/people"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
)

// TestLeaversPreviewReachesTheNetworkManagerAndTheDSL: fourteen days
// before a member of staff's access ends, the scheduler mails the preview
// through package alert's mailer to the real SMTP server the alert tests
// use (aiosmtpd in the testbed's management namespace, over STARTTLS).
// Without people.leavers_preview_to it goes to the network role's admin
// accounts that have an address and to the DSL, and not to a disabled
// account or the DSL's own login; with it, to those addresses and the DSL.
func TestLeaversPreviewReachesTheNetworkManagerAndTheDSL(t *testing.T) {
	s := testbed.New(t, testbed.Options{})
	srv := alerttest.StartSMTP(t, s, "mgmt", testbed.MgmtClientIP+":2525")
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return s.DialContext(ctx, "router", network, addr)
	}
	m, err := alert.NewMailer(alert.MailOptions{Server: srv.Addr, From: "gatehouse@bars-academy.sch.uk", To: []string{"dsl@bars-academy.sch.uk"},
		StartTLS: alert.StartTLSAlways, TLS: srv.TLSConfig(), Dial: dial, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	run := func(t *testing.T, configured []string, leaver string) alerttest.Message {
		t.Helper()
		st, err := store.Open(ctx, filepath.Join(t.TempDir(), "gh.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
		clock := testkit.NewClock(now)
		mk := func(p store.Person) {
			p.State = store.PersonActive
			if p.LeavesOn != "" {
				p.State = store.PersonLeaving
			}
			if _, err := st.CreatePerson(ctx, "test", p, now); err != nil {
				t.Fatal(err)
			}
		}
		// The network manager's account is named by their username; the
		// technician's account is an address; the DSL's login and a
		// disabled network account are not network managers to mail.
		mk(store.Person{Kind: "staff", StaffCode: "NMG", LegalForename: "Nina", LegalSurname: "Manager", Username: "nmanager", Email: "n.manager@bars-academy.sch.uk"})
		mk(store.Person{Kind: "staff", StaffCode: "OLD", LegalForename: "Otto", LegalSurname: "Gone", Username: "ogone", Email: "o.gone@bars-academy.sch.uk"})
		mk(store.Person{Kind: "staff", StaffCode: "DSL", LegalForename: "Dee", LegalSurname: "Lead", Username: "dlead", Email: "d.lead@bars-academy.sch.uk"})
		mk(store.Person{Kind: "staff", StaffCode: leaver, LegalForename: "Lee", LegalSurname: "Leaver", Username: "lleaver", LeavesOn: "2026-12-08"})
		for _, u := range []store.User{
			{Name: "nmanager", Role: store.RoleNetwork},
			{Name: "tech@bars-academy.sch.uk", Role: store.RoleNetwork},
			{Name: "ogone", Role: store.RoleNetwork, Disabled: true},
			{Name: "dlead", Role: store.RoleDSL},
			{Name: "frontdesk", Role: store.RoleReception},
		} {
			u.PasswordHash = "x"
			if _, err := st.CreateUser(ctx, "test", u); err != nil {
				t.Fatal(err)
			}
		}
		svc, err := people.New(people.Options{Store: st, Location: loc, Now: clock.Now, Mailer: m,
			NetworkManagers: configured, DSL: []string{"dsl@bars-academy.sch.uk", "deputy.dsl@bars-academy.sch.uk"}})
		if err != nil {
			t.Fatal(err)
		}
		res, err := svc.Tick(ctx)
		if err != nil || res.Notified != 1 {
			t.Fatalf("tick: notified %d, %v", res.Notified, err)
		}
		msg, ok := srv.WaitFor(30*time.Second, "Lee Leaver", leaver)
		if !ok {
			t.Fatalf("no preview naming the leaver arrived; server log:\n%s", srv.Log())
		}
		// Sent once: the next tick has nothing new to announce.
		if res, err := svc.Tick(ctx); err != nil || res.Notified != 0 {
			t.Fatalf("second tick: notified %d, %v", res.Notified, err)
		}
		return msg
	}
	rcpts := func(msg alerttest.Message) string {
		var out []string
		for _, a := range strings.Split(msg.Header.Get("X-RcptTo"), ",") {
			out = append(out, strings.TrimSpace(a))
		}
		sort.Strings(out)
		return strings.Join(out, " ")
	}

	t.Run("default", func(t *testing.T) {
		msg := run(t, nil, "LV1")
		want := "deputy.dsl@bars-academy.sch.uk dsl@bars-academy.sch.uk n.manager@bars-academy.sch.uk tech@bars-academy.sch.uk"
		if got := rcpts(msg); got != want {
			t.Fatalf("delivered to %q, want %q", got, want)
		}
		if to := msg.Header.Get("To"); !strings.Contains(to, "n.manager@bars-academy.sch.uk") || !strings.Contains(to, "dsl@bars-academy.sch.uk") {
			t.Errorf("To: %q", to)
		}
		if !strings.Contains(alerttest.Subject(msg), "lose network access") || !strings.Contains(msg.Body, "Wed 9 Dec 2026 00:00") {
			t.Errorf("preview %q:\n%s", alerttest.Subject(msg), msg.Body)
		}
	})
	t.Run("configured", func(t *testing.T) {
		msg := run(t, []string{"it-office@bars-academy.sch.uk"}, "LV2")
		want := "deputy.dsl@bars-academy.sch.uk dsl@bars-academy.sch.uk it-office@bars-academy.sch.uk"
		if got := rcpts(msg); got != want {
			t.Fatalf("delivered to %q, want %q", got, want)
		}
	})
}
