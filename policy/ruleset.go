package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// TableName is the one nftables table Gatehouse owns (family inet). Nothing
// else on the router is ever touched.
const TableName = "gatehouse"

// Names of the membership sets, as they appear in "nft list table inet gatehouse".
const (
	SetAdmitted      = "admitted"       // ether_addr . ipv4_addr, per-element timeout
	SetApproved      = "approved"       // ether_addr
	SetQuarantineMAC = "quarantine_mac" // ether_addr
	SetQuarantineIP  = "quarantine_ip"  // ipv4_addr
	SetRevokedMAC    = "revoked_mac"    // ether_addr
	SetRevokedIP     = "revoked_ip"     // ipv4_addr
	SetBlocked       = "blocked"        // ipv4_addr
	// SetBound holds the MAC and address pairs the router handed out (DHCP
	// leases, reservations included); with the admissions they are the
	// only sources a binding segment forwards.
	SetBound = "bound" // ether_addr . ipv4_addr, per-element timeout
)

const chainDeny = "deny"

// ruleSpec is one rule of the desired table. Its comment carries a label and a
// digest of its expressions so that Check can tell a rule changed behind our
// back without decoding and comparing expressions field by field.
type ruleSpec struct {
	label string
	exprs []expr.Any
}

func (r ruleSpec) comment() string {
	h := sha256.New()
	for _, e := range r.exprs {
		b, err := expr.Marshal(byte(nftables.TableFamilyINet), e)
		if err != nil {
			// Marshal failing means a builder made an expression the
			// library cannot encode: a programming error caught by tests.
			panic(fmt.Sprintf("policy: marshal expression of %q: %v", r.label, err))
		}
		h.Write(b)
	}
	return r.label + " #" + hex.EncodeToString(h.Sum(nil)[:6])
}

type chainSpec struct {
	chain *nftables.Chain
	rules []ruleSpec
}

// ruleset is the whole desired table, minus membership elements.
type ruleset struct {
	table  *nftables.Table
	sets   []*nftables.Set
	chains []chainSpec
	// fixed holds the elements of sets that rules own (a group's devices),
	// which change only with a rebuild.
	fixed map[string][]nftables.SetElement
	// dynamic sets are filled by the kernel itself (rate meters); their
	// elements are not desired state.
	dynamic map[string]bool
}

func (rs *ruleset) set(name string) *nftables.Set {
	for _, s := range rs.sets {
		if s.Name == name {
			return s
		}
	}
	panic("policy: unknown set " + name)
}

func newTable() *nftables.Table {
	return &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
}

func membershipSets(t *nftables.Table) []*nftables.Set {
	// IDs are set here, not by the library, because rules in the same batch
	// refer to the sets by ID before the kernel has named them.
	return []*nftables.Set{
		{Table: t, ID: 1, Name: SetAdmitted, KeyType: nftables.MustConcatSetType(nftables.TypeEtherAddr, nftables.TypeIPAddr), Concatenation: true, HasTimeout: true},
		{Table: t, ID: 2, Name: SetApproved, KeyType: nftables.TypeEtherAddr},
		{Table: t, ID: 3, Name: SetQuarantineMAC, KeyType: nftables.TypeEtherAddr},
		{Table: t, ID: 4, Name: SetQuarantineIP, KeyType: nftables.TypeIPAddr},
		{Table: t, ID: 5, Name: SetRevokedMAC, KeyType: nftables.TypeEtherAddr},
		{Table: t, ID: 6, Name: SetRevokedIP, KeyType: nftables.TypeIPAddr},
		{Table: t, ID: 7, Name: SetBlocked, KeyType: nftables.TypeIPAddr},
		{Table: t, ID: 8, Name: SetLimitUp, KeyType: nftables.TypeIPAddr, IsMap: true, DataType: nftables.TypeVerdict, HasTimeout: true},
		{Table: t, ID: 9, Name: SetLimitDown, KeyType: nftables.TypeIPAddr, IsMap: true, DataType: nftables.TypeVerdict, HasTimeout: true},
		{Table: t, ID: 10, Name: SetBudget, KeyType: nftables.TypeIPAddr, IsMap: true, DataType: nftables.TypeVerdict, HasTimeout: true},
		{Table: t, ID: 11, Name: SetBound, KeyType: nftables.MustConcatSetType(nftables.TypeEtherAddr, nftables.TypeIPAddr), Concatenation: true, HasTimeout: true},
	}
}

func segChain(name string) string { return "seg_" + name }

