package captive

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-net/gatehouse/store"
)

// TestReceptionStaysWithinTheNetworkManagersLimits: reception could issue
// unlimited-device codes and lift every rate limit; the network manager
// now sets what it may.
func TestReceptionStaysWithinTheNetworkManagersLimits(t *testing.T) {
	a := newAdminHarness(t)
	issue := func(user string, form url.Values) (int, string) {
		t.Helper()
		res, body := a.as(user, http.MethodPost, "/vouchers", form)
		return res.StatusCode, body
	}
	// The defaults: at most 5 devices a code, never unlimited, a week.
	if code, body := issue("frontdesk", url.Values{"duration": {"2h"}, "count": {"1"}, "devices": {"0"}}); code != http.StatusBadRequest || !strings.Contains(body, "not unlimited") {
		t.Errorf("reception's unlimited-device code: %d\n%s", code, body)
	}
	if code, _ := issue("frontdesk", url.Values{"duration": {"720h"}, "count": {"1"}, "devices": {"1"}}); code != http.StatusBadRequest {
		t.Errorf("reception's 30-day code: %d, want refused", code)
	}
	// Issued codes answer 303 to their print page.
	if code, _ := issue("netman", url.Values{"duration": {"720h"}, "count": {"1"}, "devices": {"0"}}); code != http.StatusSeeOther {
		t.Errorf("the network manager's unlimited 30-day code: %d, want issued", code)
	}
	// The network manager sets caps on the Portal page.
	res, body := a.as("netman", http.MethodPost, "/portal/limits", url.Values{"max_devices": {"2"}, "max_duration_hours": {"24"}, "max_rate_mbps": {"5"}, "max_quota_mb": {"500"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("set limits: %d\n%s", res.StatusCode, body)
	}
	if res, _ := a.as("frontdesk", http.MethodPost, "/portal/limits", url.Values{"max_devices": {"1000"}, "max_duration_hours": {"8784"}}); res.StatusCode != http.StatusForbidden {
		t.Errorf("reception setting its own limits: %d, want 403", res.StatusCode)
	}
	if _, page := a.as("netman", http.MethodGet, "/portal", nil); !strings.Contains(page, `name="max_rate_mbps" type="number" min="0" step="any" value="5"`) {
		t.Errorf("the Portal page does not show the limits:\n%s", page)
	}
	if code, body := issue("frontdesk", url.Values{"duration": {"2h"}, "count": {"1"}, "devices": {"3"}}); code != http.StatusBadRequest || !strings.Contains(body, "at most 2 devices") {
		t.Errorf("reception's 3-device code under a cap of 2: %d", code)
	}
	if code, body := issue("frontdesk", url.Values{"duration": {"2h"}, "count": {"1"}, "devices": {"1"}, "rate_down": {"50"}}); code != http.StatusBadRequest || !strings.Contains(body, "download rate may be at most 5 Mbit/s") {
		t.Errorf("reception's 50 Mbit/s code under a cap of 5: %d", code)
	}
	// The quick form: the caps fill the empty rate and quota.
	if code, body := issue("frontdesk", url.Values{"duration": {"2h"}}); code != http.StatusSeeOther {
		t.Fatalf("reception's quick code: %d\n%s", code, body)
	}
	vs, err := a.st.ListVouchers(context.Background(), store.VoucherFilter{})
	if err != nil {
		t.Fatal(err)
	}
	v := vs[0]
	if v.RateDownBps != 5_000_000 || v.RateUpBps != 5_000_000 || v.QuotaBytes != 500_000_000 || v.MaxDevices != 1 {
		t.Errorf("reception's quick code %+v, want the caps as its rate and quota", v)
	}
	if e := a.site.AuditWith(t, "reception.limits"); len(e) != 1 || e[0].Actor != "web:netman" {
		t.Errorf("audit of the limits: %+v", e)
	}
}

// The API bounds a reception token the same way as the form.
func TestReceptionTokensStayWithinTheLimits(t *testing.T) {
	a := newAPIHarness(t)
	if status, body := a.call("kiosk", http.MethodPost, "/api/v1/vouchers", `{"duration":"1h","devices":0}`); status != http.StatusBadRequest || !strings.Contains(body, "not unlimited") {
		t.Errorf("a reception token's unlimited-device code: %d %s", status, body)
	}
	if status, body := a.call("kiosk", http.MethodPost, "/api/v1/vouchers", `{"duration":"1h","devices":2}`); status != http.StatusCreated {
		t.Errorf("a reception token's code within the limits: %d %s", status, body)
	}
}
