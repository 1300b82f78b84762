// Package shared finds ../shared, the folder beside the repository (not in
// it) that holds what the tests read but the repository does not carry: the
// example configuration the product must accept unchanged
// (gatehouse.example.yaml), sample MIS exports (mis/) and labelled packet
// captures (pcaps/).
//
// It is for tests only, and it owns nothing but finding that folder. A test
// that needs it fails with the path it looked for when it is missing: a
// silent skip would let a fresh clone "pass" without running the contract.
package shared

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// PcapsEnv names another capture set for the tests that replay captures.
const PcapsEnv = "GATEHOUSE_PCAPS"

// Dir returns the shared folder: the directory "shared" beside the
// repository's root (the directory holding go.mod, found by walking up from
// the test's working directory, which is its package's directory).
func Dir(t testing.TB) string {
	t.Helper()
	dir, err := find()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// Path returns elem inside the shared folder, failing t with the path it
// looked for when that does not exist.
func Path(t testing.TB, elem ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{Dir(t)}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("this test reads %s from ../shared beside the repository (see README.md, \"What the tests need\"): %v", p, err)
	}
	return p
}

// Pcaps returns the capture set: $GATEHOUSE_PCAPS when set, else
// ../shared/pcaps. Either must exist; t fails naming both places otherwise.
func Pcaps(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv(PcapsEnv); dir != "" {
		if _, err := os.Stat(dir); err != nil {
			t.Fatalf("%s=%s: %v", PcapsEnv, dir, err)
		}
		return dir
	}
	root, err := find()
	if err != nil {
		t.Fatalf("no capture set: %s is not set and %v", PcapsEnv, err)
	}
	dir := filepath.Join(root, "pcaps")
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("no capture set: %s is not set and %v", PcapsEnv, err)
	}
	return dir
}

// find walks up from the working directory to go.mod and names the
// "shared" directory beside that root.
func find() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding ../shared: %w", err)
	}
	return findFrom(wd)
}

func findFrom(wd string) (string, error) {
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(filepath.Dir(dir), "shared")
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("the folder ../shared beside the repository is missing (looked for %s; see README.md, \"What the tests need\"): %w", p, err)
			}
			return p, nil
		}
		if filepath.Dir(dir) == dir {
			return "", errors.New("finding ../shared: no go.mod above " + wd)
		}
	}
}
