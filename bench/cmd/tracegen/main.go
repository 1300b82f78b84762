// Command tracegen builds a large replay trace for bench/inspect.sh from a
// directory of captures: every packet of every pcap and pcapng file, made
// Ethernet, written COPIES times into one pcap file, each copy with its
// addresses renumbered so that its flows are new flows to an inspector.
//
// Renumbering XORs the copy number into the middle of each address (the
// second and third octets of IPv4, bytes 4-5 of IPv6), which keeps what an
// address is (private, loopback, multicast, broadcast, link-local), and
// updates the IPv4 header and TCP/UDP checksums incrementally (RFC 1624), so
// the packets stay valid. Unspecified and limited-broadcast addresses are
// left alone. Timestamps are rewritten so the trace runs forward: each
// file follows the previous one a millisecond after its last packet,
// keeping the gaps inside a file.
//
// It owns only its output file. It prints the number of packets written.
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "tracegen:", err)
		os.Exit(1)
	}
}

// frame is one packet, already Ethernet, with its delay after the
// previous packet of its file.
type frame struct {
	gap  time.Duration
	orig int
	data []byte
}

func run() error {
	in := flag.String("in", "../shared/pcaps", "directory of .pcap and .pcapng files")
	out := flag.String("out", "", "output pcap file (required)")
	copies := flag.Int("copies", 0, "copies of the capture set (default: enough for -packets)")
	target := flag.Int("packets", 1_000_000, "packets to aim for when -copies is not given")
	flag.Parse()
	if *out == "" {
		return errors.New("-out is required")
	}
	files, err := captures(*in)
	if err != nil {
		return err
	}
	var set [][]frame
	total, skipped := 0, 0
	for _, f := range files {
		fr, sk, err := load(f)
		if err != nil {
			return err
		}
		skipped += sk
		if len(fr) > 0 {
			set = append(set, fr)
			total += len(fr)
		}
	}
	if total == 0 {
		return fmt.Errorf("no packets in %s", *in)
	}
	n := *copies
	if n <= 0 {
		n = max(1, (*target+total-1)/total)
	}
	if n > 65535 {
		return fmt.Errorf("%d copies: at most 65535 fit the renumbering", n)
	}
	fh, err := os.Create(*out)
	if err != nil {
		return fmt.Errorf("create %s: %w", *out, err)
	}
	bw := bufio.NewWriterSize(fh, 1<<20)
	w := pcapgo.NewWriterNanos(bw)
	if err := w.WriteFileHeader(1<<18, layers.LinkTypeEthernet); err != nil {
		fh.Close()
		return fmt.Errorf("write %s: %w", *out, err)
	}
	ts := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	buf := make([]byte, 0, 1<<18)
	written := 0
	for k := range n {
		for _, fr := range set {
			for _, p := range fr {
				ts = ts.Add(p.gap)
				buf = append(buf[:0], p.data...)
				renumber(buf, uint16(k))
				ci := captureInfo(ts, len(buf), p.orig)
				if err := w.WritePacket(ci, buf); err != nil {
					fh.Close()
					return fmt.Errorf("write %s: %w", *out, err)
				}
				written++
			}
			ts = ts.Add(time.Millisecond)
		}
	}
	if err := bw.Flush(); err != nil {
		fh.Close()
		return fmt.Errorf("write %s: %w", *out, err)
	}
	if err := fh.Close(); err != nil {
		return fmt.Errorf("close %s: %w", *out, err)
	}
	fmt.Fprintf(os.Stderr, "tracegen: %d files, %d packets each copy (%d skipped: not IP), %d copies\n", len(set), total, skipped, n)
	fmt.Println(written)
	return nil
}

// captures lists the capture files in dir, sorted.
func captures(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() && (strings.HasSuffix(e.Name(), ".pcap") || strings.HasSuffix(e.Name(), ".pcapng")) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

// load reads one file and converts its IP packets to Ethernet frames.
func load(path string) ([]frame, int, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("open %s: %w", path, err)
	}
	defer fh.Close()
	br := bufio.NewReader(fh)
	magic, err := br.Peek(4)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", path, err)
	}
	var next func() ([]byte, time.Time, int, layers.LinkType, error)
	if string(magic) == "\x0a\x0d\x0d\x0a" {
		ng, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{SkipUnknownVersion: true})
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", path, err)
		}
		next = func() ([]byte, time.Time, int, layers.LinkType, error) {
			data, ci, err := ng.ReadPacketData()
			if err != nil {
				return nil, time.Time{}, 0, 0, err
			}
			lt := ng.LinkType()
			if intf, err := ng.Interface(ci.InterfaceIndex); err == nil {
				lt = intf.LinkType
			}
			return data, ci.Timestamp, ci.Length, lt, nil
		}
	} else {
		pr, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", path, err)
		}
		next = func() ([]byte, time.Time, int, layers.LinkType, error) {
			data, ci, err := pr.ReadPacketData()
			return data, ci.Timestamp, ci.Length, pr.LinkType(), err
		}
	}
	var out []frame
	var last time.Time
	skipped := 0
	for {
		data, ts, orig, lt, err := next()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return out, skipped, nil
		}
		if err != nil {
			return nil, 0, fmt.Errorf("read %s: %w", path, err)
		}
		eth, grow, ok := toEthernet(lt, data)
		if !ok {
			skipped++
			continue
		}
		gap := time.Duration(0)
		if !last.IsZero() && ts.After(last) {
			gap = ts.Sub(last)
		}
		if gap > time.Minute {
			gap = time.Minute // a capture paused for hours need not make the trace span days
		}
		last = ts
		out = append(out, frame{gap: gap, orig: orig + grow, data: eth})
	}
}

