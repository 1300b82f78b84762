package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestClientCertsRecordListRevokeAndAudit(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	p, err := s.CreatePerson(ctx, "cli:root", Person{Kind: "staff", StaffCode: "ABC", LegalForename: "Ada", LegalSurname: "Lovelace", Username: "alovelace"}, now)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(serial, kind, id string, person int64) ClientCert {
		return ClientCert{Serial: serial, Kind: kind, Identity: id, PersonID: person, SHA256: strings.Repeat("a", 64),
			NotBefore: now, NotAfter: now.AddDate(1, 0, 0), IssuedAt: now}
	}
	for _, c := range []ClientCert{mk("0a1", CertPerson, "alovelace@school.example", p.ID), mk("0a2", CertPerson, "alovelace@school.example", p.ID), mk("0b1", CertDevice, "printer.school.example", 0)} {
		if err := s.RecordClientCert(ctx, "web:nm", c); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RecordClientCert(ctx, "web:nm", mk("0a1", CertDevice, "x", 0)); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate serial: %v", err)
	}
	if err := s.RecordClientCert(ctx, "web:nm", mk("0c1", CertPerson, "x@y", 9999)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown person: %v", err)
	}
	got, err := s.ClientCert(ctx, "0b1")
	if err != nil || got.Identity != "printer.school.example" || got.IssuedBy != "web:nm" || got.Revoked() || !got.NotAfter.Equal(now.AddDate(1, 0, 0)) {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := s.ClientCert(ctx, "ffff"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown serial: %v", err)
	}

	r, err := s.RevokeClientCert(ctx, "web:nm", "0b1", "lost", now.Add(time.Hour))
	if err != nil || !r.Revoked() || r.RevokeReason != "lost" {
		t.Fatalf("%+v %v", r, err)
	}
	if _, err := s.RevokeClientCert(ctx, "web:nm", "0b1", "again", now); !errors.Is(err, ErrConflict) {
		t.Fatalf("second revoke: %v", err)
	}
	n, err := s.RevokePersonClientCerts(ctx, "people", p.ID, "leaver", now.Add(2*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("person revoke: %d %v", n, err)
	}
	if n, err := s.RevokePersonClientCerts(ctx, "people", p.ID, "leaver", now); err != nil || n != 0 {
		t.Fatalf("second person revoke: %d %v", n, err)
	}
	valid, err := s.ClientCerts(ctx, ClientCertFilter{ValidOnly: true})
	if err != nil || len(valid) != 0 {
		t.Fatalf("valid after revocations: %v %v", valid, err)
	}
	all, err := s.ClientCerts(ctx, ClientCertFilter{PersonID: p.ID})
	if err != nil || len(all) != 2 || all[0].RevokedBy != "people" {
		t.Fatalf("%+v %v", all, err)
	}

	log, err := s.AuditList(ctx, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, e := range log {
		counts[e.Action]++
	}
	if counts["pki.client.issue"] != 3 || counts["pki.client.revoke"] != 1 || counts["person.certs.revoke"] != 1 {
		t.Fatalf("audit %v", counts)
	}
}
