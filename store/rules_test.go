package store

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleRule(name string) Rule {
	return Rule{
		Name:     name,
		WhoKind:  "group",
		WhoID:    "Year 9",
		WhatKind: "service",
		Proto:    "tcp",
		Ports:    []RulePorts{{Lo: 80, Hi: 80}, {Lo: 8000, Hi: 8100}},
		Segment:  "pupil",
		WhenKind: "weekly",
		Slots:    []RuleSlot{{Days: []time.Weekday{time.Monday, time.Friday}, Start: 8*time.Hour + 30*time.Minute, End: 24 * time.Hour}},
		Action:   "block",
	}
}

func ruleNames(t *testing.T, s *Store) string {
	t.Helper()
	rs, err := s.Rules(context.Background())
	if err != nil {
		t.Fatalf("Rules: %v", err)
	}
	var names []string
	for i, r := range rs {
		if r.Position != i+1 {
			t.Fatalf("rule %q at index %d has position %d: order not contiguous", r.Name, i, r.Position)
		}
		names = append(names, r.Name)
	}
	return strings.Join(names, ",")
}

func TestRuleRoundTripsEveryField(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	cases := []Rule{
		sampleRule("full"),
		{Name: "subnet", WhoKind: "device", WhoID: "02:00:00:00:00:01", WhatKind: "subnet",
			Subnet: netip.MustParsePrefix("10.5.0.0/24"), WhenKind: "always", Action: "allow", Disabled: true},
		{Name: "domains", WhoKind: "anyone", WhatKind: "domains", Domains: []string{"vpn.example", "proxy.example"},
			WhenKind: "term", Action: "block-and-alert"},
		{Name: "minimal", WhoKind: "anyone", WhatKind: "any", WhenKind: "always", Action: "alert"},
	}
	for _, want := range cases {
		got, err := s.CreateRule(ctx, "test", want)
		if err != nil {
			t.Fatalf("%s: CreateRule: %v", want.Name, err)
		}
		read, err := s.RuleByID(ctx, got.ID)
		if err != nil {
			t.Fatalf("%s: RuleByID: %v", want.Name, err)
		}
		if read.UpdatedBy != "test" || read.UpdatedAt.IsZero() {
			t.Errorf("%s: updated by %q at %v", want.Name, read.UpdatedBy, read.UpdatedAt)
		}
		want.ID, want.Position, want.UpdatedAt, want.UpdatedBy = read.ID, read.Position, read.UpdatedAt, read.UpdatedBy
		if !reflect.DeepEqual(read, want) {
			t.Errorf("%s: round trip\n got %+v\nwant %+v", want.Name, read, want)
		}
	}
}

func TestRuleCreateRefusesIncompleteRules(t *testing.T) {
	s, _ := openTemp(t)
	for _, r := range []Rule{
		{Name: "no action", WhoKind: "anyone", WhatKind: "any", WhenKind: "always"},
		{Name: "no who", WhatKind: "any", WhenKind: "always", Action: "allow"},
		{Name: "host bits", WhoKind: "anyone", WhatKind: "subnet", Subnet: netip.MustParsePrefix("10.5.0.7/24"), WhenKind: "always", Action: "allow"},
	} {
		if _, err := s.CreateRule(context.Background(), "test", r); err == nil {
			t.Errorf("%s: created", r.Name)
		}
	}
	if got := ruleNames(t, s); got != "" {
		t.Fatalf("rules after refusals: %q", got)
	}
}

func TestRulesKeepTheirOrderThroughInsertMoveAndDelete(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	ids := map[string]int64{}
	add := func(name string, pos int) {
		r := sampleRule(name)
		r.Position = pos
		got, err := s.CreateRule(ctx, "test", r)
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		ids[name] = got.ID
	}
	steps := []struct {
		name string
		do   func() error
		want string
	}{
		{"append", func() error { add("a", 0); add("b", 0); add("c", 0); return nil }, "a,b,c"},
		{"insert first", func() error { add("z", 1); return nil }, "z,a,b,c"},
		{"insert past the end appends", func() error { add("d", 99); return nil }, "z,a,b,c,d"},
		{"move down", func() error { _, err := s.MoveRule(ctx, "test", ids["z"], 3); return err }, "a,b,z,c,d"},
		{"move up", func() error { _, err := s.MoveRule(ctx, "test", ids["d"], 1); return err }, "d,a,b,z,c"},
		{"move past the end clamps", func() error { _, err := s.MoveRule(ctx, "test", ids["d"], 50); return err }, "a,b,z,c,d"},
		{"move before the start clamps", func() error { _, err := s.MoveRule(ctx, "test", ids["c"], -3); return err }, "c,a,b,z,d"},
		{"delete middle", func() error { return s.DeleteRule(ctx, "test", ids["b"]) }, "c,a,z,d"},
		{"delete first", func() error { return s.DeleteRule(ctx, "test", ids["c"]) }, "a,z,d"},
		{"update keeps the position", func() error {
			r, err := s.RuleByID(ctx, ids["z"])
			if err != nil {
				return err
			}
			r.Name, r.Action = "y", "allow"
			_, err = s.UpdateRule(ctx, "test", r)
			return err
		}, "a,y,d"},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := ruleNames(t, s); got != st.want {
			t.Fatalf("%s: order %s, want %s", st.name, got, st.want)
		}
	}
	for _, err := range []error{
		s.DeleteRule(ctx, "test", 9999),
		func() error { _, err := s.MoveRule(ctx, "test", 9999, 1); return err }(),
		func() error {
			r := sampleRule("ghost")
			r.ID = 9999
			_, err := s.UpdateRule(ctx, "test", r)
			return err
		}(),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("change of a missing rule: %v, want ErrNotFound", err)
		}
	}
}

