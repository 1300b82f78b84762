package browser

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// AxeSource returns axe-core, the accessibility checker, as build/axe
// fetched it from the npm registry into bin/npm/. A test that needs it
// fails (never skips) when it is missing, saying what to run.
func AxeSource(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	matches, _ := filepath.Glob(filepath.Join(root, "bin", "npm", "axe-core-*", "axe.min.js"))
	if len(matches) == 0 {
		t.Fatalf("axe-core is missing from %s: run build/axe (make test runs it)", filepath.Join(root, "bin", "npm"))
	}
	b, err := os.ReadFile(matches[len(matches)-1])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Violation is one rule axe-core found broken on a page.
type Violation struct {
	ID    string `json:"id"`
	Help  string `json:"help"`
	Nodes []struct {
		Target []any  `json:"target"`
		HTML   string `json:"html"`
	} `json:"nodes"`
}

func (v Violation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s):", v.ID, v.Help)
	for i, n := range v.Nodes {
		if i == 3 {
			fmt.Fprintf(&b, " … %d more", len(v.Nodes)-3)
			break
		}
		fmt.Fprintf(&b, " %v %s;", n.Target, n.HTML)
	}
	return b.String()
}

// Axe injects axe (AxeSource) into the tab's current page and returns
// what it finds against WCAG 2.2 A and AA and best practice.
func Axe(tab context.Context, axe string) ([]Violation, error) {
	// Once per page: it stays loaded when only the viewport changes.
	loaded, err := chromedp.Run(tab, chromedp.Evaluate[bool](`typeof axe !== 'undefined'`))
	if err != nil {
		return nil, fmt.Errorf("look for axe-core: %w", err)
	}
	if !loaded {
		if err := chromedp.Do(tab, chromedp.Evaluate[chromedp.Void](axe)); err != nil {
			return nil, fmt.Errorf("inject axe-core: %w", err)
		}
	}
	return chromedp.Run(tab, chromedp.Evaluate[[]Violation](`axe.run(document, {
		runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']},
		resultTypes: ['violations']
	}).then(r => r.violations)`, chromedp.EvalAwaitPromise))
}

// Widths are the document's scroll width and the viewport's width: a page
// wider than its viewport makes a phone scroll sideways.
func Widths(tab context.Context) (doc, viewport int, err error) {
	w, err := chromedp.Run(tab, chromedp.Evaluate[[2]int](`[document.documentElement.scrollWidth, window.innerWidth]`))
	return w[0], w[1], err
}

// Screenshot keeps a full-page PNG of the tab as dir/name.png.
func Screenshot(t *testing.T, tab context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot %s is not a PNG", name)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// ArtefactDir is where a test keeps files for people to look at: the
// directory in GATEHOUSE_ARTEFACTS when set, otherwise
// bin/artefacts/<test name> in the repository (bin/ is not committed),
// emptied first.
func ArtefactDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("GATEHOUSE_ARTEFACTS"); d != "" {
		d = filepath.Join(d, strings.ReplaceAll(t.Name(), "/", "_"))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := filepath.Join(repoRoot(t), "bin", "artefacts", strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.RemoveAll(d); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}
