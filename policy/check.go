package policy

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/userdata"
)

// Check compares what the kernel holds in our table with the desired state and
// repairs every difference: a missing or changed table, chain, rule or set is
// repaired by rebuilding the table in one transaction; a missing, stray or
// re-timed set element by one element operation. It returns how many
// differences it repaired; each is logged.
func (e *Enforcer) Check(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("policy: check: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.applied {
		return 0, fmt.Errorf("policy: check: table never applied")
	}
	e.drainLocked()
	drift, err := e.structuralDrift()
	if err != nil {
		return 0, err
	}
	if len(drift) > 0 {
		for _, d := range drift {
			e.log.Warn("drift repaired", "what", d, "by", "rebuild")
		}
		if err := e.applyLocked(ctx); err != nil {
			return 0, fmt.Errorf("policy: check: rebuild after %d differences: %w", len(drift), err)
		}
		return len(drift), nil
	}
	return e.repairElements()
}

// structuralDrift lists the differences in tables, chains, rules and sets.
func (e *Enforcer) structuralDrift() ([]string, error) {
	tables, err := e.cc.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("policy: check: list tables: %w", err)
	}
	if !slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == TableName }) {
		return []string{"table inet " + TableName + " missing"}, nil
	}
	var drift []string
	chains, err := e.cc.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("policy: check: list chains: %w", err)
	}
	have := map[string]*nftables.Chain{}
	for _, c := range chains {
		// Devices' quota chains come and go with their admissions and
		// are checked with them (repairQuotas, sweepQuotas).
		if c.Table.Name == TableName && !strings.HasPrefix(c.Name, quotaPrefix) {
			have[c.Name] = c
		}
	}
	for _, want := range e.rs.chains {
		got, ok := have[want.chain.Name]
		if !ok {
			drift = append(drift, "chain "+want.chain.Name+" missing")
			continue
		}
		delete(have, want.chain.Name)
		if !sameHook(want.chain, got) {
			drift = append(drift, "chain "+want.chain.Name+" hook, priority or policy changed")
			continue
		}
		gotC, wantC, err := e.ruleComments(want)
		if err != nil {
			return nil, err
		}
		if !slices.Equal(gotC, wantC) {
			drift = append(drift, fmt.Sprintf("chain %s: %d rules differ from the %d wanted", want.chain.Name, countDiff(gotC, wantC), len(wantC)))
		}
	}
	for name := range have {
		drift = append(drift, "stray chain "+name)
	}
	sets, err := e.cc.GetSets(e.rs.table)
	if err != nil {
		return nil, fmt.Errorf("policy: check: list sets: %w", err)
	}
	haveSet := map[string]*nftables.Set{}
	for _, s := range sets {
		haveSet[s.Name] = s
	}
	for _, want := range e.rs.sets {
		got, ok := haveSet[want.Name]
		if !ok {
			drift = append(drift, "set "+want.Name+" missing")
			continue
		}
		delete(haveSet, want.Name)
		if got.KeyType.Name != keyTypeAsListed(want) || got.IsMap != want.IsMap || got.HasTimeout != want.HasTimeout {
			drift = append(drift, "set "+want.Name+" type changed")
		}
	}
	for name := range haveSet {
		drift = append(drift, "stray set "+name)
	}
	return drift, nil
}

// keyTypeAsListed is the key type google/nftables reports for s: for a
// verdict map it reports "verdict", the data type, in place of the key's.
func keyTypeAsListed(s *nftables.Set) string {
	if s.IsMap && s.DataType.Name == nftables.TypeVerdict.Name {
		return nftables.TypeVerdict.Name
	}
	return s.KeyType.Name
}

// ruleComments lists the comments of the rules the kernel holds in a chain and
// of those wanted there.
func (e *Enforcer) ruleComments(want chainSpec) (got, wanted []string, err error) {
	rules, err := e.cc.GetRules(e.rs.table, want.chain)
	if err != nil {
		return nil, nil, fmt.Errorf("policy: check: list rules of %s: %w", want.chain.Name, err)
	}
	for _, r := range rules {
		c, _ := userdata.GetString(r.UserData, userdata.TypeComment)
		got = append(got, c)
	}
	for _, r := range want.rules {
		wanted = append(wanted, r.comment())
	}
	return got, wanted, nil
}

