// Package peopleweb is the network manager's pages for people: the list
// with search and filters, a person's page (groups, devices, revocations,
// history; postpone, records hold, revoke now, reinstate, a subject access
// export), MIS imports with their previews and confirmation, the term
// calendar (terms, half-terms and holidays, edited one at a time or a year
// from a CSV), the leavers ahead, and the termly access review as CSV; and,
// for the DSL, the limited view of people: only those a finding names,
// with their groups and the devices the findings name.
//
// It owns the pages and their form handling only; every change goes through
// package people (which writes the store and the kernel together). Sessions,
// roles and CSRF are package web's.
package peopleweb

import (
	"bytes"
	"context"
	"embed"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-net/gatehouse/web/httpx"

	"github.com/gatehouse-net/gatehouse/people"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
)

// Paths of the pages.
const (
	ListPath     = "/people"
	PersonPath   = "/people/person"
	ExportPath   = "/people/person/export"
	ImportsPath  = "/people/imports"
	ImportPath   = "/people/import"
	CalendarPath = "/people/calendar"
	LeaversPath  = "/people/leavers"
	ReviewPath   = "/people/access-review.csv"
	GroupsPath   = "/people/groups"
	// NamedPath and NamedPersonPath are the DSL's limited view: the people
	// findings name, with their groups and the devices those findings
	// name, and nothing else.
	NamedPath       = "/people/named"
	NamedPersonPath = "/people/named/person"
	// SelfServicePath is the public page where a person changes their own
	// Wi-Fi password (no account on this server needed).
	SelfServicePath = "/wifi-password"
)

// PageSize is how many people one page of the list shows.
const PageSize = 100

// listLimit bounds the other listings (the people findings name).
const listLimit = 500

// maxUpload bounds an import's upload (several exports together).
const maxUpload = 16 << 20

//go:embed templates/*.html
var templates embed.FS

// Store is the part of the database the pages read directly: people,
// their groups, devices, revocations and history, the imports, the people
// findings name, and the audit rows for an export and an access review.
// Every change to a person goes through package people instead.
// *store.Store (what people.Service.Store returns) is one; only package
// store speaks SQL.
type Store interface {
	// People and what hangs off them.
	ListPeople(ctx context.Context, f store.PeopleFilter) ([]store.Person, error)
	CountPeople(ctx context.Context, f store.PeopleFilter) (int, error)
	PersonByID(ctx context.Context, id int64) (store.Person, error)
	Groups(ctx context.Context) ([]store.PersonGroup, error)
	GroupsOf(ctx context.Context, personID int64) ([]string, error)
	DevicesOf(ctx context.Context, ids []int64) ([]store.OwnedDevice, error)
	Revocations(ctx context.Context, personID int64) ([]store.Revocation, error)

	// MIS imports.
	ListImports(ctx context.Context, limit int) ([]store.ImportRun, error)
	Import(ctx context.Context, id int64) (store.ImportRun, error)
	DiscardImport(ctx context.Context, actor string, id int64, now time.Time) error

	// The DSL's limited view.
	PeopleNamedByFindings(ctx context.Context, limit int) ([]store.NamedPerson, error)
	NamedByFindings(ctx context.Context, personID int64) (store.NamedPerson, []store.NamedDevice, error)

	// History, and the audit rows of a subject access export and a review.
	AuditFor(ctx context.Context, object string, limit int) ([]store.AuditEntry, error)
	Audit(ctx context.Context, e store.AuditEntry) (store.AuditEntry, error)
}

type pages struct {
	srv *web.Server
	svc *people.Service
	st  Store
	log *slog.Logger
	t   map[string]*template.Template
}

