package policy

import (
	"context"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // Europe/London without the system zone database
)

var london = func() *time.Location {
	l, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err)
	}
	return l
}()

func at(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, london)
	if err != nil {
		panic(err)
	}
	return t
}

var lessons = Slot{Days: []time.Weekday{time.Monday, time.Tuesday}, Start: 9 * time.Hour, End: 10*time.Hour + 30*time.Minute}

func TestWhenActive(t *testing.T) {
	inTerm := func(t time.Time) bool { return t.Month() != time.August }
	cases := []struct {
		name string
		when When
		t    string
		want bool
	}{
		{"always", When{Kind: Always}, "2026-01-05 03:00", true},
		{"slot start is inside", When{Kind: Weekly, Slots: []Slot{lessons}}, "2026-01-05 09:00", true},
		{"slot end is outside", When{Kind: Weekly, Slots: []Slot{lessons}}, "2026-01-05 10:30", false},
		{"before slot", When{Kind: Weekly, Slots: []Slot{lessons}}, "2026-01-05 08:59", false},
		{"other day", When{Kind: Weekly, Slots: []Slot{lessons}}, "2026-01-07 09:30", false},
		{"term time without slots", When{Kind: TermTime}, "2026-01-07 20:00", true},
		{"term rule in holidays", When{Kind: TermTime}, "2026-08-05 09:30", false},
		{"term rule with slots, in slot", When{Kind: TermTime, Slots: []Slot{lessons}}, "2026-01-06 09:30", true},
		{"term rule with slots, out of slot", When{Kind: TermTime, Slots: []Slot{lessons}}, "2026-01-06 12:00", false},
		{"holidays in August", When{Kind: Holidays}, "2026-08-05 09:30", true},
		{"holidays in term", When{Kind: Holidays}, "2026-01-05 09:30", false},
		{"summer time slot", When{Kind: Weekly, Slots: []Slot{lessons}}, "2026-07-06 09:15", true},
	}
	for _, c := range cases {
		if got := c.when.Active(at(c.t), inTerm); got != c.want {
			t.Errorf("%s: Active(%s) = %v, want %v", c.name, c.t, got, c.want)
		}
	}
}

func TestNextBoundary(t *testing.T) {
	weekly := []Rule{{ID: 1, When: When{Kind: Weekly, Slots: []Slot{lessons}}}}
	cases := []struct {
		name  string
		rules []Rule
		t     string
		want  string
	}{
		{"next start", weekly, "2026-01-05 08:00", "2026-01-05 09:00"},
		{"next end", weekly, "2026-01-05 09:00", "2026-01-05 10:30"},
		{"over the week", weekly, "2026-01-06 11:00", "2026-01-12 09:00"},
		{"term rule changes at midnight", []Rule{{ID: 2, When: When{Kind: TermTime}}}, "2026-01-05 13:00", "2026-01-06 00:00"},
		{"disabled rules never change", []Rule{{ID: 3, Disabled: true, When: When{Kind: Weekly, Slots: []Slot{lessons}}}}, "2026-01-05 08:00", ""},
		{"always never changes", []Rule{{ID: 4, When: When{Kind: Always}}}, "2026-01-05 08:00", ""},
		// 29 March 2026: clocks go forward at 01:00 GMT; a 09:00 slot is
		// 09:00 on the wall, BST.
		{"across summer time", weekly, "2026-03-28 12:00", "2026-03-30 09:00"},
	}
	for _, c := range cases {
		got := NextBoundary(c.rules, at(c.t))
		if c.want == "" {
			if !got.IsZero() {
				t.Errorf("%s: got %v, want none", c.name, got)
			}
			continue
		}
		if !got.Equal(at(c.want)) {
			t.Errorf("%s: got %v, want %s", c.name, got, c.want)
		}
	}
}

