package inspect

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// writeCaptures writes the same SSH conversation as pcap and as pcapng.
func writeCaptures(t *testing.T) (pcapPath, ngPath string) {
	dir := t.TempDir()
	frames := sshHandshake(t, 41000)
	pcapPath = filepath.Join(dir, "ssh.cap") // names say nothing: magic decides
	ngPath = filepath.Join(dir, "ssh-ng.cap")
	f1, err := os.Create(pcapPath)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f1)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	f2, err := os.Create(ngPath)
	if err != nil {
		t.Fatal(err)
	}
	ng, err := pcapgo.NewNgWriter(f2, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range frames {
		c := gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(b), Length: len(b)}
		if err := w.WritePacket(c, b); err != nil {
			t.Fatal(err)
		}
		if err := ng.WritePacket(c, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := ng.Flush(); err != nil {
		t.Fatal(err)
	}
	f1.Close()
	f2.Close()
	return pcapPath, ngPath
}

func TestRunReplayPrintsOneJSONObjectPerFinding(t *testing.T) {
	p, ng := writeCaptures(t)
	var out bytes.Buffer
	if err := RunReplay(context.Background(), &out, true, []string{p, ng}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("output:\n%s\nwant two lines", out.String())
	}
	for i, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		for _, k := range []string{"file", "time", "src_ip", "src_mac", "dst_ip", "dst_port", "proto", "class", "detail", "evidence"} {
			if _, ok := m[k]; !ok {
				t.Errorf("line %d lacks %q: %s", i, k, l)
			}
		}
		if m["class"] != "ssh" || m["src_ip"] != pupil.String() || m["dst_port"] != float64(22) || m["src_mac"] != macClient.String() {
			t.Errorf("line %d: %s", i, l)
		}
	}
	if !strings.Contains(lines[0], `"file":"ssh.cap"`) || !strings.Contains(lines[1], `"file":"ssh-ng.cap"`) {
		t.Errorf("file names missing:\n%s", out.String())
	}
}

func TestRunReplayTextAndErrors(t *testing.T) {
	p, _ := writeCaptures(t)
	var out bytes.Buffer
	if err := RunReplay(context.Background(), &out, false, []string{p}); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); strings.Count(s, "\n") != 1 || !strings.Contains(s, "ssh.cap: ") || !strings.Contains(s, " ssh src=10.20.0.5 ") {
		t.Errorf("text output = %q", s)
	}
	bad := filepath.Join(t.TempDir(), "not-a-capture")
	os.WriteFile(bad, []byte("hello, this is not pcap"), 0o644)
	if err := RunReplay(context.Background(), &out, false, []string{bad}); err == nil {
		t.Error("a file that is not a capture must be an error")
	}
	if err := RunReplay(context.Background(), &out, false, []string{filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("a missing file must be an error")
	}
}

func TestFindingJSONRoundTrip(t *testing.T) {
	in := Finding{File: "a.pcap", Time: t0, SrcIP: pupil, SrcMAC: macClient, DstIP: server, DstPort: 443, Proto: "tcp", Class: ClassVPN, Detail: "openvpn", Evidence: "x"}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Finding
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != in.String() || out.SrcMAC.String() != macClient.String() {
		t.Errorf("round trip: %s != %s", out, in)
	}
}