// Register adds the pages to srv for the network role. Call it before srv
// is started.
func Register(srv *web.Server, svc *people.Service, logger *slog.Logger) error {
	if srv == nil || svc == nil {
		return errors.New("peopleweb: register: web server and people service are required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &pages{srv: srv, svc: svc, st: svc.Store(), log: logger, t: map[string]*template.Template{}}
	loc := svc.Location()
	funcs := template.FuncMap{
		"name":   people.DisplayName,
		"key":    people.Key,
		"plural": web.Plural,
		"when": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.In(loc).Format("2006-01-02 15:04")
		},
		"group": func(pp store.Person) string {
			if pp.Kind == "staff" {
				return strings.TrimSpace("staff " + pp.Role)
			}
			return strings.TrimSpace(pp.YearGroup + " " + pp.RegGroup)
		},
	}
	for _, n := range []string{"list", "person", "imports", "import", "calendar", "leavers", "groups", "selfservice", "named", "namedperson"} {
		t, err := template.New(n+".html").Funcs(funcs).ParseFS(templates, "templates/"+n+".html")
		if err != nil {
			return fmt.Errorf("peopleweb: parse %s template: %w", n, err)
		}
		p.t[n] = t
	}
	network := []string{web.RoleNetwork}
	srv.AddPage(web.Page{Path: ListPath, Title: "People", Roles: network, GET: p.listPage})
	srv.AddPage(web.Page{Path: PersonPath, Roles: network, GET: p.personPage, POST: p.changePerson})
	srv.AddPage(web.Page{Path: ExportPath, Roles: network, GET: p.export})
	srv.AddPage(web.Page{Path: ImportsPath, Title: "Imports", Roles: network, GET: p.importsPage, POST: p.upload, MaxBody: maxUpload})
	srv.AddPage(web.Page{Path: ImportPath, Roles: network, GET: p.importPage, POST: p.decideImport})
	srv.AddPage(web.Page{Path: CalendarPath, Title: "Calendar", Roles: network, GET: p.calendarPage, POST: p.changeCalendar})
	srv.AddPage(web.Page{Path: LeaversPath, Title: "Leavers", Roles: network, GET: p.leaversPage})
	srv.AddPage(web.Page{Path: ReviewPath, Roles: network, GET: p.accessReview})
	srv.AddPage(web.Page{Path: GroupsPath, Title: "Groups", Roles: network, GET: p.groupsPage, POST: p.changeGroups})
	dsl := []string{web.RoleDSL}
	srv.AddPage(web.Page{Path: NamedPath, Title: "Named people", Roles: dsl, GET: p.namedPage})
	srv.AddPage(web.Page{Path: NamedPersonPath, Roles: dsl, GET: p.namedPersonPage})
	srv.AddPublicForm(web.PublicForm{Path: SelfServicePath, Title: "Change your Wi-Fi password", GET: p.selfServicePage, POST: p.selfServiceChange})
	return nil
}

func (p *pages) dbError(c *httpx.Context, what string, err error) {
	u, _ := web.CurrentUser(c)
	p.log.Error("peopleweb: "+what, "user", u.Name, "err", err)
	p.srv.RenderError(c, http.StatusInternalServerError, "The database could not be read or written. Try again; if it keeps failing, check the daemon's log.")
}

// namedPage lists the people findings name, for the DSL.
func (p *pages) namedPage(c *httpx.Context) {
	ns, err := p.st.PeopleNamedByFindings(c.Request.Context(), listLimit)
	if err != nil {
		p.dbError(c, "people named by findings", err)
		return
	}
	v := p.srv.View(c, "Named people")
	v.Data = ns
	p.srv.Render(c, http.StatusOK, p.t["named"], v)
}

type namedPersonData struct {
	Person  store.NamedPerson
	Groups  []string
	Devices []store.NamedDevice
}

// namedPersonPage is one person as the DSL may see them: name, groups and
// the devices findings name. A person no finding names is "not found",
// the same answer as for a person who does not exist, so the page tells
// the DSL nothing about people outside the findings.
func (p *pages) namedPersonPage(c *httpx.Context) {
	id, err := strconv.ParseInt(c.Query("id"), 10, 64)
	if err != nil || id <= 0 {
		p.srv.RenderError(c, http.StatusBadRequest, "That is not a person's number.")
		return
	}
	ctx := c.Request.Context()
	np, devs, err := p.st.NamedByFindings(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		p.srv.RenderError(c, http.StatusNotFound, "No finding names this person.")
		return
	}
	if err != nil {
		p.dbError(c, "person named by findings", err)
		return
	}
	d := namedPersonData{Person: np, Devices: devs}
	pp := np.Person
	if pp.Kind == "staff" {
		d.Groups = append(d.Groups, "Staff")
		if pp.Role != "" {
			d.Groups = append(d.Groups, pp.Role)
		}
	} else {
		for _, g := range []string{pp.YearGroup, pp.RegGroup} {
			if g != "" {
				d.Groups = append(d.Groups, g)
			}
		}
	}
	custom, err := p.st.GroupsOf(ctx, pp.ID)
	if err != nil {
		p.dbError(c, "person named by findings", err)
		return
	}
	d.Groups = append(d.Groups, custom...)
	v := p.srv.View(c, people.DisplayName(pp))
	v.Data = d
	p.srv.Render(c, http.StatusOK, p.t["namedperson"], v)
}

type listData struct {
	Q, Kind, State, Group string
	People                []store.Person
	Pager                 web.Pager // keeps the search and filters
}

func (p *pages) listPage(c *httpx.Context) {
	d := listData{Q: strings.TrimSpace(c.Query("q")), Kind: c.Query("kind"), State: c.Query("state"), Group: strings.TrimSpace(c.Query("group"))}
	v := p.srv.View(c, "People")
	f := store.PeopleFilter{Search: d.Q, Group: d.Group}
	status := http.StatusOK
	page, ok := web.PageNumber(c)
	if !ok {
		v.Error, status = "The page number must be a positive whole number.", http.StatusBadRequest
	}
	switch d.Kind {
	case "", "pupil", "staff":
		f.Kind = d.Kind
	default:
		v.Error, status, d.Kind = "Kind must be pupil or staff.", http.StatusBadRequest, ""
	}
	switch d.State {
	case "":
	case store.PersonActive, store.PersonLeaving, store.PersonRevoked, store.PersonLeft:
		f.States = []string{d.State}
	default:
		v.Error, status, d.State = "Choose a state from the list.", http.StatusBadRequest, ""
	}
	if len(d.Q) > 100 || len(d.Group) > 100 {
		v.Error, status, f.Search, f.Group = "A search is at most 100 characters.", http.StatusBadRequest, "", ""
	}
	total, err := p.st.CountPeople(c.Request.Context(), f)
	var ps []store.Person
	if err == nil {
		f.Limit, f.Offset = PageSize, (page-1)*PageSize
		ps, err = p.st.ListPeople(c.Request.Context(), f)
	}
	if err != nil {
		p.dbError(c, "list people", err)
		return
	}
	d.People = ps
	d.Pager = web.NewPager(ListPath, url.Values{"q": {d.Q}, "kind": {d.Kind}, "state": {d.State}, "group": {d.Group}}, page, PageSize, total)
	v.Data = d
	p.srv.Render(c, status, p.t["list"], v)
}

func (p *pages) personFor(c *httpx.Context, raw string) (store.Person, bool) {
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		p.srv.RenderError(c, http.StatusBadRequest, "That is not a person's number.")
		return store.Person{}, false
	}
	pp, err := p.st.PersonByID(c.Request.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		p.srv.RenderError(c, http.StatusNotFound, "There is no such person (a leaver's record may have been purged).")
		return store.Person{}, false
	}
	if err != nil {
		p.dbError(c, "read person", err)
		return store.Person{}, false
	}
	return pp, true
}

