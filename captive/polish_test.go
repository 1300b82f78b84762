package captive

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Issue 15: on a phone the code field comes before the AUP, which is one
// tap away (a disclosure) and must still be accepted; after an error the
// focus moves to the error summary, which links to the field at fault.
func TestPortalPutsTheCodeFirstAndFocusesTheError(t *testing.T) {
	h := newHarness(t, Limits{})
	ip := h.device(51)
	res := h.do("GET", portalHost, "/", ip, nil)
	body := readBody(t, res)
	code, aup, accept := strings.Index(body, `id="code"`), strings.Index(body, `<details class="aup"`), strings.Index(body, `id="accept"`)
	if code < 0 || aup < 0 || accept < 0 || !(code < aup && aup < accept) {
		t.Fatalf("order of code field %d, AUP %d, acceptance %d: want code, then the AUP, then the box", code, aup, accept)
	}
	if !strings.Contains(body, "<summary>Read the Acceptable Use Policy</summary>") || !strings.Contains(body, `name="accept" value="yes" required`) {
		t.Errorf("the AUP is not one tap away, or its acceptance is not required")
	}
	if strings.Contains(body, `id="problem"`) {
		t.Errorf("an error summary without an error")
	}

	c := h.issue(IssueRequest{Duration: time.Hour})
	res = h.do("POST", portalHost, "/login", ip, url.Values{"code": {c}})
	body = readBody(t, res)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="problem" tabindex="-1" autofocus`) ||
		!strings.Contains(body, `<a href="#accept">Tick the box`) || !strings.Contains(body, `<details class="aup" id="aup" open>`) {
		t.Errorf("without acceptance: the summary does not take the focus, link to the box, or open the AUP:\n%s", body)
	}
	res = h.do("POST", portalHost, "/login", ip, url.Values{"code": {"AAAAA-BBBBB"}, "accept": {"yes"}})
	body = readBody(t, res)
	if !strings.Contains(body, `<a href="#code">That code is not right`) || !strings.Contains(body, `aria-invalid="true"`) {
		t.Errorf("a wrong code: the summary does not link to the code field:\n%s", body)
	}
}
