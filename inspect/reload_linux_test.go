//go:build linux

package inspect

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSiteReloadsSignaturesWithoutARestart: a reload swaps the set every
// engine applies, and the next handshake is judged by it; a bad file is
// refused with its bad line named, and the set in force stays.
func TestSiteReloadsSignaturesWithoutARestart(t *testing.T) {
	site := NewSite(SiteOptions{Interfaces: []Interface{{Name: "gh-a"}, {Name: "gh-b"}}})
	dir := t.TempDir()
	good := filepath.Join(dir, "good.txt")
	if err := os.WriteFile(good, []byte("# one line\nname proxy example-proxy proxy.example.net a test proxy\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sigs, err := site.ReloadSignatures(good)
	if err != nil {
		t.Fatal(err)
	}
	if sigs.Len() != 1 || site.Signatures() != sigs {
		t.Fatalf("after a reload the site applies %d signature(s) (%p), want the file's 1 (%p)", site.Signatures().Len(), site.Signatures(), sigs)
	}
	for i, e := range site.engines {
		if e.Signatures() != sigs {
			t.Errorf("engine %d still applies the old set", i)
		}
	}
	bad := filepath.Join(dir, "bad.txt")
	if err := os.WriteFile(bad, []byte("name proxy ok ok.example.net\nja4 vpn x not-a-ja4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := site.ReloadSignatures(bad); err == nil || !strings.Contains(err.Error(), "bad.txt:2:") {
		t.Fatalf("a bad file: err %v, want one naming bad.txt:2", err)
	}
	if site.Signatures() != sigs {
		t.Error("a refused reload replaced the signatures in force")
	}
	if sigs, err = site.ReloadSignatures(""); err != nil || sigs.Len() < 10 {
		t.Fatalf("back to the shipped set: %v (%d signatures)", err, sigs.Len())
	}
}

// TestEngineAppliesNewSignaturesToTheNextHandshake replays the recorded
// v2ray-plugin TLS session, found only by its shipped JA4, against an engine
// with no signatures and then, without a new engine, with the shipped set.
func TestEngineAppliesNewSignaturesToTheNextHandshake(t *testing.T) {
	empty, err := ParseSignatures(strings.NewReader(""), "empty")
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(Options{MaxFlows: 64, Signatures: empty})
	capture := filepath.Join(recordedDir, "shadowsocks-v2ray-plugin-tls.pcap")
	var got []Finding
	sink := func(f Finding) { got = append(got, f) }
	if err := e.ReplayFiles(context.Background(), []string{capture}, sink); err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("without signatures: %v", got)
	}
	shipped, err := DefaultSignatures()
	if err != nil {
		t.Fatal(err)
	}
	e.SetSignatures(shipped)
	if err := e.ReplayFiles(context.Background(), []string{capture}, sink); err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || got[0].Detail != "v2ray-plugin" {
		t.Fatalf("with the shipped set swapped in: %v", got)
	}
}
