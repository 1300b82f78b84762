package peopleweb

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
)

// noon is a day's midday in London, where the sample school is.
func noon(t *testing.T, day string) time.Time {
	t.Helper()
	loc, _ := time.LoadLocation("Europe/London")
	d, err := time.ParseInLocation("2006-01-02 15:04", day+" 12:00", loc)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestCalendarEditing: the network manager adds, changes and deletes a
// term and a holiday with plain forms; each change is one audit row, is
// followed by a redirect to the page, and reaches the calendar the rules
// read (term time). Mistakes are refused with the reason and change
// nothing; a form without the CSRF token and the other roles are refused.
func TestCalendarEditing(t *testing.T) {
	site, svc := newSite(t)
	nm := site.Browser(t, store.RoleNetwork)
	inTerm := func(day string) bool { return svc.InTerm(noon(t, day)) }
	post := func(form url.Values, want int) string {
		t.Helper()
		r := nm.PostForm(CalendarPath, form)
		if r.StatusCode != want {
			t.Fatalf("POST %v: %d, want %d\n%s", form, r.StatusCode, want, r.Body)
		}
		if want == http.StatusSeeOther {
			if loc := r.Header.Get("Location"); loc != CalendarPath+"?done="+form.Get("action") {
				t.Fatalf("POST %v redirects to %q", form, loc)
			}
		}
		return r.Body
	}
	audits := func(action string) int { return len(site.AuditWith(t, action)) }

	// Add a term with its half-term.
	autumn := url.Values{"action": {"term_save"}, "name": {"Autumn"}, "starts": {"2026-09-03"}, "ends": {"2026-12-18"},
		"half_term_starts": {"2026-10-26"}, "half_term_ends": {"2026-10-30"}}
	post(autumn, http.StatusSeeOther)
	if page := nm.Get(CalendarPath + "?done=term_save"); !strings.Contains(page.Body, "Term saved.") || !strings.Contains(page.Body, "2026-10-26 to 2026-10-30") {
		t.Fatalf("the page after saving:\n%s", page.Body)
	}
	if !inTerm("2026-10-05") || inTerm("2026-10-27") || inTerm("2027-01-06") {
		t.Fatal("the new term is not what InTerm reads")
	}
	if audits("calendar.term.add") != 1 {
		t.Fatal("adding a term is not audited once")
	}

	// Mistakes: overlapping, a half-term outside, no name, not a date.
	for _, bad := range []struct {
		set  map[string]string
		want string
	}{
		{map[string]string{"name": "Also autumn", "starts": "2026-12-01", "ends": "2027-01-10", "half_term_starts": "", "half_term_ends": ""}, "overlaps Autumn"},
		{map[string]string{"name": "Spring", "starts": "2027-01-05", "ends": "2027-03-26", "half_term_starts": "2027-04-01", "half_term_ends": "2027-04-02"}, "half-term is not inside"},
		{map[string]string{"name": " ", "starts": "2027-01-05", "ends": "2027-03-26"}, "give the term a name"},
		{map[string]string{"name": "Spring", "starts": "2027-02-30", "ends": "2027-03-26"}, "not a date"},
		{map[string]string{"name": "Spring", "starts": "2027-03-26", "ends": "2027-01-05", "half_term_starts": "", "half_term_ends": ""}, "ends before it starts"},
	} {
		f := url.Values{"action": {"term_save"}}
		for k, v := range bad.set {
			f.Set(k, v)
		}
		if body := post(f, http.StatusBadRequest); !strings.Contains(body, bad.want) {
			t.Errorf("%v: the page does not say %q", bad.set, bad.want)
		}
	}
	if len(svc.Terms()) != 1 || audits("calendar.term.add") != 1 {
		t.Fatalf("a refused term changed the calendar: %v", svc.Terms())
	}

	// Edit: the form comes filled in; the term now ends a day earlier.
	if page := nm.Get(CalendarPath + "?term=2026-09-03"); !strings.Contains(page.Body, `value="2026-12-18"`) || !strings.Contains(page.Body, "Change the Autumn term") {
		t.Fatalf("edit form:\n%s", page.Body)
	}
	if r := nm.Get(CalendarPath + "?term=2030-01-01"); r.StatusCode != http.StatusNotFound {
		t.Errorf("editing a term that is not there: %d", r.StatusCode)
	}
	autumn.Set("was", "2026-09-03")
	autumn.Set("ends", "2026-12-17")
	post(autumn, http.StatusSeeOther)
	if !inTerm("2026-12-17") || inTerm("2026-12-18") || len(svc.Terms()) != 1 || audits("calendar.term.edit") != 1 {
		t.Fatalf("after the edit: %v", svc.Terms())
	}

	// A holiday of one day (an INSET day), moved, then deleted.
	post(url.Values{"action": {"holiday_save"}, "name": {"INSET day"}, "starts": {"2026-09-07"}}, http.StatusSeeOther)
	hs := svc.Holidays()
	if len(hs) != 1 || hs[0].EndsOn != "2026-09-07" || inTerm("2026-09-07") || !inTerm("2026-09-08") {
		t.Fatalf("holiday %v", hs)
	}
	id := fmt.Sprint(hs[0].ID)
	if page := nm.Get(CalendarPath + "?holiday=" + id); !strings.Contains(page.Body, `value="INSET day"`) {
		t.Fatal("the holiday's edit form is not filled in")
	}
	post(url.Values{"action": {"holiday_save"}, "id": {id}, "name": {"INSET days"}, "starts": {"2026-09-08"}, "ends": {"2026-09-09"}}, http.StatusSeeOther)
	if !inTerm("2026-09-07") || inTerm("2026-09-08") || inTerm("2026-09-09") || audits("calendar.holiday.edit") != 1 {
		t.Fatalf("after moving the holiday: %v", svc.Holidays())
	}
	if body := post(url.Values{"action": {"holiday_save"}, "name": {"Backwards"}, "starts": {"2026-09-10"}, "ends": {"2026-09-01"}}, http.StatusBadRequest); !strings.Contains(body, "ends before it starts") {
		t.Error("a backwards holiday is not explained")
	}

	// Without the CSRF token nothing changes; other roles may not post.
	if r := nm.Post(CalendarPath, url.Values{"action": {"holiday_delete"}, "id": {id}}); r.StatusCode != http.StatusForbidden {
		t.Errorf("POST without CSRF: %d", r.StatusCode)
	}
	for _, role := range []string{store.RoleReception, store.RoleDSL} {
		if r := site.Browser(t, role).PostForm(CalendarPath, url.Values{"action": {"term_delete"}, "was": {"2026-09-03"}}); r.StatusCode != http.StatusForbidden {
			t.Errorf("%s POST calendar: %d", role, r.StatusCode)
		}
	}
	if len(svc.Holidays()) != 1 || len(svc.Terms()) != 1 {
		t.Fatal("a refused request changed the calendar")
	}

	post(url.Values{"action": {"holiday_delete"}, "id": {id}}, http.StatusSeeOther)
	if !inTerm("2026-09-08") || len(svc.Holidays()) != 0 || audits("calendar.holiday.delete") != 1 {
		t.Fatal("the holiday is not deleted")
	}
	post(url.Values{"action": {"term_delete"}, "was": {"2026-09-03"}}, http.StatusSeeOther)
	if inTerm("2026-10-05") || len(svc.Terms()) != 0 || audits("calendar.term.delete") != 1 {
		t.Fatal("the term is not deleted")
	}
	if r := nm.PostForm(CalendarPath, url.Values{"action": {"term_delete"}, "was": {"2026-09-03"}}); r.StatusCode != http.StatusNotFound {
		t.Errorf("deleting it again: %d", r.StatusCode)
	}
	last := site.LastAudit(t)
	if last.Action != "calendar.term.delete" || last.Actor != "web:"+nm.User.Name || !strings.Contains(last.Before, "Autumn") {
		t.Errorf("audit %+v", last)
	}
}