// build compiles the network and the currently active user rules (already
// grouped by segment name, in order) into the desired table.
func build(n Network, user compiled) *ruleset {
	t := newTable()
	rs := &ruleset{table: t, sets: membershipSets(t), fixed: user.elems, dynamic: map[string]bool{}}
	for _, s := range user.sets {
		s.Table = t
		rs.sets = append(rs.sets, s)
	}
	drop, accept := nftables.ChainPolicyDrop, nftables.ChainPolicyAccept

	deny := chainSpec{chain: &nftables.Chain{Name: chainDeny, Table: t}, rules: []ruleSpec{
		{"deny tcp with reset", cat(l4proto(unix.IPPROTO_TCP), one(counter(), rejectTCPReset()))},
		{"deny with admin-prohibited", one(counter(), rejectAdminProhibited())},
	}}

	fwd := chainSpec{chain: &nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &drop}}
	fwd.rules = []ruleSpec{
		{"invalid", cat(ctState(expr.CtStateBitINVALID), one(verdict(expr.VerdictDrop)))},
	}
	// MAC and address bound together, before anything counts a packet: a
	// source pair the router did not hand out (a lease or a reservation)
	// or admit is someone using another's address, or a static address
	// nobody reserved. It goes nowhere, and uses nobody's quota or rate.
	for _, s := range n.Segments {
		if s.BindMACIP {
			fwd.rules = append(fwd.rules, ruleSpec{s.Name + " source not bound",
				cat(iifname(s.Interface), macIPIn(rs.set(SetBound), true), macIPIn(rs.set(SetAdmitted), true), one(counter(), verdict(expr.VerdictDrop)))})
		}
	}
	fwd.rules = append(fwd.rules, []ruleSpec{
		// Revoked and quarantined devices are checked before established
		// traffic so that a connection that outlives its conntrack flush (a
		// race with a packet in flight) is still cut.
		{"revoked mac", cat(macIn(rs.set(SetRevokedMAC), false), one(jump(chainDeny)))},
		{"revoked ip", cat(saddrInSet(rs.set(SetRevokedIP)), one(jump(chainDeny)))},
		{"quarantined mac", cat(macIn(rs.set(SetQuarantineMAC), false), one(jump(chainDeny)))},
		{"quarantined ip", cat(saddrInSet(rs.set(SetQuarantineIP)), one(jump(chainDeny)))},
		{"blocked endpoint", cat(daddrInSet(rs.set(SetBlocked)), one(jump(chainDeny)))},
	}...)
	// Caps, device limits and quotas come before established traffic is
	// accepted, since that is what a transfer is made of, and after the
	// refusals, so that a refused packet is neither metered nor counted.
	// The segment's cap is a meter of its own, in front of a device's:
	// whichever is tighter is what the device gets.
	// A visitor who has not redeemed a code is refused before any meter
	// or quota: otherwise a packet sent from another visitor's address
	// with one's own MAC is counted against that visitor's budget before
	// the portal gate refuses it.
	for _, s := range n.Segments {
		if s.Portal {
			fwd.rules = append(fwd.rules, ruleSpec{s.Name + " not admitted, before any meter",
				cat(iifname(s.Interface), macIPIn(rs.set(SetAdmitted), true), one(jump(chainDeny)))})
		}
	}
	meterID := uint32(50)
	for _, s := range n.Segments {
		if s.RateLimit == 0 {
			continue
		}
		up, down := rs.meter(t, "rate_"+s.Name+"_up", &meterID), rs.meter(t, "rate_"+s.Name+"_down", &meterID)
		fwd.rules = append(fwd.rules,
			ruleSpec{s.Name + " upload cap", cat(iifname(s.Interface), ipv4Only(), one(loadSaddr(1)), overRate(up, s.RateLimit), one(verdict(expr.VerdictDrop)))},
			ruleSpec{s.Name + " download cap", cat(oifname(s.Interface), ipv4Only(), one(loadDaddr()), overRate(down, s.RateLimit), one(verdict(expr.VerdictDrop)))})
	}
	tierChains := rs.tierChains(t)
	fwd.rules = append(fwd.rules, limitRules(rs)...)
	fwd.rules = append(fwd.rules, []ruleSpec{
		{"established", cat(ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), one(verdict(expr.VerdictAccept)))},
		{"dns-over-tls", cat(l4proto(unix.IPPROTO_TCP), dport(853), one(counter(), rejectTCPReset()))},
	}...)
	for _, s := range n.Segments {
		fwd.rules = append(fwd.rules, ruleSpec{"from " + s.Name, cat(iifname(s.Interface), one(jump(segChain(s.Name))))})
	}

	var segChains []chainSpec
	for _, s := range n.Segments {
		segChains = append(segChains, segmentChain(t, rs, n, s, user.bySegment[s.Name]))
	}

	pre := chainSpec{chain: &nftables.Chain{Name: "prerouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest}}
	var gateways []netip.Addr
	for _, s := range n.Segments {
		if s.Gateway.Is4() {
			gateways = append(gateways, s.Gateway)
		}
	}
	for _, s := range n.Segments {
		// Whatever resolver a client asked, the DNS guard answers; over
		// UDP, a query to another resolver than the guard (a segment's
		// gateway) on a port of its own, so that it is not handed to
		// inspection, whose capture still sees it with its original
		// destination (dnsguard.Config.RedirectedListen).
		if n.DNSRedirectPort != 0 {
			pre.rules = append(pre.rules, ruleSpec{s.Name + " dns/udp to other resolvers to guard",
				cat(iifname(s.Interface), ipv4Only(), l4proto(unix.IPPROTO_UDP), dport(53), daddrNotAny(gateways), redirectTo(n.DNSRedirectPort))})
		}
		for _, p := range []struct {
			name  string
			proto byte
		}{{"udp", unix.IPPROTO_UDP}, {"tcp", unix.IPPROTO_TCP}} {
			pre.rules = append(pre.rules, ruleSpec{s.Name + " dns/" + p.name + " to guard",
				cat(iifname(s.Interface), l4proto(p.proto), dport(53), redirectTo(n.DNSPort))})
		}
		pre.rules = append(pre.rules,
			ruleSpec{s.Name + " quarantined mac http to portal", cat(iifname(s.Interface), l4proto(unix.IPPROTO_TCP), dport(80), macIn(rs.set(SetQuarantineMAC), false), redirectTo(n.PortalPort))},
			ruleSpec{s.Name + " quarantined ip http to portal", cat(iifname(s.Interface), l4proto(unix.IPPROTO_TCP), dport(80), saddrInSet(rs.set(SetQuarantineIP)), redirectTo(n.PortalPort))},
		)
		if s.Portal {
			pre.rules = append(pre.rules, ruleSpec{s.Name + " pre-admission http to portal",
				cat(iifname(s.Interface), l4proto(unix.IPPROTO_TCP), dport(80), macIPIn(rs.set(SetAdmitted), true), redirectTo(n.PortalPort))})
		}
	}

	post := chainSpec{chain: &nftables.Chain{Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource}}
	post.rules = []ruleSpec{{"masquerade on uplink", cat(oifname(n.Uplink), ipv4Only(), one(&expr.Masq{}))}}

	in := chainSpec{chain: &nftables.Chain{Name: "input", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &accept}}
	if n.AdminAddr.IsValid() {
		// The router has an address on every segment, so the admin port is
		// refused by arrival interface, whatever address was asked for.
		ifaces := []string{n.Uplink}
		for _, s := range n.Segments {
			ifaces = append(ifaces, s.Interface)
		}
		for _, ifc := range ifaces {
			in.rules = append(in.rules, ruleSpec{"admin port from " + ifc,
				cat(iifname(ifc), l4proto(unix.IPPROTO_TCP), dport(n.AdminAddr.Port()), one(jump(chainDeny)))})
		}
	}
	for _, s := range n.Segments {
		in.rules = append(in.rules, ruleSpec{s.Name + " dns-over-tls to router",
			cat(iifname(s.Interface), l4proto(unix.IPPROTO_TCP), dport(853), one(counter(), rejectTCPReset()))})
	}
	in.rules = append(in.rules, serviceRules(n)...)

	rs.chains = append([]chainSpec{deny}, segChains...)
	rs.chains = append(rs.chains, tierChains...)
	rs.chains = append(rs.chains, fwd, pre, post, in)
	return rs
}

// routerService is a service the router itself offers its segments.
type routerService struct {
	name  string
	proto byte
	port  uint16
}

// serviceRules open the router's DNS guard, DHCP server and portal to the
// segments (and DHCP to the relay interfaces) and to the router itself,
// and close them to every other interface: from the uplink the DNS guard
// would be an open resolver, and the portal and DHCP are nobody's business
// there.
func serviceRules(n Network) []ruleSpec {
	svcs := []routerService{{"dns/udp", unix.IPPROTO_UDP, n.DNSPort}, {"dns/tcp", unix.IPPROTO_TCP, n.DNSPort}, {"dhcp", unix.IPPROTO_UDP, 67}}
	if n.DNSRedirectPort != 0 {
		svcs = append(svcs, routerService{"dns/udp redirected", unix.IPPROTO_UDP, n.DNSRedirectPort})
	}
	if n.PortalPort != 0 {
		svcs = append(svcs, routerService{"portal", unix.IPPROTO_TCP, n.PortalPort})
	}
	if n.PortalTLSPort != 0 {
		svcs = append(svcs, routerService{"portal/tls", unix.IPPROTO_TCP, n.PortalTLSPort})
	}
	var rules []ruleSpec
	for _, s := range n.Segments {
		// Quarantine can send a device on any segment to the portal, so
		// every segment uses all of them.
		for _, v := range svcs {
			rules = append(rules, ruleSpec{s.Name + " " + v.name + " to router",
				cat(iifname(s.Interface), l4proto(v.proto), dport(v.port), one(verdict(expr.VerdictAccept)))})
		}
	}
	for _, ri := range n.RelayInterfaces {
		rules = append(rules, ruleSpec{"relayed dhcp from " + ri, cat(iifname(ri), l4proto(unix.IPPROTO_UDP), dport(67), one(verdict(expr.VerdictAccept)))})
	}
	for _, v := range svcs {
		rules = append(rules,
			ruleSpec{"local " + v.name, cat(iifname("lo"), l4proto(v.proto), dport(v.port), one(verdict(expr.VerdictAccept)))},
			ruleSpec{"no " + v.name + " from elsewhere", cat(l4proto(v.proto), dport(v.port), one(counter(), verdict(expr.VerdictDrop)))})
	}
	return rules
}

func segmentChain(t *nftables.Table, rs *ruleset, n Network, s SegmentSpec, user []ruleSpec) chainSpec {
	c := chainSpec{chain: &nftables.Chain{Name: segChain(s.Name), Table: t}}
	add := func(label string, e []expr.Any) {
		c.rules = append(c.rules, ruleSpec{s.Name + ": " + label, e})
	}
	// Gates come first: no rule a school writes opens the internet to a
	// device that is not approved or a visitor who is not admitted. The
	// segments are IPv4; IPv6 is refused rather than let past IPv4 gates.
	add("not ipv4", []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
		jump(chainDeny),
	})
	if s.RequireApproval() {
		add("not approved", cat(macIn(rs.set(SetApproved), true), one(jump(chainDeny))))
	}
	if s.Portal {
		add("not admitted", cat(macIPIn(rs.set(SetAdmitted), true), one(jump(chainDeny))))
	}
	for _, u := range user {
		c.rules = append(c.rules, ruleSpec{s.Name + ": " + u.label, u.exprs})
	}
	if s.Isolate {
		add("client isolation", cat(oifname(s.Interface), one(counter(), verdict(expr.VerdictDrop))))
	}
	// Other segments and servers not granted are refused explicitly, so
	// that a server routed out of the uplink is not reachable as "internet".
	for _, o := range n.Segments {
		if o.Name != s.Name {
			add("no "+o.Name+" subnet", cat(ipv4Only(), daddrIn(o.Subnet), one(counter(), verdict(expr.VerdictDrop))))
		}
	}
	for _, name := range sortedKeys(n.Servers) {
		p := n.Servers[name]
		if contains(s.Servers, name) {
			add("server "+name, cat(ipv4Only(), daddrIn(p), one(verdict(expr.VerdictAccept))))
		} else {
			add("no server "+name, cat(ipv4Only(), daddrIn(p), one(counter(), verdict(expr.VerdictDrop))))
		}
	}
	if s.Internet {
		add("internet", cat(oifname(n.Uplink), one(verdict(expr.VerdictAccept))))
	}
	return c
}

