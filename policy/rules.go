package policy

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The rule model is the one schools know from their filtering provider:
// who, what, where, when, action. Rules are ordered; the first that matches a
// new connection decides it, ahead of the segment's defaults.

// Action is what a matching rule does.
type Action string

const (
	Allow      Action = "allow"
	Block      Action = "block"
	BlockAlert Action = "block-and-alert"
	Alert      Action = "alert"
)

// AlertGroup is the NFLOG group on which kernel-enforced alert and
// block-and-alert rules report matches, with the prefix "gh-rule-<ID>".
const AlertGroup = 7

// WhoKind says whom a rule is about.
type WhoKind string

const (
	Anyone   WhoKind = "anyone"
	Person   WhoKind = "person"
	Group    WhoKind = "group"
	ByDevice WhoKind = "device"
)

// Who is a rule's subject. ID is a person's ID, a group's name ("Year 9",
// "staff") or, for ByDevice, a MAC address.
type Who struct {
	Kind WhoKind
	ID   string
}

// WhatKind says which traffic a rule is about.
type WhatKind string

const (
	AnyTraffic WhatKind = "any"
	Service    WhatKind = "service" // a protocol and ports
	Subnet     WhatKind = "subnet"  // a destination prefix
	Server     WhatKind = "server"  // a named subnet from the configuration's servers:
	Domains    WhatKind = "domains" // names: enforced by the DNS guard, not the kernel
	Class      WhatKind = "class"   // a detected class such as vpn or doh: enforced by inspection
)

// PortRange is an inclusive range of ports.
type PortRange struct{ Lo, Hi uint16 }

// What is a rule's traffic.
type What struct {
	Kind    WhatKind
	Proto   string // "tcp", "udp" or "" for both (Service)
	Ports   []PortRange
	Subnet  netip.Prefix
	Server  string
	Domains []string
	Class   string
}

// WhenKind says when a rule is in force.
type WhenKind string

const (
	Always   WhenKind = "always"
	Weekly   WhenKind = "weekly"   // in one of the slots
	TermTime WhenKind = "term"     // on term days, and in a slot if any are given
	Holidays WhenKind = "holidays" // outside term, and in a slot if any are given
)

// Slot is a weekly time slot: on the given days, from Start (inclusive) to End
// (exclusive), both as time of day since midnight in the school's time zone.
type Slot struct {
	Days       []time.Weekday
	Start, End time.Duration
}

// When is a rule's schedule.
type When struct {
	Kind  WhenKind
	Slots []Slot
}

// Rule is one of the school's rules.
type Rule struct {
	ID       int64
	Name     string
	Who      Who
	What     What
	Where    string // a segment name; "" for every segment
	When     When
	Action   Action
	Disabled bool
}

// RuleStore is where rules live (the database, through package store).
type RuleStore interface {
	ListRules(ctx context.Context) ([]Rule, error)
}

// Directory answers what the rules need to know about people and the calendar
// (package people).
type Directory interface {
	// Devices returns the devices of a person or of every member of a group.
	Devices(ctx context.Context, who Who) ([]Device, error)
	// InTerm reports whether t falls on a term day.
	InTerm(t time.Time) bool
}