func TestRuleValidate(t *testing.T) {
	n := testNetwork()
	ok := Rule{ID: 1, Who: Who{Kind: Anyone}, What: What{Kind: AnyTraffic}, When: When{Kind: Always}, Action: Block}
	cases := []struct {
		name  string
		edit  func(*Rule)
		valid bool
	}{
		{"minimal", func(*Rule) {}, true},
		{"unknown action", func(r *Rule) { r.Action = "maybe" }, false},
		{"device must be a MAC", func(r *Rule) { r.Who = Who{Kind: ByDevice, ID: "laptop"} }, false},
		{"group needs a name", func(r *Rule) { r.Who = Who{Kind: Group} }, false},
		{"service needs ports", func(r *Rule) { r.What = What{Kind: Service, Proto: "tcp"} }, false},
		{"service protocol", func(r *Rule) { r.What = What{Kind: Service, Proto: "sctp", Ports: []PortRange{{1, 2}}} }, false},
		{"reversed port range", func(r *Rule) { r.What = What{Kind: Service, Ports: []PortRange{{20, 10}}} }, false},
		{"unknown server", func(r *Rule) { r.What = What{Kind: Server, Server: "finance"} }, false},
		{"IPv6 subnet", func(r *Rule) { r.What = What{Kind: Subnet, Subnet: netip.MustParsePrefix("2001:db8::/32")} }, false},
		{"unknown segment", func(r *Rule) { r.Where = "kitchen" }, false},
		{"weekly needs slots", func(r *Rule) { r.When = When{Kind: Weekly} }, false},
		{"slot ends before it starts", func(r *Rule) {
			r.When = When{Kind: Weekly, Slots: []Slot{{Days: []time.Weekday{1}, Start: 10 * time.Hour, End: 9 * time.Hour}}}
		}, false},
	}
	for _, c := range cases {
		r := ok
		c.edit(&r)
		if err := r.Validate(n); (err == nil) != c.valid {
			t.Errorf("%s: Validate = %v, want valid=%v", c.name, err, c.valid)
		}
	}
}

type fakeDirectory struct {
	devices map[string][]Device
	term    bool
}

func (d fakeDirectory) Devices(_ context.Context, w Who) ([]Device, error) {
	return d.devices[string(w.Kind)+":"+w.ID], nil
}

func (d fakeDirectory) InTerm(time.Time) bool { return d.term }

// chainText lists a chain's rules as nft(8) prints them, without counters and
// digests, so that expected rules read like the ruleset.
func chainText(t *testing.T, ns, chain string) []string {
	t.Helper()
	out := nsRun(t, ns, "nft", "list", "chain", "inet", TableName, chain)
	counters := regexp.MustCompile(`counter packets \d+ bytes \d+ ?`)
	digest := regexp.MustCompile(` #[0-9a-f]{12}"`)
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if !strings.Contains(l, "comment") {
			continue
		}
		l = digest.ReplaceAllString(counters.ReplaceAllString(l, ""), `"`)
		lines = append(lines, l)
	}
	return lines
}

