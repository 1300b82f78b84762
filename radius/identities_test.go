package radius

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// peopleLog is a people directory with its change log, in memory: every
// change moves the log and this process's write count, as the store does.
type peopleLog struct {
	mu      sync.Mutex
	ids     map[string]Identity // by lower-case name
	log     []string            // person changed, by position-1
	commits uint64
	reads   int
	// during, when set, runs inside a directory read (a change racing it).
	during func()
}

func (p *peopleLog) Lookup(_ context.Context, u string) (Identity, error) {
	p.mu.Lock()
	p.reads++
	id, ok := p.ids[strings.ToLower(u)]
	during := p.during
	p.during = nil
	p.mu.Unlock()
	if during != nil {
		during()
	}
	if !ok {
		return Identity{}, fmt.Errorf("%w: %s", ErrNoIdentity, u)
	}
	return id, nil
}

// set changes name's identity; local says whether this process made the
// change (it then moves Commits, as the store does before returning).
func (p *peopleLog) set(name string, id Identity, local bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ids[name] = id
	p.log = append(p.log, id.Person)
	if local {
		p.commits++
	}
}

func (p *peopleLog) LatestPersonChange(context.Context) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return int64(len(p.log)), nil
}

func (p *peopleLog) PersonChangesSince(_ context.Context, since int64, _ int) ([]string, int64, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.log[since:]...), int64(len(p.log)), false, nil
}

func (p *peopleLog) Commits() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.commits
}

func (p *peopleLog) readCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reads
}

func newPeopleLog() *peopleLog {
	return &peopleLog{ids: map[string]Identity{
		"ada":   {Person: "1", PasswordHash: "$argon2id$ada", Active: true},
		"brian": {Person: "2", PasswordHash: "$argon2id$brian", Active: true},
	}}
}

