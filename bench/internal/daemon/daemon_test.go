package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestServePupilsSSIDAddsTheSSIDToThePupilSegmentOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.yaml")
	in := "segments:\n  - name: staff\n    interface: gh-staff\n  - name: pupil\n    interface: gh-pupil\n    vlan: 20\n"
	if err := os.WriteFile(path, []byte(in), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := ServePupilsSSID(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "segments:\n  - name: staff\n    interface: gh-staff\n  - name: pupil\n    interface: gh-pupil\n    ssids: [Pupils]\n    vlan: 20\n"
	if cfg != want {
		t.Fatalf("got\n%s\nwant\n%s", cfg, want)
	}
	if raw, err := os.ReadFile(path); err != nil || string(raw) != want {
		t.Fatalf("the file holds %q, %v", raw, err)
	}
}

func TestServePupilsSSIDFailsWithoutAPupilSegment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.yaml")
	if err := os.WriteFile(path, []byte("segments:\n  - name: staff\n    interface: gh-staff\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ServePupilsSSID(path); err == nil || !strings.Contains(err.Error(), "no pupil segment") {
		t.Fatalf("err = %v, want no pupil segment", err)
	}
}
