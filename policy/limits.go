package policy

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Per-device limits (a voucher's rate limit and data quota) live in three
// verdict maps keyed by the device's IPv4 address, each element carrying the
// admission's kernel timeout:
//
//   - limit_up / limit_down send the device's packets (by source / by
//     destination address) to the chain of its rate tier, which holds one rate
//     meter per address: "update @meter_down_1mbit { ip daddr limit rate over
//     125000 bytes/second } drop". The segment's own cap is a separate meter
//     in front, so the tighter of the two is what a device gets.
//   - budget sends both directions to the device's own chain "quota_<ip>", whose
//     rules reference the named quota object "quota_<ip>". One object counts
//     uploads and downloads, so one budget covers both. Over the budget a
//     download packet is dropped and an upload packet is refused through the
//     deny chain (a TCP reset or ICMP admin-prohibited to the device), so the
//     visitor's next connection fails at once instead of hanging.
//
// A tier is a fixed chain and meter, so admitting a device is one element
// operation; a quota needs an object and a chain per device, because nftables
// can only name the object a rule counts against (google/nftables has no
// object maps).

// Names of the per-device limit maps, as in "nft list map inet gatehouse limit_up".
const (
	SetLimitUp   = "limit_up"   // ipv4_addr : verdict (jump to a rate tier)
	SetLimitDown = "limit_down" // ipv4_addr : verdict (jump to a rate tier)
	SetBudget    = "budget"     // ipv4_addr : verdict (jump to the device's quota chain)
)

// quotaPrefix names a device's quota chain and quota object.
const quotaPrefix = "quota_"

// Limits are a device's own limits on top of its segment's defaults.
type Limits struct {
	// UpBps and DownBps are rates in bytes per second, rounded down to a
	// rate tier (see RateTier); 0 leaves only the segment's cap.
	UpBps, DownBps uint64
	// QuotaBytes is the device's data budget, uploads and downloads
	// together, IP headers included; 0 means none. Only forwarded traffic
	// counts: the router's own services (the portal, DNS) stay reachable
	// when the budget is spent.
	QuotaBytes uint64
	// QuotaKey names the budget's owner (a visitor code): every device
	// admitted with the same key counts against one budget, so a code's
	// quota is the code's, not each address's. Empty gives the device a
	// budget of its own. Letters, digits and '_' only.
	QuotaKey string
}

// ErrNoQuota is returned by QuotaUsed for a device admitted without a quota.
var ErrNoQuota = errors.New("policy: device has no data quota")

// tier is one rate a device can be limited to.
type tier struct {
	name string
	bps  uint64 // bytes per second
}

// tiers are the rates a device can be given, slowest first. A fixed list keeps
// the ruleset fixed: a device's limit is then one map element.
func tiers() []tier {
	return []tier{
		{"256kbit", 256_000 / 8},
		{"512kbit", 512_000 / 8},
		{"1mbit", 1_000_000 / 8},
		{"2mbit", 2_000_000 / 8},
		{"5mbit", 5_000_000 / 8},
		{"10mbit", 10_000_000 / 8},
		{"20mbit", 20_000_000 / 8},
		{"50mbit", 50_000_000 / 8},
		{"100mbit", 100_000_000 / 8},
	}
}

// RateTiers lists the rates, in bytes per second, that a device limit can be,
// slowest first.
func RateTiers() []uint64 {
	var out []uint64
	for _, t := range tiers() {
		out = append(out, t.bps)
	}
	return out
}

// RateTier returns the rate a device asking for bps bytes per second is given:
// the fastest tier not above it, since a device never gets more than it was
// promised to be limited to. 0 means no limit of its own and returns 0. A rate
// below the slowest tier is an error, so that a voucher's option can be
// checked when the voucher is made rather than when a visitor logs in.
func RateTier(bps uint64) (uint64, error) {
	t, err := tierFor(bps)
	if err != nil || t == nil {
		return 0, err
	}
	return t.bps, nil
}

func tierFor(bps uint64) (*tier, error) {
	if bps == 0 {
		return nil, nil
	}
	ts := tiers()
	for i := len(ts) - 1; i >= 0; i-- {
		if ts[i].bps <= bps {
			return &ts[i], nil
		}
	}
	return nil, fmt.Errorf("rate %d bytes/s is below the slowest limit, %d bytes/s (%s)", bps, ts[0].bps, ts[0].name)
}

func tierChain(dir, name string) string { return "limit_" + dir + "_" + name }
func tierMeter(dir, name string) string { return "meter_" + dir + "_" + name }

// tierChains builds one chain and meter per tier and direction, which the
// limit maps jump to.
func (rs *ruleset) tierChains(t *nftables.Table) []chainSpec {
	id := uint32(20)
	var out []chainSpec
	for _, dir := range []string{"up", "down"} {
		// nfproto is known to be IPv4 here; saying so lets nft(8) show
		// "ip saddr" rather than a raw payload offset.
		load := append(ipv4Only(), loadSaddr(1))
		if dir == "down" {
			load = append(ipv4Only(), loadDaddr())
		}
		for _, tr := range tiers() {
			m := rs.meter(t, tierMeter(dir, tr.name), &id)
			out = append(out, chainSpec{chain: &nftables.Chain{Name: tierChain(dir, tr.name), Table: t},
				rules: []ruleSpec{{"device " + dir + " limit " + tr.name, cat(load, overRate(m, tr.bps), one(verdict(expr.VerdictDrop)))}}})
		}
	}
	return out
}

// vmapLookup sends the packet where the element for the address in register 1
// says; no element, no verdict.
func vmapLookup(s *nftables.Set) expr.Any {
	return &expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID, IsDestRegSet: true, DestRegister: 0}
}

