package radius

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/gatehouse-net/gatehouse/password"
)

// lockedIdentities is a directory the test changes while the server reads it.
type lockedIdentities struct {
	mu sync.Mutex
	m  map[string]Identity
}

func (l *lockedIdentities) Lookup(_ context.Context, u string) (Identity, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	id, ok := l.m[u]
	if !ok {
		return Identity{}, ErrNoIdentity
	}
	return id, nil
}

func (l *lockedIdentities) set(u string, id Identity) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m[u] = id
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestPAPReauthenticationSkipsArgon2idUntilThePasswordChangesThePersonIsRevokedOrItExpires(t *testing.T) {
	ids := &lockedIdentities{m: map[string]Identity{}}
	clock := &testClock{t: time.Now()}
	r := newRig(t, func(o *Options) {
		o.Identities = ids
		o.Now = clock.now
		o.CredentialCacheTTL = 10 * time.Minute
	})
	first, err := password.Hash("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	ids.set("amy", Identity{Person: "T042", PasswordHash: first, Active: true, Segment: "staff"})
	pap := func(pw string) radius.Code {
		t.Helper()
		p := radius.New(radius.CodeAccessRequest, []byte(testSecret))
		_ = rfc2865.UserName_SetString(p, "amy")
		_ = rfc2865.UserPassword_SetString(p, pw)
		_ = rfc2865.CalledStationID_SetString(p, "0A-00-00-00-00-01:Staff")
		req := signRequest(t, p, false)
		return checkReply(t, req, exchange(t, r.srv.AuthAddr(), req, 20*time.Second), testSecret).Code
	}
	checks := func() (argon, cached float64) {
		return testutil.ToFloat64(r.srv.metrics.passwords.WithLabelValues("argon2id")),
			testutil.ToFloat64(r.srv.metrics.passwords.WithLabelValues("cached"))
	}
	step := func(what, pw string, want radius.Code, wantArgon, wantCached float64) {
		t.Helper()
		if got := pap(pw); got != want {
			t.Fatalf("%s: %v, want %v", what, got, want)
		}
		if a, c := checks(); a != wantArgon || c != wantCached {
			t.Fatalf("%s: %v argon2id and %v cached checks so far, want %v and %v", what, a, c, wantArgon, wantCached)
		}
	}
	step("first login", "correct horse battery", radius.CodeAccessAccept, 1, 0)
	step("re-authentication", "correct horse battery", radius.CodeAccessAccept, 1, 1)
	step("a wrong password is never answered from the cache", "correct horse batterz", radius.CodeAccessReject, 2, 1)
	step("the right one still is", "correct horse battery", radius.CodeAccessAccept, 2, 2)

	second, err := password.Hash("new staple")
	if err != nil {
		t.Fatal(err)
	}
	ids.set("amy", Identity{Person: "T042", PasswordHash: second, Active: true, Segment: "staff"})
	step("the old password after a change", "correct horse battery", radius.CodeAccessReject, 3, 2)
	step("the new password", "new staple", radius.CodeAccessAccept, 4, 2)
	step("the new password again", "new staple", radius.CodeAccessAccept, 4, 3)

	clock.add(11 * time.Minute)
	step("after the expiry", "new staple", radius.CodeAccessAccept, 5, 3)

	ids.set("amy", Identity{Person: "T042", PasswordHash: second, Active: false, Segment: "staff"})
	step("revoked", "new staple", radius.CodeAccessReject, 5, 3)
}

func TestPAPWithoutCredentialCacheAlwaysVerifiesArgon2id(t *testing.T) {
	ids := &lockedIdentities{m: map[string]Identity{}}
	r := newRig(t, func(o *Options) { o.Identities = ids; o.CredentialCacheTTL = -1 })
	h, err := password.Hash("pw one two three")
	if err != nil {
		t.Fatal(err)
	}
	ids.set("bo", Identity{Person: "P1", PasswordHash: h, Active: true, Segment: "staff"})
	for range 2 {
		p := radius.New(radius.CodeAccessRequest, []byte(testSecret))
		_ = rfc2865.UserName_SetString(p, "bo")
		_ = rfc2865.UserPassword_SetString(p, "pw one two three")
		_ = rfc2865.CalledStationID_SetString(p, "0A-00-00-00-00-01:Staff")
		req := signRequest(t, p, false)
		if c := checkReply(t, req, exchange(t, r.srv.AuthAddr(), req, 20*time.Second), testSecret).Code; c != radius.CodeAccessAccept {
			t.Fatal(c)
		}
	}
	if a := testutil.ToFloat64(r.srv.metrics.passwords.WithLabelValues("argon2id")); a != 2 {
		t.Fatalf("%v argon2id checks, want 2", a)
	}
}

func TestCredentialCacheIsBoundedAndHoldsNoPassword(t *testing.T) {
	c, err := newCredCache(time.Minute, 3)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i, who := range []string{"a", "b", "c", "d", "e"} {
		c.remember(who, "$argon2id$hash-"+who, "secret-"+who, now.Add(time.Duration(i)*time.Second))
		if c.len() > 3 {
			t.Fatalf("%d entries, bound 3", c.len())
		}
	}
	if !c.verified("e", "$argon2id$hash-e", "secret-e", now.Add(5*time.Second)) {
		t.Fatal("the newest entry was not kept")
	}
	if c.verified("e", "$argon2id$hash-e", "secret-x", now.Add(5*time.Second)) {
		t.Fatal("a wrong password matched")
	}
	if c.verified("e", "$argon2id$other", "secret-e", now.Add(5*time.Second)) {
		t.Fatal("the entry outlived a change of hash")
	}
	for who, e := range c.m {
		if bytes.Contains(e.tag[:], []byte("secret-"+who)) {
			t.Fatal("the password is in the cache")
		}
	}
	// A second cache (another process) cannot confirm the first's entries:
	// its key is its own.
	d, _ := newCredCache(time.Minute, 3)
	if d.tag("h", "p") == c.tag("h", "p") {
		t.Fatal("two caches share a key")
	}
	if n, _ := newCredCache(-1, 3); n != nil || n.verified("a", "h", "p", now) {
		t.Fatal("a disabled cache answers")
	}
}

func TestConcurrentLoginsOfOnePersonCostOneArgon2id(t *testing.T) {
	s, err := New(Options{Devices: &fakeDevices{m: map[string]DeviceInfo{}}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := password.Hash("same time same place")
	if err != nil {
		t.Fatal(err)
	}
	id := Identity{Person: "P9", PasswordHash: h, Active: true}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.verifyPassword(context.Background(), "cy", id, "same time same place")
			if err != nil || !ok {
				errs <- fmt.Errorf("verify: %v %v", ok, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if a, c := testutil.ToFloat64(s.metrics.passwords.WithLabelValues("argon2id")), testutil.ToFloat64(s.metrics.passwords.WithLabelValues("cached")); a != 1 || c != 7 {
		t.Fatalf("%v argon2id and %v cached, want 1 and 7", a, c)
	}
}

// A PAP re-authentication whose password the credential cache holds is
// answered on the read loop (no worker); any other password of a person
// held in memory is handed back to a worker, which runs argon2id: a
// right one is accepted, a wrong one rejected, and the read loop never
// verified a hash itself.
func TestPAPReauthenticationIsAnsweredInlineOnlyFromTheCredentialCache(t *testing.T) {
	hash, err := password.Hash("right horse battery")
	if err != nil {
		t.Fatal(err)
	}
	dir := newPeopleLog()
	dir.set("ada", Identity{Person: "1", PasswordHash: hash, Active: true}, false)
	r := newRig(t, func(o *Options) { o.Identities = dir; o.RejectDelay = 0 })
	if _, ok := r.srv.o.Identities.(*identityCache); !ok {
		t.Fatalf("identities are %T, want the cache", r.srv.o.Identities)
	}
	pap := func(pw string) []byte {
		p := radius.New(radius.CodeAccessRequest, []byte(testSecret))
		_ = rfc2865.UserName_SetString(p, "ada")
		_ = rfc2865.UserPassword_SetString(p, pw)
		_ = rfc2865.CalledStationID_SetString(p, "0A-00-00-00-00-01:Pupils")
		return signRequest(t, p, false)
	}
	argon := func() float64 { return testutil.ToFloat64(r.srv.metrics.passwords.WithLabelValues("argon2id")) }
	first := pap("right horse battery")
	if r.srv.answersInline(false, first) {
		t.Fatal("a first login (nothing cached) would be answered inline")
	}
	if got := checkReply(t, first, exchange(t, r.srv.AuthAddr(), first, wait), testSecret); got.Code != radius.CodeAccessAccept {
		t.Fatalf("first login: %v", got.Code)
	}
	again := pap("right horse battery")
	if !r.srv.answersInline(false, again) {
		t.Fatal("a re-authentication from the credential cache is not answered inline")
	}
	if got := checkReply(t, again, exchange(t, r.srv.AuthAddr(), again, wait), testSecret); got.Code != radius.CodeAccessAccept {
		t.Fatalf("re-authentication: %v", got.Code)
	}
	if n := argon(); n != 1 {
		t.Fatalf("%v argon2id verifications after a login and a re-authentication, want 1", n)
	}
	// A wrong password of a person held in memory: inline is the hint,
	// and the decision hands it to a worker, which verifies it.
	wrong := pap("wrong horse")
	if !r.srv.answersInline(false, wrong) {
		t.Fatal("the hint should pick the read loop (it does not decrypt the password)")
	}
	if o := r.srv.handle(context.Background(), false, r.srv.clients[0], netip.MustParseAddrPort("127.0.0.1:1"), wrong, 22, true); !o.handoff {
		t.Fatalf("inline decision of a password not in the cache: %+v, want handed off", o)
	}
	if got := checkReply(t, wrong, exchange(t, r.srv.AuthAddr(), wrong, wait), testSecret); got.Code != radius.CodeAccessReject {
		t.Fatalf("wrong password: %v", got.Code)
	}
	if n := argon(); n != 2 {
		t.Fatalf("%v argon2id verifications after the wrong password, want 2 (a worker verified it)", n)
	}
}
