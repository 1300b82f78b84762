package findingsweb

import (
	"context"
	"encoding/csv"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
)

// Findings export as CSV with the page's filters, local times with their
// offset, and formula-safe cells (evidence is what a device sent).
func TestFindingsExportAsFormulaSafeCSV(t *testing.T) {
	s := newSite(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	s.seed(t0)
	if err := s.st.InsertFindings(context.Background(), []store.Finding{{At: t0.Add(3 * time.Hour), Segment: "pupil",
		SrcIP: netip.MustParseAddr("10.20.0.10"), SrcMAC: pupilMAC, Class: "vpn", Detail: "=HYPERLINK(\"http://x\")", Evidence: "+cmd"}}); err != nil {
		t.Fatal(err)
	}
	dsl := s.login("dee", store.RoleDSL)
	code, page := s.get(Path+"?segment=pupil", dsl)
	if code != 200 || !strings.Contains(page, `href="/findings.csv?segment=pupil"`) {
		t.Fatalf("the page has no export link for its filter: %d", code)
	}
	r := dsl.Get(CSVPath + "?segment=pupil")
	if r.StatusCode != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("export: %d %s", r.StatusCode, r.Header.Get("Content-Type"))
	}
	rows, err := csv.NewReader(strings.NewReader(r.Body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || rows[0][1] != "at" {
		t.Fatalf("export has %d rows (want header and 3 pupil findings): %v", len(rows), rows)
	}
	for _, row := range rows[1:] {
		if row[2] != "pupil" {
			t.Errorf("exported a finding from %q", row[2])
		}
		if _, err := time.Parse(time.RFC3339, row[1]); err != nil || !(strings.Contains(row[1], "+") || strings.HasSuffix(row[1], "Z") || strings.Count(row[1], "-") > 2) {
			t.Errorf("time %q is not a local time with its offset", row[1])
		}
		for _, cell := range row {
			if cell != "" && strings.ContainsRune("=+-@", rune(cell[0])) {
				t.Errorf("cell %q could run as a formula", cell)
			}
		}
	}
	if !strings.Contains(r.Body, "'=HYPERLINK") || !strings.Contains(r.Body, "'+cmd") {
		t.Errorf("formula cells not neutralised:\n%s", r.Body)
	}
	if r := dsl.Get(CSVPath + "?class=nosuch"); r.StatusCode != 400 {
		t.Errorf("bad filter: %d", r.StatusCode)
	}
	if r := s.w.NewBrowser(t).Get(CSVPath); r.StatusCode == 200 {
		t.Error("anonymous export allowed")
	}
}