// TestRuleCompiler is the compiler's table: rule sets and the kernel rules they
// become, as nft(8) reads them back.
func TestRuleCompiler(t *testing.T) {
	ns, fd := newNS(t)
	e := newEnforcer(t, fd, testNetwork(), func() time.Time { return at("2026-01-05 09:30") })
	dir := fakeDirectory{term: true, devices: map[string][]Device{
		"group:Year 9": {{MAC: mac("02:00:00:00:09:01")}, {MAC: mac("02:00:00:00:09:02")}, {MAC: mac("02:00:00:00:09:01")}},
	}}
	ctx := context.Background()
	cases := []struct {
		name  string
		rules []Rule
		chain string
		want  []string // the user rules, between the gates and the defaults
	}{
		{"no rules", nil, "seg_pupil", nil},
		{"block a service for a segment",
			[]Rule{{ID: 1, Name: "no ssh", Who: Who{Kind: Anyone}, What: What{Kind: Service, Proto: "tcp", Ports: []PortRange{{22, 22}}}, Where: "pupil", When: When{Kind: Always}, Action: Block}},
			"seg_pupil", []string{`tcp dport 22 jump deny comment "pupil: rule 1 no ssh"`}},
		{"a service on both protocols and a range",
			[]Rule{{ID: 2, Who: Who{Kind: Anyone}, What: What{Kind: Service, Ports: []PortRange{{5000, 5010}}}, Where: "staff", When: When{Kind: Always}, Action: Allow}},
			"seg_staff", []string{`tcp dport 5000-5010 accept comment "staff: rule 2"`, `udp dport 5000-5010 accept comment "staff: rule 2"`}},
		{"allow a named server to one device",
			[]Rule{{ID: 3, Who: Who{Kind: ByDevice, ID: "02:00:00:00:20:99"}, What: What{Kind: Server, Server: "mis"}, Where: "pupil", When: When{Kind: Always}, Action: Allow}},
			"seg_pupil", []string{`ether saddr 02:00:00:00:20:99 ip daddr 10.5.0.0/24 accept comment "pupil: rule 3"`}},
		{"a group becomes a set of its devices",
			[]Rule{{ID: 4, Who: Who{Kind: Group, ID: "Year 9"}, What: What{Kind: Subnet, Subnet: netip.MustParsePrefix("192.0.2.0/24")}, Where: "pupil", When: When{Kind: TermTime}, Action: BlockAlert}},
			"seg_pupil", []string{`ether saddr @who_4 ip daddr 192.0.2.0/24 log prefix "gh-rule-4" group 7 jump deny comment "pupil: rule 4"`}},
		{"alert only logs and lets the next rule decide; every segment",
			[]Rule{{ID: 5, Who: Who{Kind: Anyone}, What: What{Kind: AnyTraffic}, When: When{Kind: Always}, Action: Alert}},
			"seg_byod", []string{`log prefix "gh-rule-5" group 7 comment "byod: rule 5"`}},
		{"inactive, disabled, domain and class rules make no kernel rule",
			[]Rule{
				{ID: 6, Who: Who{Kind: Anyone}, What: What{Kind: AnyTraffic}, Where: "pupil", When: When{Kind: Holidays}, Action: Block},
				{ID: 7, Who: Who{Kind: Anyone}, What: What{Kind: AnyTraffic}, Where: "pupil", When: When{Kind: Always}, Action: Block, Disabled: true},
				{ID: 8, Who: Who{Kind: Anyone}, What: What{Kind: Domains, Domains: []string{"game.example"}}, Where: "pupil", When: When{Kind: Always}, Action: Block},
				{ID: 9, Who: Who{Kind: Anyone}, What: What{Kind: Class, Class: "vpn"}, Where: "pupil", When: When{Kind: Always}, Action: BlockAlert},
			},
			"seg_pupil", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.SetRules(c.rules, dir)
			if err := e.Apply(ctx); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			var got []string
			for _, l := range chainText(t, ns, c.chain) {
				if strings.Contains(l, ": rule ") {
					got = append(got, l)
				}
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("chain %s user rules:\n%s\nwant:\n%s", c.chain, strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
	t.Run("group set holds each device once", func(t *testing.T) {
		e.SetRules([]Rule{{ID: 4, Who: Who{Kind: Group, ID: "Year 9"}, What: What{Kind: AnyTraffic}, When: When{Kind: Always}, Action: Block}}, dir)
		if err := e.Apply(ctx); err != nil {
			t.Fatalf("Apply: %v", err)
		}
		got := listSet(t, ns, "who_4")
		if !regexp.MustCompile(`elements = \{ 02:00:00:00:09:01,\s+02:00:00:00:09:02 \}`).MatchString(got) {
			t.Fatalf("set who_4:\n%s", got)
		}
	})
	t.Run("user rules sit between the gates and the defaults", func(t *testing.T) {
		e.SetRules([]Rule{{ID: 1, Who: Who{Kind: Anyone}, What: What{Kind: AnyTraffic}, Where: "visitor", When: When{Kind: Always}, Action: Allow}}, dir)
		if err := e.Apply(ctx); err != nil {
			t.Fatalf("Apply: %v", err)
		}
		lines := chainText(t, ns, "seg_visitor")
		// The upload cap is in the forward chain, ahead of established
		// traffic, which never reaches a segment's chain.
		if len(lines) < 4 || !strings.Contains(lines[1], "not admitted") ||
			!strings.Contains(lines[2], "rule 1") || !strings.Contains(lines[3], "client isolation") {
			t.Fatalf("seg_visitor order:\n%s", strings.Join(lines, "\n"))
		}
	})
}

func TestSyncSwitchesAtSlotBoundary(t *testing.T) {
	ns, fd := newNS(t)
	var mu sync.Mutex
	now := at("2026-01-05 08:59")
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	set := func(s string) { mu.Lock(); now = at(s); mu.Unlock() }
	e := newEnforcer(t, fd, testNetwork(), clock)
	e.SetRules([]Rule{{ID: 1, Name: "lessons", Who: Who{Kind: Anyone}, What: What{Kind: Service, Proto: "tcp", Ports: []PortRange{{443, 443}}},
		Where: "pupil", When: When{Kind: Weekly, Slots: []Slot{lessons}}, Action: Block}}, nil)
	ctx := context.Background()
	if err := e.Apply(ctx); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	has := func() bool {
		return strings.Contains(strings.Join(chainText(t, ns, "seg_pupil"), "\n"), "rule 1 lessons")
	}
	steps := []struct {
		at      string
		changed bool
		active  bool
	}{
		{"2026-01-05 08:59", false, false},
		{"2026-01-05 09:00", true, true},
		{"2026-01-05 10:29", false, true},
		{"2026-01-05 10:30", true, false},
		{"2026-01-06 09:00", true, true},
	}
	for _, s := range steps {
		set(s.at)
		changed, err := e.Sync(ctx)
		if err != nil {
			t.Fatalf("%s: Sync: %v", s.at, err)
		}
		if changed != s.changed || has() != s.active {
			t.Fatalf("%s: changed=%v active=%v, want %v %v", s.at, changed, has(), s.changed, s.active)
		}
	}
}

func TestDomainBlocks(t *testing.T) {
	n := testNetwork()
	games := What{Kind: Domains, Domains: []string{"games.example", "chat.example"}}
	rules := []Rule{
		{ID: 1, Who: Who{Kind: Anyone}, What: games, Where: "pupil", When: When{Kind: Weekly, Slots: []Slot{lessons}}, Action: Block},
		{ID: 2, Who: Who{Kind: Anyone}, What: What{Kind: Domains, Domains: []string{"proxy.example"}}, When: When{Kind: Always}, Action: BlockAlert},
		{ID: 3, Who: Who{Kind: Group, ID: "Year 9"}, What: games, When: When{Kind: Always}, Action: Block},
		{ID: 4, Who: Who{Kind: Anyone}, What: games, When: When{Kind: Always}, Action: Alert},
		{ID: 5, Who: Who{Kind: Anyone}, What: games, When: When{Kind: Always}, Action: Block, Disabled: true},
	}
	cases := []struct {
		at, segment, want string
	}{
		{"2026-01-05 09:30", "pupil", "games.example chat.example proxy.example"},
		{"2026-01-05 12:00", "pupil", "proxy.example"},
		{"2026-01-05 09:30", "staff", "proxy.example"},
	}
	for _, c := range cases {
		got := strings.Join(DomainBlocks(n, rules, at(c.at), nil)[c.segment], " ")
		if got != c.want {
			t.Errorf("%s %s: %q, want %q", c.at, c.segment, got, c.want)
		}
	}
}

type fakeRuleStore struct{ rules []Rule }

func (f fakeRuleStore) ListRules(context.Context) ([]Rule, error) { return f.rules, nil }

func TestLoadRulesRefusesInvalidRule(t *testing.T) {
	_, fd := newNS(t)
	e := newEnforcer(t, fd, testNetwork(), time.Now)
	bad := fakeRuleStore{[]Rule{{ID: 7, Who: Who{Kind: Anyone}, What: What{Kind: Server, Server: "finance"}, When: When{Kind: Always}, Action: Allow}}}
	if err := e.LoadRules(context.Background(), bad, nil); err == nil || !strings.Contains(err.Error(), "rule 7") {
		t.Fatalf("LoadRules = %v, want an error naming rule 7", err)
	}
	good := fakeRuleStore{[]Rule{{ID: 8, Who: Who{Kind: Anyone}, What: What{Kind: AnyTraffic}, Where: "pupil", When: When{Kind: Always}, Action: Block}}}
	if err := e.LoadRules(context.Background(), good, nil); err != nil {
		t.Fatalf("LoadRules: %v", err)
	}
	if err := e.Apply(context.Background()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

func TestUnresolvableRuleIsLeftOutAndTheRestStillApply(t *testing.T) {
	ns, fd := newNS(t)
	now := at("2026-01-05 09:30")
	e := newEnforcer(t, fd, testNetwork(), func() time.Time { return now })
	ctx := context.Background()
	if err := e.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	rules := []Rule{
		{ID: 1, Name: "no ssh", Who: Who{Kind: Anyone}, What: What{Kind: Service, Proto: "tcp", Ports: []PortRange{{22, 22}}}, Where: "pupil", When: When{Kind: Always}, Action: Block},
		{ID: 2, Who: Who{Kind: Person, ID: "jsmith"}, What: What{Kind: AnyTraffic}, Where: "pupil", When: When{Kind: Always}, Action: Block},
	}
	// No directory: whom rule 2 names cannot be known.
	e.SetRules(rules, nil)
	changed, err := e.Sync(ctx)
	if !changed {
		t.Errorf("Sync did not put rule 1 in")
	}
	if err == nil || !strings.Contains(err.Error(), "rule 2") {
		t.Errorf("Sync error %v, want it to name rule 2 as not in force", err)
	}
	got := nsRun(t, ns, "nft", "list", "chain", "inet", TableName, "seg_pupil")
	if !strings.Contains(got, "rule 1 no ssh") || strings.Contains(got, "rule 2") {
		t.Errorf("pupil chain should hold rule 1 and not rule 2:\n%s", got)
	}
}
