package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/radius/mschapv2"
	"github.com/gatehouse-net/gatehouse/sitekey"
	"github.com/gatehouse-net/gatehouse/store"
)

// gatehouse people password reads the new password from standard input
// and, with radius.store_nt_hash on, stores the sealed NT hash with it.
func TestPeoplePasswordFromStdinStoresNTHash(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(cfgPath, []byte(testConfig(dir)+"radius:\n  store_nt_hash: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mis, _ := filepath.Abs("../../../shared/mis")
	if out, err := peopleCLI(t, "import", "--config", cfgPath, "--apply", filepath.Join(mis, "pupils-sims.csv")); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	const pw = "from standard input"
	var out bytes.Buffer
	err := cmdPeople(context.Background(), &cliEnv{stdin: strings.NewReader(pw + "\n"), stdout: &out, stderr: &out},
		[]string{"password", "--config", cfgPath, "--person", "C00223272516A"})
	if err != nil || !strings.Contains(out.String(), "login: 1002jacc") || strings.Contains(out.String(), pw) {
		t.Fatalf("password: %v %s", err, out.String())
	}
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sitekey.Load(sitekey.PathFor(cfg.Database)); err != nil {
		t.Fatalf("site key: %v", err)
	}
	st, err := store.Open(context.Background(), cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	w, err := newPeople(slog.New(slog.DiscardHandler), cfg, policy.Network{}, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	nt, found, err := w.svc.NTHash(context.Background(), "1002jacc")
	if err != nil || !found || nt != mschapv2.NTPasswordHash(pw) {
		t.Fatalf("NT hash: found %v, %v", found, err)
	}
	if es, _ := st.AuditFor(context.Background(), personObjectOf(t, st, "1002jacc"), 5); len(es) == 0 || es[0].Actor != cliActor() || !strings.Contains(es[0].After, `"nt_hash":true`) {
		t.Fatalf("audit %+v", es)
	}

	// With the option off and no EAP method that uses MSCHAPv2, the
	// daemon's start removes it (and the command line stores none).
	if err := os.WriteFile(cfgPath, []byte(testConfig(dir)+"radius:\n  eap:\n    methods: [tls]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	off, _ := loadConfig(cfgPath)
	w2, err := newPeople(slog.New(slog.DiscardHandler), off, policy.Network{}, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := w2.svc.ClearNTHashes(context.Background()); n != 1 || err != nil {
		t.Fatalf("cleared %d %v", n, err)
	}
	// Nothing on standard input is an error, not an empty password.
	err = cmdPeople(context.Background(), &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &out},
		[]string{"password", "--config", cfgPath, "--person", "C00223272516A"})
	if err == nil {
		t.Fatal("an empty standard input was accepted")
	}
}

func personObjectOf(t *testing.T, st *store.Store, login string) string {
	t.Helper()
	p, _, err := st.PersonLogin(context.Background(), login)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("person:%d", p.ID)
}

// NT hashes are stored when store_nt_hash says so, or when EAP is on (an
// authentication listener) with a method that may carry MSCHAPv2: PEAP or
// TTLS, or no method list (every method). EAP-TLS alone needs none.
func TestStoreNTHashesFollowsEAPMethods(t *testing.T) {
	for _, c := range []struct {
		radius string
		want   bool
	}{
		{"", true}, // radius.auth defaults to :1812 and every method
		{"radius:\n  store_nt_hash: true\n", true},
		{"radius:\n  auth: 127.0.0.1:1812\n", true},
		{"radius:\n  auth: 127.0.0.1:1812\n  eap:\n    methods: [peap]\n", true},
		{"radius:\n  auth: 127.0.0.1:1812\n  eap:\n    methods: [tls, ttls]\n", true},
		{"radius:\n  auth: 127.0.0.1:1812\n  eap:\n    methods: [tls]\n", false},
		{"radius:\n  auth: 127.0.0.1:1812\n  store_nt_hash: true\n  eap:\n    methods: [tls]\n", true},
		{"radius:\n  eap:\n    methods: [tls]\n", false},
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "gatehouse.yaml")
		if err := os.WriteFile(path, []byte(testConfig(dir)+c.radius), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadConfig(path)
		if err != nil {
			t.Fatalf("%q: %v", c.radius, err)
		}
		if got := storeNTHashes(cfg); got != c.want {
			t.Errorf("%q: storeNTHashes %v, want %v", c.radius, got, c.want)
		}
		s, err := ntSealer(cfg)
		if err != nil || (s != nil) != c.want {
			t.Errorf("%q: sealer %v, %v", c.radius, s != nil, err)
		}
	}
}
