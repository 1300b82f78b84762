package inspect

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/gatehouse-net/gatehouse/inspect/tlshello"
)

// corpusHello is one TLS ClientHello found in a recorded capture.
type corpusHello struct {
	file, ja4, sni, alpn string
}

// corpusHellos returns the ClientHellos (TCP, first client payload of each
// connection) of every capture in the recorded corpus, with the manifest's
// expected class of the capture.
func corpusHellos(t *testing.T) (hellos []corpusHello, expected map[string]string) {
	t.Helper()
	fh, err := os.Open(filepath.Join(recordedDir, "manifest.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(fh).ReadAll()
	fh.Close()
	if err != nil {
		t.Fatal(err)
	}
	expected = map[string]string{}
	for _, r := range rows[1:] {
		expected[r[0]] = r[5]
		hs, err := pcapHellos(filepath.Join(recordedDir, r[0]))
		if err != nil {
			t.Fatalf("%s: %v", r[0], err)
		}
		for _, h := range hs {
			h.file = r[0]
			hellos = append(hellos, h)
		}
	}
	return hellos, expected
}

// pcapHellos parses the first client segment of each TCP connection in a
// capture as a TLS ClientHello.
func pcapHellos(path string) ([]corpusHello, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	src, lt, err := openCapture(fh)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []corpusHello
	for n := 0; n < 100000; n++ {
		data, _, err := src.ZeroCopyReadPacketData()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		p := gopacket.NewPacket(data, lt, gopacket.Default)
		tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if tcp == nil || len(tcp.Payload) == 0 || p.NetworkLayer() == nil {
			continue
		}
		nf := p.NetworkLayer().NetworkFlow()
		key := fmt.Sprintf("%v:%d>%v:%d", nf.Src(), tcp.SrcPort, nf.Dst(), tcp.DstPort)
		if seen[key] {
			continue
		}
		seen[key] = true
		var h tlshello.ClientHello
		if _, err := h.ParseRecord(tcp.Payload, nil); err != nil {
			continue
		}
		var alpn []string
		for _, a := range h.ALPN {
			alpn = append(alpn, string(a))
		}
		out = append(out, corpusHello{ja4: h.JA4(false), sni: string(h.SNI), alpn: strings.Join(alpn, ",")})
	}
	return out, nil
}

// TestShippedJA4sComeFromTheCorpus checks the JA4 signatures shipped in
// signatures.txt against the recorded corpus: each one whose line says
// "recorded: FILE" must be the fingerprint of a ClientHello in that
// capture, and no shipped JA4 may match a ClientHello of a benign capture.
// With -v it prints every ClientHello of the corpus, which is how the
// shipped list was made.
func TestShippedJA4sComeFromTheCorpus(t *testing.T) {
	hellos, expected := corpusHellos(t)
	sigs, err := DefaultSignatures()
	if err != nil {
		t.Fatal(err)
	}
	byFile := map[string]map[string]bool{}
	for _, h := range hellos {
		if byFile[h.file] == nil {
			byFile[h.file] = map[string]bool{}
		}
		byFile[h.file][h.ja4] = true
		if r, ok := sigs.ja4[h.ja4]; ok && expected[h.file] == "none" {
			t.Errorf("shipped JA4 %s (line %d, %s) matches benign capture %s", h.ja4, r.Line, r.Why, h.file)
		}
	}
	if testing.Verbose() {
		var lines []string
		for _, h := range hellos {
			lines = append(lines, fmt.Sprintf("%-34s %-9s %s sni=%q alpn=%q", h.file, expected[h.file], h.ja4, h.sni, h.alpn))
		}
		sort.Strings(lines)
		t.Logf("ClientHellos in the recorded corpus:\n%s", strings.Join(lines, "\n"))
	}
	n := 0
	for ja4, r := range sigs.ja4 {
		_, file, ok := strings.Cut(r.Why, "recorded: ")
		if !ok {
			continue
		}
		file, _, _ = strings.Cut(strings.TrimSuffix(file, ")"), " ")
		n++
		if !byFile[file][ja4] {
			t.Errorf("signature line %d: JA4 %s is not the fingerprint of any ClientHello in %s", r.Line, ja4, file)
		}
	}
	if n == 0 {
		t.Error("signatures.txt ships no JA4 recorded from the corpus")
	}
}
