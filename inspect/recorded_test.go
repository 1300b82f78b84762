package inspect

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recordedDir holds captures recorded from real tools in the testbed by
// inspect/e2e's TestRecordCorpus (`make record-corpus`), with manifest.csv
// naming each capture's tool, version, options, expected class and whether
// the server answered.
const recordedDir = "testdata/recorded"

// TestRecordedCorpus replays every recorded capture and prints a table:
// for each bypass tool whether its expected class was found and with what
// confidence, and for each benign capture whatever was raised. A missed
// bypass or a flagged benign capture fails the test.
func TestRecordedCorpus(t *testing.T) {
	fh, err := os.Open(filepath.Join(recordedDir, "manifest.csv"))
	if err != nil {
		t.Fatalf("recorded corpus: %v", err)
	}
	rows, err := csv.NewReader(fh).ReadAll()
	fh.Close()
	if err != nil || len(rows) < 2 {
		t.Fatalf("recorded corpus manifest: %v (%d rows)", err, len(rows))
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for _, need := range []string{"file", "tool", "version", "options", "expected", "server"} {
		if _, ok := col[need]; !ok {
			t.Fatalf("manifest has no %q column", need)
		}
	}
	// The testbed's school is 10.0.0.0/8: its pupils are inside.
	e := NewEngine(Options{MaxFlows: 4096, InsideSubnets: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	var table strings.Builder
	fmt.Fprintf(&table, "\n%-28s %-38s %-9s %-8s %-5s %-10s %s\n", "capture", "tool", "expected", "server", "found", "confidence", "detail / finding")
	found, bypass, flagged, benign := 0, 0, 0, 0
	for _, r := range rows[1:] {
		file, tool, expected, server := r[col["file"]], r[col["tool"]], r[col["expected"]], r[col["server"]]
		var got []Finding
		if err := e.ReplayFiles(context.Background(), []string{filepath.Join(recordedDir, file)}, func(f Finding) { got = append(got, f) }); err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		name := strings.TrimSuffix(file, ".pcap")
		if expected == "none" {
			benign++
			if len(got) == 0 {
				fmt.Fprintf(&table, "%-28s %-38s %-9s %-8s %-5s %-10s %s\n", name, tool, "none", server, "-", "-", "nothing raised")
			}
			for _, f := range got {
				flagged++
				fmt.Fprintf(&table, "%-28s %-38s %-9s %-8s %-5s %-10s FALSE POSITIVE %s/%s\n", name, tool, "none", server, "yes", f.Confidence, f.Class, f.Detail)
				t.Errorf("%s (benign %s): flagged: %s", file, tool, f)
			}
			continue
		}
		bypass++
		var hit *Finding
		for i := range got {
			if got[i].Class == expected && (hit == nil || got[i].Confidence.AtLeast(hit.Confidence)) {
				hit = &got[i]
			}
		}
		if hit == nil {
			fmt.Fprintf(&table, "%-28s %-38s %-9s %-8s %-5s %-10s MISSED (got %d other findings)\n", name, tool, expected, server, "no", "-", len(got))
			t.Errorf("%s (%s, server %s): no %s finding; got %v", file, tool, server, expected, got)
			continue
		}
		found++
		fmt.Fprintf(&table, "%-28s %-38s %-9s %-8s %-5s %-10s %s\n", name, tool, expected, server, "yes", hit.Confidence, hit.Detail)
		if server != "answers" && hit.Confidence != Attempt {
			t.Errorf("%s: the server never answered but the finding is %s, not an attempt: %s", file, hit.Confidence, hit)
		}
		if testing.Verbose() {
			for _, f := range got {
				t.Logf("%s", f)
			}
		}
	}
	fmt.Fprintf(&table, "bypass captures found %d of %d; benign captures %d, findings on them %d\n", found, bypass, benign, flagged)
	t.Log(table.String())
}