type personData struct {
	Person      store.Person
	Groups      []string
	Devices     []store.Device
	Revocations []store.Revocation
	History     []store.AuditEntry
	Departure   *people.Departure
	Today       string
	// WiFiPassword says whether the person has a Wi-Fi password, and
	// WiFiNTHash whether it is also kept for MSCHAPv2 (PEAP).
	WiFiPassword, WiFiNTHash bool
	// NewPassword is a password just set, shown this once.
	NewPassword string
}

func (p *pages) personPage(c *httpx.Context) {
	pp, ok := p.personFor(c, c.Query("id"))
	if !ok {
		return
	}
	v := p.srv.View(c, people.DisplayName(pp))
	if n := c.Query("done"); n != "" {
		v.Notice = doneText(n)
	}
	p.renderPerson(c, http.StatusOK, v, pp)
}

func (p *pages) renderPerson(c *httpx.Context, status int, v *web.View, pp store.Person) {
	ctx := c.Request.Context()
	d := personData{Person: pp, Today: p.svc.Now().In(p.svc.Location()).Format("2006-01-02")}
	var err error
	if d.Groups, err = p.st.GroupsOf(ctx, pp.ID); err == nil {
		if d.Devices, err = p.svc.DevicesOfPerson(ctx, pp.ID); err == nil {
			if d.Revocations, err = p.st.Revocations(ctx, pp.ID); err == nil {
				d.History, err = p.st.AuditFor(ctx, fmt.Sprintf("person:%d", pp.ID), 50)
			}
		}
	}
	if err != nil {
		p.dbError(c, "read person", err)
		return
	}
	if d.WiFiPassword, d.WiFiNTHash, err = p.svc.WiFiPasswordState(ctx, pp); err != nil {
		p.dbError(c, "read person", err)
		return
	}
	if np, ok := c.Get(newPasswordKey); ok {
		d.NewPassword, _ = np.(string)
	}
	if ds, err := p.svc.Departures(ctx, p.svc.Now().AddDate(5, 0, 0)); err == nil {
		for _, dep := range ds {
			if dep.Person.ID == pp.ID {
				dep := dep
				d.Departure = &dep
			}
		}
	}
	v.Data = d
	p.srv.Render(c, status, p.t["person"], v)
}

