package policy

import (
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Small builders for the expressions the ruleset uses, each the netlink
// equivalent of one nft(8) phrase so that the compiler reads like the ruleset.

// reg2 is the 32-bit register that follows a 6-byte (padded to 8) MAC loaded
// into register 1, which is where a concatenated ether_addr . ipv4_addr key
// continues.
const reg2 = unix.NFT_REG32_02

func ifname(n string) []byte {
	b := make([]byte, 16)
	copy(b, n)
	return b
}

func iifname(n string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(n)},
	}
}

func oifname(n string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(n)},
	}
}

func ipv4Only() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
	}
}

func l4proto(p byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
	}
}

// dport matches the transport destination port; it needs l4proto first.
func dport(p uint16) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(p)},
	}
}

func portRange(lo, hi uint16) []expr.Any {
	if lo == hi {
		return dport(lo)
	}
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: binaryutil.BigEndian.PutUint16(lo), ToData: binaryutil.BigEndian.PutUint16(hi)},
	}
}

func loadSaddr(reg uint32) expr.Any {
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4}
}

func loadDaddr() expr.Any {
	return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4}
}

// inPrefix matches the address already loaded in register 1 against p.
func inPrefix(p netip.Prefix) []expr.Any {
	p = p.Masked()
	mask := net.CIDRMask(p.Bits(), 32)
	a := p.Addr().As4()
	return []expr.Any{
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]},
	}
}

func daddrIn(p netip.Prefix) []expr.Any {
	return append([]expr.Any{loadDaddr()}, inPrefix(p)...)
}

// daddrNotAny matches an IPv4 destination that is none of addrs (which
// must be IPv4; it needs ipv4Only first): one load, then a comparison per
// address, all on the same register.
func daddrNotAny(addrs []netip.Addr) []expr.Any {
	e := []expr.Any{loadDaddr()}
	for _, a := range addrs {
		b := a.As4()
		e = append(e, &expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: b[:]})
	}
	return e
}

// etherSaddr loads the source MAC into register 1; link-layer payloads are only
// meaningful on Ethernet interfaces, as nft(8) itself checks.
func etherSaddr() []expr.Any {
	t := make([]byte, 2)
	binary.NativeEndian.PutUint16(t, unix.ARPHRD_ETHER)
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFTYPE, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: t},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseLLHeader, Offset: 6, Len: 6},
	}
}

func lookup(s *nftables.Set, invert bool) expr.Any {
	return &expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID, Invert: invert}
}

// macIPIn matches "ether saddr . ip saddr @s" (or != with invert); IPv4 only.
func macIPIn(s *nftables.Set, invert bool) []expr.Any {
	e := ipv4Only()
	e = append(e, etherSaddr()...)
	e = append(e, loadSaddr(reg2), lookup(s, invert))
	return e
}

func macIn(s *nftables.Set, invert bool) []expr.Any {
	return append(etherSaddr(), lookup(s, invert))
}

func saddrInSet(s *nftables.Set) []expr.Any {
	return append(ipv4Only(), loadSaddr(1), lookup(s, false))
}

func daddrInSet(s *nftables.Set) []expr.Any {
	return append(ipv4Only(), loadDaddr(), lookup(s, false))
}

func ctState(bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}

func redirectTo(port uint16) []expr.Any {
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
		&expr.Redir{RegisterProtoMin: 1},
	}
}

func verdict(k expr.VerdictKind) expr.Any { return &expr.Verdict{Kind: k} }

func jump(chain string) expr.Any { return &expr.Verdict{Kind: expr.VerdictJump, Chain: chain} }

func rejectTCPReset() expr.Any { return &expr.Reject{Type: unix.NFT_REJECT_TCP_RST} }

func rejectAdminProhibited() expr.Any {
	return &expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_ADMIN_PROHIBITED}
}

func counter() expr.Any { return &expr.Counter{} }

func cat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func one(e ...expr.Any) []expr.Any { return e }