// limitRules are the forward chain's entries into the limit and quota maps.
func limitRules(rs *ruleset) []ruleSpec {
	return []ruleSpec{
		{"device upload limit", cat(ipv4Only(), one(loadSaddr(1), vmapLookup(rs.set(SetLimitUp))))},
		{"device download limit", cat(ipv4Only(), one(loadDaddr(), vmapLookup(rs.set(SetLimitDown))))},
		{"device quota upload", cat(ipv4Only(), one(loadSaddr(1), vmapLookup(rs.set(SetBudget))))},
		{"device quota download", cat(ipv4Only(), one(loadDaddr(), vmapLookup(rs.set(SetBudget))))},
	}
}

// quota is a device's data budget as desired state. used is the consumed
// count last read from the kernel, which a rebuilt or repaired object starts
// from.
type quota struct {
	ip    netip.Addr
	mac   net.HardwareAddr
	bytes uint64
	until time.Time
	used  uint64
	key   string // Limits.QuotaKey: the shared object's owner; "" for the device's own
}

// quotaName names a device's quota chain (and its own quota object).
func quotaName(ip netip.Addr) string {
	return quotaPrefix + strings.ReplaceAll(ip.String(), ".", "_")
}

// objName names the quota object q counts against: the key's shared one,
// or the device's own.
func (q *quota) objName() string {
	if q.key != "" {
		return quotaPrefix + "k_" + q.key
	}
	return quotaName(q.ip)
}

func (q *quota) obj(t *nftables.Table) *nftables.QuotaObj {
	// The kernel refuses a consumed count above the budget.
	return &nftables.QuotaObj{Table: t, Name: q.objName(), Bytes: q.bytes, Consumed: min(q.used, q.bytes), Over: true}
}

// sharersLocked returns the live quotas other than skip that count against
// object name.
func (e *Enforcer) sharersLocked(name, skip string, now time.Time) []*quota {
	var out []*quota
	for k, q := range e.quotas {
		if k != skip && q.objName() == name && q.until.After(now) {
			out = append(out, q)
		}
	}
	return out
}

// quotaChain is a device's quota chain. The object is evaluated, and so
// counts the packet, only after the address matched, so each packet is
// counted once for each end of it that has a quota: a download in the first
// rule, an upload in the second.
func quotaChain(t *nftables.Table, ip netip.Addr, obj string) chainSpec {
	name := quotaName(ip)
	a := ip.As4()
	ref := &expr.Objref{Type: int(nftables.ObjTypeQuota), Name: obj}
	is := func(load expr.Any) []expr.Any {
		return cat(ipv4Only(), one(load, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]}))
	}
	return chainSpec{chain: &nftables.Chain{Name: name, Table: t}, rules: []ruleSpec{
		{name + " download over quota", cat(is(loadDaddr()), one(ref, verdict(expr.VerdictDrop)))},
		{name + " upload over quota", cat(is(loadSaddr(1)), one(ref, jump(chainDeny)))},
	}}
}

