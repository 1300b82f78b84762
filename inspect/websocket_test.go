package inspect

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-net/gatehouse/inspect/internal/pcapseed"
)

// TestWebSocketDisguise: an upgrade followed by random bytes that are not
// WebSocket frames is a disguised proxy; a real WebSocket, whose frames
// are well formed (the client's masked), is not, whatever it carries.
func TestWebSocketDisguise(t *testing.T) {
	req := "GET / HTTP/1.1\r\nHost: www.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: C4Wmctc+PVTJaFUPmM/mXg==\r\n\r\n"
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: c0gzZlHcsHT/XEkZSpToKg==\r\n\r\n"
	random := func(n int) []byte {
		b := make([]byte, n)
		rand.Read(b)
		return b
	}
	// Random bytes that cannot be read as a frame header: opcode 3 is
	// reserved.
	notFrame := func(n int) []byte {
		b := random(n)
		b[0] = 0x83
		return b
	}
	if ev := webSocketTunnel(append([]byte(req), notFrame(183)...), append([]byte(resp), notFrame(327)...)); !strings.Contains(ev, "disguised") {
		t.Errorf("random bytes after an upgrade: got %q", ev)
	}
	// A real chat-like WebSocket: a masked text frame and a text answer.
	cli := append([]byte(req), 0x81, 0x80|40, 1, 2, 3, 4)
	cli = append(cli, []byte(strings.Repeat("x", 40))...)
	srv := append([]byte(resp), 0x81, 60)
	srv = append(srv, []byte(strings.Repeat(`{"k":1}`, 9))...)
	if ev := webSocketTunnel(cli, srv); ev != "" {
		t.Errorf("a real text WebSocket: %q", ev)
	}
	// Framed binary (masked client frame, unmasked server frame) carrying
	// random bytes is the framed tunnel, not the disguise.
	cf := append(append([]byte(req), 0x82, 0x80|100, 9, 9, 9, 9), random(100)...)
	sf := append(append([]byte(resp), 0x82, 100), random(100)...)
	if ev := webSocketTunnel(cf, sf); !strings.Contains(ev, "first binary frames") {
		t.Errorf("framed random binary: %q", ev)
	}
	// Too little after the headers to judge.
	if ev := webSocketTunnel(append([]byte(req), notFrame(8)...), append([]byte(resp), notFrame(8)...)); ev != "" {
		t.Errorf("8 bytes each way: %q", ev)
	}
}

// TestFakeResumptionWithoutItsJA4: the recorded simple-obfs obfs=tls
// session is found by its shape alone, with no signature to name it.
func TestFakeResumptionWithoutItsJA4(t *testing.T) {
	empty, err := ParseSignatures(strings.NewReader(""), "empty")
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(Options{MaxFlows: 64, Signatures: empty})
	var got []Finding
	if err := e.ReplayFiles(context.Background(), []string{filepath.Join(recordedDir, "shadowsocks-obfs-tls.pcap")}, func(f Finding) { got = append(got, f) }); err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || got[0].Detail != "fake-tls-resumption" {
		t.Fatalf("findings %v, want fake-tls-resumption", got)
	}
	// A TLS 1.3 HelloRetryRequest with its compatibility ChangeCipherSpec,
	// then the real ServerHello, is not a resumption.
	got = nil
	if err := e.ReplayFiles(context.Background(), []string{filepath.Join(pcapseed.Dir(t), "dnscrypt-v2-doh.pcap")}, func(f Finding) { got = append(got, f) }); err != nil {
		t.Fatal(err)
	}
	for _, f := range got {
		if f.Detail == "fake-tls-resumption" {
			t.Errorf("HelloRetryRequest taken for a resumption: %s", f)
		}
	}
	// Benign TLS 1.2 and 1.3 sessions of the corpus never match.
	for _, benign := range []string{"benign-curl-https.pcap", "benign-https-download.pcap", "benign-chromium-browsing.pcap"} {
		got = nil
		if err := e.ReplayFiles(context.Background(), []string{filepath.Join(recordedDir, benign)}, func(f Finding) { got = append(got, f) }); err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Errorf("%s: %v", benign, got)
		}
	}
}
