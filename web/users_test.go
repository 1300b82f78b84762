package web_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
	"github.com/gatehouse-net/gatehouse/web/webtest"
)

func TestCreateUserAndAuditPages(t *testing.T) {
	h := webtest.New(t, webtest.Options{})
	h.AddUser(t, "admin", web.RoleNetwork, testPassword)
	b := h.NewBrowser(t)
	b.Login("admin", testPassword)

	tests := []struct {
		name     string
		form     url.Values
		want     int
		wantText string
	}{
		{"short password", url.Values{"name": {"erin"}, "role": {web.RoleDSL}, "password": {"short"}, "confirm": {"short"}}, http.StatusBadRequest, "at least 12"},
		{"mismatch", url.Values{"name": {"erin"}, "role": {web.RoleDSL}, "password": {"a long enough password"}, "confirm": {"another long password"}}, http.StatusBadRequest, "do not match"},
		{"bad role", url.Values{"name": {"erin"}, "role": {"root"}, "password": {"a long enough password"}, "confirm": {"a long enough password"}}, http.StatusBadRequest, "Choose one of the roles"},
		{"bad name", url.Values{"name": {"erin smith"}, "role": {web.RoleDSL}, "password": {"a long enough password"}, "confirm": {"a long enough password"}}, http.StatusBadRequest, "letters, digits"},
		// Issue 15: "Mrs Patel" was refused; it is a display name beside a login name.
		{"display name with spaces", url.Values{"name": {"spatel"}, "display_name": {"Mrs  Patel "}, "role": {web.RoleReception}, "password": {"a long enough password"}, "confirm": {"a long enough password"}}, http.StatusSeeOther, ""},
		{"ok", url.Values{"name": {"erin"}, "role": {web.RoleDSL}, "password": {"a long enough password"}, "confirm": {"a long enough password"}}, http.StatusSeeOther, ""},
		{"duplicate", url.Values{"name": {"Erin"}, "role": {web.RoleDSL}, "password": {"a long enough password"}, "confirm": {"a long enough password"}}, http.StatusConflict, "already a user"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.form.Set("csrf", b.CSRFFrom("/users"))
			r := b.Post("/users", tc.form)
			if r.StatusCode != tc.want || !strings.Contains(r.Body, tc.wantText) {
				t.Fatalf("status %d, want %d with %q; body: %.300s", r.StatusCode, tc.want, tc.wantText, r.Body)
			}
		})
	}

	// The store audited the creation with the web actor, and the new user can log in.
	entries, err := h.Store.AuditList(context.Background(), 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(entries, func(e store.AuditEntry) bool {
		return e.Action == "user.create" && e.Actor == "web:admin" && e.Object == "user:erin"
	}) {
		t.Errorf("no user.create audit entry by web:admin for erin in %+v", entries)
	}
	h.NewBrowser(t).Login("erin", "a long enough password")
	if u, err := h.Store.UserByName(context.Background(), "spatel"); err != nil || u.DisplayName != "Mrs Patel" {
		t.Errorf("spatel: %+v %v, want display name \"Mrs Patel\"", u, err)
	}
	// The rules are on the form before anyone gets them wrong, and a
	// refused form keeps what was typed.
	form := b.Get("/users").Body
	for _, want := range []string{"spaces allowed", "no spaces", "12 characters", `pattern="`} {
		if !strings.Contains(form, want) {
			t.Errorf("the new-user form does not say %q before the first mistake", want)
		}
	}
	r := b.Post("/users", url.Values{"csrf": {b.CSRFFrom("/users")}, "name": {"mrs patel"}, "display_name": {"Mrs Patel"}, "role": {web.RoleReception}, "password": {"short"}, "confirm": {"short"}})
	if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, `value="Mrs Patel"`) || !strings.Contains(r.Body, "display name") {
		t.Errorf("a login name with a space: %d, want 400 that keeps the display name and points to it", r.StatusCode)
	}
	// The audit log is in words and the school's time, the JSON behind a disclosure.
	audit := b.Get("/audit?kind=user").Body
	if !strings.Contains(audit, "admin (network) created the admin user spatel") || !strings.Contains(audit, "<details>") {
		t.Errorf("the audit log does not say in words who created spatel:\n%s", audit)
	}
	if strings.Contains(audit, "signed out") || strings.Contains(audit, "signed in") {
		t.Errorf("the kind filter let other kinds through")
	}
	csv := b.Get("/audit.csv?kind=user")
	if csv.StatusCode != http.StatusOK || !strings.Contains(csv.Body, "in_words") || !strings.Contains(csv.Body, "created the admin user erin") {
		t.Errorf("audit CSV: %d\n%s", csv.StatusCode, csv.Body)
	}

	// Pagination: fill past two pages.
	for i := range 2 * web.AuditPageSize {
		if _, err := h.Store.Audit(context.Background(), store.AuditEntry{Actor: "test", Action: "fill", Object: "n:" + strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	rows := regexp.MustCompile(`<summary>Entry \d+</summary>`)
	p1 := b.Get("/audit")
	if n := len(rows.FindAllString(p1.Body, -1)); n != web.AuditPageSize || !strings.Contains(p1.Body, `href="/audit?page=2"`) {
		t.Errorf("page 1: %d rows (want %d) and a link to page 2", n, web.AuditPageSize)
	}
	p3 := b.Get("/audit?page=3")
	if n := len(rows.FindAllString(p3.Body, -1)); n == 0 || n >= web.AuditPageSize || strings.Contains(p3.Body, `href="/audit?page=4"`) {
		t.Errorf("page 3: %d rows, want a partial last page without a next link", n)
	}
	if r := b.Get("/audit?page=-1"); r.StatusCode != http.StatusBadRequest {
		t.Errorf("page=-1: %d, want 400", r.StatusCode)
	}
}