// queueQuota queues a device's quota object and chain: created, or brought to
// the desired budget with the kernel's consumed count kept (an object update
// never touches it). With recreate the existing object is replaced by one
// that starts from q.used; the chain's rules, which hold it, go first.
func (e *Enforcer) queueQuota(q *quota, recreate bool) {
	t := e.rs.table
	c := quotaChain(t, q.ip, q.objName())
	e.cc.AddChain(c.chain)
	e.cc.FlushChain(c.chain)
	if recreate {
		e.cc.DeleteObject(&nftables.QuotaObj{Table: t, Name: q.objName()})
	}
	e.cc.AddObj(q.obj(t))
	addRules(e.cc, t, c)
}

// quotaObjects reads the kernel's quota objects of our table by name.
func (e *Enforcer) quotaObjects() (map[string]*nftables.QuotaObj, error) {
	objs, err := e.cc.GetObjects(newTable())
	if err != nil {
		return nil, fmt.Errorf("list quota objects: %w", err)
	}
	out := map[string]*nftables.QuotaObj{}
	for _, o := range objs {
		if q, ok := o.(*nftables.QuotaObj); ok && strings.HasPrefix(q.Name, quotaPrefix) {
			out[q.Name] = q
		}
	}
	return out, nil
}

// readQuotaUsage records the kernel's consumed counts before a rebuild
// replaces the objects that hold them. Traffic counted between this read and
// the rebuild is lost; that is one netlink round trip.
func (e *Enforcer) readQuotaUsage() {
	if len(e.quotas) == 0 {
		return
	}
	tables, err := e.cc.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil || !slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == TableName }) {
		return
	}
	objs, err := e.quotaObjects()
	if err != nil {
		// Enforcing matters more than counting: the rebuild goes ahead
		// from the last counts read.
		e.log.Warn("quota counts not carried over", "err", err)
		return
	}
	for _, q := range e.quotas {
		if o, ok := objs[q.objName()]; ok {
			q.used = max(q.used, o.Consumed)
		}
	}
}

// repairQuotas puts back every desired quota object and chain that is missing
// or changed, keeping the consumed count of those that are there and starting
// the missing ones from the last count read. It runs before set elements are
// repaired, since the quota map's elements jump to these chains.
func (e *Enforcer) repairQuotas() (int, error) {
	if len(e.quotas) == 0 {
		return 0, nil
	}
	objs, err := e.quotaObjects()
	if err != nil {
		return 0, fmt.Errorf("policy: check: %w", err)
	}
	chains, err := e.quotaChains()
	if err != nil {
		return 0, err
	}
	repairs := 0
	for _, k := range sortedKeys(e.quotas) {
		q := e.quotas[k]
		name, chain := q.objName(), quotaName(q.ip)
		fix, recreate := false, false
		if o, ok := objs[name]; !ok {
			e.log.Warn("drift repaired", "what", "quota object missing", "quota", name, "used", q.used)
			fix = true
			repairs++
		} else {
			switch {
			case o.Consumed < min(q.used, q.bytes):
				// Only a reset or a replaced object counts backwards.
				e.log.Warn("drift repaired", "what", "quota count went back", "quota", name, "kernel", o.Consumed, "used", q.used)
				fix, recreate = true, true
				repairs++
			case o.Bytes != q.bytes || !o.Over:
				q.used = max(q.used, o.Consumed)
				e.log.Warn("drift repaired", "what", "quota object changed", "quota", name)
				fix = true
				repairs++
			default:
				q.used = max(q.used, o.Consumed)
			}
		}
		if !chains[chain] {
			e.log.Warn("drift repaired", "what", "quota chain missing", "chain", chain)
			fix = true
			repairs++
		} else {
			c := quotaChain(e.rs.table, q.ip, name)
			same, err := e.sameRules(c)
			if err != nil {
				return repairs, err
			}
			if !same {
				e.log.Warn("drift repaired", "what", "quota chain changed", "chain", chain)
				fix = true
				repairs++
			}
		}
		if fix {
			e.queueQuota(q, recreate)
		}
	}
	if repairs > 0 {
		if err := e.flush(); err != nil {
			return 0, fmt.Errorf("policy: check: repair quotas: %w", err)
		}
	}
	return repairs, nil
}

