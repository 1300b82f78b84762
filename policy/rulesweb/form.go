package rulesweb

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-net/gatehouse/policy"
)

// form is a rule as the page's form carries it: text, as typed.
type form struct {
	ID       int64
	Name     string
	WhoKind  string
	WhoID    string
	WhatKind string
	Proto    string
	Ports    string // "80, 443, 8000-8100"
	Subnet   string
	Server   string
	Domains  string // one per line, or separated by commas or spaces
	Class    string
	Where    string
	WhenKind string
	Slots    string // "Mon-Fri 08:30-15:30; Sat 10:00-12:00"
	Action   string
	Disabled bool
}

// Limits on what one form may carry; every field is a few words.
const (
	maxField   = 200
	maxDomains = 4096
	maxList    = 64
)

func formOf(r policy.Rule) form {
	f := form{ID: r.ID, Name: r.Name, WhoKind: string(r.Who.Kind), WhoID: r.Who.ID, WhatKind: string(r.What.Kind),
		Proto: r.What.Proto, Server: r.What.Server, Class: r.What.Class, Where: r.Where,
		WhenKind: string(r.When.Kind), Action: string(r.Action), Disabled: r.Disabled}
	f.Ports = portsText(r.What.Ports)
	if r.What.Subnet.IsValid() {
		f.Subnet = r.What.Subnet.String()
	}
	f.Domains = strings.Join(r.What.Domains, "\n")
	f.Slots = slotsText(r.When.Slots)
	return f
}

func portsText(ps []policy.PortRange) string {
	var parts []string
	for _, p := range ps {
		if p.Lo == p.Hi {
			parts = append(parts, strconv.Itoa(int(p.Lo)))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", p.Lo, p.Hi))
		}
	}
	return strings.Join(parts, ", ")
}

var dayNames = []string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

func slotsText(slots []policy.Slot) string {
	var parts []string
	for _, s := range slots {
		parts = append(parts, daysText(s.Days)+" "+clock(s.Start)+"-"+clock(s.End))
	}
	return strings.Join(parts, "; ")
}

// daysText writes runs of three or more consecutive days as ranges.
func daysText(days []time.Weekday) string {
	ds := slices.Clone(days)
	slices.Sort(ds)
	ds = slices.Compact(ds)
	var parts []string
	for i := 0; i < len(ds); {
		j := i
		for j+1 < len(ds) && ds[j+1] == ds[j]+1 {
			j++
		}
		switch {
		case j-i >= 2:
			parts = append(parts, dayNames[ds[i]]+"-"+dayNames[ds[j]])
		default:
			for k := i; k <= j; k++ {
				parts = append(parts, dayNames[ds[k]])
			}
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

func clock(d time.Duration) string {
	s := fmt.Sprintf("%02d:%02d", int(d/time.Hour), int(d%time.Hour/time.Minute))
	if sec := d % time.Minute; sec != 0 {
		s += fmt.Sprintf(":%02d", int(sec/time.Second))
	}
	return s
}

// rule parses the form into a rule; the caller validates it against the
// network. Errors are written for the person filling in the form.
func (f form) rule() (policy.Rule, error) {
	for _, v := range []string{f.Name, f.WhoID, f.Ports, f.Subnet, f.Server, f.Class, f.Where, f.Slots} {
		if len(v) > maxField {
			return policy.Rule{}, fmt.Errorf("a field is longer than %d characters", maxField)
		}
	}
	if len(f.Domains) > maxDomains {
		return policy.Rule{}, fmt.Errorf("the domain list is longer than %d characters", maxDomains)
	}
	r := policy.Rule{ID: f.ID, Name: strings.TrimSpace(f.Name),
		Who:      policy.Who{Kind: policy.WhoKind(f.WhoKind), ID: strings.TrimSpace(f.WhoID)},
		What:     policy.What{Kind: policy.WhatKind(f.WhatKind)},
		Where:    f.Where,
		When:     policy.When{Kind: policy.WhenKind(f.WhenKind)},
		Action:   policy.Action(f.Action),
		Disabled: f.Disabled,
	}
	if r.Who.Kind == policy.Anyone {
		r.Who.ID = ""
	}
	// Only the fields of the chosen kind are kept, so a form that was
	// switched from "service" to "subnet" does not store stale ports.
	switch r.What.Kind {
	case policy.Service:
		r.What.Proto = f.Proto
		ports, err := parsePorts(f.Ports)
		if err != nil {
			return r, err
		}
		r.What.Ports = ports
	case policy.Subnet:
		p, err := netip.ParsePrefix(strings.TrimSpace(f.Subnet))
		if err != nil {
			return r, fmt.Errorf("the subnet %q is not an address with a prefix length, such as 10.5.0.0/24", f.Subnet)
		}
		if p != p.Masked() {
			return r, fmt.Errorf("the subnet %v has host bits set; did you mean %v?", p, p.Masked())
		}
		r.What.Subnet = p
	case policy.Server:
		r.What.Server = f.Server
	case policy.Domains:
		ds, err := parseDomains(f.Domains)
		if err != nil {
			return r, err
		}
		r.What.Domains = ds
	case policy.Class:
		r.What.Class = strings.TrimSpace(f.Class)
		if r.What.Class == "" {
			return r, fmt.Errorf("name the class of traffic, such as vpn or doh")
		}
	}
	if r.When.Kind != policy.Always {
		slots, err := parseSlots(f.Slots)
		if err != nil {
			return r, err
		}
		r.When.Slots = slots
	}
	return r, nil
}

func fields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

func parsePorts(s string) ([]policy.PortRange, error) {
	var out []policy.PortRange
	for _, f := range fields(s) {
		lo, hi, isRange := strings.Cut(f, "-")
		a, err := strconv.ParseUint(lo, 10, 16)
		b := a
		if err == nil && isRange {
			b, err = strconv.ParseUint(hi, 10, 16)
		}
		if err != nil || a == 0 || b < a {
			return nil, fmt.Errorf("%q is not a port (1-65535) or a range such as 8000-8100", f)
		}
		out = append(out, policy.PortRange{Lo: uint16(a), Hi: uint16(b)})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("a service needs at least one port")
	}
	if len(out) > maxList {
		return nil, fmt.Errorf("at most %d port ranges in one rule", maxList)
	}
	return out, nil
}

func parseDomains(s string) ([]string, error) {
	var out []string
	for _, f := range fields(s) {
		d := strings.TrimSuffix(strings.ToLower(f), ".")
		if d == "" || len(d) > 253 || strings.ContainsAny(d, "/:@*") || strings.HasPrefix(d, ".") || strings.Contains(d, "..") {
			return nil, fmt.Errorf("%q is not a domain name such as vpn.example.com (its subdomains are included)", f)
		}
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("a domain list needs at least one domain")
	}
	return out, nil
}

// parseSlots reads "Mon-Fri 08:30-15:30; Sat 10:00-12:00"; an end of 24:00
// is the end of the day.
func parseSlots(s string) ([]policy.Slot, error) {
	var out []policy.Slot
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == '\n' }) {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		i := strings.LastIndex(part, " ")
		if i < 0 {
			return nil, fmt.Errorf("%q: write days then times, such as Mon-Fri 08:30-15:30", part)
		}
		days, err := parseDays(part[:i])
		if err != nil {
			return nil, err
		}
		from, to, ok := strings.Cut(part[i+1:], "-")
		start, err1 := parseClock(from)
		end, err2 := parseClock(to)
		if !ok || err1 != nil || err2 != nil || end <= start {
			return nil, fmt.Errorf("%q: the times must be like 08:30-15:30, the end after the start", part)
		}
		out = append(out, policy.Slot{Days: days, Start: start, End: end})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("a scheduled rule needs time slots, such as Mon-Fri 08:30-15:30 (or choose always)")
	}
	if len(out) > maxList {
		return nil, fmt.Errorf("at most %d time slots in one rule", maxList)
	}
	return out, nil
}

func dayIndex(s string) (time.Weekday, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) < 3 {
		return 0, false
	}
	for i, n := range dayNames {
		if strings.HasPrefix(strings.ToLower(time.Weekday(i).String()), s) || s == strings.ToLower(n) {
			return time.Weekday(i), true
		}
	}
	return 0, false
}

