package people

import (
	"bytes"
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/radius/mschapv2"
	"github.com/gatehouse-net/gatehouse/store"
)

func testSiteKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// ntPassword is the Wi-Fi password sealedSchool gives its person.
const ntPassword = "correct horse battery"

// sealedSchool is a school whose NT hashes are sealed (MSCHAPv2 on), with
// one person, 1002jacc, whose Wi-Fi password is pw.
func sealedSchool(t *testing.T, pw string) (*Service, store.Person) {
	t.Helper()
	sealer, err := NewNTSealer(testSiteKey(7))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := school(t, Options{NTHashes: sealer})
	p := state(t, s, "1002jacc")
	if err := s.SetWiFiPassword(context.Background(), "web:nm", p.ID, pw); err != nil {
		t.Fatal(err)
	}
	return s, p
}

func TestNTHashSealedAndEndsWithAccess(t *testing.T) {
	ctx := context.Background()
	s, p := sealedSchool(t, ntPassword)
	const pw = ntPassword
	nt, found, err := s.NTHash(ctx, "1002JACC")
	if err != nil || !found || nt != mschapv2.NTPasswordHash(pw) {
		t.Fatalf("NTHash %x %v %v", nt, found, err)
	}
	// At rest it is sealed: neither the hash nor its hex is in the row.
	_, sealed, err := s.st.PersonNTLogin(ctx, "1002jacc")
	if err != nil || len(sealed) == 0 {
		t.Fatalf("sealed %x %v", sealed, err)
	}
	if bytes.Contains(sealed, nt[:]) || strings.Contains(strings.ToLower(string(sealed)), hex.EncodeToString(nt[:])) {
		t.Fatal("the NT hash is stored in clear")
	}
	for _, e := range auditOf(t, s, p.ID) {
		if strings.Contains(e.After, hex.EncodeToString(nt[:])) || strings.Contains(e.After, hex.EncodeToString(sealed)) {
			t.Fatal("the NT hash is in the audit log")
		}
		if e.Action == "person.wifi_password" && !strings.Contains(e.After, `"nt_hash":true`) {
			t.Fatalf("audit %s", e.After)
		}
	}
	// Another site key does not open it; nor does another person's row.
	other, _ := NewNTSealer(testSiteKey(8))
	if _, err := other.open(p.ID, sealed); err == nil {
		t.Fatal("opened with another site key")
	}
	same, _ := NewNTSealer(testSiteKey(7))
	if _, err := same.open(p.ID, sealed); err != nil {
		t.Fatalf("the same site key does not open it: %v", err)
	}
	if _, err := same.open(p.ID+1, sealed); err == nil {
		t.Fatal("opened as another person")
	}
	// The EAP-MSCHAPv2 method authenticates against it end to end.
	srv, err := mschapv2.NewServer(mschapv2.Config{Lookup: s.NTHash})
	if err != nil {
		t.Fatal(err)
	}
	ch, _ := srv.Start()
	var auth, peer [16]byte
	copy(auth[:], ch[5:21])
	resp := mschapv2.GenerateNTResponse(auth, peer, "1002jacc", mschapv2.NTPasswordHash(pw))
	td := []byte{mschapv2.OpResponse, ch[1], 0, byte(4 + 1 + 49 + len("1002jacc")), 49}
	td = append(td, peer[:]...)
	td = append(td, make([]byte, 8)...)
	td = append(td, resp[:]...)
	td = append(append(td, 0), "1002jacc"...)
	step, err := srv.Handle(ctx, td)
	if err != nil || step.Reply[0] != mschapv2.OpSuccess {
		t.Fatalf("%v %+v", err, step)
	}

	// Revocation takes it with the password.
	if _, err := s.RevokeNow(ctx, "web:nm", p.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if _, found, err := s.NTHash(ctx, "1002jacc"); found || err != nil {
		t.Fatalf("after revocation: found %v %v", found, err)
	}
	if _, sealed, _ := s.st.PersonNTLogin(ctx, "1002jacc"); len(sealed) != 0 {
		t.Fatal("the sealed NT hash survived the revocation")
	}
	if _, found, _ := s.NTHash(ctx, "nobody"); found {
		t.Fatal("unknown user found")
	}
}

func TestNTHashOnlyWhenEnabled(t *testing.T) {
	ctx := context.Background()
	sealer, _ := NewNTSealer(testSiteKey(7))
	s, _ := school(t, Options{NTHashes: sealer})
	p := state(t, s, "1002jacc")
	if err := s.SetWiFiPassword(ctx, "web:nm", p.ID, "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.ClearNTHashes(ctx); n != 0 {
		t.Fatal("cleared while enabled")
	}
	// The same database with MSCHAPv2 turned off: no NT hash is stored
	// and the ones left over are removed at start.
	off, err := New(Options{Store: s.st, Now: s.now})
	if err != nil {
		t.Fatal(err)
	}
	if _, found, _ := off.NTHash(ctx, "1002jacc"); found {
		t.Fatal("NTHash answers while disabled")
	}
	if n, err := off.ClearNTHashes(ctx); n != 1 || err != nil {
		t.Fatalf("cleared %d %v", n, err)
	}
	if n, _ := s.st.CountWiFiNTHashes(ctx); n != 0 {
		t.Fatalf("%d NT hashes left", n)
	}
	if err := off.SetWiFiPassword(ctx, "web:nm", p.ID, "another good password"); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.st.CountWiFiNTHashes(ctx); n != 0 {
		t.Fatal("an NT hash was stored with MSCHAPv2 off")
	}
	// Back on: a stale NT hash can never answer for a newer password,
	// because setting one always rewrites (or clears) both.
	if _, found, _ := s.NTHash(ctx, "1002jacc"); found {
		t.Fatal("a stale NT hash answers")
	}
	// Removing the password removes both.
	if err := s.SetWiFiPassword(ctx, "web:nm", p.ID, "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetWiFiPassword(ctx, "web:nm", p.ID, ""); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := s.NTHash(ctx, "1002jacc"); found {
		t.Fatal("NT hash after the password was removed")
	}
	if _, err := NewNTSealer([]byte("short")); err == nil {
		t.Fatal("a short site key was accepted")
	}
}

// RADIUSIdentities carries the sealed NT hash with each identity (never
// the opened one) and OpenNTHash answers as NTHash does; every change to
// it, ClearWiFiNTHashes included, is in the people change log, which is
// what RADIUS's identity cache follows to drop it.
func TestRADIUSIdentitiesCarryTheSealedNTHash(t *testing.T) {
	ctx := context.Background()
	s, p := sealedSchool(t, ntPassword)
	const pw = ntPassword
	ids := RADIUSIdentities{Service: s}
	id, err := ids.Lookup(ctx, "1002JACC")
	if err != nil {
		t.Fatal(err)
	}
	want := mschapv2.NTPasswordHash(pw)
	if len(id.NTSealed) == 0 || bytes.Contains(id.NTSealed, want[:]) {
		t.Fatalf("the identity carries %x: want the sealed hash", id.NTSealed)
	}
	if nt, found, err := ids.OpenNTHash(id); err != nil || !found || nt != want {
		t.Fatalf("OpenNTHash %x %v %v", nt, found, err)
	}
	logged := func(since int64) bool {
		t.Helper()
		people, _, gap, err := ids.PersonChangesSince(ctx, since, 1024)
		if err != nil {
			t.Fatal(err)
		}
		for _, who := range people {
			if who == PersonRef(p.ID) {
				return true
			}
		}
		return gap
	}
	g, err := ids.LatestPersonChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	commits := ids.Commits()
	if n, err := s.st.ClearWiFiNTHashes(ctx, "test", time.Now()); err != nil || n != 1 {
		t.Fatalf("cleared %d, %v", n, err)
	}
	if !logged(g) || ids.Commits() == commits {
		t.Fatal("clearing the NT hashes is not in the people change log")
	}
	if id, err = ids.Lookup(ctx, "1002jacc"); err != nil || id.NTSealed != nil {
		t.Fatalf("after clearing: %x %v", id.NTSealed, err)
	}
	if _, found, err := ids.OpenNTHash(id); found || err != nil {
		t.Fatalf("after clearing: found %v %v", found, err)
	}
	// A new password seals a new NT hash, logged; a sealed hash of another
	// person does not open as this one.
	g, _ = ids.LatestPersonChange(ctx)
	const pw2 = "a different passphrase"
	if err := s.SetWiFiPassword(ctx, "web:nm", p.ID, pw2); err != nil {
		t.Fatal(err)
	}
	if !logged(g) {
		t.Fatal("a new password is not in the people change log")
	}
	if id, err = ids.Lookup(ctx, "1002jacc"); err != nil {
		t.Fatal(err)
	}
	if nt, found, err := ids.OpenNTHash(id); err != nil || !found || nt != mschapv2.NTPasswordHash(pw2) {
		t.Fatalf("after a new password: %x %v %v", nt, found, err)
	}
	other := id
	other.Person = PersonRef(p.ID + 1)
	if _, _, err := ids.OpenNTHash(other); err == nil {
		t.Fatal("another person's identity opened this sealed hash")
	}
	// A revoked identity opens nothing; nor does MSCHAPv2 off.
	id.Active = false
	if _, found, err := ids.OpenNTHash(id); found || err != nil {
		t.Fatalf("inactive: found %v %v", found, err)
	}
	off, _ := school(t, Options{})
	id.Active = true
	if _, found, err := (RADIUSIdentities{Service: off}).OpenNTHash(id); found || err != nil {
		t.Fatalf("MSCHAPv2 off: found %v %v", found, err)
	}
}

// BenchmarkNTHash is what a PEAP login's NT hash lookup costs before and
// after RADIUS's identity cache held the sealed hash: store is
// Service.NTHash (a SQL read through cgo, then the AES-GCM open), sealed
// is RADIUSIdentities.OpenNTHash on an identity already in memory (the
// open alone), which is all a cached re-authentication pays.
func BenchmarkNTHash(b *testing.B) {
	ctx := context.Background()
	sealer, err := NewNTSealer(testSiteKey(7))
	if err != nil {
		b.Fatal(err)
	}
	s, _ := newService(b, sampleNow, Options{NTHashes: sealer})
	importFile(b, s, "pupils-sims.csv")
	p, err := s.st.PersonByKey(ctx, "1002jacc")
	if err != nil {
		b.Fatal(err)
	}
	if err := s.SetWiFiPassword(ctx, "bench", p.ID, "correct horse battery"); err != nil {
		b.Fatal(err)
	}
	b.Run("store", func(b *testing.B) {
		for range b.N {
			if _, found, err := s.NTHash(ctx, "1002jacc"); !found || err != nil {
				b.Fatal(found, err)
			}
		}
	})
	ids := RADIUSIdentities{Service: s}
	id, err := ids.Lookup(ctx, "1002jacc")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("sealed", func(b *testing.B) {
		for range b.N {
			if _, found, err := ids.OpenNTHash(id); !found || err != nil {
				b.Fatal(found, err)
			}
		}
	})
}
