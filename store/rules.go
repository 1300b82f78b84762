package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Rule is one of the school's ordered forwarding rules as stored. The store
// keeps the fields as given and owns only their order and their audit trail:
// what the kinds and actions mean, and whether a rule fits the network, is
// package policy's business (policy/ruledb converts between the two).
type Rule struct {
	ID       int64  `json:"id"`
	Position int    `json:"position"` // 1 is first; the store assigns it
	Name     string `json:"name"`

	WhoKind string `json:"who_kind"`
	WhoID   string `json:"who_id,omitempty"`

	WhatKind string       `json:"what_kind"`
	Proto    string       `json:"proto,omitempty"`
	Ports    []RulePorts  `json:"ports,omitempty"`
	Subnet   netip.Prefix `json:"subnet,omitzero"`
	Server   string       `json:"server,omitempty"`
	Domains  []string     `json:"domains,omitempty"`
	Class    string       `json:"class,omitempty"`

	Segment string `json:"segment,omitempty"` // "" for every segment

	WhenKind string     `json:"when_kind"`
	Slots    []RuleSlot `json:"slots,omitempty"`

	Action   string `json:"action"`
	Disabled bool   `json:"disabled,omitempty"`

	UpdatedAt time.Time `json:"-"`
	UpdatedBy string    `json:"-"`
}

// RulePorts is an inclusive port range.
type RulePorts struct {
	Lo uint16 `json:"lo"`
	Hi uint16 `json:"hi"`
}

// RuleSlot is a weekly time slot: on Days, from Start to End since midnight.
// Its JSON form ("days":["Monday"],"start":"08:30:00") is what the audit log
// and the sqlite3 CLI show.
type RuleSlot struct {
	Days       []time.Weekday
	Start, End time.Duration
}

type ruleSlotJSON struct {
	Days  []string `json:"days"`
	Start string   `json:"start"`
	End   string   `json:"end"`
}

// MarshalJSON writes days by name and times as hh:mm:ss.
func (s RuleSlot) MarshalJSON() ([]byte, error) {
	j := ruleSlotJSON{Days: []string{}, Start: clockText(s.Start), End: clockText(s.End)}
	for _, d := range s.Days {
		j.Days = append(j.Days, d.String())
	}
	return json.Marshal(j)
}

// UnmarshalJSON reverses MarshalJSON.
func (s *RuleSlot) UnmarshalJSON(b []byte) error {
	var j ruleSlotJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	out := RuleSlot{}
	for _, name := range j.Days {
		d, ok := weekdayByName(name)
		if !ok {
			return fmt.Errorf("slot day %q", name)
		}
		out.Days = append(out.Days, d)
	}
	var err error
	if out.Start, err = parseClockText(j.Start); err != nil {
		return err
	}
	if out.End, err = parseClockText(j.End); err != nil {
		return err
	}
	*s = out
	return nil
}

func weekdayByName(name string) (time.Weekday, bool) {
	for d := time.Sunday; d <= time.Saturday; d++ {
		if d.String() == name {
			return d, true
		}
	}
	return 0, false
}

// clockText renders a time of day; 24:00:00 (the end of a day) is allowed.
func clockText(d time.Duration) string {
	s := int64(d / time.Second)
	return fmt.Sprintf("%02d:%02d:%02d", s/3600, s%3600/60, s%60)
}

func parseClockText(s string) (time.Duration, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return 0, fmt.Errorf("slot time %q: want hh:mm:ss", s)
	}
	var v [3]int
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("slot time %q: want hh:mm:ss", s)
		}
		v[i] = n
	}
	return time.Duration(v[0])*time.Hour + time.Duration(v[1])*time.Minute + time.Duration(v[2])*time.Second, nil
}

func (r Rule) check() error {
	if r.WhoKind == "" || r.WhatKind == "" || r.WhenKind == "" || r.Action == "" {
		return errors.New("a rule needs a who, a what, a when and an action")
	}
	if r.Subnet.IsValid() && r.Subnet != r.Subnet.Masked() {
		return fmt.Errorf("subnet %v has host bits set", r.Subnet)
	}
	return nil
}

const ruleColumns = `id, position, name, who_kind, who_id, what_kind, proto, ports_json, subnet, server,
	domains_json, class, segment, when_kind, slots_json, action, disabled, updated_at, updated_by`