// meter adds a set the kernel fills with one rate meter per client address;
// idle clients' meters expire.
func (rs *ruleset) meter(t *nftables.Table, name string, id *uint32) *nftables.Set {
	s := &nftables.Set{Table: t, ID: *id, Name: name, KeyType: nftables.TypeIPAddr,
		Dynamic: true, HasTimeout: true, Timeout: time.Minute, Size: 65535}
	*id++
	rs.sets = append(rs.sets, s)
	rs.dynamic[name] = true
	return s
}

// overRate matches when the address in register 1 has gone over its meter's
// rate ("update @set { ip saddr limit rate over N bytes/second }").
func overRate(s *nftables.Set, bytesPerSecond uint64) []expr.Any {
	return one(&expr.Dynset{SrcRegKey: 1, SetName: s.Name, SetID: s.ID, Operation: uint32(unix.NFT_DYNSET_OP_UPDATE),
		Exprs: []expr.Any{&expr.Limit{Type: expr.LimitTypePktBytes, Rate: bytesPerSecond, Over: true,
			Unit: expr.LimitTimeSecond, Burst: uint32(min(bytesPerSecond, 1<<31))}}})
}

// program queues the whole table into cc's batch: delete whatever table of ours
// is there and build it anew, in one transaction the kernel applies or refuses
// as a whole. Adding the table before deleting it makes the delete valid when
// the table does not exist yet. Objects and chains go in before the sets,
// whose verdict-map elements jump to chains; rules last, as they refer to
// all three.
func (rs *ruleset) program(cc *nftables.Conn, elems map[string][]nftables.SetElement, quotas map[string]*quota) error {
	cc.AddTable(rs.table)
	cc.DelTable(rs.table)
	cc.AddTable(rs.table)
	var qchains []chainSpec
	objs := map[string]*nftables.QuotaObj{}
	for _, k := range sortedKeys(quotas) {
		q := quotas[k]
		// A shared budget once, from the most any sharer has used.
		o := q.obj(rs.table)
		if prev, ok := objs[o.Name]; ok {
			o.Consumed = max(o.Consumed, prev.Consumed)
		}
		objs[o.Name] = o
		qchains = append(qchains, quotaChain(rs.table, q.ip, q.objName()))
	}
	for _, name := range sortedKeys(objs) {
		cc.AddObj(objs[name])
	}
	chains := append(slices.Clone(rs.chains), qchains...)
	for _, c := range chains {
		cc.AddChain(c.chain)
	}
	for _, s := range rs.sets {
		if err := cc.AddSet(s, nil); err != nil {
			return fmt.Errorf("policy: add set %s: %w", s.Name, err)
		}
		if err := addElements(cc, s, append(elems[s.Name], rs.fixed[s.Name]...)); err != nil {
			return err
		}
	}
	for _, c := range chains {
		addRules(cc, rs.table, c)
	}
	return nil
}

