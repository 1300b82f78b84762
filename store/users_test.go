package store

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const fakeHash = "$argon2id$v=19$m=65536,t=3,p=2$c2VjcmV0c2FsdHNlY3JldA$c2VjcmV0aGFzaHNlY3JldGhhc2hzZWNyZXRoYXNoc2VjcmV0"

func mustUser(t *testing.T, s *Store, name, role string) User {
	t.Helper()
	u, err := s.CreateUser(context.Background(), "cli:root", User{Name: name, Role: role, PasswordHash: fakeHash})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// assertAuditClean checks the chain and that no secret reached the log.
func assertAuditClean(t *testing.T, s *Store, secrets ...string) []AuditEntry {
	t.Helper()
	ctx := context.Background()
	if _, err := s.VerifyAudit(ctx); err != nil {
		t.Fatalf("VerifyAudit: %v", err)
	}
	list, err := s.AuditList(ctx, MaxAuditPage, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range list {
		for _, secret := range secrets {
			if strings.Contains(e.Before+e.After+e.Object, secret) {
				t.Errorf("audit row %d (%s) contains a secret: %s %s", e.ID, e.Action, e.Before, e.After)
			}
		}
	}
	return list
}

func TestCreateUser(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	created := time.Date(2025, 9, 1, 7, 0, 0, 0, time.UTC)
	u, err := s.CreateUser(ctx, "web:alice", User{Name: "bob", Role: RoleNetwork, PasswordHash: fakeHash, CreatedAt: created, FailedLogins: 9})
	if err != nil {
		t.Fatal(err)
	}
	if u.ID == 0 || !u.CreatedAt.Equal(created) || u.FailedLogins != 0 {
		t.Fatalf("CreateUser returned %+v", u)
	}
	for _, lookup := range []func() (User, error){
		func() (User, error) { return s.UserByName(ctx, "bob") },
		func() (User, error) { return s.UserByName(ctx, "BOB") },
		func() (User, error) { return s.UserByID(ctx, u.ID) },
	} {
		got, err := lookup()
		if err != nil || got != u {
			t.Errorf("lookup = %+v, %v; want %+v", got, err, u)
		}
	}
	list := assertAuditClean(t, s, fakeHash, "c2VjcmV0")
	if len(list) != 1 || list[0].Action != "user.create" || list[0].Actor != "web:alice" || list[0].Object != "user:bob" ||
		!strings.Contains(list[0].After, `"role":"network"`) {
		t.Fatalf("audit = %+v", list)
	}

	for _, tc := range []struct {
		name    string
		u       User
		wantErr error
		wantMsg string
	}{
		{"duplicate name", User{Name: "bob", Role: RoleDSL, PasswordHash: fakeHash}, ErrExists, ""},
		{"duplicate name in other case", User{Name: "Bob", Role: RoleDSL, PasswordHash: fakeHash}, ErrExists, ""},
		{"unknown role", User{Name: "carol", Role: "admin", PasswordHash: fakeHash}, nil, `role "admin" is not one of`},
		{"role in wrong case", User{Name: "carol", Role: "DSL", PasswordHash: fakeHash}, nil, "role"},
		{"empty role", User{Name: "carol", PasswordHash: fakeHash}, nil, "role"},
		{"empty name", User{Role: RoleDSL, PasswordHash: fakeHash}, nil, "name"},
		{"name with space", User{Name: "carol smith", Role: RoleDSL, PasswordHash: fakeHash}, nil, "name"},
		{"name with colon", User{Name: "web:carol", Role: RoleDSL, PasswordHash: fakeHash}, nil, "name"},
		{"name too long", User{Name: strings.Repeat("c", 65), Role: RoleDSL, PasswordHash: fakeHash}, nil, "name"},
		{"no password hash", User{Name: "carol", Role: RoleDSL}, nil, "password hash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateUser(ctx, "web:alice", tc.u)
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("err = %v, want it to mention %q", err, tc.wantMsg)
			}
		})
	}
	users, err := s.ListUsers(ctx)
	if err != nil || len(users) != 1 {
		t.Fatalf("rejected creates left users behind: %v, %v", users, err)
	}
	if n, err := s.VerifyAudit(ctx); err != nil || n != 1 {
		t.Fatalf("rejected creates left audit rows: %d, %v", n, err)
	}
}

