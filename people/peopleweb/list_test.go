package peopleweb

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
)

// The people list pages, and its search and filters stay in the page links.
func TestPeopleListPagesKeepingTheSearch(t *testing.T) {
	site, _ := newSite(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	for i := range PageSize + 2 {
		if _, err := site.Store.CreatePerson(ctx, "cli:root", store.Person{Kind: "pupil", UPN: fmt.Sprintf("A%04d", i), LegalForename: "Pat",
			LegalSurname: fmt.Sprintf("Ash%04d", i), YearGroup: "Year 9", State: store.PersonActive}, now); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := site.Store.CreatePerson(ctx, "cli:root", store.Person{Kind: "staff", StaffCode: "ZZ", LegalForename: "Sam",
		LegalSurname: "Zed", State: store.PersonActive}, now); err != nil {
		t.Fatal(err)
	}
	nm := site.Browser(t, web.RoleNetwork)
	p1 := nm.Get(ListPath + "?q=Pat&kind=pupil").Body
	if n := strings.Count(p1, `<a href="/people/person?id=`); n != PageSize || !strings.Contains(p1, `href="/people?kind=pupil&amp;page=2&amp;q=Pat"`) ||
		!strings.Contains(p1, fmt.Sprintf("%d people match.", PageSize+2)) {
		t.Errorf("page 1 lists %d people, or lacks the link to page 2 or the count", n)
	}
	p2 := nm.Get(ListPath + "?kind=pupil&page=2&q=Pat").Body
	if n := strings.Count(p2, `<a href="/people/person?id=`); n != 2 || strings.Contains(p2, "Zed") {
		t.Errorf("page 2 lists %d people (want 2), or someone outside the search", n)
	}
	if one := nm.Get(ListPath + "?q=Zed").Body; !strings.Contains(one, "1 person matches.") {
		t.Errorf("one match is not counted in the singular")
	}
}
