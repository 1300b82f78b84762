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
	return ownDNSFilter(own, nil)
}

// ownDNSFilter is ownDNSReplyFilter that, given the guard's clients (the
// segments' subnets), also drops the clients' UDP queries to the guard,
// because the guard hands each one it reads to inspection already parsed
// (Site.NoteQuery): exactly a datagram (IPv4, unfragmented, or IPv6
// without extension headers, untagged) that comes in addressed to the
// router's own MAC (PACKET_HOST), to port 53 of one of own, from an
// address in clients. The capture hooks the device before netfilter, so
// the address is the one the client sent to, before the nftables
// redirect of port 53: a query to any other resolver (which the redirect
// also hands to the guard) is still captured and inspected as it always
// was, and so are TCP, other ports, fragments and tagged frames.
func ownDNSFilter(own []netip.Addr, clients []netip.Prefix) ([]bpf.RawInstruction, error) {
	var v4, v6 []netip.Addr
	for _, a := range own {
		switch a = a.Unmap(); {
		case a.Is4():
			v4 = append(v4, a)
		case a.Is6():
			v6 = append(v6, a)
		}
	}
	var c4, c6 []netip.Prefix
	for _, p := range clients {
		p = p.Masked()
		switch {
		case !p.IsValid():
		case p.Addr().Is4():
			c4 = append(c4, p)
		case p.Addr().Is6():
			c6 = append(c6, p)
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
	word := func(b []byte) uint32 {
		return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	}
	// mask is the netmask word w (0-based) of a prefix of bits bits.
	mask := func(bits, w int) uint32 {
		n := min(max(bits-32*w, 0), 32)
		if n == 0 {
			return 0
		}
		return ^uint32(0) << (32 - n)
	}

	// What the router sends: its replies; what comes to it: the queries.
	emit(bpf.LoadExtension{Num: bpf.ExtType})
	jeq(4 /* PACKET_OUTGOING */, "", "in")
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
			jeq(word(b[:]), "drop", next)
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
				jeq(word(b[4*w:]), ifTrue, miss)
			}
			if i < len(v6)-1 {
				label(miss)
			}
		}
	}

	label("in")
	if len(c4)+len(c6) == 0 {
		emit(bpf.RetConstant{Val: keep})
	} else {
		emit(bpf.LoadExtension{Num: bpf.ExtType})
		jeq(0 /* PACKET_HOST */, "", "keep")
		emit(bpf.LoadAbsolute{Off: etherT, Size: 2})
		jeq(0x0800, "q4", "")
		jeq(0x86dd, "q6", "keep")

		label("q4")
		if len(v4) == 0 || len(c4) == 0 {
			emit(bpf.RetConstant{Val: keep})
		} else {
			emit(bpf.LoadAbsolute{Off: ip4 + 9, Size: 1}) // protocol
			jeq(17, "", "keep")
			emit(bpf.LoadAbsolute{Off: ip4 + 6, Size: 2})
			jumps = append(jumps, jump{len(prog), "keep", ""})
			emit(bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x3fff}) // a fragment
			emit(bpf.LoadMemShift{Off: ip4})
			emit(bpf.LoadIndirect{Off: ip4 + 2, Size: 2}) // UDP destination port
			jeq(53, "", "keep")
			emit(bpf.LoadAbsolute{Off: ip4 + 16, Size: 4}) // destination address
			for i, a := range v4 {
				b := a.As4()
				next := "keep"
				if i < len(v4)-1 {
					next = ""
				}
				jeq(word(b[:]), "q4src", next)
			}
			label("q4src")
			for i, p := range c4 {
				b := p.Addr().As4()
				next := "keep"
				if i < len(c4)-1 {
					next = ""
				}
				emit(bpf.LoadAbsolute{Off: ip4 + 12, Size: 4}) // source address
				emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: mask(p.Bits(), 0)})
				jeq(word(b[:]), "drop", next)
			}
		}

		label("q6")
		if len(v6) == 0 || len(c6) == 0 {
			emit(bpf.RetConstant{Val: keep})
		} else {
			emit(bpf.LoadAbsolute{Off: ip4 + 6, Size: 1}) // next header: UDP, no extension headers
			jeq(17, "", "keep")
			emit(bpf.LoadAbsolute{Off: ip4 + 40 + 2, Size: 2}) // UDP destination port
			jeq(53, "", "keep")
			for i, a := range v6 {
				b := a.As16()
				miss := fmt.Sprintf("q6-%d", i+1)
				if i == len(v6)-1 {
					miss = "keep"
				}
				for w := range 4 {
					emit(bpf.LoadAbsolute{Off: uint32(ip4 + 24 + 4*w), Size: 4}) // destination address, word w
					ifTrue := ""
					if w == 3 {
						ifTrue = "q6src"
					}
					jeq(word(b[4*w:]), ifTrue, miss)
				}
				if i < len(v6)-1 {
					label(miss)
				}
			}
			label("q6src")
			for i, p := range c6 {
				b := p.Addr().As16()
				miss := fmt.Sprintf("c6-%d", i+1)
				if i == len(c6)-1 {
					miss = "keep"
				}
				// Only the words the prefix covers are compared.
				words := (p.Bits() + 31) / 32
				if words == 0 {
					emit(bpf.RetConstant{Val: drop}) // ::/0: every source
					break
				}
				for w := range words {
					emit(bpf.LoadAbsolute{Off: uint32(ip4 + 8 + 4*w), Size: 4}) // source address, word w
					if m := mask(p.Bits(), w); m != ^uint32(0) {
						emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: m})
					}
					ifTrue := ""
					if w == words-1 {
						ifTrue = "drop"
					}
					jeq(word(b[4*w:]), ifTrue, miss)
				}
				if i < len(c6)-1 {
					label(miss)
				}
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