func parseDays(s string) ([]time.Weekday, error) {
	var out []time.Weekday
	for _, f := range fields(s) {
		if strings.EqualFold(f, "daily") {
			out = append(out, time.Sunday, time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday)
			continue
		}
		a, b, isRange := strings.Cut(f, "-")
		from, ok1 := dayIndex(a)
		to, ok2 := from, true
		if isRange {
			to, ok2 = dayIndex(b)
		}
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%q is not a day such as Mon, a range such as Mon-Fri, or daily", f)
		}
		for d := from; ; d = (d + 1) % 7 {
			out = append(out, d)
			if d == to {
				break
			}
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil, fmt.Errorf("name the days, such as Mon-Fri")
	}
	return out, nil
}

func parseClock(s string) (time.Duration, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || hh < 0 || mm < 0 || mm > 59 || hh > 24 || (hh == 24 && mm != 0) || len(m) != 2 {
		return 0, fmt.Errorf("%q is not a time such as 08:30", s)
	}
	return time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute, nil
}

// Summaries for the list.

func whoText(w policy.Who) string {
	switch w.Kind {
	case policy.Anyone:
		return "anyone"
	case policy.Group:
		return "group " + w.ID
	}
	return string(w.Kind) + " " + w.ID
}

func whatText(w policy.What) string {
	switch w.Kind {
	case policy.AnyTraffic:
		return "any traffic"
	case policy.Service:
		p := w.Proto
		if p == "" {
			p = "tcp+udp"
		}
		return p + " " + portsText(w.Ports)
	case policy.Subnet:
		return "to " + w.Subnet.String()
	case policy.Server:
		return "server " + w.Server
	case policy.Domains:
		return "domains " + strings.Join(w.Domains, ", ")
	case policy.Class:
		return "detected " + w.Class
	}
	return string(w.Kind)
}

func whenText(w policy.When) string {
	var s string
	switch w.Kind {
	case policy.Always:
		return "always"
	case policy.Weekly:
		return slotsText(w.Slots)
	case policy.TermTime:
		s = "term time"
	case policy.Holidays:
		s = "holidays"
	default:
		s = string(w.Kind)
	}
	if len(w.Slots) > 0 {
		s += ", " + slotsText(w.Slots)
	}
	return s
}