func scanRule(sc scanner) (Rule, error) {
	var r Rule
	var ports, subnet, domains, slots, updated string
	if err := sc.Scan(&r.ID, &r.Position, &r.Name, &r.WhoKind, &r.WhoID, &r.WhatKind, &r.Proto, &ports, &subnet,
		&r.Server, &domains, &r.Class, &r.Segment, &r.WhenKind, &slots, &r.Action, &r.Disabled, &updated, &r.UpdatedBy); err != nil {
		return Rule{}, err
	}
	if subnet != "" {
		p, err := netip.ParsePrefix(subnet)
		if err != nil {
			return Rule{}, fmt.Errorf("rule %d: stored subnet %q: %w", r.ID, subnet, err)
		}
		r.Subnet = p
	}
	for _, f := range []struct {
		name string
		text string
		into any
	}{{"ports", ports, &r.Ports}, {"domains", domains, &r.Domains}, {"slots", slots, &r.Slots}} {
		if err := json.Unmarshal([]byte(f.text), f.into); err != nil {
			return Rule{}, fmt.Errorf("rule %d: stored %s %q: %w", r.ID, f.name, f.text, err)
		}
	}
	// Absent lists read back as nil, as they were written.
	r.Ports, r.Domains, r.Slots = nilIfEmpty(r.Ports), nilIfEmpty(r.Domains), nilIfEmpty(r.Slots)
	var err error
	if r.UpdatedAt, err = parseTime(updated); err != nil {
		return Rule{}, fmt.Errorf("rule %d: %w", r.ID, err)
	}
	return r, nil
}

// ruleValues are the columns after id and position, in ruleColumns order.
func ruleValues(r Rule) ([]any, error) {
	enc := func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	}
	ports, err := enc(nonNil(r.Ports))
	if err != nil {
		return nil, err
	}
	domains, err := enc(nonNil(r.Domains))
	if err != nil {
		return nil, err
	}
	slots, err := enc(nonNil(r.Slots))
	if err != nil {
		return nil, err
	}
	subnet := ""
	if r.Subnet.IsValid() {
		subnet = r.Subnet.String()
	}
	return []any{r.Name, r.WhoKind, r.WhoID, r.WhatKind, r.Proto, ports, subnet, r.Server, domains, r.Class,
		r.Segment, r.WhenKind, slots, r.Action, r.Disabled, formatTime(r.UpdatedAt), r.UpdatedBy}, nil
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Rules returns every rule in order.
func (s *Store) Rules(ctx context.Context) ([]Rule, error) {
	return listRules(ctx, s.db)
}

func listRules(ctx context.Context, q querier) ([]Rule, error) {
	return queryAll(ctx, q, "list rules", scanRule, `SELECT `+ruleColumns+` FROM policy_rules ORDER BY position, id`)
}

// RuleByID returns one rule; ErrNotFound if there is none.
func (s *Store) RuleByID(ctx context.Context, id int64) (Rule, error) {
	r, err := ruleByID(ctx, s.db, id)
	if err != nil {
		return Rule{}, fmt.Errorf("store: rule %d: %w", id, err)
	}
	return r, nil
}

func ruleByID(ctx context.Context, q querier, id int64) (Rule, error) {
	r, err := scanRule(q.QueryRowContext(ctx, `SELECT `+ruleColumns+` FROM policy_rules WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Rule{}, ErrNotFound
	}
	return r, err
}

func ruleCount(ctx context.Context, tx *sql.Tx) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM policy_rules`).Scan(&n)
	return n, err
}

func auditRule(ctx context.Context, s *Store, tx *sql.Tx, actor, action string, id int64, before, after *Rule) error {
	e := AuditEntry{Actor: actor, Action: action, Object: "rule:" + strconv.FormatInt(id, 10)}
	var err error
	if before != nil {
		if e.Before, err = auditJSON(before); err != nil {
			return err
		}
	}
	if after != nil {
		if e.After, err = auditJSON(after); err != nil {
			return err
		}
	}
	return s.auditTx(ctx, tx, e)
}

// CreateRule adds r at r.Position (1 is first; 0 or past the end appends),
// moving later rules down, and audits it as "rule.create". It returns the
// stored rule with its ID and position.
func (s *Store) CreateRule(ctx context.Context, actor string, r Rule) (Rule, error) {
	if err := r.check(); err != nil {
		return Rule{}, fmt.Errorf("store: create rule: %w", err)
	}
	var out Rule
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		n, err := ruleCount(ctx, tx)
		if err != nil {
			return err
		}
		pos := r.Position
		if pos < 1 || pos > n {
			pos = n + 1
		}
		if _, err := tx.ExecContext(ctx, `UPDATE policy_rules SET position = position + 1 WHERE position >= ?`, pos); err != nil {
			return err
		}
		r.UpdatedAt, r.UpdatedBy = time.Now(), actor
		vals, err := ruleValues(r)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO policy_rules (position, name, who_kind, who_id, what_kind, proto,
			ports_json, subnet, server, domains_json, class, segment, when_kind, slots_json, action, disabled, updated_at, updated_by)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, append([]any{pos}, vals...)...)
		if err != nil {
			return err
		}
		id, err := res.LastInsertId()
		if err != nil {
			return err
		}
		if out, err = ruleByID(ctx, tx, id); err != nil {
			return err
		}
		return auditRule(ctx, s, tx, actor, "rule.create", id, nil, &out)
	})
	if err != nil {
		return Rule{}, fmt.Errorf("store: create rule %q: %w", r.Name, err)
	}
	return out, nil
}