// A re-authentication is answered from memory; this process's revocation
// is seen by the very next lookup, even inside the check interval; another
// process's once the interval has passed.
func TestIdentityCacheSeesRevocations(t *testing.T) {
	ctx := context.Background()
	dir := newPeopleLog()
	// An hour's bound: only Commits can make the cache look again.
	c := newIdentityCache(dir, dir, 16, time.Hour, time.Now)
	look := func(name string) Identity {
		t.Helper()
		id, err := c.Lookup(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	look("ada")
	n := dir.readCount()
	if id := look("ada"); !id.Active || dir.readCount() != n {
		t.Fatalf("re-authentication read the directory again (%d -> %d reads), %+v", n, dir.readCount(), id)
	}
	dir.set("ada", Identity{Person: "1", PasswordHash: "$argon2id$ada", Active: false}, true)
	if id := look("ada"); id.Active {
		t.Fatalf("the lookup right after this process revoked ada still says active")
	}
	if id := look("brian"); !id.Active {
		t.Fatalf("brian: %+v", id)
	}
	n = dir.readCount()
	look("brian")
	if dir.readCount() != n {
		t.Fatalf("ada's revocation dropped brian too")
	}
	// Another process: the cache trusts its last check for maxStale.
	c.f.maxStale = 0
	dir.set("brian", Identity{Person: "2", PasswordHash: "$argon2id$new", Active: true}, false)
	if id := look("brian"); id.PasswordHash != "$argon2id$new" {
		t.Fatalf("brian's new password from another process not seen: %+v", id)
	}
}

// Names are folded as SQLite's NOCASE folds them: case variants of one
// name share an entry, unknown names are never kept, and the cache stays
// within its bound whatever a client sends.
func TestIdentityCacheIsKeyedByTheDirectoryNotTheClient(t *testing.T) {
	ctx := context.Background()
	dir := newPeopleLog()
	c := newIdentityCache(dir, dir, 4, time.Hour, time.Now)
	for _, name := range []string{"ada", "ADA", "Ada", "aDa"} {
		if id, err := c.Lookup(ctx, name); err != nil || id.Person != "1" {
			t.Fatalf("%s: %+v, %v", name, id, err)
		}
	}
	if c.len() != 1 {
		t.Fatalf("four spellings of one name hold %d entries, want 1", c.len())
	}
	for i := range 100 {
		if _, err := c.Lookup(ctx, fmt.Sprintf("nobody%d", i)); !errors.Is(err, ErrNoIdentity) {
			t.Fatalf("unknown name: %v", err)
		}
	}
	if c.len() != 1 {
		t.Fatalf("unknown names were kept: %d entries", c.len())
	}
	for i := range 10 {
		name := fmt.Sprintf("p%d", i)
		dir.set(name, Identity{Person: fmt.Sprint(10 + i), Active: true}, false)
		if _, err := c.Lookup(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if c.len() > 4 {
		t.Fatalf("cache holds %d identities, bound 4", c.len())
	}
	if got := foldASCII("ÉCOLE-Ab"); got != "École-ab" {
		t.Fatalf("foldASCII folded beyond ASCII: %q", got)
	}
}

// A directory read that a change overtook (it may have read the row before
// the change committed) answers its own request but is not kept.
func TestIdentityCacheDiscardsAFillOverlappingAChange(t *testing.T) {
	ctx := context.Background()
	dir := newPeopleLog()
	c := newIdentityCache(dir, dir, 16, 0, time.Now)
	dir.during = func() {
		dir.set("ada", Identity{Person: "1", Active: false}, false)
		if err := c.f.sync(ctx); err != nil { // another request sees the change
			t.Error(err)
		}
	}
	if _, err := c.Lookup(ctx, "ada"); err != nil {
		t.Fatal(err)
	}
	if c.len() != 0 {
		t.Fatal("a fill that overlapped a change was kept")
	}
	if id, err := c.Lookup(ctx, "ada"); err != nil || id.Active {
		t.Fatalf("after the change: %+v, %v", id, err)
	}
}

// An entry is read again once its end of access has come, or after
// identityMaxAge, even with no change logged (the clock and the calendar
// package people keeps in memory are not in the log).
func TestIdentityCacheRereadsAtTheEndOfAccess(t *testing.T) {
	ctx := context.Background()
	dir := newPeopleLog()
	at := time.Date(2026, 7, 20, 23, 0, 0, 0, time.UTC)
	now := at
	dir.ids["ada"] = Identity{Person: "1", Active: true, Until: at.Add(time.Second)}
	c := newIdentityCache(dir, dir, 16, time.Hour, func() time.Time { return now })
	lookups := func() int {
		if _, err := c.Lookup(ctx, "ada"); err != nil {
			t.Fatal(err)
		}
		return dir.readCount()
	}
	n := lookups()
	if lookups() != n {
		t.Fatal("read again before the end of access")
	}
	now = at.Add(time.Second)
	if lookups() != n+1 {
		t.Fatal("not read again at the end of access")
	}
	dir.ids["brian"] = Identity{Person: "2", Active: true}
	if _, err := c.Lookup(ctx, "brian"); err != nil {
		t.Fatal(err)
	}
	n = dir.readCount()
	now = now.Add(identityMaxAge)
	if _, err := c.Lookup(ctx, "brian"); err != nil || dir.readCount() != n+1 {
		t.Fatalf("not read again after %v: %v", identityMaxAge, err)
	}
}

// cachedIdentities holds a directory in memory only when it follows a
// change log.
func TestCachedIdentitiesNeedsAChangeLog(t *testing.T) {
	if _, ok := cachedIdentities(newFakeIdentities(nil), 0).(*fakeIdentities); !ok {
		t.Fatal("a directory without a change log was wrapped")
	}
	if _, ok := cachedIdentities(newPeopleLog(), 0).(*identityCache); !ok {
		t.Fatal("a directory with a change log was not cached")
	}
}

// The in-memory part of a PAP re-authentication: the identity from the
// cache and the password from the credential cache.
func BenchmarkCachedPAPIdentityAndCredential(b *testing.B) {
	ctx := context.Background()
	dir := newPeopleLog()
	c := newIdentityCache(dir, dir, 16, defaultMaxStale, time.Now)
	creds, err := newCredCache(time.Minute, 16)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	creds.remember("1", "$argon2id$ada", "benchpass1", now)
	b.ReportAllocs()
	for b.Loop() {
		id, err := c.Lookup(ctx, "ada")
		if err != nil || !creds.verified(id.Person, id.PasswordHash, "benchpass1", now) {
			b.Fatal("not verified", err)
		}
	}
}

// ntPeopleLog is peopleLog whose identities carry a sealed NT hash, which
// it "opens" by taking the sealed bytes as the hash (a fake sealer), and
// counts the opens.
type ntPeopleLog struct {
	*peopleLog
	opens int
}

func (p *ntPeopleLog) OpenNTHash(id Identity) (nt [16]byte, found bool, err error) {
	p.mu.Lock()
	p.opens++
	p.mu.Unlock()
	if !id.Active || len(id.NTSealed) == 0 {
		return nt, false, nil
	}
	copy(nt[:], id.NTSealed)
	return nt, true, nil
}

// PEAP's NT hash lookup goes through the identity cache: a
// re-authentication reads no directory, the cache holds the sealed form
// only (the opener runs on every login), and this process's removal of
// the NT hashes (ClearWiFiNTHashes logs every person it touched,
// migration 0095) or a password change is seen by the very next request,
// with the cache's check interval at an hour.
func TestNTHashThroughTheIdentityCache(t *testing.T) {
	ctx := context.Background()
	dir := &ntPeopleLog{peopleLog: newPeopleLog()}
	sealedA := []byte("0123456789abcdef")
	dir.set("ada", Identity{Person: "1", PasswordHash: "$argon2id$ada", Active: true, NTSealed: sealedA}, false)
	s := &Server{o: Options{Identities: newIdentityCache(dir, dir, 16, time.Hour, time.Now)}, nt: dir}
	nt, found, err := s.ntHash(ctx, "ADA")
	if err != nil || !found || string(nt[:]) != string(sealedA) {
		t.Fatalf("first: %x %v %v", nt, found, err)
	}
	n := dir.readCount()
	if nt, found, err = s.ntHash(ctx, "ada"); err != nil || !found || string(nt[:]) != string(sealedA) || dir.readCount() != n {
		t.Fatalf("re-authentication: %x %v %v, reads %d -> %d", nt, found, err, n, dir.readCount())
	}
	if dir.opens != 2 {
		t.Fatalf("%d opens for two logins: the opened hash was kept", dir.opens)
	}
	// This process clears the NT hashes (MSCHAPv2 turned off).
	dir.set("ada", Identity{Person: "1", PasswordHash: "$argon2id$ada", Active: true}, true)
	if _, found, err = s.ntHash(ctx, "ada"); err != nil || found {
		t.Fatalf("right after the NT hashes were cleared: found %v %v", found, err)
	}
	// A new password (both hashes) is seen at once.
	sealedB := []byte("fedcba9876543210")
	dir.set("ada", Identity{Person: "1", PasswordHash: "$argon2id$ada2", Active: true, NTSealed: sealedB}, true)
	if nt, found, err = s.ntHash(ctx, "ada"); err != nil || !found || string(nt[:]) != string(sealedB) {
		t.Fatalf("right after a password change: %x %v %v", nt, found, err)
	}
	// A revocation too.
	dir.set("ada", Identity{Person: "1", PasswordHash: "$argon2id$ada2", Active: false, NTSealed: sealedB}, true)
	if _, found, err = s.ntHash(ctx, "ada"); err != nil || found {
		t.Fatalf("right after a revocation: found %v %v", found, err)
	}
	// Nobody of that name, and no name: not found, no error.
	for _, u := range []string{"nobody", ""} {
		if _, found, err = s.ntHash(ctx, u); err != nil || found {
			t.Fatalf("%q: found %v %v", u, found, err)
		}
	}
}