// Validate reports the first reason r cannot be enforced as written.
func (r Rule) Validate(n Network) error {
	switch r.Action {
	case Allow, Block, BlockAlert, Alert:
	default:
		return fmt.Errorf("policy: rule %d: unknown action %q", r.ID, r.Action)
	}
	switch r.Who.Kind {
	case Anyone:
	case Person, Group:
		if r.Who.ID == "" {
			return fmt.Errorf("policy: rule %d: %s needs an ID", r.ID, r.Who.Kind)
		}
	case ByDevice:
		if m, err := net.ParseMAC(r.Who.ID); err != nil || len(m) != 6 {
			return fmt.Errorf("policy: rule %d: device %q is not a MAC address", r.ID, r.Who.ID)
		}
	default:
		return fmt.Errorf("policy: rule %d: unknown who %q", r.ID, r.Who.Kind)
	}
	switch r.What.Kind {
	case AnyTraffic, Domains, Class:
	case Service:
		if r.What.Proto != "" && r.What.Proto != "tcp" && r.What.Proto != "udp" {
			return fmt.Errorf("policy: rule %d: protocol %q is not tcp or udp", r.ID, r.What.Proto)
		}
		if len(r.What.Ports) == 0 {
			return fmt.Errorf("policy: rule %d: service needs ports", r.ID)
		}
		for _, p := range r.What.Ports {
			if p.Lo == 0 || p.Hi < p.Lo {
				return fmt.Errorf("policy: rule %d: bad port range %d-%d", r.ID, p.Lo, p.Hi)
			}
		}
	case Subnet:
		if !r.What.Subnet.IsValid() || !r.What.Subnet.Addr().Is4() {
			return fmt.Errorf("policy: rule %d: need an IPv4 subnet, got %v", r.ID, r.What.Subnet)
		}
	case Server:
		if _, ok := n.Servers[r.What.Server]; !ok {
			return fmt.Errorf("policy: rule %d: unknown server %q", r.ID, r.What.Server)
		}
	default:
		return fmt.Errorf("policy: rule %d: unknown what %q", r.ID, r.What.Kind)
	}
	if r.Where != "" && !slices.ContainsFunc(n.Segments, func(s SegmentSpec) bool { return s.Name == r.Where }) {
		return fmt.Errorf("policy: rule %d: unknown segment %q", r.ID, r.Where)
	}
	switch r.When.Kind {
	case Always, TermTime, Holidays:
	case Weekly:
		if len(r.When.Slots) == 0 {
			return fmt.Errorf("policy: rule %d: weekly needs slots", r.ID)
		}
	default:
		return fmt.Errorf("policy: rule %d: unknown when %q", r.ID, r.When.Kind)
	}
	for _, s := range r.When.Slots {
		if s.Start < 0 || s.End > 24*time.Hour || s.End <= s.Start || len(s.Days) == 0 {
			return fmt.Errorf("policy: rule %d: bad slot %v-%v on %v", r.ID, s.Start, s.End, s.Days)
		}
	}
	return nil
}

// Active reports whether w is in force at t (in t's location). inTerm is the
// calendar; it is only asked for term and holiday rules.
func (w When) Active(t time.Time, inTerm func(time.Time) bool) bool {
	switch w.Kind {
	case Always:
		return true
	case TermTime:
		if inTerm == nil || !inTerm(t) {
			return false
		}
	case Holidays:
		if inTerm == nil || inTerm(t) {
			return false
		}
	}
	if len(w.Slots) == 0 {
		return w.Kind != Weekly
	}
	since := t.Sub(midnight(t))
	for _, s := range w.Slots {
		if slices.Contains(s.Days, t.Weekday()) && since >= s.Start && since < s.End {
			return true
		}
	}
	return false
}

func midnight(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, t.Location())
}

// NextBoundary returns the first slot start or end after t among the enabled
// rules, or the next midnight when a term or holiday rule exists (the calendar
// changes by day); the zero time when nothing ever changes.
func NextBoundary(rules []Rule, t time.Time) time.Time {
	var next time.Time
	consider := func(c time.Time) {
		if c.After(t) && (next.IsZero() || c.Before(next)) {
			next = c
		}
	}
	for _, r := range rules {
		if r.Disabled || r.When.Kind == Always {
			continue
		}
		if r.When.Kind == TermTime || r.When.Kind == Holidays {
			consider(midnight(t).AddDate(0, 0, 1))
		}
		for day := 0; day < 8; day++ {
			m := midnight(t).AddDate(0, 0, day)
			for _, s := range r.When.Slots {
				if slices.Contains(s.Days, m.Weekday()) {
					// Wall-clock times, so that a DST change moves the
					// boundary with the clock on the wall.
					consider(atTimeOfDay(m, s.Start))
					consider(atTimeOfDay(m, s.End))
				}
			}
		}
	}
	return next
}

func atTimeOfDay(day time.Time, d time.Duration) time.Time {
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	return time.Date(day.Year(), day.Month(), day.Day(), h, m, int(d%time.Minute/time.Second), 0, day.Location())
}

// compiled is the kernel part of the active rules.
type compiled struct {
	bySegment map[string][]ruleSpec
	sets      []*nftables.Set
	elems     map[string][]nftables.SetElement
	// skipped are rules left out because whom they name cannot be
	// resolved now; the rest of the table still goes in, since one
	// unresolvable rule must not stop a router from enforcing the others.
	skipped []error
}