// sweepQuotas removes quota chains and objects nobody has any more (an
// admission that ran out in the kernel, or was never ours). It runs after the
// quota map's stray elements are gone, since those hold the chains. A device
// whose leftovers cannot go yet (the kernel has not collected an expired
// element) is left for the next check.
func (e *Enforcer) sweepQuotas() (int, error) {
	objs, err := e.quotaObjects()
	if err != nil {
		return 0, fmt.Errorf("policy: check: %w", err)
	}
	chains, err := e.quotaChains()
	if err != nil {
		return 0, err
	}
	wantObj, wantChain := map[string]bool{}, map[string]bool{}
	for _, q := range e.quotas {
		wantObj[q.objName()] = true
		wantChain[quotaName(q.ip)] = true
	}
	stray := map[string]bool{}
	for name := range objs {
		if !wantObj[name] {
			stray[name] = true
		}
	}
	for name := range chains {
		if !wantChain[name] {
			stray[name] = true
		}
	}
	n := 0
	for _, name := range sortedKeys(stray) {
		if chains[name] && !wantChain[name] {
			e.cc.DelChain(&nftables.Chain{Table: newTable(), Name: name})
		}
		if _, ok := objs[name]; ok && !wantObj[name] {
			e.cc.DeleteObject(&nftables.QuotaObj{Table: newTable(), Name: name})
		}
		if err := e.flush(); err != nil {
			e.log.Info("quota leftovers not removed yet", "quota", name, "err", err)
			e.leftovers[name] = true
			continue
		}
		delete(e.leftovers, name)
		e.log.Warn("drift repaired", "what", "stray quota", "quota", name)
		n++
	}
	return n, nil
}

// dropQuotaLocked forgets a device's quota and removes its chain and object,
// after the batch that removed its map element. The element is what matters
// for the device; a leftover chain or object is harmless and the next check
// sweeps it, so a failure here is logged rather than undoing the caller's
// success.
func (e *Enforcer) dropQuotaLocked(key string) {
	q, ok := e.quotas[key]
	if !ok {
		return
	}
	delete(e.quotas, key)
	if !e.applied {
		return
	}
	name := q.objName()
	e.cc.DelChain(&nftables.Chain{Table: e.rs.table, Name: quotaName(q.ip)})
	shared := len(e.sharersLocked(name, key, e.now())) > 0
	if !shared {
		e.cc.DeleteObject(&nftables.QuotaObj{Table: e.rs.table, Name: name})
	}
	if err := e.flush(); err != nil {
		e.log.Warn("quota left for the next check to remove", "quota", name, "err", err)
		e.leftovers[name] = true
		return
	}
	if !shared {
		delete(e.leftovers, name)
	}
}

func (e *Enforcer) quotaChains() (map[string]bool, error) {
	chains, err := e.cc.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("policy: check: list chains: %w", err)
	}
	out := map[string]bool{}
	for _, c := range chains {
		if c.Table.Name == TableName && strings.HasPrefix(c.Name, quotaPrefix) {
			out[c.Name] = true
		}
	}
	return out, nil
}

// verdictChain returns the chain a verdict-map element's data jumps to, or ""
// (google/nftables hands the verdict's attributes over undecoded).
func verdictChain(val []byte) string {
	ad, err := netlink.NewAttributeDecoder(val)
	if err != nil {
		return ""
	}
	ad.ByteOrder = binary.BigEndian
	var code uint32
	chain := ""
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_VERDICT_CODE:
			code = ad.Uint32()
		case unix.NFTA_VERDICT_CHAIN:
			chain = ad.String()
		}
	}
	if ad.Err() != nil || int32(code) != int32(unix.NFT_JUMP) {
		return ""
	}
	return chain
}

// limitOps sets (or clears) a device's limit elements and quota element.
func limitOps(ipk string, up, down *tier, q *quota, until time.Time) []op {
	var ops []op
	for _, x := range []struct {
		set string
		t   *tier
		dir string
	}{{SetLimitUp, up, "up"}, {SetLimitDown, down, "down"}} {
		if x.t == nil {
			ops = append(ops, op{set: x.set, key: ipk})
		} else {
			ops = append(ops, op{set: x.set, key: ipk, add: true, until: until, jump: tierChain(x.dir, x.t.name)})
		}
	}
	if q == nil {
		ops = append(ops, op{set: SetBudget, key: ipk})
	} else {
		ops = append(ops, op{set: SetBudget, key: ipk, add: true, until: until, jump: quotaName(q.ip)}) // the device's chain
	}
	return ops
}