func TestUserLookupsAndList(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	for _, n := range []string{"zoe", "adam", "mia"} {
		mustUser(t, s, n, RoleReception)
	}
	users, err := s.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
	}
	if strings.Join(names, ",") != "adam,mia,zoe" {
		t.Errorf("ListUsers names = %v", names)
	}
	if _, err := s.UserByName(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("UserByName(nobody) err = %v", err)
	}
	if _, err := s.UserByID(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("UserByID(999) err = %v", err)
	}
}

func TestSetUserPassword(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	mustUser(t, s, "bob", RoleDSL)
	const newHash = "$argon2id$v=19$m=65536,t=3,p=2$bmV3c2FsdG5ld3NhbHQ$bmV3aGFzaG5ld2hhc2huZXdoYXNobmV3aGFzaG5ld2hhc2g"
	if err := s.SetUserPassword(ctx, "web:alice", "bob", newHash); err != nil {
		t.Fatal(err)
	}
	u, err := s.UserByName(ctx, "bob")
	if err != nil || u.PasswordHash != newHash {
		t.Fatalf("hash after set = %q, %v", u.PasswordHash, err)
	}
	list := assertAuditClean(t, s, fakeHash, newHash)
	if list[0].Action != "user.password" || list[0].Object != "user:bob" || list[0].Actor != "web:alice" {
		t.Errorf("audit = %+v", list[0])
	}
	if err := s.SetUserPassword(ctx, "web:alice", "nobody", newHash); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetUserPassword(nobody) err = %v", err)
	}
	if err := s.SetUserPassword(ctx, "web:alice", "bob", ""); err == nil {
		t.Errorf("SetUserPassword accepted an empty hash")
	}
}

