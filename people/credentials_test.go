package people

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/pki"
	"github.com/gatehouse-net/gatehouse/store"
)

// failingCredentials counts its calls and fails them while fail is set.
type failingCredentials struct {
	calls int
	fail  bool
}

func (f *failingCredentials) DisablePerson(context.Context, int64) error {
	f.calls++
	if f.fail {
		return errors.New("keys: disk full")
	}
	return nil
}

// TestRevocationRevokesClientCertificatesEvenWhenAnotherKeeperFails: a
// revoked person's EAP-TLS certificates go on the deny-list through the
// CredentialSet, the other keeper's failure is reported (so the revocation
// stays pending and Resume retries), and the retry finishes it.
func TestRevocationRevokesClientCertificatesEvenWhenAnotherKeeperFails(t *testing.T) {
	ctx := context.Background()
	bad := &failingCredentials{}
	set := CredentialSet{bad, nil}
	s, _ := school(t, Options{Credentials: &set})
	set[1] = pki.PersonCertificates{Store: s.st, Actor: "people"}
	bad.calls, bad.fail = 0, true
	p := state(t, s, "WOO08")
	now := time.Now()
	for _, serial := range []string{"a1", "a2"} {
		if err := s.st.RecordClientCert(ctx, "web:nm", store.ClientCert{Serial: serial, Kind: store.CertPerson, Identity: "w@x",
			PersonID: p.ID, SHA256: strings.Repeat("0", 64), NotBefore: now, NotAfter: now.Add(time.Hour), IssuedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.RevokeNow(ctx, "web:nm", p.ID, "dismissed"); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("the failing keeper's error was lost: %v", err)
	}
	if valid, _ := s.st.ClientCerts(ctx, store.ClientCertFilter{PersonID: p.ID, ValidOnly: true}); len(valid) != 0 {
		t.Fatalf("certificates still valid: %v", valid)
	}
	log, err := s.st.AuditList(ctx, 50, 0)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range log {
		found = found || e.Action == "person.certs.revoke" && strings.Contains(e.After, `"a1","a2"`)
	}
	if !found {
		t.Fatal("no audit row for the certificates")
	}
	bad.fail = false // the disk has room again
	if n, err := s.Resume(ctx); err != nil || n != 1 {
		t.Fatalf("resume: %d %v", n, err)
	}
	if bad.calls != 2 {
		t.Fatalf("failing keeper called %d times", bad.calls)
	}
}
