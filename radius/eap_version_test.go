package radius

import (
	"context"
	"testing"
)

// A resumable PEAP or TTLS login is bound to its credential version
// (eap.Options.CredentialVersion): it must move when the password does and
// when the NT hashes are removed (MSCHAPv2 turned off), which leaves the
// argon2id hash alone, and stay put otherwise, or every re-authentication
// would run its inner login in full.
func TestCredentialVersionFollowsBothHashes(t *testing.T) {
	ctx := context.Background()
	ids := newFakeIdentities(map[string]Identity{"ada": {Person: "1", PasswordHash: "$argon2id$a", Active: true, NTSealed: []byte("sealed-a")}})
	s := &Server{o: Options{Identities: ids}}
	version, err := s.credentialVersions()
	if err != nil {
		t.Fatal(err)
	}
	v := func() string {
		t.Helper()
		got, err := version(ctx, "ada")
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	first := v()
	if again := v(); again != first {
		t.Fatalf("the same credentials gave two versions: %x, %x", first, again)
	}
	ids.set("ada", Identity{Person: "1", PasswordHash: "$argon2id$a", Active: true})
	cleared := v()
	if cleared == first {
		t.Fatal("removing the NT hash left the credential version as it was: a PEAP login would resume past it")
	}
	ids.set("ada", Identity{Person: "1", PasswordHash: "$argon2id$b", Active: true})
	if v() == cleared {
		t.Fatal("a new password left the credential version as it was")
	}
	if _, err := version(ctx, "nobody"); err == nil {
		t.Fatal("a name nobody has gave a credential version")
	}
}
