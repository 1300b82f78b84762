package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/gatehouse-net/gatehouse/config"
	"github.com/gatehouse-net/gatehouse/people"
	"github.com/gatehouse-net/gatehouse/pki"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
	"github.com/gatehouse-net/gatehouse/web/webtest"
)

// TestWirePKIMakesTheCAAndPublishesOnboarding wires the school CA from a
// configuration as the daemon does: the server certificate names the
// admin host name, the keys sit beside the database, and the public
// onboarding page offers the staff SSIDs but not the guest portal's.
func TestWirePKIMakesTheCAAndPublishesOnboarding(t *testing.T) {
	dir := t.TempDir()
	yaml := `site:
  name: Test School
  guest_ssid: Visitors
database: ` + filepath.Join(dir, "gatehouse.db") + `
admin:
  hostnames: [10.0.0.1, gatehouse.school.example]
segments:
  - name: staff
    vlan: 10
    interface: lan10
    subnet: 10.10.0.0/24
    gateway: 10.10.0.1
    ssids: [Staff]
  - name: pupils
    vlan: 20
    interface: lan20
    subnet: 10.20.0.0/24
    gateway: 10.20.0.1
    ssids: [Pupils]
  - name: guests
    vlan: 30
    interface: lan30
    subnet: 10.30.0.0/24
    gateway: 10.30.0.1
    portal: true
    ssids: [Visitors]
radius:
  auth: 127.0.0.1:1812
`
	cfg, err := config.Parse(filepath.Join(dir, "gatehouse.yaml"), []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	st := webtest.OpenStore(t)
	w := &wiring{log: slog.New(slog.DiscardHandler), cfg: cfg, store: st}
	site := webtest.New(t, webtest.Options{Store: st, Setup: func(srv *web.Server) error {
		w.web = srv
		return wirePKI(context.Background(), w)
	}})
	if w.pki == nil || w.pki.ServerName() != "gatehouse.school.example" || w.pki.Realm() != "school.example" {
		t.Fatalf("authority %+v", w.pki)
	}
	if st, err := os.Stat(filepath.Join(dir, "pki", "ca-key.pem")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("CA key beside the database: %v", err)
	}
	r := site.NewBrowser(t).Get("/wifi")
	if r.StatusCode != http.StatusOK || !strings.Contains(r.Body, "<strong>Staff</strong>") || !strings.Contains(r.Body, "<strong>Pupils</strong>") ||
		strings.Contains(r.Body, "Visitors") {
		t.Fatalf("%d %s", r.StatusCode, r.Body)
	}

	// Without a RADIUS listener there is no CA.
	cfg.RADIUS.Auth = ""
	w2 := &wiring{log: slog.New(slog.DiscardHandler), cfg: cfg, store: st}
	if err := wirePKI(context.Background(), w2); err != nil || w2.pki != nil {
		t.Fatalf("%v %v", err, w2.pki)
	}
}

// TestEAPTLSLoginNameIsOnePeopleFinds: the EAP engine's certificate check,
// as the daemon wires it, names a person's certificate by the login name
// the RADIUS identity lookup (people) finds, and refuses it once the
// person's certificates are revoked.
func TestEAPTLSLoginNameIsOnePeopleFinds(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg, err := config.Parse(filepath.Join(dir, "gatehouse.yaml"), []byte(`site:
  name: Test School
database: `+filepath.Join(dir, "gatehouse.db")+`
segments:
  - {name: staff, vlan: 10, interface: lan10, subnet: 10.10.0.0/24, gateway: 10.10.0.1, ssids: [Staff]}
radius:
  auth: 127.0.0.1:1812
  eap:
    server_name: radius.school.example
`))
	if err != nil {
		t.Fatal(err)
	}
	st := webtest.OpenStore(t)
	a, err := pki.Open(pki.Options{Dir: pki.DirFor(cfg.Database), ServerName: "radius.school.example", Store: st, People: st})
	if err != nil {
		t.Fatal(err)
	}
	w, err := newPeople(slog.New(slog.DiscardHandler), cfg, policy.Network{}, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.CreatePerson(ctx, "test", store.Person{Kind: "staff", StaffCode: "AMY", LegalForename: "Amy", LegalSurname: "Pond",
		Username: "amy"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	iss, err := a.IssuePerson(ctx, "test", p.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, cert, _, err := pkcs12.DecodeChain(iss.PKCS12, iss.Password)
	if err != nil {
		t.Fatal(err)
	}
	o := radiusEAP(cfg, a, w.svc)
	login, err := o.VerifyClient(ctx, cert)
	if err != nil {
		t.Fatal(err)
	}
	id, err := (people.RADIUSIdentities{Service: w.svc}).Lookup(ctx, login)
	if err != nil || !id.Active || id.Person != people.PersonRef(p.ID) {
		t.Fatalf("login %q: %+v %v", login, id, err)
	}
	if _, err := st.RevokePersonClientCerts(ctx, "people", p.ID, "left", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := o.VerifyClient(ctx, cert); !errors.Is(err, pki.ErrRevoked) {
		t.Fatalf("revoked: %v", err)
	}
}
