package web

import (
	"strings"
	"testing"
)

func TestLabelCellsNamesEachCellByItsHeader(t *testing.T) {
	in := `<p>x</p><table><thead><tr><th>No.</th><th colspan="2">Valid &amp; state</th><th><span class="vh">Actions</span></th></tr></thead>
<tbody><tr><td>1</td><td>2h</td><td data-label="Own">live</td><td><form><button>Revoke</button></form></td></tr>
<tr><td colspan="4">No codes.</td></tr></tbody></table><table><tr><td>no head</td></tr></table>`
	out := string(labelCells([]byte(in)))
	for _, want := range []string{`<td data-label="No.">1</td>`, `<td data-label="Valid &amp; state">2h</td>`, `<td data-label="Own">live</td>`,
		`<td data-label="Actions"><form>`, `<td colspan="4" data-label="No.">No codes.</td>`, `<td>no head</td>`, `<p>x</p>`} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s in\n%s", want, out)
		}
	}
}

func FuzzLabelCells(f *testing.F) {
	f.Add(`<table><thead><tr><th>a</th></tr></thead><tbody><tr><td>1</td></tr></tbody></table>`)
	f.Add(`<table><thead><tr><th colspan="99999">a<table><th>b</th></table></th></tr></thead><td>x`)
	f.Fuzz(func(t *testing.T, s string) {
		out := labelCells([]byte(s))
		if !strings.Contains(s, "<table") && string(out) != s {
			t.Fatalf("a page without tables changed")
		}
	})
}