func TestLoginThrottling(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	mustUser(t, s, "bob", RoleNetwork)
	t0 := time.Date(2025, 9, 1, 9, 0, 0, 0, time.UTC)
	const max, lock = 3, 15 * time.Minute

	steps := []struct {
		name       string
		now        time.Time
		reset      bool
		wantLocked bool
		wantFailed int
		wantLocks  int // user.lock audit rows so far
	}{
		{"first failure", t0, false, false, 1, 0},
		{"second failure", t0.Add(time.Second), false, false, 2, 0},
		{"third failure locks", t0.Add(2 * time.Second), false, true, 3, 1},
		{"failure while locked stays locked, no new row", t0.Add(time.Minute), false, true, 4, 1},
		{"failure after lock expired locks again", t0.Add(2*time.Second + lock), false, true, 5, 2},
		{"successful login resets", t0.Add(time.Hour), true, false, 0, 2},
		{"counting restarts", t0.Add(time.Hour + time.Second), false, false, 1, 2},
	}
	for _, st := range steps {
		if st.reset {
			if err := s.ResetLoginFailures(ctx, "bob"); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
		} else {
			locked, err := s.RecordLoginFailure(ctx, "bob", st.now, max, lock)
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if locked != st.wantLocked {
				t.Errorf("%s: locked = %v, want %v", st.name, locked, st.wantLocked)
			}
		}
		u, err := s.UserByName(ctx, "bob")
		if err != nil {
			t.Fatal(err)
		}
		if u.FailedLogins != st.wantFailed {
			t.Errorf("%s: FailedLogins = %d, want %d", st.name, u.FailedLogins, st.wantFailed)
		}
		if got := u.LockedUntil.After(st.now); got != st.wantLocked {
			t.Errorf("%s: LockedUntil %v after now %v = %v, want %v", st.name, u.LockedUntil, st.now, got, st.wantLocked)
		}
		list := assertAuditClean(t, s, fakeHash)
		locks := 0
		for _, e := range list {
			if e.Action == "user.lock" {
				locks++
				if e.Actor != "web:login" || e.Object != "user:bob" {
					t.Errorf("lock audit row = %+v", e)
				}
			}
		}
		if locks != st.wantLocks {
			t.Errorf("%s: %d user.lock rows, want %d", st.name, locks, st.wantLocks)
		}
	}
	u, _ := s.UserByName(ctx, "bob")
	if !u.LockedUntil.IsZero() {
		t.Errorf("LockedUntil after reset = %v, want zero", u.LockedUntil)
	}
	list, _ := s.AuditList(ctx, 10, 0)
	for _, e := range list {
		if e.Action == "user.lock" {
			if want := `"locked_until":"` + formatTime(t0.Add(2*time.Second+lock+lock)) + `"`; !strings.Contains(e.After, want) {
				t.Errorf("latest lock row After = %s, want it to contain %s", e.After, want)
			}
			if !e.At.Equal(t0.Add(2*time.Second + lock)) {
				t.Errorf("lock row At = %v, want the failure time", e.At)
			}
			break
		}
	}

	if _, err := s.RecordLoginFailure(ctx, "nobody", t0, max, lock); !errors.Is(err, ErrNotFound) {
		t.Errorf("RecordLoginFailure(nobody) err = %v", err)
	}
	if err := s.ResetLoginFailures(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ResetLoginFailures(nobody) err = %v", err)
	}
	for _, bad := range []struct {
		max  int
		lock time.Duration
	}{{0, lock}, {-1, lock}, {3, 0}} {
		if _, err := s.RecordLoginFailure(ctx, "bob", t0, bad.max, bad.lock); err == nil {
			t.Errorf("RecordLoginFailure(max %d, lock %v) accepted", bad.max, bad.lock)
		}
	}
}

