// Package pcapseed reads the shared capture set for fuzz seeds: whole
// frames and transport payloads. It is used by tests only and owns nothing
// else.
package pcapseed

import (
	"bufio"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/gatehouse-net/gatehouse/internal/shared"
)

// Dir returns the capture directory: $GATEHOUSE_PCAPS, else
// ../shared/pcaps beside the repository. t fails, naming where it looked,
// when neither exists: seeds that silently vanish make a fuzz target
// weaker without anyone noticing.
func Dir(t testing.TB) string {
	t.Helper()
	return shared.Pcaps(t)
}

// Packet is one frame of a capture with its link type and the payload
// above TCP/UDP (nil if none).
type Packet struct {
	Link    layers.LinkType
	Frame   []byte
	Payload []byte
	UDP     bool
}

// Read returns up to max packets per file of every capture in dir, in file
// name order, skipping files it cannot read.
func Read(dir string, max int) []Packet {
	names, _ := filepath.Glob(filepath.Join(dir, "*.pcap*"))
	sort.Strings(names)
	var out []Packet
	for _, name := range names {
		out = append(out, readFile(name, max)...)
	}
	return out
}

func readFile(name string, max int) []Packet {
	fh, err := os.Open(name)
	if err != nil {
		return nil
	}
	defer fh.Close()
	br := bufio.NewReader(fh)
	magic, err := br.Peek(4)
	if err != nil {
		return nil
	}
	var src interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	}
	var lt layers.LinkType
	if string(magic) == "\x0a\x0d\x0d\x0a" {
		r, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return nil
		}
		src, lt = r, r.LinkType()
	} else {
		r, err := pcapgo.NewReader(br)
		if err != nil {
			return nil
		}
		src, lt = r, r.LinkType()
	}
	var out []Packet
	for len(out) < max {
		data, _, err := src.ReadPacketData()
		if err != nil {
			break
		}
		p := gopacket.NewPacket(data, lt, gopacket.NoCopy)
		pk := Packet{Link: lt, Frame: data}
		if tl := p.TransportLayer(); tl != nil {
			pk.Payload = tl.LayerPayload()
			_, pk.UDP = tl.(*layers.UDP)
		}
		out = append(out, pk)
	}
	return out
}
