// Package ruledb converts the school's rules between package policy's model
// and package store's rows, and lets the store serve as a policy.RuleStore.
//
// It exists so that neither of those two imports the other: store keeps rules
// as plain fields (it owns order and audit, not meaning) and policy knows
// rules only through its RuleStore interface. The conversion lives here, on
// the side that may import both. It owns no state and no SQL.
package ruledb

import (
	"context"
	"fmt"

	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/store"
)

// Lister is the part of *store.Store that Source needs.
type Lister interface {
	Rules(ctx context.Context) ([]store.Rule, error)
}

// Source is a policy.RuleStore reading from the database:
// enforcer.LoadRules(ctx, ruledb.Source{Store: st}, dir).
type Source struct {
	Store Lister
}

var _ policy.RuleStore = Source{}

// ListRules returns the stored rules in order, in policy's model.
func (s Source) ListRules(ctx context.Context) ([]policy.Rule, error) {
	rows, err := s.Store.Rules(ctx)
	if err != nil {
		return nil, fmt.Errorf("ruledb: list rules: %w", err)
	}
	out := make([]policy.Rule, 0, len(rows))
	for _, r := range rows {
		out = append(out, FromStore(r))
	}
	return out, nil
}

// FromStore converts a stored rule to policy's model. Unknown kinds pass
// through as they are, for policy.Rule.Validate to refuse with a reason.
func FromStore(r store.Rule) policy.Rule {
	p := policy.Rule{
		ID:   r.ID,
		Name: r.Name,
		Who:  policy.Who{Kind: policy.WhoKind(r.WhoKind), ID: r.WhoID},
		What: policy.What{Kind: policy.WhatKind(r.WhatKind), Proto: r.Proto, Subnet: r.Subnet,
			Server: r.Server, Domains: r.Domains, Class: r.Class},
		Where:    r.Segment,
		When:     policy.When{Kind: policy.WhenKind(r.WhenKind)},
		Action:   policy.Action(r.Action),
		Disabled: r.Disabled,
	}
	for _, pr := range r.Ports {
		p.What.Ports = append(p.What.Ports, policy.PortRange{Lo: pr.Lo, Hi: pr.Hi})
	}
	for _, s := range r.Slots {
		p.When.Slots = append(p.When.Slots, policy.Slot{Days: s.Days, Start: s.Start, End: s.End})
	}
	return p
}

// ToStore converts a rule in policy's model to a row; the store assigns the
// position (see store.CreateRule and store.MoveRule).
func ToStore(p policy.Rule) store.Rule {
	r := store.Rule{
		ID:       p.ID,
		Name:     p.Name,
		WhoKind:  string(p.Who.Kind),
		WhoID:    p.Who.ID,
		WhatKind: string(p.What.Kind),
		Proto:    p.What.Proto,
		Subnet:   p.What.Subnet,
		Server:   p.What.Server,
		Domains:  p.What.Domains,
		Class:    p.What.Class,
		Segment:  p.Where,
		WhenKind: string(p.When.Kind),
		Action:   string(p.Action),
		Disabled: p.Disabled,
	}
	for _, pr := range p.What.Ports {
		r.Ports = append(r.Ports, store.RulePorts{Lo: pr.Lo, Hi: pr.Hi})
	}
	for _, s := range p.When.Slots {
		r.Slots = append(r.Slots, store.RuleSlot{Days: s.Days, Start: s.Start, End: s.End})
	}
	return r
}
