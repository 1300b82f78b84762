package clientbudget

import (
	"net/netip"
	"strconv"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func TestTheFirstAreKeptAndTheRestCountedOnce(t *testing.T) {
	b := New[string](5, 0, 10)
	kept, firsts := 0, 0
	for range 100 {
		k, first := b.Allow("02:00:00:00:00:01", "", t0)
		if k {
			kept++
		}
		if first {
			firsts++
		}
	}
	if kept != 5 || firsts != 1 {
		t.Errorf("kept %d and reported %d first-over, want 5 and 1", kept, firsts)
	}
	// Another client is not slowed by the first one's flood.
	if k, _ := b.Allow("02:00:00:00:00:02", "", t0); !k {
		t.Error("a second client's first record was left out")
	}
	// The next minute starts afresh, and the over-budget report with it.
	next := t0.Add(time.Minute)
	if k, _ := b.Allow("02:00:00:00:00:01", "", next); !k {
		t.Error("the client's first record of the next minute was left out")
	}
	for range 4 {
		b.Allow("02:00:00:00:00:01", "", next)
	}
	if k, first := b.Allow("02:00:00:00:00:01", "", next); k || !first {
		t.Errorf("the sixth record of the next minute: kept %v, first over %v; want left out and reported", k, first)
	}
	// A clock that went back starts a new minute rather than freezing one.
	if k, _ := b.Allow("02:00:00:00:00:01", "", t0.Add(-time.Hour)); !k {
		t.Error("after the clock went back the client stayed over budget")
	}
}

func TestUnusualKindsAreKeptUpToTheBound(t *testing.T) {
	b := New[string](2, 3, 10)
	var kept []string
	for _, kind := range []string{"vpn", "vpn", "vpn", "tor", "tor", "ssh", "doh", "proxy"} {
		if k, _ := b.Allow("10.20.0.10", kind, t0); k {
			kept = append(kept, kind)
		}
	}
	// vpn, vpn within the limit; then tor and ssh as new kinds (vpn counted
	// as the first kind); doh would be a fourth kind, over the bound of 3.
	if got := len(kept); got != 4 || kept[2] != "tor" || kept[3] != "ssh" {
		t.Errorf("kept %v, want [vpn vpn tor ssh]", kept)
	}
}

func TestCountedRecordsUseUpTheMinute(t *testing.T) {
	b := New[string](3, 0, 10)
	for range 3 {
		b.Count("02:00:00:00:00:01", t0)
	}
	if k, _ := b.Allow("02:00:00:00:00:01", "", t0); k {
		t.Error("a record was kept after the client's minute was used up by counted ones")
	}
}

func TestRecordsAboutNoClientAreAlwaysKept(t *testing.T) {
	b := New[string](0, 0, 1)
	for range 10 {
		if k, _ := b.Allow("", "pool-exhausted", t0); !k {
			t.Fatal("a record about no client was left out")
		}
	}
	if n := b.Clients(); n != 0 {
		t.Errorf("%d clients tracked for records about none", n)
	}
}

// Keys come from client packets, so both tables are bounded however many
// clients and kinds a flood makes up.
func TestTablesAreBounded(t *testing.T) {
	b := New[string](5, 8, 100)
	for i := range 10000 {
		b.Allow("10.20."+strconv.Itoa(i>>8)+"."+strconv.Itoa(i&0xff), "vpn", t0)
	}
	if n := b.Clients(); n > 100 {
		t.Errorf("budget tracks %d clients, bound is 100", n)
	}
	kept := 0
	for i := range 1000 {
		if k, _ := b.Allow("10.30.0.10", "vpn|"+strconv.Itoa(i), t0); k {
			kept++
		}
	}
	if kept != 8 {
		t.Errorf("%d of 1000 records of new kinds kept, want 8 (the bound on kinds a minute)", kept)
	}
	// Clients whose minute is over go first when the table is full.
	later := t0.Add(2 * time.Minute)
	b.Allow("fresh", "", later)
	if n := b.Clients(); n > 100 {
		t.Errorf("after eviction %d clients tracked", n)
	}
	if k, _ := b.Allow("10.30.0.10", "", later); !k {
		t.Error("an evicted client's record in a new minute was left out")
	}
}

// Any comparable key names a client: the DNS query log keys by netip.Addr,
// with no text made per lookup.
func TestAddressKeys(t *testing.T) {
	b := New[netip.Addr](1, 0, 2)
	a := netip.MustParseAddr("10.20.0.10")
	if k, _ := b.Allow(a, "", t0); !k {
		t.Error("first lookup left out")
	}
	if k, first := b.Allow(a, "", t0); k || !first {
		t.Errorf("second lookup: kept %v, first over %v", k, first)
	}
	if k, _ := b.Allow(netip.Addr{}, "", t0); !k {
		t.Error("a record about no address was left out")
	}
}