func TestEveryRuleChangeIsAuditedWithBeforeAndAfter(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	a, err := s.CreateRule(ctx, "web:alice", sampleRule("a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.CreateRule(ctx, "web:alice", sampleRule("b"))
	if err != nil {
		t.Fatal(err)
	}
	a.Action = "allow"
	if _, err := s.UpdateRule(ctx, "web:bob", a); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MoveRule(ctx, "web:bob", b.ID, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MoveRule(ctx, "web:bob", b.ID, 1); err != nil { // no change: no audit row
		t.Fatal(err)
	}
	if err := s.DeleteRule(ctx, "web:carol", a.ID); err != nil {
		t.Fatal(err)
	}
	entries, err := s.AuditList(ctx, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	type field = map[string]any
	decode := func(s string) field {
		if s == "" {
			return nil
		}
		var m field
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatalf("audit JSON %q: %v", s, err)
		}
		return m
	}
	want := []struct {
		actor, action, object string
		before, after         field // the fields that must be there; nil: empty
	}{
		{"web:carol", "rule.delete", "rule:1", field{"action": "allow", "position": 2.0}, nil},
		{"web:bob", "rule.move", "rule:2", field{"position": 2.0}, field{"position": 1.0}},
		{"web:bob", "rule.update", "rule:1", field{"action": "block"}, field{"action": "allow"}},
		{"web:alice", "rule.create", "rule:2", nil, field{"name": "b", "position": 2.0}},
		{"web:alice", "rule.create", "rule:1", nil, field{"name": "a", "who_id": "Year 9"}},
	}
	if len(entries) != len(want) {
		t.Fatalf("%d audit entries, want %d", len(entries), len(want))
	}
	for i, w := range want {
		e := entries[i]
		if e.Actor != w.actor || e.Action != w.action || e.Object != w.object {
			t.Errorf("entry %d: %s %s %s, want %s %s %s", i, e.Actor, e.Action, e.Object, w.actor, w.action, w.object)
		}
		for _, side := range []struct {
			name      string
			got, want field
		}{{"before", decode(e.Before), w.before}, {"after", decode(e.After), w.after}} {
			if (side.got == nil) != (side.want == nil) {
				t.Errorf("entry %d %s: got %v, want %v", i, side.name, side.got, side.want)
				continue
			}
			for k, v := range side.want {
				if side.got[k] != v {
					t.Errorf("entry %d %s.%s = %v, want %v", i, side.name, k, side.got[k], v)
				}
			}
		}
	}
	slots := decode(entries[len(entries)-1].After)["slots"]
	if b, _ := json.Marshal(slots); string(b) != `[{"days":["Monday","Friday"],"end":"24:00:00","start":"08:30:00"}]` {
		t.Errorf("audited slots %s", b)
	}
	if n, err := s.VerifyAudit(ctx); err != nil || n != len(want) {
		t.Fatalf("VerifyAudit = %d, %v", n, err)
	}
}

func TestRuleSlotJSONRejectsNonsense(t *testing.T) {
	for _, in := range []string{
		`{"days":["Funday"],"start":"08:00:00","end":"09:00:00"}`,
		`{"days":["Monday"],"start":"8am","end":"09:00:00"}`,
		`{"days":["Monday"],"start":"08:00:00","end":"-1:00:00"}`,
	} {
		var s RuleSlot
		if err := json.Unmarshal([]byte(in), &s); err == nil {
			t.Errorf("%s parsed as %+v", in, s)
		}
	}
}