func addRules(cc *nftables.Conn, t *nftables.Table, c chainSpec) {
	for _, r := range c.rules {
		cc.AddRule(&nftables.Rule{Table: t, Chain: c.chain, Exprs: r.exprs,
			UserData: userdata.AppendString(nil, userdata.TypeComment, r.comment())})
	}
}

// elemMsgBytes bounds the element list of one element message. The list is
// one netlink attribute, whose length field has 16 bits, and
// github.com/google/nftables (through mdlayher/netlink) does not check it: a
// list past 64 KiB is sent with its length wrapped, and the kernel reads only
// the first elements of it. Added that way, a repair's add of 2,000
// admitted elements (36 bytes each) put about 180 in, and the delete
// that followed (24 bytes each, not wrapped) failed on the first absent one
// with ENOENT, taking the whole transaction with it. Half the limit leaves
// room for what elemBytes does not count.
const elemMsgBytes = 32 << 10

// elemBytes is at least what github.com/google/nftables encodes el in
// (makeElemList): its nest, the key (and key end) nests, the timeout, the
// verdict or data nests and the comment.
func elemBytes(el nftables.SetElement) int {
	pad := func(n int) int { return (n + 3) &^ 3 }
	n := 4 + 8 + pad(len(el.Key))
	if el.IntervalEnd {
		n += 8
	}
	if len(el.KeyEnd) > 0 {
		n += 8 + pad(len(el.KeyEnd))
	}
	if el.Timeout != 0 {
		n += 12
	}
	if v := el.VerdictData; v != nil {
		n += 4 + 4 + 8 + 4 + pad(len(v.Chain)+1)
	} else if len(el.Val) > 0 {
		n += 8 + pad(len(el.Val))
	}
	if el.Comment != "" {
		n += 4 + pad(2+len(el.Comment)+1)
	}
	return n
}

// setElements queues els as add (or delete) messages for s, as many as
// elemMsgBytes needs. Elements of one set do not depend on one another, so
// splitting them changes nothing but the number of messages.
func setElements(cc *nftables.Conn, s *nftables.Set, del bool, els []nftables.SetElement) error {
	for len(els) > 0 {
		n, size := 0, 0
		for n < len(els) {
			b := elemBytes(els[n])
			if n > 0 && size+b > elemMsgBytes {
				break
			}
			n++
			size += b
		}
		var err error
		if del {
			err = cc.SetDeleteElements(s, els[:n])
		} else {
			err = cc.SetAddElements(s, els[:n])
		}
		if err != nil {
			return fmt.Errorf("policy: %d elements of %s: %w", n, s.Name, err)
		}
		els = els[n:]
	}
	return nil
}

func addElements(cc *nftables.Conn, s *nftables.Set, els []nftables.SetElement) error {
	return setElements(cc, s, false, els)
}