// compileActive turns the rules in force at now into rules for each segment's
// chain. Domain and class rules are not kernel rules (the DNS guard and
// inspection enforce them) and are left out.
func compileActive(ctx context.Context, n Network, rules []Rule, dir Directory, now time.Time) (compiled, error) {
	out := compiled{bySegment: map[string][]ruleSpec{}, elems: map[string][]nftables.SetElement{}}
	var inTerm func(time.Time) bool
	if dir != nil {
		inTerm = dir.InTerm
	}
	t := newTable()
	nextID := uint32(100)
	for _, r := range rules {
		if r.Disabled || r.What.Kind == Domains || r.What.Kind == Class || !r.When.Active(now, inTerm) {
			continue
		}
		if err := r.Validate(n); err != nil {
			return out, err
		}
		var who []expr.Any
		switch r.Who.Kind {
		case ByDevice:
			mac, _ := net.ParseMAC(r.Who.ID)
			who = append(etherSaddr(), &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: mac})
		case Person, Group:
			if dir == nil {
				out.skipped = append(out.skipped, fmt.Errorf("policy: rule %d: %s rules need the people directory, which is not loaded", r.ID, r.Who.Kind))
				continue
			}
			devs, err := dir.Devices(ctx, r.Who)
			if err != nil {
				out.skipped = append(out.skipped, fmt.Errorf("policy: rule %d: devices of %s %q: %w", r.ID, r.Who.Kind, r.Who.ID, err))
				continue
			}
			s := &nftables.Set{Table: t, ID: nextID, Name: "who_" + strconv.FormatInt(r.ID, 10), KeyType: nftables.TypeEtherAddr}
			nextID++
			seen := map[string]bool{}
			for _, d := range devs {
				if k, err := macKey(d.MAC); err == nil && !seen[k] {
					seen[k] = true
					out.elems[s.Name] = append(out.elems[s.Name], nftables.SetElement{Key: []byte(k)})
				}
			}
			out.sets = append(out.sets, s)
			who = macIn(s, false)
		}
		for _, what := range compileWhat(n, r.What) {
			e := cat(who, what, actionExprs(r))
			label := "rule " + strconv.FormatInt(r.ID, 10)
			if r.Name != "" {
				label += " " + r.Name
			}
			for _, s := range n.Segments {
				if r.Where == "" || r.Where == s.Name {
					out.bySegment[s.Name] = append(out.bySegment[s.Name], ruleSpec{label: label, exprs: e})
				}
			}
		}
	}
	return out, nil
}

// compileWhat returns one match per kernel rule needed (a service with both
// protocols and several ranges becomes several rules).
func compileWhat(n Network, w What) [][]expr.Any {
	switch w.Kind {
	case Subnet:
		return [][]expr.Any{cat(ipv4Only(), daddrIn(w.Subnet))}
	case Server:
		return [][]expr.Any{cat(ipv4Only(), daddrIn(n.Servers[w.Server]))}
	case Service:
		protos := []byte{unix.IPPROTO_TCP, unix.IPPROTO_UDP}
		switch w.Proto {
		case "tcp":
			protos = protos[:1]
		case "udp":
			protos = protos[1:]
		}
		var out [][]expr.Any
		for _, p := range protos {
			for _, r := range w.Ports {
				out = append(out, cat(l4proto(p), portRange(r.Lo, r.Hi)))
			}
		}
		return out
	}
	return [][]expr.Any{nil}
}

func actionExprs(r Rule) []expr.Any {
	logIt := &expr.Log{Key: 1<<unix.NFTA_LOG_GROUP | 1<<unix.NFTA_LOG_PREFIX, Group: AlertGroup,
		Data: []byte("gh-rule-" + strconv.FormatInt(r.ID, 10))}
	switch r.Action {
	case Allow:
		return one(counter(), verdict(expr.VerdictAccept))
	case Block:
		return one(counter(), jump(chainDeny))
	case BlockAlert:
		return one(counter(), logIt, jump(chainDeny))
	default: // Alert: report and let the next rule decide.
		return one(counter(), logIt)
	}
}

// DomainBlocks returns, for each segment, the domains that the block rules in
// force at t name; the caller hands them to the DNS guard. Only rules about
// anyone are included: the guard sees an address, not a person, so domain
// rules about a person or group are left to inspection's alerts.
func DomainBlocks(n Network, rules []Rule, t time.Time, inTerm func(time.Time) bool) map[string][]string {
	out := map[string][]string{}
	for _, r := range rules {
		if r.Disabled || r.What.Kind != Domains || r.Who.Kind != Anyone ||
			(r.Action != Block && r.Action != BlockAlert) || !r.When.Active(t, inTerm) {
			continue
		}
		for _, s := range n.Segments {
			if r.Where == "" || r.Where == s.Name {
				out[s.Name] = append(out[s.Name], r.What.Domains...)
			}
		}
	}
	return out
}
