package rulesweb

import (
	"reflect"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/policy"
)

func TestSlotsParseAndPrintTheSameWay(t *testing.T) {
	h := time.Hour
	cases := []struct {
		in, out string
		want    []policy.Slot
	}{
		{"Mon-Fri 08:30-15:30", "Mon-Fri 08:30-15:30",
			[]policy.Slot{{Days: []time.Weekday{1, 2, 3, 4, 5}, Start: 8*h + 30*time.Minute, End: 15*h + 30*time.Minute}}},
		{"sat,SUNDAY 10:00-24:00; tue 00:00-01:00", "Sun,Sat 10:00-24:00; Tue 00:00-01:00",
			[]policy.Slot{{Days: []time.Weekday{0, 6}, Start: 10 * h, End: 24 * h}, {Days: []time.Weekday{2}, Start: 0, End: h}}},
		{"Fri-Mon 18:00-20:00", "Sun,Mon,Fri,Sat 18:00-20:00",
			[]policy.Slot{{Days: []time.Weekday{0, 1, 5, 6}, Start: 18 * h, End: 20 * h}}},
		{"daily 12:00-13:00", "Sun-Sat 12:00-13:00",
			[]policy.Slot{{Days: []time.Weekday{0, 1, 2, 3, 4, 5, 6}, Start: 12 * h, End: 13 * h}}},
	}
	for _, c := range cases {
		got, err := parseSlots(c.in)
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q parsed as %+v, want %+v", c.in, got, c.want)
		}
		if s := slotsText(got); s != c.out {
			t.Errorf("%q printed as %q, want %q", c.in, s, c.out)
		}
		again, err := parseSlots(slotsText(got))
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("%q does not survive printing: %+v, %v", c.in, again, err)
		}
	}
	for _, bad := range []string{"", "Mon", "Mon 9-10", "Mon 09:00-09:00", "Mo 09:00-10:00", "Mon 24:30-25:00", "Mon 09:0-10:00"} {
		if got, err := parseSlots(bad); err == nil {
			t.Errorf("%q parsed as %+v", bad, got)
		}
	}
}

func TestFormKeepsOnlyTheChosenKindsFields(t *testing.T) {
	f := form{Name: "x", WhoKind: "anyone", WhoID: "stale", WhatKind: "subnet", Ports: "80", Proto: "tcp",
		Subnet: "10.5.0.0/24", Domains: "a.example", WhenKind: "always", Slots: "Mon 09:00-10:00", Action: "allow"}
	r, err := f.rule()
	if err != nil {
		t.Fatal(err)
	}
	want := policy.Rule{Name: "x", Who: policy.Who{Kind: policy.Anyone}, What: policy.What{Kind: policy.Subnet, Subnet: r.What.Subnet},
		When: policy.When{Kind: policy.Always}, Action: policy.Allow}
	if !reflect.DeepEqual(r, want) || r.What.Subnet.String() != "10.5.0.0/24" {
		t.Fatalf("rule %+v, want %+v", r, want)
	}
	if back := formOf(r); back.Subnet != "10.5.0.0/24" || back.Ports != "" || back.Slots != "" {
		t.Fatalf("form of rule: %+v", back)
	}
}
