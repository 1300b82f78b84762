package inspect

import (
	"fmt"
	"net/netip"

	"golang.org/x/net/bpf"
)

// ownDNSReplyFilter is the capture's kernel (classic BPF) filter when the
// router's own DNS guard answers on the segment: it drops the guard's
// replies before they are copied into the ring, and keeps every other
// frame.
//
// What is dropped is exactly a UDP datagram (IPv4, unfragmented, or IPv6
// without extension headers) that leaves the router (PACKET_OUTGOING: a
// client cannot forge that), from source port 53, from one of own. Those
// are the guard's answers to clients, which tell inspection nothing the
// guard has not told it already: the guard hands every answer to
// Site.NoteAnswer, and the answer is what the engine would have learnt
// from the reply (Engine.learnAnswer). Everything that could be a bypass
// is still seen: the clients' queries to the guard (tunnel, DNSCrypt and
// VPN-name checks look at queries), queries and replies to and from any
// other resolver (a forwarded reply leaves the router from the resolver's
// address, not one of own), DoH and DoT (not port 53), TCP DNS, and
// anything the filter cannot parse (VLAN tags left in the frame, IP
// options are parsed, fragments are kept).
//
// At a school's busiest (every device asking the guard at once) the
// replies are half of what the segment carries, and each one the ring
// did not have to take is a copy, a block hand-over and an engine pass
// the guard's CPU keeps (issue 16).
func ownDNSReplyFilter(own []netip.Addr) ([]bpf.RawInstruction, error) {
	var v4, v6 []netip.Addr
	for _, a := range own {
		switch a = a.Unmap(); {
		case a.Is4():
			v4 = append(v4, a)
		case a.Is6():
			v6 = append(v6, a)
		}
	}
	if len(v4)+len(v6) == 0 {
		return nil, fmt.Errorf("inspect: own DNS reply filter: no addresses")
	}
	const (
		keep   = 0x40000 // snap length: all of the frame, as without a filter
		drop   = 0
		etherT = 12
		ip4    = 14 // the IP header, after an untagged Ethernet header
	)
	// Labels are resolved after the program is laid out: each jump names
	// the instruction it goes to.
	type jump struct {
		at             int
		ifTrue, ifElse string
	}
	var (
		prog   []bpf.Instruction
		jumps  []jump
		labels = map[string]int{}
	)
	emit := func(in bpf.Instruction) { prog = append(prog, in) }
	jeq := func(v uint32, ifTrue, ifElse string) {
		jumps = append(jumps, jump{len(prog), ifTrue, ifElse})
		emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: v})
	}
	label := func(name string) { labels[name] = len(prog) }

	// Only what the router sends.
	emit(bpf.LoadExtension{Num: bpf.ExtType})
	jeq(4 /* PACKET_OUTGOING */, "", "keep")
	emit(bpf.LoadAbsolute{Off: etherT, Size: 2})
	jeq(0x0800, "v4", "")
	jeq(0x86dd, "v6", "keep")

	label("v4")
	if len(v4) == 0 {
		emit(bpf.RetConstant{Val: keep})
	} else {
		emit(bpf.LoadAbsolute{Off: ip4 + 9, Size: 1}) // protocol
		jeq(17, "", "keep")
		emit(bpf.LoadAbsolute{Off: ip4 + 6, Size: 2}) // flags, fragment offset
		jumps = append(jumps, jump{len(prog), "keep", ""})
		emit(bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x3fff}) // MF or an offset: a fragment
		emit(bpf.LoadMemShift{Off: ip4})                     // X = the IPv4 header's length
		emit(bpf.LoadIndirect{Off: ip4, Size: 2})            // UDP source port
		jeq(53, "", "keep")
		emit(bpf.LoadAbsolute{Off: ip4 + 12, Size: 4}) // source address
		for i, a := range v4 {
			b := a.As4()
			next := "keep"
			if i < len(v4)-1 {
				next = ""
			}
			jeq(uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3]), "drop", next)
		}
	}

	label("v6")
	if len(v6) == 0 {
		emit(bpf.RetConstant{Val: keep})
	} else {
		emit(bpf.LoadAbsolute{Off: ip4 + 6, Size: 1}) // next header: UDP, no extension headers
		jeq(17, "", "keep")
		emit(bpf.LoadAbsolute{Off: ip4 + 40, Size: 2}) // UDP source port
		jeq(53, "", "keep")
		for i, a := range v6 {
			b := a.As16()
			miss := fmt.Sprintf("v6-%d", i+1)
			if i == len(v6)-1 {
				miss = "keep"
			}
			for w := range 4 {
				emit(bpf.LoadAbsolute{Off: uint32(ip4 + 8 + 4*w), Size: 4}) // source address, word w
				ifTrue := ""
				if w == 3 {
					ifTrue = "drop"
				}
				jeq(uint32(b[4*w])<<24|uint32(b[4*w+1])<<16|uint32(b[4*w+2])<<8|uint32(b[4*w+3]), ifTrue, miss)
			}
			if i < len(v6)-1 {
				label(miss)
			}
		}
	}

	label("keep")
	emit(bpf.RetConstant{Val: keep})
	label("drop")
	emit(bpf.RetConstant{Val: drop})

	for _, j := range jumps {
		in := prog[j.at].(bpf.JumpIf)
		for _, t := range []struct {
			name string
			skip *uint8
		}{{j.ifTrue, &in.SkipTrue}, {j.ifElse, &in.SkipFalse}} {
			if t.name == "" {
				continue // the next instruction
			}
			to, ok := labels[t.name]
			if !ok {
				return nil, fmt.Errorf("inspect: own DNS reply filter: no label %q", t.name)
			}
			d := to - j.at - 1
			if d < 0 || d > 255 {
				return nil, fmt.Errorf("inspect: own DNS reply filter: jump of %d to %q (too many addresses)", d, t.name)
			}
			*t.skip = uint8(d)
		}
		prog[j.at] = in
	}
	return bpf.Assemble(prog)
}
