package ruledb

import (
	"context"
	"net/netip"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/store"
)

func TestRulesSurviveTheDatabaseUnchanged(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "gh.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rules := []policy.Rule{
		{Name: "no games in lessons", Who: policy.Who{Kind: policy.Group, ID: "Year 9"},
			What:  policy.What{Kind: policy.Service, Proto: "udp", Ports: []policy.PortRange{{Lo: 3074, Hi: 3074}, {Lo: 27000, Hi: 27050}}},
			Where: "pupil",
			When: policy.When{Kind: policy.Weekly, Slots: []policy.Slot{
				{Days: []time.Weekday{time.Monday, time.Tuesday}, Start: 9 * time.Hour, End: 15*time.Hour + 30*time.Minute}}},
			Action: policy.BlockAlert},
		{Name: "printer", Who: policy.Who{Kind: policy.ByDevice, ID: "02:00:00:00:10:0a"},
			What: policy.What{Kind: policy.Subnet, Subnet: netip.MustParsePrefix("10.5.0.0/24")},
			When: policy.When{Kind: policy.Always}, Action: policy.Allow, Disabled: true},
		{Name: "proxies", Who: policy.Who{Kind: policy.Anyone},
			What: policy.What{Kind: policy.Domains, Domains: []string{"proxy.example", "vpn.example"}},
			When: policy.When{Kind: policy.TermTime}, Action: policy.Block},
		{Name: "mis", Who: policy.Who{Kind: policy.Person, ID: "p123"}, What: policy.What{Kind: policy.Server, Server: "mis"},
			Where: "staff", When: policy.When{Kind: policy.Holidays}, Action: policy.Alert},
		{Name: "vpn", Who: policy.Who{Kind: policy.Anyone}, What: policy.What{Kind: policy.Class, Class: "vpn"},
			When: policy.When{Kind: policy.Always}, Action: policy.Alert},
	}
	for i := range rules {
		row, err := st.CreateRule(ctx, "test", ToStore(rules[i]))
		if err != nil {
			t.Fatalf("create %s: %v", rules[i].Name, err)
		}
		rules[i].ID = row.ID
	}
	got, err := Source{Store: st}.ListRules(ctx)
	if err != nil {
		t.Fatalf("ListRules: %v", err)
	}
	if !reflect.DeepEqual(got, rules) {
		t.Fatalf("round trip through the database:\n got %+v\nwant %+v", got, rules)
	}
}
