package config

import (
	"strings"
	"testing"
	"time"
)

// Issue 15: a quiet front desk was signed out after 30 minutes; the idle
// timeout is now set per role.
func TestAdminIdleTimeoutPerRole(t *testing.T) {
	data := strings.Replace(minimal, "database:", `admin:
  idle_timeout:
    reception: 9h
    dsl: 15m
database:`, 1)
	c, err := Parse("/etc/gatehouse/gatehouse.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Admin.IdleTimeout; len(got) != 2 || got["reception"] != 9*time.Hour || got["dsl"] != 15*time.Minute {
		t.Errorf("IdleTimeout = %v, want reception 9h and dsl 15m", got)
	}
	for _, bad := range []struct{ from, to, want string }{
		{"reception: 9h", "reception: 30s", "shorter than the minimum"},
		{"reception: 9h", "reception: 20h", "longer than the maximum"},
		{"reception: 9h", "reception: soon", "not a duration"},
		{"dsl: 15m", "pupil: 15m", "pupil"},
	} {
		_, err := Parse("/etc/gatehouse/gatehouse.yaml", []byte(strings.Replace(data, bad.from, bad.to, 1)))
		if err == nil || !strings.Contains(err.Error(), "idle_timeout") || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v, want a problem naming idle_timeout and %q", bad.to, err, bad.want)
		}
	}
}

// Issue 15: every slip printed "Wi-Fi network:" with nothing after it when
// site.guest_ssid was unset; check-config now says so.
func TestAdviceWhenGuestSSIDIsUnset(t *testing.T) {
	c, err := Parse("/etc/gatehouse/gatehouse.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	ps := c.Advice()
	if len(ps) != 1 || ps[0].Field != "site.guest_ssid" || !strings.Contains(ps[0].Msg, "slips") {
		t.Fatalf("advice %v, want one about site.guest_ssid", ps)
	}
	c, err = Parse("/etc/gatehouse/gatehouse.yaml", []byte(strings.Replace(minimal, "  name: Test School", "  name: Test School\n  guest_ssid: School-Guest", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if ps := c.Advice(); len(ps) != 0 {
		t.Errorf("advice with guest_ssid set: %v", ps)
	}
}