func TestSessions(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	bob := mustUser(t, s, "bob", RoleDSL)
	gone, err := s.CreateUser(ctx, "cli:root", User{Name: "gone", Role: RoleDSL, PasswordHash: fakeHash, Disabled: true})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 9, 1, 9, 0, 0, 0, time.UTC)
	sess := Session{TokenHash: "aa11", UserID: bob.ID, CSRFToken: "csrf1", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	sess.LastSeen = t0 // CreateSession starts the idle clock at login
	for _, tc := range []struct {
		name string
		sess Session
		want error
	}{
		{"duplicate token", Session{TokenHash: "aa11", UserID: bob.ID, CSRFToken: "x", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}, ErrExists},
		{"unknown user", Session{TokenHash: "bb22", UserID: 999, CSRFToken: "x", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}, ErrNotFound},
		{"no token", Session{UserID: bob.ID, CSRFToken: "x", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}, nil},
		{"no csrf", Session{TokenHash: "cc33", UserID: bob.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}, nil},
		{"already expired", Session{TokenHash: "dd44", UserID: bob.ID, CSRFToken: "x", CreatedAt: t0, ExpiresAt: t0}, nil},
	} {
		err := s.CreateSession(ctx, tc.sess)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("CreateSession %s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	if err := s.CreateSession(ctx, Session{TokenHash: "ee55", UserID: gone.ID, CSRFToken: "x", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name  string
		token string
		now   time.Time
		ok    bool
	}{
		{"live", "aa11", t0.Add(59 * time.Minute), true},
		{"at expiry", "aa11", t0.Add(time.Hour), false},
		{"after expiry", "aa11", t0.Add(2 * time.Hour), false},
		{"unknown token", "zz99", t0, false},
		{"disabled user", "ee55", t0, false},
	} {
		gotS, gotU, err := s.SessionByTokenHash(ctx, tc.token, tc.now)
		if !tc.ok {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: err = %v, want ErrNotFound", tc.name, err)
			}
			continue
		}
		if err != nil || gotS != sess || gotU != bob {
			t.Errorf("%s: = %+v, %+v, %v; want %+v, %+v", tc.name, gotS, gotU, err, sess, bob)
		}
	}

	if err := s.CreateSession(ctx, Session{TokenHash: "ff66", UserID: bob.ID, CSRFToken: "x", CreatedAt: t0, ExpiresAt: t0.Add(3 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteExpiredSessions(ctx, t0.Add(2*time.Hour))
	if err != nil || n != 2 { // aa11 and ee55 expired; ff66 lives
		t.Fatalf("DeleteExpiredSessions = %d, %v; want 2", n, err)
	}
	if _, _, err := s.SessionByTokenHash(ctx, "ff66", t0.Add(2*time.Hour)); err != nil {
		t.Fatalf("live session deleted: %v", err)
	}
	if err := s.DeleteSession(ctx, "ff66"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SessionByTokenHash(ctx, "ff66", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("after DeleteSession err = %v", err)
	}
	if err := s.DeleteSession(ctx, "ff66"); err != nil {
		t.Errorf("second DeleteSession = %v, want nil (logout is idempotent)", err)
	}
}

func TestAPITokens(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	bob := mustUser(t, s, "bob", RoleNetwork)
	gone, err := s.CreateUser(ctx, "cli:root", User{Name: "gone", Role: RoleNetwork, PasswordHash: fakeHash, Disabled: true})
	if err != nil {
		t.Fatal(err)
	}
	const secretHash = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
	tok, err := s.CreateAPIToken(ctx, "web:bob", APIToken{Name: "backup-script", UserID: bob.ID, TokenHash: secretHash})
	if err != nil {
		t.Fatal(err)
	}
	if tok.ID == 0 || tok.CreatedAt.IsZero() || !tok.LastUsed.IsZero() {
		t.Fatalf("CreateAPIToken = %+v", tok)
	}
	for _, tc := range []struct {
		name string
		t    APIToken
		want error
	}{
		{"same hash", APIToken{Name: "other", UserID: bob.ID, TokenHash: secretHash}, ErrExists},
		{"same name same user", APIToken{Name: "backup-script", UserID: bob.ID, TokenHash: "ab"}, ErrExists},
		{"unknown user", APIToken{Name: "x", UserID: 999, TokenHash: "cd"}, ErrNotFound},
		{"no hash", APIToken{Name: "x", UserID: bob.ID}, nil},
		{"no name", APIToken{UserID: bob.ID, TokenHash: "ef"}, nil},
	} {
		if _, err := s.CreateAPIToken(ctx, "web:bob", tc.t); err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("CreateAPIToken %s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := s.CreateAPIToken(ctx, "web:bob", APIToken{Name: "backup-script", UserID: gone.ID, TokenHash: "deadbeefcafe"}); err != nil {
		t.Fatalf("same name for another user: %v", err)
	}

	used := time.Date(2025, 9, 1, 10, 30, 0, 0, time.UTC)
	got, u, err := s.APITokenByHash(ctx, secretHash, used)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != tok.ID || got.Name != tok.Name || !got.CreatedAt.Equal(tok.CreatedAt) || u != bob {
		t.Fatalf("APITokenByHash = %+v, %+v", got, u)
	}
	if !got.LastUsed.Equal(used) {
		t.Errorf("LastUsed = %v, want %v", got.LastUsed, used)
	}
	listed, err := s.APITokensByUser(ctx, bob.ID)
	if err != nil || len(listed) != 1 || !listed[0].LastUsed.Equal(used) {
		t.Errorf("LastUsed not persisted: %+v, %v", listed, err)
	}
	for _, h := range []string{"nope", "deadbeefcafe" /* disabled user */} {
		if _, _, err := s.APITokenByHash(ctx, h, used); !errors.Is(err, ErrNotFound) {
			t.Errorf("APITokenByHash(%s) err = %v, want ErrNotFound", h, err)
		}
	}

	if err := s.DeleteAPIToken(ctx, "web:alice", tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.APITokenByHash(ctx, secretHash, used); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted token still authenticates: %v", err)
	}
	if err := s.DeleteAPIToken(ctx, "web:alice", tok.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteAPIToken err = %v, want ErrNotFound", err)
	}

	list := assertAuditClean(t, s, secretHash, "deadbeefcafe", fakeHash)
	var actions []string
	for _, e := range list {
		actions = append(actions, e.Action+" "+e.Object)
	}
	want := []string{
		"api_token.delete api_token:1",
		"api_token.create api_token:2",
		"api_token.create api_token:1",
		"user.create user:gone",
		"user.create user:bob",
	}
	if strings.Join(actions, "|") != strings.Join(want, "|") {
		t.Errorf("audit actions = %q, want %q", actions, want)
	}
	if !strings.Contains(list[0].Before, `"name":"backup-script"`) || list[0].Actor != "web:alice" {
		t.Errorf("delete audit row = %+v", list[0])
	}
}

func TestTouchSessionMovesLastSeenForwardOnly(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	bob := mustUser(t, s, "bob", RoleDSL)
	t0 := time.Date(2025, 9, 1, 9, 0, 0, 0, time.UTC)
	if err := s.CreateSession(ctx, Session{TokenHash: "aa11", UserID: bob.ID, CSRFToken: "c", CreatedAt: t0, ExpiresAt: t0.Add(8 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// Steps run in order against the same session.
	for _, tc := range []struct {
		name     string
		token    string
		at       time.Time
		wantErr  error
		wantSeen time.Time
	}{
		{"fresh session was last seen at login", "", time.Time{}, nil, t0},
		{"touch moves it forward", "aa11", t0.Add(10 * time.Minute), nil, t0.Add(10 * time.Minute)},
		{"a later touch moves it again", "aa11", t0.Add(25 * time.Minute), nil, t0.Add(25 * time.Minute)},
		{"an older touch does not move it back", "aa11", t0.Add(20 * time.Minute), nil, t0.Add(25 * time.Minute)},
		{"unknown session", "zz99", t0.Add(30 * time.Minute), ErrNotFound, t0.Add(25 * time.Minute)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.token != "" {
				err := s.TouchSession(ctx, tc.token, tc.at)
				if (tc.wantErr == nil && err != nil) || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
					t.Fatalf("TouchSession err = %v, want %v", err, tc.wantErr)
				}
			}
			got, _, err := s.SessionByTokenHash(ctx, "aa11", t0.Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if !got.LastSeen.Equal(tc.wantSeen) {
				t.Errorf("LastSeen = %v, want %v", got.LastSeen, tc.wantSeen)
			}
		})
	}
}

func TestDeleteUserSessions(t *testing.T) {
	t0 := time.Date(2025, 9, 1, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		user     string // whose sessions to end
		except   string
		wantN    int64
		wantLeft []string
	}{
		{"all but the current one", "bob", "b1", 2, []string{"b1", "c1"}},
		{"all of them", "bob", "", 3, []string{"c1"}},
		{"the kept hash belongs to someone else", "bob", "c1", 3, []string{"c1"}},
		{"a user without sessions", "dan", "", 0, []string{"b1", "b2", "b3", "c1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := openTemp(t)
			users := map[string]User{}
			for _, n := range []string{"bob", "carol", "dan"} {
				users[n] = mustUser(t, s, n, RoleDSL)
			}
			for hash, owner := range map[string]string{"b1": "bob", "b2": "bob", "b3": "bob", "c1": "carol"} {
				if err := s.CreateSession(ctx, Session{TokenHash: hash, UserID: users[owner].ID, CSRFToken: "c", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
					t.Fatal(err)
				}
			}
			n, err := s.DeleteUserSessions(ctx, users[tc.user].ID, tc.except)
			if err != nil || n != tc.wantN {
				t.Fatalf("DeleteUserSessions = %d, %v; want %d", n, err, tc.wantN)
			}
			var left []string
			for _, h := range []string{"b1", "b2", "b3", "c1"} {
				_, _, err := s.SessionByTokenHash(ctx, h, t0)
				switch {
				case err == nil:
					left = append(left, h)
				case !errors.Is(err, ErrNotFound):
					t.Fatal(err)
				}
			}
			if strings.Join(left, ",") != strings.Join(tc.wantLeft, ",") {
				t.Errorf("sessions left = %v, want %v", left, tc.wantLeft)
			}
			// Ending sessions is a consequence of an audited event, not one itself.
			for _, e := range assertAuditClean(t, s) {
				if e.Action != "user.create" {
					t.Errorf("unexpected audit row %s %s", e.Action, e.Object)
				}
			}
		})
	}
}

func TestAPITokensByUser(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	bob := mustUser(t, s, "bob", RoleNetwork)
	carol := mustUser(t, s, "carol", RoleReception)
	dan := mustUser(t, s, "dan", RoleDSL)
	t0 := time.Date(2025, 9, 1, 9, 0, 0, 0, time.UTC)
	for i, tok := range []APIToken{
		{Name: "nightly", UserID: bob.ID, TokenHash: "h1"},
		{Name: "backup", UserID: bob.ID, TokenHash: "h2"},
		{Name: "kiosk", UserID: carol.ID, TokenHash: "h3"},
	} {
		tok.CreatedAt = t0.Add(time.Duration(i) * time.Minute)
		if _, err := s.CreateAPIToken(ctx, "test", tok); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		user int64
		want []string // names, in order
	}{
		{"own tokens by name", bob.ID, []string{"backup", "nightly"}},
		{"only that user's", carol.ID, []string{"kiosk"}},
		{"none", dan.ID, nil},
		{"no such user", 999, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.APITokensByUser(ctx, tc.user)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, tok := range got {
				if tok.UserID != tc.user || tok.ID == 0 || tok.CreatedAt.IsZero() || !tok.LastUsed.IsZero() {
					t.Errorf("token %+v: wrong owner or fields not filled", tok)
				}
				names = append(names, tok.Name)
			}
			if strings.Join(names, ",") != strings.Join(tc.want, ",") {
				t.Errorf("names = %v, want %v", names, tc.want)
			}
		})
	}
}

// Sessions that existed before last_seen was added count as last seen at
// login, so the idle limit applies to them from the first request.
func TestSessionIdleMigrationBackfillsLastSeen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	old := openBefore(t, path, 3)
	// By hand: today's CreateUser writes columns the old schema lacks.
	created := "2025-09-01T09:00:00.000000000Z"
	res, err := old.db.Exec(`INSERT INTO users (name, role, password_hash, created_at) VALUES ('bob', ?, 'x', ?)`, RoleDSL, created)
	if err != nil {
		t.Fatal(err)
	}
	bobID, err := res.LastInsertId()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.db.Exec(`INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at) VALUES ('aa11', ?, 'c', ?, '2025-09-01T17:00:00.000000000Z')`,
		bobID, created); err != nil {
		t.Fatal(err)
	}
	old.Close()

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sess, _, err := s.SessionByTokenHash(ctx, "aa11", time.Date(2025, 9, 1, 10, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2025, 9, 1, 9, 0, 0, 0, time.UTC); !sess.LastSeen.Equal(want) || !sess.CreatedAt.Equal(want) {
		t.Errorf("after migration LastSeen = %v, CreatedAt = %v; want both %v", sess.LastSeen, sess.CreatedAt, want)
	}
}
