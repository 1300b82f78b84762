package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func peopleCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := cmdPeople(context.Background(), &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &out}, args)
	return out.String(), err
}

func TestPeopleImportPreviewsThenApplies(t *testing.T) {
	cfgPath := writeConfig(t, t.TempDir())
	mis, _ := filepath.Abs("../../../shared/mis")
	pupils, staff := filepath.Join(mis, "pupils-sims.csv"), filepath.Join(mis, "staff.csv")

	out, err := peopleCLI(t, "import", "--config", cfgPath, pupils, staff)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "360 joiners, 0 movers, 0 changed, 0 leavers, 0 unchanged, 0 bad rows") || !strings.Contains(out, "Nothing was changed") {
		t.Fatalf("preview output:\n%s", out)
	}
	if out, _ := peopleCLI(t, "list", "--config", cfgPath, "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("a preview changed people: %s", out)
	}
	if out, err = peopleCLI(t, "import", "--config", cfgPath, "--apply", pupils, staff); err != nil || !strings.Contains(out, "Applied import") {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	// The same files again change nothing.
	if out, _ = peopleCLI(t, "import", "--config", cfgPath, pupils, staff); !strings.Contains(out, "0 joiners, 0 movers, 0 changed, 0 leavers, 360 unchanged") {
		t.Fatalf("re-import:\n%s", out)
	}
	// The errors file names every bad row by file and line.
	out, _ = peopleCLI(t, "import", "--config", cfgPath, filepath.Join(mis, "pupils-with-errors.csv"))
	for _, want := range []string{"line 7: missing UPN", "line 8: duplicate UPN", "line 9: leaving date", "line 10: year group", "line 11: short row", "safety threshold"} {
		if !strings.Contains(out, want) {
			t.Errorf("errors file output lacks %q:\n%s", want, out)
		}
	}
	out, err = peopleCLI(t, "list", "--config", cfgPath, "--json", "--leaving-before", "2027-01-01")
	if err != nil {
		t.Fatal(err)
	}
	var ps []personJSON
	if err := json.Unmarshal([]byte(out), &ps); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// Three pupils leave at the end of the autumn term, one left mid-term,
	// one more in Year 10 on 2026-12-18, plus staff ending in December.
	for _, p := range ps {
		if p.LeavesOn == "" || p.LeavesOn >= "2027-01-01" {
			t.Fatalf("listed %+v", p)
		}
	}
	if len(ps) < 4 {
		t.Fatalf("%d people leaving before 2027, want at least 4", len(ps))
	}
	var out2 bytes.Buffer
	if err := cmdPeople(context.Background(), &cliEnv{stdin: strings.NewReader("correct horse battery\n"), stdout: &out2, stderr: &out2},
		[]string{"password", "--config", cfgPath, "--person", "C00223272516A"}); err != nil || !strings.Contains(out2.String(), "login: 1002jacc") {
		t.Fatalf("password: %v %s", err, out2.String())
	}
	if _, err := peopleCLI(t, "list", "--config", cfgPath, "--leaving-before", "soon"); err == nil {
		t.Fatal("a bad date was accepted")
	}
}

func TestPeopleMappingThenImport(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir)
	csvPath := filepath.Join(dir, "other.csv")
	if err := os.WriteFile(csvPath, []byte("Pupil UPN,Surname,Given name,NC Year\nB00187910201A,Murphy,Priya,8\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := peopleCLI(t, "import", "--config", cfgPath, csvPath); err == nil || !strings.Contains(err.Error(), "column mapping") {
		t.Fatalf("unknown shape: %v %s", err, out)
	}
	if _, err := peopleCLI(t, "mapping", "--config", cfgPath, "--name", "x", "--kind", "pupil", csvPath, "nonsense=UPN"); err == nil {
		t.Fatal("an unknown field was accepted")
	}
	if out, err := peopleCLI(t, "mapping", "--config", cfgPath, "--name", "other", "--kind", "pupil", csvPath,
		"upn=Pupil UPN", "legal_surname=Surname", "legal_forename=Given name", "year_group=NC Year"); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	out, err := peopleCLI(t, "import", "--config", cfgPath, "--apply", csvPath)
	if err != nil || !strings.Contains(out, "1 joiners") {
		t.Fatalf("%v %s", err, out)
	}
}

func mustMAC(t *testing.T, s string) net.HardwareAddr {
	t.Helper()
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
