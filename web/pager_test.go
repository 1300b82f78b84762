package web

import (
	"net/url"
	"strings"
	"testing"
)

func TestPagerKeepsFiltersInItsLinks(t *testing.T) {
	q := url.Values{"q": {"lab pc"}, "segment": {"pupil"}, "page": {"2"}, "seen": {""}}
	p := NewPager("/devices", q, 2, 10, 25)
	if p.Pages != 3 || p.PrevURL != "/devices?q=lab+pc&segment=pupil" || p.NextURL != "/devices?page=3&q=lab+pc&segment=pupil" {
		t.Errorf("pager = %+v", p)
	}
	h := string(p.HTML())
	if !strings.Contains(h, `href="/devices?page=3&amp;q=lab+pc&amp;segment=pupil"`) || !strings.Contains(h, "Page 2 of 3") {
		t.Errorf("links = %s", h)
	}
	if one := NewPager("/devices", nil, 1, 10, 10); one.HTML() != "" || one.Pages != 1 {
		t.Errorf("a list that fits one page shows links: %+v", one)
	}
	if empty := NewPager("/devices", nil, 1, 10, 0); empty.Pages != 1 || empty.NextURL != "" {
		t.Errorf("empty list pager = %+v", empty)
	}
}