func doneText(k string) string {
	switch k {
	case "postpone":
		return "The end of access is postponed."
	case "hold":
		return "Records hold set: this person's records outlive the retention period."
	case "unhold":
		return "Records hold lifted."
	case "revoke":
		return "Access revoked: devices refused, sessions ended, admin account disabled."
	case "reinstate":
		return "Access reinstated."
	case "wifi_password_remove":
		return "Wi-Fi password removed."
	}
	return ""
}

func (p *pages) changePerson(c *httpx.Context) {
	pp, ok := p.personFor(c, c.PostForm("id"))
	if !ok {
		return
	}
	ctx := c.Request.Context()
	actor := web.Actor(c)
	action := c.PostForm("action")
	var err error
	switch action {
	case "postpone":
		_, err = p.svc.Postpone(ctx, actor, pp.ID, strings.TrimSpace(c.PostForm("day")), c.PostForm("reason"))
	case "hold":
		_, err = p.svc.Hold(ctx, actor, pp.ID, true, c.PostForm("reason"))
	case "unhold":
		_, err = p.svc.Hold(ctx, actor, pp.ID, false, "")
	case "revoke":
		reason := strings.TrimSpace(c.PostForm("reason"))
		if reason == "" || len(reason) > 200 {
			err = errors.New("give a reason of at most 200 characters")
		} else {
			_, err = p.svc.RevokeNow(ctx, actor, pp.ID, reason)
		}
	case "reinstate":
		err = p.svc.Reinstate(ctx, actor, pp.ID)
	case "wifi_password":
		p.setWiFiPassword(c, pp)
		return
	case "wifi_password_remove":
		err = p.svc.SetWiFiPassword(ctx, actor, pp.ID, "")
	default:
		err = errors.New("unknown action")
	}
	if err != nil {
		v := p.srv.View(c, people.DisplayName(pp))
		v.Error = "Not done: " + err.Error() + "."
		if fresh, ferr := p.st.PersonByID(ctx, pp.ID); ferr == nil {
			pp = fresh
		}
		status := http.StatusBadRequest
		if errors.Is(err, store.ErrConflict) {
			status = http.StatusConflict
		}
		p.renderPerson(c, status, v, pp)
		return
	}
	c.Redirect(http.StatusSeeOther, fmt.Sprintf("%s?id=%d&done=%s", PersonPath, pp.ID, action))
}

