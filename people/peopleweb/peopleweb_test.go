package peopleweb

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/people"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
	"github.com/gatehouse-net/gatehouse/web/webtest"
)

// The pages run over the store people.Service hands out, as it is.
var _ Store = (*store.Store)(nil)

func misFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../../shared/mis", name))
	if err != nil {
		t.Fatalf("sample MIS export: %v", err)
	}
	return b
}

func newSite(t *testing.T) (*webtest.Site, *people.Service) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "gh.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	loc, _ := time.LoadLocation("Europe/London")
	svc, err := people.New(people.Options{Store: st, Location: loc,
		Now: func() time.Time { return time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	site := webtest.New(t, webtest.Options{Store: st, Setup: func(srv *web.Server) error { return Register(srv, svc, nil) }})
	return site, svc
}

// upload posts files to the imports page as the form does.
func upload(t *testing.T, site *webtest.Site, b *webtest.Browser, files map[string][]byte) webtest.Response {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	w.WriteField("csrf", b.CSRF)
	for name, data := range files {
		fw, err := w.CreateFormFile("files", name)
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(data)
	}
	w.Close()
	req, err := http.NewRequest(http.MethodPost, site.URL+ImportsPath, &body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", w.FormDataContentType())
	return b.Do(req)
}

func TestImportPreviewThenConfirm(t *testing.T) {
	site, svc := newSite(t)
	nm := site.Browser(t, store.RoleNetwork)
	// Both exports together are bigger than an ordinary form may be.
	r := upload(t, site, nm, map[string][]byte{"pupils-sims.csv": misFile(t, "pupils-sims.csv"), "staff.csv": misFile(t, "staff.csv")})
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), ImportPath+"?id=") {
		t.Fatalf("upload: %d %s", r.StatusCode, r.Body)
	}
	loc := r.Header.Get("Location")
	page := nm.Get(loc)
	if page.StatusCode != 200 || !strings.Contains(page.Body, "360 joiners") || !strings.Contains(page.Body, "Apply this import") {
		t.Fatalf("preview page: %d %s", page.StatusCode, page.Body)
	}
	ps, _ := svc.Store().ListPeople(context.Background(), store.PeopleFilter{})
	if len(ps) != 0 {
		t.Fatal("a preview changed people")
	}
	id := strings.TrimPrefix(loc, ImportPath+"?id=")
	if r := nm.PostForm(ImportPath, url.Values{"id": {id}, "action": {"apply"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("apply: %d %s", r.StatusCode, r.Body)
	}
	if ps, _ := svc.Store().ListPeople(context.Background(), store.PeopleFilter{}); len(ps) != 360 {
		t.Fatalf("%d people after apply", len(ps))
	}
	if a := site.LastAudit(t); a.Action != "people.import.apply" || !strings.HasPrefix(a.Actor, "web:") {
		t.Fatalf("last audit %+v", a)
	}
	// Applying twice is refused.
	if r := nm.PostForm(ImportPath, url.Values{"id": {id}, "action": {"apply"}}); r.StatusCode != http.StatusConflict {
		t.Fatalf("second apply: %d", r.StatusCode)
	}
	// The errors file: every bad row shown with its line.
	r = upload(t, site, nm, map[string][]byte{"pupils-with-errors.csv": misFile(t, "pupils-with-errors.csv")})
	page = nm.Get(r.Header.Get("Location"))
	for _, want := range []string{"missing UPN", "duplicate UPN", "31/02/2027", "Year 15", "short row", "safety threshold"} {
		if !strings.Contains(page.Body, want) {
			t.Errorf("errors preview lacks %q", want)
		}
	}

	// Search, a person's page, postpone, hold, export.
	list := nm.Get(ListPath + "?q=murphy&kind=pupil")
	if list.StatusCode != 200 || !strings.Contains(list.Body, "Priya Murphy") {
		t.Fatalf("search: %d", list.StatusCode)
	}
	p, err := svc.Store().PersonByKey(context.Background(), "G00613543732A")
	if err != nil {
		t.Fatal(err)
	}
	pid := fmt.Sprint(p.ID)
	if r := nm.PostForm(PersonPath, url.Values{"id": {pid}, "action": {"postpone"}, "day": {"2027-07-30"}, "reason": {"resits"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("postpone: %d %s", r.StatusCode, r.Body)
	}
	if r := nm.PostForm(PersonPath, url.Values{"id": {pid}, "action": {"postpone"}, "day": {"2020-01-01"}, "reason": {"x"}}); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("postpone into the past: %d", r.StatusCode)
	}
	if r := nm.PostForm(PersonPath, url.Values{"id": {pid}, "action": {"hold"}, "reason": {"open case"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("hold: %d %s", r.StatusCode, r.Body)
	}
	page = nm.Get(PersonPath + "?id=" + pid)
	for _, want := range []string{"postponed to 2027-07-30 (resits)", "yes: open case", "person.postpone", "person.hold"} {
		if !strings.Contains(page.Body, want) {
			t.Errorf("person page lacks %q", want)
		}
	}
	ex := nm.Get(ExportPath + "?id=" + pid)
	var doc struct {
		Person  store.Person       `json:"person"`
		History []store.AuditEntry `json:"history"`
	}
	if ex.StatusCode != 200 || json.Unmarshal([]byte(ex.Body), &doc) != nil || doc.Person.UPN != "G00613543732A" || len(doc.History) < 3 {
		t.Fatalf("export: %d %s", ex.StatusCode, ex.Body)
	}
	if a := site.LastAudit(t); a.Action != "person.export" {
		t.Fatalf("export not audited: %+v", a)
	}
	if r := nm.Get(LeaversPath + "?days=30"); r.StatusCode != 200 || !strings.Contains(r.Body, "leaving day") {
		t.Fatalf("leavers: %d", r.StatusCode)
	}
	csvResp := nm.Get(ReviewPath)
	if csvResp.StatusCode != 200 || !strings.HasPrefix(csvResp.Body, "group,id,name") || strings.Count(csvResp.Body, "\n") < 300 {
		t.Fatalf("access review: %d", csvResp.StatusCode)
	}
	// Calendar.
	if r := nm.PostForm(CalendarPath, url.Values{"csv": {string(misFile(t, "term-dates-2026-27.csv"))}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("calendar: %d %s", r.StatusCode, r.Body)
	}
	if r := nm.Get(CalendarPath); !strings.Contains(r.Body, "2027-07-16") {
		t.Fatal("calendar page lacks the summer term")
	}
	if !svc.InTerm(time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)) {
		t.Fatal("the calendar did not reach the service")
	}
	// A custom group with a member named by username.
	if r := nm.PostForm(GroupsPath, url.Values{"action": {"create"}, "name": {"Chess club"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("create group: %d %s", r.StatusCode, r.Body)
	}
	gs, _ := svc.Store().Groups(context.Background())
	if len(gs) != 1 {
		t.Fatalf("groups %v", gs)
	}
	if r := nm.PostForm(GroupsPath, url.Values{"action": {"add"}, "group": {fmt.Sprint(gs[0].ID)}, "person": {"1001murp"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("add member: %d %s", r.StatusCode, r.Body)
	}
	if r := nm.PostForm(GroupsPath, url.Values{"action": {"add"}, "group": {fmt.Sprint(gs[0].ID)}, "person": {"nobody"}}); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("add an unknown person: %d", r.StatusCode)
	}
	if r := nm.Get(ListPath + "?group=Chess+club"); !strings.Contains(r.Body, "Priya Murphy") {
		t.Fatal("the group's member is not listed")
	}
}

func TestPagesAreForTheNetworkRoleOnly(t *testing.T) {
	site, _ := newSite(t)
	for _, role := range []string{store.RoleReception, store.RoleDSL} {
		b := site.Browser(t, role)
		for _, path := range []string{ListPath, PersonPath + "?id=1", ImportsPath, CalendarPath, LeaversPath, ReviewPath, ExportPath + "?id=1", GroupsPath} {
			if r := b.Get(path); r.StatusCode != http.StatusForbidden {
				t.Errorf("%s GET %s: %d", role, path, r.StatusCode)
			}
		}
		if r := b.PostForm(PersonPath, url.Values{"id": {"1"}, "action": {"revoke"}, "reason": {"x"}}); r.StatusCode != http.StatusForbidden {
			t.Errorf("%s POST person: %d", role, r.StatusCode)
		}
	}
	nm := site.Browser(t, store.RoleNetwork)
	if r := nm.Post(PersonPath, url.Values{"id": {"1"}, "action": {"revoke"}, "reason": {"x"}}); r.StatusCode != http.StatusForbidden {
		t.Errorf("POST without CSRF: %d", r.StatusCode)
	}
	if r := nm.Get(ListPath + "?state=nonsense"); r.StatusCode != http.StatusBadRequest {
		t.Errorf("bad filter: %d", r.StatusCode)
	}
}
