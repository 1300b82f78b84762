package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-net/gatehouse/inspect"
)

func TestInspectSignalsRefusesUnknownClassesAndBadSignatureLines(t *testing.T) {
	var opt inspect.SiteOptions
	if err := inspectSignals(map[string]string{"vpn": "likely", "default": "attempt"}, "", &opt); err != nil {
		t.Fatal(err)
	}
	if opt.MinConfidence["vpn"] != inspect.Likely || opt.MinConfidence["default"] != inspect.Attempt {
		t.Errorf("MinConfidence = %v", opt.MinConfidence)
	}
	if err := inspectSignals(map[string]string{"vpns": "likely"}, "", &opt); err == nil || !strings.Contains(err.Error(), "vpns") {
		t.Errorf("unknown class: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "signatures.txt")
	if err := os.WriteFile(bad, []byte("port dot dot tcp/853\nname doh x not a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// "not a" is two fields after the detail: value "not", why "a": valid.
	if err := inspectSignals(nil, bad, &opt); err != nil || opt.Signatures.Len() != 2 {
		t.Fatalf("valid file: %v", err)
	}
	if err := os.WriteFile(bad, []byte("port dot dot tcp/853\nname doh x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := inspectSignals(nil, bad, &opt); err == nil || !strings.Contains(err.Error(), "inspect.signatures") || !strings.Contains(err.Error(), bad+":2:") {
		t.Errorf("bad line: %v", err)
	}
}
