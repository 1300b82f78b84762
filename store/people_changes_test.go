package store

import (
	"context"
	"slices"
	"testing"
	"time"
)

// Every change to what a person's login identity is made of (their row,
// Wi-Fi password, group memberships; the groups and the calendar for
// everyone) is logged, by whichever Store made it (another process's, here
// a second Open of the same file, or raw SQL as the sqlite3 shell would).
func TestPeopleChangesLogEveryWriter(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	other, err := Open(ctx, path) // another process's view of the file
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	p, err := other.CreatePerson(ctx, "cli", Person{Kind: "pupil", UPN: "A100", LegalForename: "Ada", LegalSurname: "Lovelace",
		Username: "ada", State: PersonActive}, now)
	if err != nil {
		t.Fatal(err)
	}
	// expect runs change and wants the log to name exactly person id (0:
	// everyone, reported as a gap) since the position before it.
	expect := func(what string, id int64, change func() error) {
		t.Helper()
		before, err := s.LatestPersonChange(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := change(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		ids, next, gap, err := s.PersonChangesSince(ctx, before, 100)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if next <= before {
			t.Fatalf("%s: position %d -> %d: nothing logged", what, before, next)
		}
		if id == 0 {
			if !gap || ids != nil {
				t.Errorf("%s: logged %v, gap %v; want a gap (everyone)", what, ids, gap)
			}
			return
		}
		if gap || len(slices.Compact(ids)) != 1 || ids[0] != id {
			t.Errorf("%s: logged %v, gap %v; want person %d", what, ids, gap, id)
		}
	}
	expect("a new password from another process", p.ID, func() error {
		return other.SetPersonWiFiCredentials(ctx, "cli", p.ID, "$argon2id$x", nil, now)
	})
	expect("revoked from another process", p.ID, func() error {
		_, err := other.RevokePerson(ctx, "cli", p.ID, "left", now)
		return err
	})
	g, err := s.CreateGroup(ctx, "nm", "Choir", "", now)
	if err != nil {
		t.Fatal(err)
	}
	expect("joins a group", p.ID, func() error { return s.SetGroupMember(ctx, "nm", g, p.ID, true, now) })
	expect("raw SQL", p.ID, func() error {
		_, err := other.db.ExecContext(ctx, `UPDATE people SET state = 'active' WHERE id = ?`, p.ID)
		return err
	})
	expect("a term", 0, func() error {
		return other.SaveTerm(ctx, "nm", "", Term{Name: "Spring", StartsOn: "2026-01-05", EndsOn: "2026-03-27"}, now)
	})
	expect("a group goes", 0, func() error { return s.DeleteGroup(ctx, "nm", g, now) })
	// Going back (a restored backup) or past what the log keeps is a gap.
	latest, err := s.LatestPersonChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, next, gap, err := s.PersonChangesSince(ctx, latest+5, 100); err != nil || !gap || next != latest {
		t.Fatalf("ahead of the log: next %d gap %v err %v; want a gap to %d", next, gap, err, latest)
	}
}

// Commits moves with every write transaction, before the writer returns.
func TestCommitsCountsWrites(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	before := s.Commits()
	if _, err := s.CreateGroup(ctx, "nm", "Choir", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	if s.Commits() == before {
		t.Fatal("a committed write did not move Commits")
	}
	if _, err := s.Groups(ctx); err != nil {
		t.Fatal(err)
	}
	if after := s.Commits(); after != before+1 {
		t.Fatalf("Commits %d after one write and a read, want %d", after, before+1)
	}
}
