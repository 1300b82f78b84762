package store

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

func pupil(upn, fore, sur, year string) Person {
	return Person{Kind: "pupil", UPN: upn, LegalForename: fore, LegalSurname: sur, PreferredForename: fore,
		YearGroup: year, State: PersonActive}
}

func auditActions(t *testing.T, s *Store) []string {
	t.Helper()
	es, err := s.AuditList(context.Background(), MaxAuditPage, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(es) - 1; i >= 0; i-- {
		out = append(out, es[i].Action)
	}
	return out
}

func TestPeopleImportApplyAuditedAndVersioned(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	id, err := s.SaveImport(ctx, "cli:root", ImportRun{Source: "pupils.csv", Summary: "2 joiners", Preview: json.RawMessage(`{"x":1}`), CreatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := s.ApplyImport(ctx, "cli:root", id, []PersonChange{{Person: pupil("A1", "Ann", "Ash", "Year 9")}, {Person: pupil("B2", "Bob", "Birch", "Year 10")}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].ID == 0 || ps[0].Version != 1 {
		t.Fatalf("applied %+v", ps)
	}
	// Applying the same import twice is refused.
	if _, err := s.ApplyImport(ctx, "cli:root", id, nil, now); !errors.Is(err, ErrConflict) {
		t.Fatalf("second apply: %v, want ErrConflict", err)
	}
	// An update prepared against an old version is refused whole.
	id2, _ := s.SaveImport(ctx, "cli:root", ImportRun{Source: "x", CreatedAt: now})
	moved := ps[0]
	moved.YearGroup = "Year 10"
	if _, err := s.ApplyImport(ctx, "cli:root", id2, []PersonChange{{Person: moved, Version: 1}}, now); err != nil {
		t.Fatal(err)
	}
	id3, _ := s.SaveImport(ctx, "cli:root", ImportRun{Source: "y", CreatedAt: now})
	stale := ps[0]
	stale.RegGroup = "9Z"
	if _, err := s.ApplyImport(ctx, "cli:root", id3, []PersonChange{{Person: stale, Version: 1}, {Person: pupil("C3", "C", "C", "Year 7")}}, now); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale apply: %v, want ErrConflict", err)
	}
	all, _ := s.ListPeople(ctx, PeopleFilter{})
	if len(all) != 2 {
		t.Fatalf("a refused import left %d people", len(all))
	}
	got, _ := s.PersonByKey(ctx, "a1")
	if got.YearGroup != "Year 10" || got.Version != 2 {
		t.Fatalf("person after move: %+v", got)
	}
	want := "people.import.preview person.create person.create people.import.apply people.import.preview person.update people.import.apply people.import.preview"
	if a := strings.Join(auditActions(t, s), " "); a != want {
		t.Fatalf("audit:\n got %s\nwant %s", a, want)
	}
	if n, err := s.VerifyAudit(ctx); err != nil || n == 0 {
		t.Fatalf("verify audit: %d %v", n, err)
	}
	// Filters.
	if l, _ := s.ListPeople(ctx, PeopleFilter{Search: "bir"}); len(l) != 1 || l[0].UPN != "B2" {
		t.Fatalf("search: %+v", l)
	}
	if l, _ := s.ListPeople(ctx, PeopleFilter{Group: "year 10"}); len(l) != 2 {
		t.Fatalf("group filter: %d", len(l))
	}
}

func TestRevokePersonBlocksDevicesAndDisablesAdmin(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	now := time.Date(2026, 12, 18, 23, 0, 0, 0, time.UTC)
	staff, err := s.CreatePerson(ctx, "cli:root", Person{Kind: "staff", StaffCode: "SIP07", LegalForename: "Poppy", LegalSurname: "Simpson",
		Username: "p.simpson7", Email: "p.simpson7@school"}, now)
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.CreateUser(ctx, "cli:root", User{Name: "p.simpson7", Role: RoleNetwork, PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := s.CreateUser(ctx, "cli:root", User{Name: "someone", Role: RoleNetwork, PasswordHash: "x"})
	for _, uid := range []int64{u.ID, other.ID} {
		if err := s.CreateSession(ctx, Session{TokenHash: "t" + string(rune('0'+uid)), UserID: uid, CSRFToken: "c", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateAPIToken(ctx, "cli:root", APIToken{Name: "k", UserID: uid, TokenHash: "h" + string(rune('0'+uid)), CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	mac, _ := net.ParseMAC("02:00:00:00:00:07")
	if err := s.DecideDevice(ctx, "cli:root", mac, DeviceDecision{Approved: true, Name: "laptop"}, now); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDeviceOwner(ctx, "cli:root", mac, staff.ID, now); err != nil {
		t.Fatal(err)
	}
	rv, err := s.RevokePerson(ctx, "scheduler", staff.ID, "left 2026-12-18", now)
	if err != nil {
		t.Fatal(err)
	}
	if len(rv.Devices) != 1 || !rv.Devices[0].WasApproved || len(rv.Users) != 1 {
		t.Fatalf("revocation %+v", rv)
	}
	known, approved, blocked, _ := s.DeviceStatus(ctx, mac)
	if !known || approved || !blocked {
		t.Fatalf("device after revoke: approved %v blocked %v", approved, blocked)
	}
	if got, _ := s.UserByID(ctx, u.ID); !got.Disabled {
		t.Fatal("admin account still enabled")
	}
	if _, _, err := s.SessionByTokenHash(ctx, "t"+string(rune('0'+u.ID)), now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("session of revoked admin: %v", err)
	}
	if toks, _ := s.APITokensByUser(ctx, u.ID); len(toks) != 0 {
		t.Fatalf("revoked admin keeps %d tokens", len(toks))
	}
	if toks, _ := s.APITokensByUser(ctx, other.ID); len(toks) != 1 {
		t.Fatal("another admin lost a token")
	}
	if _, err := s.RevokePerson(ctx, "scheduler", staff.ID, "again", now); !errors.Is(err, ErrConflict) {
		t.Fatalf("second revoke: %v", err)
	}
	pend, _ := s.PendingRevocations(ctx)
	if len(pend) != 1 || pend[0].ID != rv.ID {
		t.Fatalf("pending %+v", pend)
	}
	if err := s.FinishRevocation(ctx, "scheduler", rv.ID, map[string]int{"devices": 1}, now); err != nil {
		t.Fatal(err)
	}
	if pend, _ := s.PendingRevocations(ctx); len(pend) != 0 {
		t.Fatalf("still pending %+v", pend)
	}
	devs, err := s.ReinstatePerson(ctx, "web:admin", staff.ID, PersonActive, now)
	if err != nil || len(devs) != 1 {
		t.Fatalf("reinstate: %v %v", devs, err)
	}
	if _, approved, blocked, _ := s.DeviceStatus(ctx, mac); !approved || blocked {
		t.Fatal("reinstate did not restore the device's approval")
	}
	if n, err := s.VerifyAudit(ctx); err != nil || n == 0 {
		t.Fatalf("verify: %v", err)
	}
}

func TestPurgePeopleKeepsHeld(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	now := time.Date(2028, 8, 1, 0, 0, 0, 0, time.UTC)
	var ids []int64
	for i, upn := range []string{"L1", "L2", "L3"} {
		p := pupil(upn, "X", "Y", "Year 13")
		p.LeavesOn = "2027-07-16"
		p.State = PersonRevoked
		if i == 1 {
			p.RecordsHold, p.HoldReason = true, "open case"
		}
		if i == 2 {
			p.LeavesOn = "2027-09-01"
		}
		got, err := s.CreatePerson(ctx, "cli:root", p, now)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, got.ID)
	}
	n, err := s.PurgePeople(ctx, "scheduler", "2027-08-01", now)
	if err != nil || n != 1 {
		t.Fatalf("purged %d, %v; want 1", n, err)
	}
	if _, err := s.PersonByID(ctx, ids[0]); !errors.Is(err, ErrNotFound) {
		t.Fatal("unheld leaver survived")
	}
	for _, id := range ids[1:] {
		if _, err := s.PersonByID(ctx, id); err != nil {
			t.Fatalf("person %d: %v", id, err)
		}
	}
	if a := auditActions(t, s); a[len(a)-1] != "people.purge" {
		t.Fatalf("last audit %v", a)
	}
}

func TestTermsAndGroups(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	now := time.Now()
	terms := []Term{{"Autumn", "2026-09-03", "2026-12-18", "2026-10-26", "2026-10-30"}, {"Spring", "2027-01-05", "2027-03-26", "", ""}}
	if err := s.SaveTerms(ctx, "cli:root", "2026-08-01", "2027-07-31", terms, now); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveTerms(ctx, "cli:root", "2026-08-01", "2027-07-31", terms[:1], now); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Terms(ctx)
	if len(got) != 1 || got[0] != terms[0] {
		t.Fatalf("terms %+v", got)
	}
	p, _ := s.CreatePerson(ctx, "cli:root", pupil("Z1", "Zed", "Zulu", "Year 9"), now)
	gid, err := s.CreateGroup(ctx, "web:a", "Chess club", "", now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateGroup(ctx, "web:a", "chess CLUB", "", now); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate group: %v", err)
	}
	if err := s.SetGroupMember(ctx, "web:a", gid, p.ID, true, now); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.ListPeople(ctx, PeopleFilter{Group: "Chess club"}); len(l) != 1 {
		t.Fatalf("members %d", len(l))
	}
	if gs, _ := s.GroupsOf(ctx, p.ID); len(gs) != 1 || gs[0] != "Chess club" {
		t.Fatalf("groups of %v", gs)
	}
}
