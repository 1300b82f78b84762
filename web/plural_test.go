package web

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestPlural(t *testing.T) {
	for n, want := range map[int]string{0: "0 devices", 1: "1 device", 2: "2 devices"} {
		if got := Plural(n, "device", "devices"); got != want {
			t.Errorf("Plural(%d) = %q, want %q", n, got, want)
		}
	}
}

// bareCount is a count printed straight before a plural noun in a
// template ("{{.Total}} devices"), which reads "1 devices" when the count
// is one; templates say it with plural, or guard the noun with an if.
var bareCount = regexp.MustCompile(`\{\{-? *(len [^}]+|\$?\.[A-Za-z.$]+) *-?\}\} (devices|codes|findings|people|sessions|leases|alerts|rules|users|tokens|entries|repairs|visitors|classes|minutes|hours|days)\b`)

// Issue 15: pages said "1 devices". No page template in the repository
// prints a bare count before a plural noun.
func TestNoTemplatePrintsABareCountBeforeAPlural(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("the repository root %s has no go.mod: %v", root, err)
	}
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "bin" || d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".html") || !strings.Contains(path, string(filepath.Separator)+"templates"+string(filepath.Separator)) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		checked++
		for i, line := range strings.Split(string(b), "\n") {
			if m := bareCount.FindString(line); m != "" {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s:%d: %q reads \"1 ...s\" for one; use plural", rel, i+1, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 10 {
		t.Fatalf("checked only %d templates: the walk missed the repository's templates", checked)
	}
}