// export is a subject access request's answer: everything Gatehouse holds
// about one person, as JSON. The export itself is audited.
func (p *pages) export(c *httpx.Context) {
	pp, ok := p.personFor(c, c.Query("id"))
	if !ok {
		return
	}
	ctx := c.Request.Context()
	devs, err := p.svc.DevicesOfPerson(ctx, pp.ID)
	if err != nil {
		p.dbError(c, "export", err)
		return
	}
	groups, _ := p.st.GroupsOf(ctx, pp.ID)
	revs, _ := p.st.Revocations(ctx, pp.ID)
	hist, _ := p.st.AuditFor(ctx, fmt.Sprintf("person:%d", pp.ID), store.MaxAuditPage)
	type device struct {
		MAC, Name, Hostname, Segment, IP, Manufacturer string
		FirstSeen, LastSeen                            time.Time
		Approved, Blocked                              bool
	}
	out := struct {
		Person      store.Person       `json:"person"`
		Groups      []string           `json:"groups"`
		Devices     []device           `json:"devices"`
		Revocations []store.Revocation `json:"revocations"`
		History     []store.AuditEntry `json:"history"`
		ExportedAt  time.Time          `json:"exported_at"`
	}{Person: pp, Groups: groups, Revocations: revs, History: hist, ExportedAt: p.svc.Now().UTC()}
	for _, d := range devs {
		ip := ""
		if d.IP.IsValid() {
			ip = d.IP.String()
		}
		out.Devices = append(out.Devices, device{d.MAC.String(), d.Name, d.Hostname, d.Segment, ip, d.Manufacturer, d.FirstSeen, d.LastSeen, d.Approved, d.Blocked})
	}
	body, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		p.dbError(c, "export", err)
		return
	}
	if _, err := p.st.Audit(ctx, store.AuditEntry{Actor: web.Actor(c), Action: "person.export", Object: fmt.Sprintf("person:%d", pp.ID)}); err != nil {
		p.dbError(c, "audit export", err)
		return
	}
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="person-%d.json"`, pp.ID))
	c.Data(http.StatusOK, "application/json", body)
}

type importsData struct {
	Runs []store.ImportRun
}

func (p *pages) importsPage(c *httpx.Context) {
	v := p.srv.View(c, "Imports")
	p.renderImports(c, http.StatusOK, v)
}

func (p *pages) renderImports(c *httpx.Context, status int, v *web.View) {
	runs, err := p.st.ListImports(c.Request.Context(), 30)
	if err != nil {
		p.dbError(c, "list imports", err)
		return
	}
	v.Data = importsData{Runs: runs}
	p.srv.Render(c, status, p.t["imports"], v)
}

// upload reads the posted exports (CSV files read together) and records
// their preview; nothing about people changes until it is confirmed.
func (p *pages) upload(c *httpx.Context) {
	v := p.srv.View(c, "Imports")
	fail := func(status int, msg string) {
		v.Error = msg
		p.renderImports(c, status, v)
	}
	form, err := c.MultipartForm()
	if err != nil {
		fail(http.StatusBadRequest, "Choose one or more CSV files to import (at most 16 MiB together).")
		return
	}
	files := form.File["files"]
	if len(files) == 0 || len(files) > 10 {
		fail(http.StatusBadRequest, "Choose between one and ten CSV files.")
		return
	}
	ctx := c.Request.Context()
	saved, err := p.svc.SavedShapes(ctx)
	if err != nil {
		p.dbError(c, "read column mappings", err)
		return
	}
	var bs []people.Batch
	var names []string
	for _, fh := range files {
		data, err := readUpload(fh)
		if err != nil {
			fail(http.StatusBadRequest, fh.Filename+": "+err.Error())
			return
		}
		b, err := people.ParseCSV(cleanName(fh.Filename), data, saved)
		if err != nil {
			fail(http.StatusBadRequest, err.Error())
			return
		}
		bs = append(bs, b)
		names = append(names, cleanName(fh.Filename))
	}
	pv, err := p.svc.Preview(ctx, web.Actor(c), people.Merge(strings.Join(names, " + "), bs...))
	if err != nil {
		p.dbError(c, "preview import", err)
		return
	}
	c.Redirect(http.StatusSeeOther, fmt.Sprintf("%s?id=%d", ImportPath, pv.ID))
}

func readUpload(fh *multipart.FileHeader) ([]byte, error) {
	if fh.Size > people.MaxFileBytes {
		return nil, errors.New("the file is too large")
	}
	f, err := fh.Open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, people.MaxFileBytes))
}

// cleanName keeps an uploaded file's base name printable and short.
func cleanName(s string) string {
	if i := strings.LastIndexAny(s, `/\`); i >= 0 {
		s = s[i+1:]
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > 80 {
		s = s[:80]
	}
	if s == "" {
		s = "upload.csv"
	}
	return s
}

type importData struct {
	Run     store.ImportRun
	Preview people.Preview
	Open    bool
}

func (p *pages) importFor(c *httpx.Context, raw string) (people.Preview, store.ImportRun, bool) {
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		p.srv.RenderError(c, http.StatusBadRequest, "That is not an import's number.")
		return people.Preview{}, store.ImportRun{}, false
	}
	pv, run, err := p.svc.LoadPreview(c.Request.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		p.srv.RenderError(c, http.StatusNotFound, "There is no such import.")
		return pv, run, false
	}
	if err != nil {
		p.dbError(c, "read import", err)
		return pv, run, false
	}
	return pv, run, true
}

func (p *pages) importPage(c *httpx.Context) {
	pv, run, ok := p.importFor(c, c.Query("id"))
	if !ok {
		return
	}
	v := p.srv.View(c, fmt.Sprintf("Import %d", run.ID))
	switch c.Query("done") {
	case "apply":
		v.Notice = "Applied."
	case "discard":
		v.Notice = "Discarded: nothing was changed."
	}
	v.Data = importData{Run: run, Preview: pv, Open: run.State == "preview" || run.State == "waiting"}
	p.srv.Render(c, http.StatusOK, p.t["import"], v)
}

func (p *pages) decideImport(c *httpx.Context) {
	pv, run, ok := p.importFor(c, c.PostForm("id"))
	if !ok {
		return
	}
	ctx := c.Request.Context()
	var err error
	action := c.PostForm("action")
	switch action {
	case "apply":
		_, err = p.svc.Apply(ctx, web.Actor(c), run.ID)
	case "discard":
		err = p.st.DiscardImport(ctx, web.Actor(c), run.ID, p.svc.Now())
	default:
		err = errors.New("unknown action")
	}
	if err != nil {
		v := p.srv.View(c, fmt.Sprintf("Import %d", run.ID))
		v.Error = "Not done: " + err.Error() + "."
		if errors.Is(err, store.ErrConflict) {
			v.Error = "Not applied: people changed since this preview (or it was already applied or discarded). Import the file again for a fresh preview."
		}
		if r2, e2 := p.st.Import(ctx, run.ID); e2 == nil {
			run = r2
		}
		v.Data = importData{Run: run, Preview: pv, Open: run.State == "preview" || run.State == "waiting"}
		p.srv.Render(c, http.StatusConflict, p.t["import"], v)
		return
	}
	c.Redirect(http.StatusSeeOther, fmt.Sprintf("%s?id=%d&done=%s", ImportPath, run.ID, action))
}

type calendarData struct {
	Terms    []store.Term
	Holidays []store.Holiday
	// Was is the first day of the term being edited ("" adds one); Term
	// and Holiday fill the forms.
	Was     string
	Term    store.Term
	Holiday store.Holiday
}

func (p *pages) calendarPage(c *httpx.Context) {
	v := p.srv.View(c, "Calendar")
	v.Notice = calendarDone(c.Query("done"))
	d := calendarData{}
	if was := c.Query("term"); was != "" {
		for _, t := range p.svc.Terms() {
			if t.StartsOn == was {
				d.Was, d.Term = was, t
			}
		}
		if d.Was == "" {
			p.srv.RenderError(c, http.StatusNotFound, "There is no term starting on that day.")
			return
		}
	}
	if raw := c.Query("holiday"); raw != "" {
		id, _ := strconv.ParseInt(raw, 10, 64)
		for _, h := range p.svc.Holidays() {
			if h.ID == id {
				d.Holiday = h
			}
		}
		if d.Holiday.ID == 0 {
			p.srv.RenderError(c, http.StatusNotFound, "There is no such holiday.")
			return
		}
	}
	p.renderCalendar(c, http.StatusOK, v, d)
}

func calendarDone(k string) string {
	switch k {
	case "import", "1":
		return "Term dates saved."
	case "term_save":
		return "Term saved."
	case "term_delete":
		return "Term deleted."
	case "holiday_save":
		return "Holiday saved."
	case "holiday_delete":
		return "Holiday deleted."
	}
	return ""
}

func (p *pages) renderCalendar(c *httpx.Context, status int, v *web.View, d calendarData) {
	d.Terms, d.Holidays = p.svc.Terms(), p.svc.Holidays()
	v.Data = d
	p.srv.Render(c, status, p.t["calendar"], v)
}

// changeCalendar adds, changes or deletes one term or holiday, or replaces
// a year's terms from a pasted term-dates CSV (term, starts, ends,
// half_term_starts, half_term_ends). Each change is audited by the store.
func (p *pages) changeCalendar(c *httpx.Context) {
	ctx := c.Request.Context()
	actor := web.Actor(c)
	action := c.PostForm("action")
	d := calendarData{}
	var err error
	switch action {
	case "import", "":
		action = "import"
		_, err = p.svc.ImportTerms(ctx, actor, []byte(c.PostForm("csv")))
	case "term_save":
		d.Was = c.PostForm("was")
		d.Term = store.Term{Name: c.PostForm("name"), StartsOn: c.PostForm("starts"), EndsOn: c.PostForm("ends"),
			HalfTermStarts: c.PostForm("half_term_starts"), HalfTermEnds: c.PostForm("half_term_ends")}
		_, err = p.svc.SaveTerm(ctx, actor, d.Was, d.Term)
	case "term_delete":
		err = p.svc.DeleteTerm(ctx, actor, c.PostForm("was"))
	case "holiday_save":
		d.Holiday = store.Holiday{Name: c.PostForm("name"), StartsOn: c.PostForm("starts"), EndsOn: c.PostForm("ends")}
		if raw := c.PostForm("id"); raw != "" {
			if d.Holiday.ID, err = strconv.ParseInt(raw, 10, 64); err != nil || d.Holiday.ID <= 0 {
				err = errors.New("that is not a holiday's number")
			}
		}
		if err == nil {
			_, err = p.svc.SaveHoliday(ctx, actor, d.Holiday)
		}
	case "holiday_delete":
		id, perr := strconv.ParseInt(c.PostForm("id"), 10, 64)
		if perr != nil || id <= 0 {
			err = errors.New("that is not a holiday's number")
		} else {
			err = p.svc.DeleteHoliday(ctx, actor, id)
		}
	default:
		err = errors.New("unknown action")
	}
	if err != nil {
		v := p.srv.View(c, "Calendar")
		status := http.StatusBadRequest
		switch {
		case errors.Is(err, store.ErrNotFound):
			status, v.Error = http.StatusNotFound, "Not saved: that term or holiday is no longer in the calendar."
		case errors.Is(err, store.ErrExists):
			status, v.Error = http.StatusConflict, "Not saved: another term starts on that day."
		default:
			v.Error = "Not saved: " + strings.TrimPrefix(err.Error(), "people: ") + "."
		}
		p.renderCalendar(c, status, v, d)
		return
	}
	c.Redirect(http.StatusSeeOther, CalendarPath+"?done="+action)
}

type leaversData struct {
	Days       int
	Departures []people.Departure
}

func (p *pages) leaversPage(c *httpx.Context) {
	days := 60
	if s := c.Query("days"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 400 {
			p.srv.RenderError(c, http.StatusBadRequest, "Days must be 1 to 400.")
			return
		}
		days = n
	}
	ds, err := p.svc.Departures(c.Request.Context(), p.svc.Now().AddDate(0, 0, days))
	if err != nil {
		p.dbError(c, "list departures", err)
		return
	}
	v := p.srv.View(c, "Leavers")
	v.Data = leaversData{Days: days, Departures: ds}
	p.srv.Render(c, http.StatusOK, p.t["leavers"], v)
}

// csvSafe keeps a spreadsheet from reading a cell as a formula.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// accessReview is the termly access review: everyone who has access, by
// group, with their devices and when each was last seen.
func (p *pages) accessReview(c *httpx.Context) {
	ctx := c.Request.Context()
	ps, err := p.st.ListPeople(ctx, store.PeopleFilter{States: []string{store.PersonActive, store.PersonLeaving}})
	if err != nil {
		p.dbError(c, "access review", err)
		return
	}
	ids := make([]int64, len(ps))
	for i, pp := range ps {
		ids[i] = pp.ID
	}
	devs, err := p.st.DevicesOf(ctx, ids)
	if err != nil {
		p.dbError(c, "access review", err)
		return
	}
	groupOf := func(pp store.Person) string {
		if pp.Kind == "staff" {
			return "Staff"
		}
		return pp.YearGroup
	}
	sort.SliceStable(ps, func(i, j int) bool { return groupOf(ps[i]) < groupOf(ps[j]) })
	byPerson := map[int64][]store.OwnedDevice{}
	for _, d := range devs {
		byPerson[d.PersonID] = append(byPerson[d.PersonID], d)
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write([]string{"group", "id", "name", "kind", "state", "leaves", "devices", "last seen"})
	loc := p.svc.Location()
	for _, pp := range ps {
		group := groupOf(pp)
		var last time.Time
		var macs []string
		for _, d := range byPerson[pp.ID] {
			macs = append(macs, d.MAC.String())
			if d.LastSeen.After(last) {
				last = d.LastSeen
			}
		}
		seen := ""
		if !last.IsZero() {
			seen = last.In(loc).Format("2006-01-02 15:04")
		}
		w.Write([]string{csvSafe(group), csvSafe(people.Key(pp)), csvSafe(people.DisplayName(pp)), pp.Kind, pp.State,
			pp.LeavesOn, strings.Join(macs, " "), seen})
	}
	w.Flush()
	if _, err := p.st.Audit(ctx, store.AuditEntry{Actor: web.Actor(c), Action: "people.access_review", Object: "people"}); err != nil {
		p.dbError(c, "audit access review", err)
		return
	}
	c.Header("Content-Disposition", `attachment; filename="access-review.csv"`)
	c.Data(http.StatusOK, "text/csv; charset=utf-8", buf.Bytes())
}

type groupsData struct {
	Groups []store.PersonGroup
	Name   string
}

func (p *pages) groupsPage(c *httpx.Context) {
	v := p.srv.View(c, "Groups")
	if c.Query("done") != "" {
		v.Notice = "Saved."
	}
	p.renderGroups(c, http.StatusOK, v, "")
}

func (p *pages) renderGroups(c *httpx.Context, status int, v *web.View, name string) {
	gs, err := p.st.Groups(c.Request.Context())
	if err != nil {
		p.dbError(c, "list groups", err)
		return
	}
	v.Data = groupsData{Groups: gs, Name: name}
	p.srv.Render(c, status, p.t["groups"], v)
}

// changeGroups creates or deletes a custom group, or adds or removes a
// member (named by UPN, staff code, admission number, username or email).
func (p *pages) changeGroups(c *httpx.Context) {
	ctx := c.Request.Context()
	actor := web.Actor(c)
	var err error
	id, _ := strconv.ParseInt(c.PostForm("group"), 10, 64)
	switch c.PostForm("action") {
	case "create":
		_, err = p.svc.CreateGroup(ctx, actor, c.PostForm("name"), c.PostForm("description"))
		if errors.Is(err, store.ErrExists) {
			err = errors.New("a group of that name exists")
		}
	case "delete":
		err = p.svc.DeleteGroup(ctx, actor, id)
	case "add", "remove":
		_, err = p.svc.SetMember(ctx, actor, id, c.PostForm("person"), c.PostForm("action") == "add")
	default:
		err = errors.New("unknown action")
	}
	if err != nil {
		v := p.srv.View(c, "Groups")
		v.Error = "Not done: " + err.Error() + "."
		p.renderGroups(c, http.StatusBadRequest, v, c.PostForm("name"))
		return
	}
	c.Redirect(http.StatusSeeOther, GroupsPath+"?done=1")
}