func (e *Enforcer) sameRules(want chainSpec) (bool, error) {
	got, wanted, err := e.ruleComments(want)
	return slices.Equal(got, wanted), err
}

func sameHook(want, got *nftables.Chain) bool {
	if (want.Hooknum == nil) != (got.Hooknum == nil) {
		return false
	}
	if want.Hooknum == nil {
		return true
	}
	if *want.Hooknum != *got.Hooknum || got.Priority == nil || *want.Priority != *got.Priority || want.Type != got.Type {
		return false
	}
	wp, gp := nftables.ChainPolicyAccept, nftables.ChainPolicyAccept
	if want.Policy != nil {
		wp = *want.Policy
	}
	if got.Policy != nil {
		gp = *got.Policy
	}
	return wp == gp
}

// countDiff counts positions at which two rule lists differ.
func countDiff(a, b []string) int {
	n := max(len(a), len(b))
	d := 0
	for i := range n {
		if i >= len(a) || i >= len(b) || a[i] != b[i] {
			d++
		}
	}
	return d
}

// repairElements makes every set's elements, and the quota objects and chains
// that the quota map's elements lead to, equal to the desired ones.
func (e *Enforcer) repairElements() (int, error) {
	now := e.now()
	e.pruneLocked(now)
	repairs, err := e.repairQuotas()
	if err != nil {
		return repairs, err
	}
	for _, s := range e.rs.sets {
		if e.rs.dynamic[s.Name] {
			continue
		}
		// The time is taken again for each set: a repaired element's
		// timeout is its until less now, so a now taken before the
		// other sets were listed and repaired (seconds, with thousands
		// of elements) would let it outlive its until, and the next
		// check would find it outliving its time and re-time it again.
		now := e.now()
		got, err := e.cc.GetSetElements(s)
		if err != nil {
			return repairs, fmt.Errorf("policy: check: list elements of %s: %w", s.Name, err)
		}
		want := map[string]member{}
		if m, ok := e.members[s.Name]; ok {
			for k, mb := range m {
				want[k] = mb
			}
		}
		for _, el := range e.rs.fixed[s.Name] {
			want[string(el.Key)] = member{}
		}
		var fix []op
		seen := map[string]bool{}
		for _, el := range got {
			k := string(el.Key)
			seen[k] = true
			mb, ok := want[k]
			switch {
			case !ok:
				e.log.Warn("drift repaired", "what", "stray element", "set", s.Name, "key", hex.EncodeToString(el.Key))
				fix = append(fix, op{set: s.Name, key: k})
			case !mb.until.IsZero() && now.Add(el.Expires).After(mb.until.Add(expiryGrace)):
				e.log.Warn("drift repaired", "what", "element outlives its time", "set", s.Name, "key", hex.EncodeToString(el.Key))
				fix = append(fix, op{set: s.Name, key: k, add: true, until: mb.until, jump: mb.jump, was: verdictChain(el.Val)})
			case mb.jump != "" && verdictChain(el.Val) != mb.jump:
				e.log.Warn("drift repaired", "what", "element jumps elsewhere", "set", s.Name, "key", hex.EncodeToString(el.Key))
				fix = append(fix, op{set: s.Name, key: k, add: true, until: mb.until, jump: mb.jump, was: verdictChain(el.Val)})
			}
		}
		for k, mb := range want {
			if seen[k] {
				continue
			}
			// An element whose time is (nearly) up may have been dropped
			// by the kernel already; that is not drift.
			if !mb.until.IsZero() && !mb.until.After(now.Add(expiryGrace)) {
				continue
			}
			e.log.Warn("drift repaired", "what", "missing element", "set", s.Name, "key", hex.EncodeToString([]byte(k)))
			fix = append(fix, op{set: s.Name, key: k, add: true, until: mb.until, jump: mb.jump})
		}
		if len(fix) == 0 {
			continue
		}
		if err := e.queueOps(fix, now); err != nil {
			return repairs, fmt.Errorf("policy: check: repair %s: %w", s.Name, err)
		}
		if err := e.flush(); err != nil {
			return repairs, fmt.Errorf("policy: check: repair %s: %w", s.Name, err)
		}
		repairs += len(fix)
	}
	swept, err := e.sweepQuotas()
	if err == nil {
		// Every set now holds the desired elements and no others.
		e.exact.Store(true)
	}
	return repairs + swept, err
}
