package inspect

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gatehouse-net/gatehouse/internal/shared"
)

// pcapDir finds the shared capture set: GATEHOUSE_PCAPS, else the
// repository's sibling shared/pcaps; the test fails naming both when
// neither holds the labels.
func pcapDir(t testing.TB) string {
	t.Helper()
	dir := shared.Pcaps(t)
	if _, err := os.Stat(filepath.Join(dir, "labels.csv")); err != nil {
		t.Fatalf("capture set at %s has no labels.csv (set %s to another): %v", dir, shared.PcapsEnv, err)
	}
	return dir
}

type label struct{ file, category, expected string }

func readLabels(t testing.TB, dir string) []label {
	t.Helper()
	fh, err := os.Open(filepath.Join(dir, "labels.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	rows, err := csv.NewReader(fh).ReadAll()
	if err != nil {
		t.Fatalf("labels.csv: %v", err)
	}
	var out []label
	for i, r := range rows {
		if i == 0 || len(r) < 3 {
			continue
		}
		out = append(out, label{r[0], r[1], strings.TrimSpace(r[2])})
	}
	if len(out) == 0 {
		t.Fatal("labels.csv has no rows")
	}
	return out
}

// TestLabelledCaptures replays every labelled capture: a file labelled with
// a class must raise that class at least once, a file labelled none must
// raise nothing at all.
func TestLabelledCaptures(t *testing.T) {
	dir := pcapDir(t)
	labels := readLabels(t, dir)
	e := NewEngine(Options{MaxFlows: 4096})
	counts := map[string]int{}
	for _, l := range labels {
		var got []Finding
		err := e.ReplayFiles(context.Background(), []string{filepath.Join(dir, l.file)}, func(f Finding) {
			got = append(got, f)
		})
		if err != nil {
			t.Errorf("%s: replay: %v", l.file, err)
			continue
		}
		classes := map[string]int{}
		for _, f := range got {
			classes[f.Class]++
			counts[f.Class]++
		}
		switch {
		case l.expected == "none" && len(got) > 0:
			for _, f := range got {
				t.Errorf("%s (none): false positive %s", l.file, f)
			}
		case l.expected != "none" && classes[l.expected] == 0:
			t.Errorf("%s: expected %s, got %v", l.file, l.expected, classes)
			for _, f := range got {
				t.Logf("  %s", f)
			}
		default:
			if testing.Verbose() {
				for _, f := range got {
					t.Logf("%s", f)
				}
			}
		}
	}
	var names []string
	for c := range counts {
		names = append(names, c)
	}
	sort.Strings(names)
	for _, c := range names {
		t.Logf("findings of class %-14s %d", c, counts[c])
	}
}