// clearLimitOps removes whatever limits a device had.
func clearLimitOps(ips ...netip.Addr) []op {
	var ops []op
	for _, ip := range ips {
		if k, err := ipKey(ip); err == nil {
			ops = append(ops, limitOps(k, nil, nil, nil, time.Time{})...)
		}
	}
	return ops
}

// AdmitWith is Admit with the device's own limits: its rate in each direction
// (rounded down to a tier, and never above its segment's cap) and a data
// budget for both directions together. Each lasts as long as the admission,
// in the kernel as well. Admitting a device again while its admission lasts
// keeps what it has used of its budget, with the new budget; a device
// admitted anew (after Evict or expiry) starts from nothing. Zero Limits
// remove any limits the device had.
func (e *Enforcer) AdmitWith(ctx context.Context, d Device, until time.Time, l Limits) error {
	moved, err := e.admitWith(ctx, d, until, l)
	if err != nil || len(moved) == 0 {
		return err
	}
	e.log.Info("admission moved to a new address", "mac", d.MAC, "from", moved, "to", d.IP)
	return e.killFlows(ctx, moved...)
}

// admitWith does AdmitWith's work under the lock and returns the addresses
// the device's admission moved away from, whose flows are to be cut.
func (e *Enforcer) admitWith(ctx context.Context, d Device, until time.Time, l Limits) ([]netip.Addr, error) {
	what := "admit " + d.String()
	k, err := admittedKey(d)
	if err != nil {
		return nil, fmt.Errorf("policy: %s: %w", what, err)
	}
	ipk, _ := ipKey(d.IP)
	if !until.After(e.now()) {
		return nil, fmt.Errorf("policy: %s: until %v is not in the future", what, until)
	}
	if !validQuotaKey(l.QuotaKey) {
		return nil, fmt.Errorf("policy: %s: quota key %q: want up to 40 letters, digits or '_'", what, l.QuotaKey)
	}
	up, err := tierFor(l.UpBps)
	if err != nil {
		return nil, fmt.Errorf("policy: %s: upload limit: %w", what, err)
	}
	down, err := tierFor(l.DownBps)
	if err != nil {
		return nil, fmt.Errorf("policy: %s: download limit: %w", what, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("policy: %s: %w", what, err)
	}
	e.mu.Lock()
	now := e.now()
	// One admission per MAC: a device seen on a new address moves there,
	// and its old address loses the admission, its limits and its open
	// connections. Otherwise one code limited to one device collects an
	// admission (and a fresh budget) per address it claims.
	moved, movedOps, carried := e.otherAdmissionsLocked(d, now)
	if _, hadQuota := e.quotas[ipk]; e.applied && len(moved) == 0 && l.QuotaBytes == 0 && !hadQuota {
		// A plain admission: it shares a transaction with the others
		// arriving now (admitbatch.go).
		batch, _ := e.recordLocked(append([]op{{set: SetAdmitted, key: k, add: true, until: until}}, limitOps(ipk, up, down, nil, until)...))
		p := e.queueAdmitLocked(what, batch)
		if p == nil { // closed: send it now
			e.drainLocked()
			err := e.sendOps(batch, now)
			e.mu.Unlock()
			if err != nil {
				return nil, fmt.Errorf("policy: %s: %w", what, err)
			}
		} else {
			e.mu.Unlock()
			// Not abandoned on ctx: the desired state already holds the
			// admission and the transaction carrying it is bounded by
			// netlink, so the caller learns what the kernel did.
			<-p.done
			if p.err != nil {
				return nil, p.err
			}
		}
		e.log.Info("admitted", "mac", d.MAC, "ip", d.IP, "until", until, "up", tierName(up), "down", tierName(down), "quota", l.QuotaBytes)
		return nil, nil
	}
	defer e.mu.Unlock()
	e.drainLocked()
	var q *quota
	if l.QuotaBytes > 0 {
		old, ok := e.quotas[ipk]
		live := ok && old.until.After(now) && bytes.Equal(old.mac, d.MAC)
		q = &quota{ip: d.IP, mac: slices.Clone(d.MAC), bytes: l.QuotaBytes, until: until, key: l.QuotaKey}
		if live && old.objName() == q.objName() {
			q.used = old.used
		}
		// The budget follows the device to its new address.
		q.used = max(q.used, carried)
		// A shared budget other devices already count against is theirs
		// too: joined as it stands, never reset.
		sharers := e.sharersLocked(q.objName(), ipk, now)
		for _, o := range sharers {
			q.used = max(q.used, o.used)
		}
		if len(sharers) == 0 && !(live && old.objName() == q.objName()) && e.applied && ((ok && old.objName() == q.objName()) || e.leftovers[q.objName()]) {
			// A budget left by an admission that ran out, or by another
			// device on this address, must not be inherited.
			if err := e.resetQuota(q); err != nil {
				return nil, fmt.Errorf("policy: %s: %w", what, err)
			}
		}
		e.quotas[ipk] = q
	}
	ops := append(movedOps, op{set: SetAdmitted, key: k, add: true, until: until})
	ops = append(ops, limitOps(ipk, up, down, q, until)...)
	if err := e.changeLocked(what, ops, now); err != nil {
		return nil, err
	}
	for _, ip := range moved {
		if mk, err := ipKey(ip); err == nil {
			e.dropQuotaLocked(mk)
		}
	}

	e.log.Info("admitted", "mac", d.MAC, "ip", d.IP, "until", until, "up", tierName(up), "down", tierName(down), "quota", l.QuotaBytes)
	return moved, nil
}

// otherAdmissionsLocked finds d.MAC's admissions on addresses other than
// d.IP: their addresses, the ops that end them with their limits, and the
// most budget any of them had used (carried to the new address).
func (e *Enforcer) otherAdmissionsLocked(d Device, now time.Time) (ips []netip.Addr, ops []op, used uint64) {
	m, err := macKey(d.MAC)
	if err != nil {
		return nil, nil, 0
	}
	for k := range e.members[SetAdmitted] {
		if !strings.HasPrefix(k, m) || len(k) != 12 {
			continue
		}
		ip, ok := netip.AddrFromSlice([]byte(k[8:]))
		if !ok || ip == d.IP {
			continue
		}
		ips = append(ips, ip)
		ops = append(ops, op{set: SetAdmitted, key: k})
		ops = append(ops, clearLimitOps(ip)...)
		if ik, err := ipKey(ip); err == nil {
			if q, ok := e.quotas[ik]; ok && q.until.After(now) {
				used = max(used, q.used)
			}
		}
	}
	return ips, ops, used
}

func tierName(t *tier) string {
	if t == nil {
		return "segment"
	}
	return t.name
}

// resetQuota zeroes the consumed count of a leftover object of q's name, if
// the kernel still holds one.
func (e *Enforcer) resetQuota(q *quota) error {
	name := q.objName()
	_, err := e.cc.ResetObject(&nftables.QuotaObj{Table: e.rs.table, Name: name})
	if err != nil {
		// google/nftables does not keep the errno: tell "gone" from a
		// failure by listing.
		objs, lerr := e.quotaObjects()
		if lerr != nil {
			return fmt.Errorf("reset quota %s: %w (and %w)", name, err, lerr)
		}
		if _, ok := objs[name]; ok {
			return fmt.Errorf("reset quota %s: %w", name, err)
		}
	}
	delete(e.leftovers, name)
	return nil
}

// QuotaUsed reports how many bytes of its budget a device has used, both
// directions and IP headers counted, read from the kernel; it stops at the
// budget (packets refused after that are not use). Only the IP of d matters.
func (e *Enforcer) QuotaUsed(ctx context.Context, d Device) (uint64, error) {
	k, err := ipKey(d.IP)
	if err != nil {
		return 0, fmt.Errorf("policy: quota of %v: %w", d, err)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("policy: quota of %v: %w", d, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.drainLocked()
	q, ok := e.quotas[k]
	if !ok || !q.until.After(e.now()) {
		return 0, fmt.Errorf("%w: %v", ErrNoQuota, d.IP)
	}
	if e.applied {
		o, err := e.cc.GetObject(&nftables.QuotaObj{Table: e.rs.table, Name: q.objName()})
		if err != nil {
			return 0, fmt.Errorf("policy: read quota of %v: %w", d.IP, err)
		}
		qo, ok := o.(*nftables.QuotaObj)
		if !ok {
			return 0, fmt.Errorf("policy: read quota of %v: kernel returned %T", d.IP, o)
		}
		// A count lower than the last one read is an object replaced
		// behind our back, which the next Check puts right.
		q.used = max(q.used, qo.Consumed)
	}
	return min(q.used, q.bytes), nil
}

// validQuotaKey reports whether k can name a shared quota object.
func validQuotaKey(k string) bool {
	if len(k) > 40 {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}