func captureInfo(ts time.Time, capLen, orig int) gopacket.CaptureInfo {
	return gopacket.CaptureInfo{Timestamp: ts, CaptureLength: capLen, Length: max(orig, capLen)}
}

// Ethernet header of converted packets: locally administered addresses.
var (
	srcMAC = []byte{0x02, 0, 0, 0, 0, 0x01}
	dstMAC = []byte{0x02, 0, 0, 0, 0, 0x02}
)

// toEthernet returns the packet as an Ethernet frame (a copy), how many
// bytes longer it became, and false for packets that are not IP.
func toEthernet(lt layers.LinkType, b []byte) ([]byte, int, bool) {
	var ip []byte
	switch lt {
	case layers.LinkTypeEthernet:
		return append([]byte(nil), b...), 0, true
	case layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6, 12:
		ip = b
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		if len(b) < 4 {
			return nil, 0, false
		}
		ip = b[4:]
	case layers.LinkTypeLinuxSLL:
		if len(b) < 16 {
			return nil, 0, false
		}
		ip = b[16:]
	default:
		return nil, 0, false
	}
	if len(ip) == 0 {
		return nil, 0, false
	}
	var etype uint16
	switch ip[0] >> 4 {
	case 4:
		etype = 0x0800
	case 6:
		etype = 0x86dd
	default:
		return nil, 0, false
	}
	out := make([]byte, 0, 14+len(ip))
	out = append(out, dstMAC...)
	out = append(out, srcMAC...)
	out = binary.BigEndian.AppendUint16(out, etype)
	out = append(out, ip...)
	return out, len(out) - len(b), true
}

// renumber rewrites the addresses of an Ethernet frame's IP header in
// place for copy k (copy 0 is unchanged) and fixes the checksums.
func renumber(b []byte, k uint16) {
	if k == 0 || len(b) < 14 {
		return
	}
	off := 12
	etype := binary.BigEndian.Uint16(b[off:])
	for (etype == 0x8100 || etype == 0x88a8) && len(b) >= off+6 {
		off += 4
		etype = binary.BigEndian.Uint16(b[off:])
	}
	ip := b[off+2:]
	switch etype {
	case 0x0800:
		if len(ip) < 20 || ip[0]>>4 != 4 {
			return
		}
		ihl := int(ip[0]&0xf) * 4
		if ihl < 20 || len(ip) < ihl {
			return
		}
		var l4sum []byte
		if binary.BigEndian.Uint16(ip[6:8])&0x1fff == 0 { // first fragment or whole
			l4sum = l4Checksum(ip[9], ip[ihl:])
		}
		for _, a := range [][]byte{ip[12:16], ip[16:20]} {
			if binary.BigEndian.Uint32(a) == 0 || binary.BigEndian.Uint32(a) == 0xffffffff {
				continue
			}
			old := binary.BigEndian.Uint16(a[1:3])
			nw := old ^ k
			a[1], a[2] = byte(nw>>8), byte(nw)
			// The changed bytes straddle two 16-bit words of the header.
			fixWords(a, old, nw, ip[10:12], l4sum)
		}
	case 0x86dd:
		if len(ip) < 40 || ip[0]>>4 != 6 {
			return
		}
		l4sum := l4Checksum(ip[6], ip[40:])
		for _, a := range [][]byte{ip[8:24], ip[24:40]} {
			if binary.BigEndian.Uint64(a[:8]) == 0 {
				continue // ::, ::1, IPv4-mapped: leave them be
			}
			old := binary.BigEndian.Uint16(a[4:6])
			nw := old ^ k
			binary.BigEndian.PutUint16(a[4:6], nw)
			if l4sum != nil {
				adjust(l4sum, old, nw)
			}
		}
	}
}

// fixWords updates the IPv4 header checksum and the transport checksum
// after the middle two octets of the IPv4 address a changed from old to nw
// (as a 16-bit value). In the header those octets are the low byte of one
// 16-bit word and the high byte of the next.
func fixWords(a []byte, old, nw uint16, hsum, l4sum []byte) {
	w0old := uint16(a[0])<<8 | old>>8
	w0new := uint16(a[0])<<8 | nw>>8
	w1old := (old&0xff)<<8 | uint16(a[3])
	w1new := (nw&0xff)<<8 | uint16(a[3])
	for _, s := range [][]byte{hsum, l4sum} {
		if s == nil {
			continue
		}
		adjust(s, w0old, w0new)
		adjust(s, w1old, w1new)
	}
}

// l4Checksum returns the checksum field of a TCP or UDP header if it was
// captured (and, for UDP, is in use), else nil.
func l4Checksum(proto byte, l4 []byte) []byte {
	switch proto {
	case 6:
		if len(l4) >= 18 {
			return l4[16:18]
		}
	case 17:
		if len(l4) >= 8 && (l4[6] != 0 || l4[7] != 0) {
			return l4[6:8]
		}
	}
	return nil
}

// adjust applies RFC 1624's incremental update HC' = ~(~HC + ~m + m') for
// one 16-bit word changing from m to m2.
func adjust(sum []byte, m, m2 uint16) {
	hc := binary.BigEndian.Uint16(sum)
	s := uint32(^hc) + uint32(^m) + uint32(m2)
	s = (s & 0xffff) + (s >> 16)
	s = (s & 0xffff) + (s >> 16)
	binary.BigEndian.PutUint16(sum, ^uint16(s))
}
