package store

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// The store keeps the sealed NT hash beside the argon2id hash, writes both
// in one audited change, and drops it when the person is revoked, leaves
// or is purged.
func TestWiFiNTHashLifecycle(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	mk := func(upn, user string) Person {
		p := pupil(upn, "Ann", "Ash", "Year 9")
		p.Username = user
		got, err := s.CreatePerson(ctx, "cli:root", p, now)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	a, b := mk("A1", "aash"), mk("B2", "bbirch")
	sealed := bytes.Repeat([]byte{0xab}, 44)
	if err := s.SetPersonWiFiCredentials(ctx, "web:nm", a.ID, "$argon2id$x", sealed, now); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPersonWiFiCredentials(ctx, "web:nm", b.ID, "$argon2id$y", sealed, now); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPersonWiFiCredentials(ctx, "web:nm", b.ID, "", sealed, now); err == nil {
		t.Fatal("an NT hash without a password hash was stored")
	}
	p, got, err := s.PersonNTLogin(ctx, "AASH")
	if err != nil || p.ID != a.ID || !bytes.Equal(got, sealed) {
		t.Fatalf("PersonNTLogin %+v %x %v", p, got, err)
	}
	if _, hash, _ := s.PersonLogin(ctx, "aash"); hash != "$argon2id$x" {
		t.Fatalf("password hash %q", hash)
	}
	es, _ := s.AuditFor(ctx, personObject(a.ID), 10)
	if len(es) == 0 || es[0].Action != "person.wifi_password" || es[0].After != `{"set":true,"nt_hash":true}` {
		t.Fatalf("audit %+v", es)
	}
	for _, e := range es {
		if strings.Contains(e.After, "argon2id") || strings.Contains(e.After, "abab") {
			t.Fatal("a hash is in the audit log")
		}
	}
	// A password set without an NT hash removes the old one.
	if err := s.SetPersonWiFiPassword(ctx, "web:nm", b.ID, "$argon2id$z", now); err != nil {
		t.Fatal(err)
	}
	if _, got, _ := s.PersonNTLogin(ctx, "bbirch"); len(got) != 0 {
		t.Fatal("a stale NT hash outlived a new password")
	}
	if n, _ := s.CountWiFiNTHashes(ctx); n != 1 {
		t.Fatalf("%d NT hashes", n)
	}
	// Revocation removes both forms.
	if _, err := s.RevokePerson(ctx, "scheduler", a.ID, "left", now); err != nil {
		t.Fatal(err)
	}
	if _, got, _ := s.PersonNTLogin(ctx, "aash"); len(got) != 0 {
		t.Fatal("the NT hash survived revocation")
	}
	if _, hash, _ := s.PersonLogin(ctx, "aash"); hash != "" {
		t.Fatal("the password hash survived revocation")
	}
	// Purging a person takes the row with them.
	if err := s.SetPersonWiFiCredentials(ctx, "web:nm", b.ID, "$argon2id$y", sealed, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.execForTest(ctx, `DELETE FROM people WHERE id = ?`, b.ID); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.CountWiFiNTHashes(ctx); n != 0 {
		t.Fatalf("%d NT hashes after the person was deleted", n)
	}
	// Clearing all (MSCHAPv2 turned off) is audited once.
	c := mk("C3", "ccedar")
	if err := s.SetPersonWiFiCredentials(ctx, "web:nm", c.ID, "$argon2id$c", sealed, now); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ClearWiFiNTHashes(ctx, "system:people", now); n != 1 || err != nil {
		t.Fatalf("cleared %d %v", n, err)
	}
	if n, _ := s.ClearWiFiNTHashes(ctx, "system:people", now); n != 0 {
		t.Fatal("cleared twice")
	}
	if a := auditActions(t, s); a[len(a)-1] != "people.wifi_nt_hashes_cleared" {
		t.Fatalf("last audit %v", a[len(a)-1])
	}
}

func (s *Store) execForTest(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
