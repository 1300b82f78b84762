package captive

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestACodeOpensOnlyAnAddressTheRouterGave: under MAC-address binding a
// device that gave itself an address is refused, and its code is not used
// up; once it holds a lease the same code admits it.
func TestACodeOpensOnlyAnAddressTheRouterGave(t *testing.T) {
	h := newHarness(t, Limits{})
	leased := map[string]bool{}
	h.p.bound = func(mac net.HardwareAddr, ip netip.Addr) bool { return leased[mac.String()+"/"+ip.String()] }
	code := h.issue(IssueRequest{Duration: time.Hour, MaxDevices: 1})
	ip := h.device(99)
	res := h.login(ip, code)
	body := readBody(t, res)
	if res.StatusCode == http.StatusSeeOther || len(h.adm.admitted) != 0 {
		t.Fatalf("a static address nobody gave was admitted: %d, %v", res.StatusCode, h.adm.admitted)
	}
	if !strings.Contains(body, "identify your device") {
		t.Errorf("the refusal does not tell the visitor what to do:\n%s", body)
	}
	leased[macOf(99)+"/"+ip] = true
	if res := h.login(ip, code); res.StatusCode != http.StatusSeeOther || len(h.adm.admitted) != 1 {
		t.Fatalf("the same device with a lease: %d, admitted %v; want 303 and one admission (the code was not used up)", res.StatusCode, h.adm.admitted)
	}
}