// UpdateRule replaces the fields of rule r.ID, keeping its position, and
// audits it as "rule.update" with before and after; ErrNotFound if it does
// not exist.
func (s *Store) UpdateRule(ctx context.Context, actor string, r Rule) (Rule, error) {
	if err := r.check(); err != nil {
		return Rule{}, fmt.Errorf("store: update rule %d: %w", r.ID, err)
	}
	var out Rule
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		before, err := ruleByID(ctx, tx, r.ID)
		if err != nil {
			return err
		}
		r.UpdatedAt, r.UpdatedBy = time.Now(), actor
		vals, err := ruleValues(r)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE policy_rules SET name = ?, who_kind = ?, who_id = ?, what_kind = ?,
			proto = ?, ports_json = ?, subnet = ?, server = ?, domains_json = ?, class = ?, segment = ?, when_kind = ?,
			slots_json = ?, action = ?, disabled = ?, updated_at = ?, updated_by = ? WHERE id = ?`, append(vals, r.ID)...); err != nil {
			return err
		}
		if out, err = ruleByID(ctx, tx, r.ID); err != nil {
			return err
		}
		return auditRule(ctx, s, tx, actor, "rule.update", r.ID, &before, &out)
	})
	if err != nil {
		return Rule{}, fmt.Errorf("store: update rule %d: %w", r.ID, err)
	}
	return out, nil
}

// DeleteRule removes a rule, closing the gap in the order, and audits it as
// "rule.delete"; ErrNotFound if it does not exist.
func (s *Store) DeleteRule(ctx context.Context, actor string, id int64) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		before, err := ruleByID(ctx, tx, id)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM policy_rules WHERE id = ?`, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE policy_rules SET position = position - 1 WHERE position > ?`, before.Position); err != nil {
			return err
		}
		return auditRule(ctx, s, tx, actor, "rule.delete", id, &before, nil)
	})
	if err != nil {
		return fmt.Errorf("store: delete rule %d: %w", id, err)
	}
	return nil
}

// MoveRule puts a rule at position (clamped to the first and last place),
// shifting the rules in between, and audits it as "rule.move" with the old
// and new position; a move to where it already is changes and audits
// nothing. ErrNotFound if the rule does not exist.
func (s *Store) MoveRule(ctx context.Context, actor string, id int64, position int) (Rule, error) {
	var out Rule
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		before, err := ruleByID(ctx, tx, id)
		if err != nil {
			return err
		}
		n, err := ruleCount(ctx, tx)
		if err != nil {
			return err
		}
		to := min(max(position, 1), n)
		from := before.Position
		if to == from {
			out = before
			return nil
		}
		if to < from {
			_, err = tx.ExecContext(ctx, `UPDATE policy_rules SET position = position + 1 WHERE position >= ? AND position < ?`, to, from)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE policy_rules SET position = position - 1 WHERE position > ? AND position <= ?`, from, to)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE policy_rules SET position = ?, updated_at = ?, updated_by = ? WHERE id = ?`,
			to, formatTime(time.Now()), actor, id); err != nil {
			return err
		}
		if out, err = ruleByID(ctx, tx, id); err != nil {
			return err
		}
		return auditRule(ctx, s, tx, actor, "rule.move", id, &before, &out)
	})
	if err != nil {
		return Rule{}, fmt.Errorf("store: move rule %d to %d: %w", id, position, err)
	}
	return out, nil
}
