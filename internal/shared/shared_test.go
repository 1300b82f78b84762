package shared

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindsSharedBesideTheRootFromAnyPackage(t *testing.T) {
	top := t.TempDir()
	repo := filepath.Join(top, "repo")
	pkg := filepath.Join(repo, "a", "b")
	for _, d := range []string{pkg, filepath.Join(top, "shared")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(repo, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := findFrom(pkg)
	if err != nil || got != filepath.Join(top, "shared") {
		t.Fatalf("findFrom = %q, %v; want %s", got, err, filepath.Join(top, "shared"))
	}

	if err := os.Remove(filepath.Join(top, "shared")); err != nil {
		t.Fatal(err)
	}
	_, err = findFrom(pkg)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(top, "shared")) {
		t.Fatalf("without ../shared: %v, want an error naming %s", err, filepath.Join(top, "shared"))
	}
}

func TestNoRepositoryIsAnError(t *testing.T) {
	if _, err := findFrom(t.TempDir()); err == nil || !strings.Contains(err.Error(), "go.mod") {
		t.Fatalf("outside a module: %v, want an error about go.mod", err)
	}
}

func TestThisRepositorysSharedFolder(t *testing.T) {
	if p := Path(t, "gatehouse.example.yaml"); !strings.HasSuffix(p, filepath.Join("shared", "gatehouse.example.yaml")) {
		t.Errorf("Path = %s", p)
	}
}
