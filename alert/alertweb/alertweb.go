// Package alertweb is the DSL's part of the admin page: alerts by state
// with counts, one alert's page (who, which device, where, the meaning in
// plain English, the evidence, a timeline of the device's DNS lookups and
// findings an hour either side, its notifications, triage and "not a
// concern for this device"), and the incident log as a page, as CSV and as
// a printable page for the safeguarding file. The JSON list of alerts is
// under /api/v1/alerts.
//
// Every route here is for the dsl role only: reception sees none of it,
// and the network role sees findings and their technical evidence on the
// findings page (package findingsweb) but not the DSL's case states and
// notes. It owns the pages only; alerts are read and changed through
// package store (which audits each change) and raised by package alert.
package alertweb

import (
	"context"
	"embed"
	"encoding/csv"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-net/gatehouse/web/httpx"

	"github.com/gatehouse-net/gatehouse/alert"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
)

// Paths.
const (
	Path          = "/alerts" // the list; an alert is Path + "/view?id=N"
	ViewPath      = Path + "/view"
	ChangePath    = Path + "/change"
	SuppressPath  = Path + "/suppress"
	IncidentsPath = "/incidents"
	CSVPath       = IncidentsPath + "/csv"
	PrintPath     = IncidentsPath + "/print"
	APIPath       = "/api/v1/alerts"
)

// Link is the path of an alert's page.
func Link(id int64) string { return fmt.Sprintf("%s?id=%d", ViewPath, id) }

// timelineWindow is how far either side of an alert the timeline reaches.
const timelineWindow = time.Hour

//go:embed templates/*.html static/alerts.css
var templates embed.FS

// CSSPath is the pages' stylesheet (the shell's policy allows no inline
// styles).
const CSSPath = Path + "/alerts.css"

// Store is the part of the database the pages read and change: alerts,
// their notes, evidence and notifications, suppressions, and the device's
// lookups, flows and findings for the timeline. *store.Store is one; only
// package store speaks SQL (and audits each change).
type Store interface {
	// Alerts and their case.
	ListAlerts(ctx context.Context, f store.AlertFilter) ([]store.Alert, error)
	AlertCounts(ctx context.Context) (map[string]int, error)
	AlertByID(ctx context.Context, id int64) (store.Alert, error)
	AlertNotes(ctx context.Context, id int64) ([]store.AlertNote, error)
	AlertEvidence(ctx context.Context, id int64, limit int) ([]store.Finding, error)
	OutboxItems(ctx context.Context, alertID int64, limit int) ([]store.OutboxItem, error)
	ChangeAlert(ctx context.Context, actor string, id int64, state, outcome, note string, at time.Time) (store.AlertNote, error)
	AddSuppression(ctx context.Context, actor string, sp store.Suppression) (store.Suppression, error)

	// The device's timeline an hour either side.
	DeviceLookups(ctx context.Context, ip netip.Addr, mac net.HardwareAddr, from, to time.Time, limit int) ([]store.DNSQuery, error)
	DeviceFlows(ctx context.Context, ip netip.Addr, mac net.HardwareAddr, from, to time.Time, limit int) ([]store.Flow, error)
	Findings(ctx context.Context, f store.FindingFilter) ([]store.Finding, error)
}

// Options are the pages' dependencies.
type Options struct {
	Store    Store // required
	Location *time.Location
	Logger   *slog.Logger
	Now      func() time.Time
	// NamedPersonPath is the DSL's limited view of a person (package
	// people's pages; "?id=N" is added): where an alert's findings name a
	// person, their name links there. "" shows the name without a link.
	// It is passed in rather than imported so the alert pages do not
	// depend on the people pages.
	NamedPersonPath string
}

type pages struct {
	opt                              Options
	srv                              *web.Server
	list, view, incidentsT, printLog *template.Template
	logger                           *slog.Logger
}

// Register adds the pages to srv.
func Register(srv *web.Server, opt Options) error {
	if opt.Store == nil {
		return errors.New("alertweb: Options.Store is required")
	}
	if opt.Location == nil {
		opt.Location = time.Local
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	funcs := template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.In(opt.Location).Format("Mon 2 Jan 2006 15:04:05")
		},
	}
	parse := func(name string) *template.Template {
		return template.Must(template.New(name).Funcs(funcs).ParseFS(templates, "templates/"+name))
	}
	p := &pages{opt: opt, srv: srv, list: parse("alerts.html"), view: parse("alert.html"), incidentsT: parse("incidents.html"),
		printLog: parse("print.html"), logger: opt.Logger}
	dsl := []string{web.RoleDSL}
	srv.AddPage(web.Page{Path: Path, Title: "Alerts", Roles: dsl, GET: p.listPage, Menu: web.MenuDaily, LandingFor: dsl})
	srv.AddPage(web.Page{Path: ViewPath, Roles: dsl, GET: p.viewPage})
	srv.AddPage(web.Page{Path: ChangePath, Roles: dsl, POST: p.change})
	srv.AddPage(web.Page{Path: SuppressPath, Roles: dsl, POST: p.suppress})
	srv.AddPage(web.Page{Path: IncidentsPath, Title: "Incident log", Roles: dsl, GET: p.incidentsPage})
	srv.AddPage(web.Page{Path: CSVPath, Roles: dsl, GET: p.incidentsCSV})
	srv.AddPage(web.Page{Path: PrintPath, Roles: dsl, GET: p.incidentsPrint})
	srv.AddPage(web.Page{Path: CSSPath, Roles: dsl, GET: func(c *httpx.Context) {
		b, _ := templates.ReadFile("static/alerts.css")
		c.Data(http.StatusOK, "text/css; charset=utf-8", b)
	}})
	srv.AddAPI(http.MethodGet, APIPath, dsl, p.apiList)
	return nil
}

func (p *pages) dbError(c *httpx.Context, err error) {
	p.logger.Error("alertweb: database", "path", c.Request.URL.Path, "err", err)
	p.srv.RenderError(c, http.StatusInternalServerError, "The alerts could not be read or saved. Try again; if it keeps failing, check the daemon's log.")
}

// row is an alert as the lists show it.
type row struct {
	ID                                      int64
	URL                                     string
	When, Last                              string
	Severity, State, Outcome                string
	Title, Who, Device, Room, What, HowText string
	Count                                   int
}

func (p *pages) row(a store.Alert) row {
	return row{ID: a.ID, URL: Link(a.ID), When: a.FirstSeen.In(p.opt.Location).Format("2006-01-02 15:04"),
		Last: a.LastSeen.In(p.opt.Location).Format("2006-01-02 15:04"), Severity: a.Severity, State: stateText(a.State),
		Outcome: a.Outcome, Title: alert.MeaningOf(a.Class).Title, Who: alert.WhoText(a), Device: alert.DeviceText(a),
		Room: alert.RoomText(a), What: alert.WhatText(a), HowText: alert.HowText(a.AttributedBy), Count: a.Count}
}

// personURL links the person an alert names to the DSL's limited view of
// them: only for a DSL viewer (the view is theirs alone), only when the
// alert shows a name, and only with the person a finding of the alert
// named (the alert itself keeps the name, not the person's number).
func (p *pages) personURL(c *httpx.Context, a store.Alert, ev []store.Finding) string {
	if p.opt.NamedPersonPath == "" || a.PersonName == "" {
		return ""
	}
	if u, ok := web.CurrentUser(c); !ok || u.Role != web.RoleDSL {
		return ""
	}
	for _, f := range ev {
		if f.PersonID > 0 {
			return p.opt.NamedPersonPath + "?id=" + strconv.FormatInt(f.PersonID, 10)
		}
	}
	return ""
}

func stateText(s string) string {
	switch s {
	case store.AlertNew:
		return "new"
	case store.AlertTriaged:
		return "triaged"
	case store.AlertAction:
		return "action taken"
	case store.AlertClosed:
		return "closed"
	}
	return s
}

type stateTab struct {
	State, Text, URL string
	Count            int
	Current          bool
}

type listData struct {
	Tabs  []stateTab
	State string
	Rows  []row
}

func (p *pages) listPage(c *httpx.Context) {
	ctx := c.Request.Context()
	state := c.DefaultQuery("state", store.AlertNew)
	if state != "all" && !slices.Contains(store.AlertStates, state) {
		p.srv.RenderError(c, http.StatusBadRequest, "Choose a state from the tabs.")
		return
	}
	counts, err := p.opt.Store.AlertCounts(ctx)
	if err != nil {
		p.dbError(c, err)
		return
	}
	d := listData{State: state}
	total := 0
	for _, s := range store.AlertStates {
		d.Tabs = append(d.Tabs, stateTab{State: s, Text: stateText(s), URL: Path + "?state=" + s, Count: counts[s], Current: s == state})
		total += counts[s]
	}
	d.Tabs = append(d.Tabs, stateTab{State: "all", Text: "all", URL: Path + "?state=all", Count: total, Current: state == "all"})
	f := store.AlertFilter{Limit: 200}
	if state != "all" {
		f.State = state
	}
	as, err := p.opt.Store.ListAlerts(ctx, f)
	if err != nil {
		p.dbError(c, err)
		return
	}
	for _, a := range as {
		d.Rows = append(d.Rows, p.row(a))
	}
	v := p.srv.View(c, "Alerts")
	v.Data = &d
	if n := c.Query("done"); n != "" {
		v.Notice = "Saved."
	}
	p.srv.Render(c, http.StatusOK, p.list, v)
}

// flowEvent is a flow on the timeline: where to, by which name, for how
// long and how much, and the class it raised.
func (p *pages) flowEvent(f store.Flow) event {
	to := netip.AddrPortFrom(f.Server, f.ServerPort).String() + "/" + f.Proto
	if f.Name != "" {
		to = f.Name + " (" + to + ")"
	}
	text := fmt.Sprintf("%s, %s sent, %s received", to, byteText(f.BytesOut), byteText(f.BytesIn))
	if d := f.Last.Sub(f.Start); d >= time.Second {
		text += ", " + d.Round(time.Second).String()
	}
	if !f.Ended {
		text += ", still open when last seen"
	}
	if f.Class != "" {
		text += " — " + alert.MeaningOf(f.Class).Title
	}
	return event{At: f.Start, When: f.Start.In(p.opt.Location).Format("15:04:05"), Kind: "flow", Text: text}
}

// byteText is a byte count for people.
func byteText(n uint64) string {
	switch {
	case n >= 10<<20:
		return fmt.Sprintf("%d MB", n>>20)
	case n >= 10<<10:
		return fmt.Sprintf("%d kB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// event is one line of the timeline.
type event struct {
	At       time.Time
	When     string
	Kind     string // "lookup", "flow" or "finding"
	Text     string
	ThisOne  bool
	Evidence string
}

type viewData struct {
	A        store.Alert
	Row      row
	Meaning  alert.Meaning
	Notes    []noteRow
	Evidence []event
	Timeline []event
	Sent     []sentRow
	States   []stateTab
	MAC      string
	Class    string
	// PersonURL is the DSL's view of the person the alert names; "" when
	// there is none to link to.
	PersonURL string
}

type noteRow struct {
	When, Actor, From, To, Outcome, Note string
}

type sentRow struct {
	Channel, Created, Sent, Error string
	Attempts                      int
}

func (p *pages) alertFromQuery(c *httpx.Context, field string) (store.Alert, bool) {
	id, err := strconv.ParseInt(c.Request.FormValue(field), 10, 64)
	if err != nil || id <= 0 {
		p.srv.RenderError(c, http.StatusBadRequest, "That is not an alert number.")
		return store.Alert{}, false
	}
	a, err := p.opt.Store.AlertByID(c.Request.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		p.srv.RenderError(c, http.StatusNotFound, "There is no such alert (it may have been deleted by retention).")
		return store.Alert{}, false
	}
	if err != nil {
		p.dbError(c, err)
		return store.Alert{}, false
	}
	return a, true
}

func (p *pages) viewPage(c *httpx.Context) {
	ctx := c.Request.Context()
	a, ok := p.alertFromQuery(c, "id")
	if !ok {
		return
	}
	d := viewData{A: a, Row: p.row(a), Meaning: alert.MeaningOf(a.Class), Class: a.Class}
	if len(a.SrcMAC) > 0 {
		d.MAC = a.SrcMAC.String()
	}
	for _, s := range store.AlertStates {
		d.States = append(d.States, stateTab{State: s, Text: stateText(s), Current: s == a.State})
	}
	notes, err := p.opt.Store.AlertNotes(ctx, a.ID)
	if err != nil {
		p.dbError(c, err)
		return
	}
	for _, n := range notes {
		d.Notes = append(d.Notes, noteRow{When: n.At.In(p.opt.Location).Format("2006-01-02 15:04"), Actor: n.Actor,
			From: stateText(n.StateFrom), To: stateText(n.StateTo), Outcome: n.Outcome, Note: n.Note})
	}
	ev, err := p.opt.Store.AlertEvidence(ctx, a.ID, 200)
	if err != nil {
		p.dbError(c, err)
		return
	}
	mine := map[int64]bool{}
	for _, f := range ev {
		mine[f.ID] = true
		d.Evidence = append(d.Evidence, p.findingEvent(f, true))
	}
	d.PersonURL = p.personURL(c, a, ev)
	// The timeline: the device's lookups, flows and findings an hour
	// either side.
	from, to := a.FirstSeen.Add(-timelineWindow), a.LastSeen.Add(timelineWindow)
	if a.SrcIP.IsValid() || len(a.SrcMAC) > 0 {
		qs, err := p.opt.Store.DeviceLookups(ctx, a.SrcIP, a.SrcMAC, from, to, 500)
		if err != nil {
			p.dbError(c, err)
			return
		}
		for _, q := range qs {
			d.Timeline = append(d.Timeline, event{At: q.At, When: q.At.In(p.opt.Location).Format("15:04:05"), Kind: "lookup",
				Text: fmt.Sprintf("%s %s → %s (%s)", q.Type, q.Name, q.Answer, q.Action)})
		}
	}
	if a.SrcIP.IsValid() || len(a.SrcMAC) > 0 {
		flows, err := p.opt.Store.DeviceFlows(ctx, a.SrcIP, a.SrcMAC, from, to, 500)
		if err != nil {
			p.dbError(c, err)
			return
		}
		for _, f := range flows {
			d.Timeline = append(d.Timeline, p.flowEvent(f))
		}
	}
	if len(a.SrcMAC) > 0 {
		fs, err := p.opt.Store.Findings(ctx, store.FindingFilter{MAC: a.SrcMAC, Since: from, Until: to, Limit: 500})
		if err != nil {
			p.dbError(c, err)
			return
		}
		for _, f := range fs {
			d.Timeline = append(d.Timeline, p.findingEvent(f, mine[f.ID]))
		}
	}
	sort.SliceStable(d.Timeline, func(i, j int) bool { return d.Timeline[i].At.Before(d.Timeline[j].At) })
	items, err := p.opt.Store.OutboxItems(ctx, a.ID, 20)
	if err != nil {
		p.dbError(c, err)
		return
	}
	for _, it := range items {
		s := sentRow{Channel: it.Channel, Created: it.CreatedAt.In(p.opt.Location).Format("15:04:05"), Attempts: it.Attempts, Error: it.LastError}
		if !it.SentAt.IsZero() {
			s.Sent = it.SentAt.In(p.opt.Location).Format("2006-01-02 15:04:05")
		}
		d.Sent = append(d.Sent, s)
	}
	v := p.srv.View(c, "Alert "+strconv.FormatInt(a.ID, 10)+": "+d.Meaning.Title)
	v.Data = &d
	switch c.Query("done") {
	case "change":
		v.Notice = "Saved."
	case "suppress":
		v.Notice = "This class is no longer alerted for this device until the date you gave."
	}
	p.srv.Render(c, http.StatusOK, p.view, v)
}

func (p *pages) findingEvent(f store.Finding, this bool) event {
	text := alert.Label(f)
	if f.Detail != "" && f.Class != "unapproved-device" {
		text += " (" + f.Detail + ")"
	}
	if f.DstIP.IsValid() {
		text += fmt.Sprintf(" to %s:%d/%s", f.DstIP, f.DstPort, f.Proto)
	}
	text += confidenceText(f.Confidence)
	return event{At: f.At, When: f.At.In(p.opt.Location).Format("15:04:05"), Kind: "finding", Text: text, ThisOne: this, Evidence: f.Evidence}
}

func (p *pages) change(c *httpx.Context) {
	a, ok := p.alertFromQuery(c, "id")
	if !ok {
		return
	}
	state := c.PostForm("state")
	outcome := c.PostForm("outcome")
	note := strings.TrimSpace(c.PostForm("note"))
	if state == a.State {
		state = ""
	}
	if state != "" && !slices.Contains(store.AlertStates, state) {
		p.srv.RenderError(c, http.StatusBadRequest, "Choose a state from the list.")
		return
	}
	if outcome != "" && outcome != store.OutcomeTruePositive && outcome != store.OutcomeFalsePositive {
		p.srv.RenderError(c, http.StatusBadRequest, "Choose true or false positive.")
		return
	}
	if outcome == a.Outcome {
		outcome = ""
	}
	if len(note) > store.MaxAlertNote {
		p.srv.RenderError(c, http.StatusBadRequest, fmt.Sprintf("A note can be at most %d characters.", store.MaxAlertNote))
		return
	}
	if state == "" && outcome == "" && note == "" {
		c.Redirect(http.StatusSeeOther, Link(a.ID))
		return
	}
	if state == store.AlertClosed && note == "" {
		p.srv.RenderError(c, http.StatusBadRequest, "Closing an alert needs a note: what was done and why.")
		return
	}
	if _, err := p.opt.Store.ChangeAlert(c.Request.Context(), web.Actor(c), a.ID, state, outcome, note, p.opt.Now()); err != nil {
		p.dbError(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, Link(a.ID)+"&done=change")
}

func (p *pages) suppress(c *httpx.Context) {
	a, ok := p.alertFromQuery(c, "id")
	if !ok {
		return
	}
	reason := strings.TrimSpace(c.PostForm("reason"))
	days, err := strconv.Atoi(c.PostForm("days"))
	if err != nil || days < 1 || days > 365 {
		p.srv.RenderError(c, http.StatusBadRequest, "Say for how many days (1 to 365).")
		return
	}
	if reason == "" || len(reason) > store.MaxAlertNote {
		p.srv.RenderError(c, http.StatusBadRequest, "Give the reason this is not a concern for this device.")
		return
	}
	mac := net.HardwareAddr(a.SrcMAC)
	if len(mac) == 0 {
		p.srv.RenderError(c, http.StatusBadRequest, "This alert names no device, so it cannot be suppressed for one.")
		return
	}
	now := p.opt.Now()
	if _, err := p.opt.Store.AddSuppression(c.Request.Context(), web.Actor(c), store.Suppression{MAC: mac, Class: a.Class, Reason: reason,
		Until: now.AddDate(0, 0, days), CreatedAt: now}); err != nil {
		p.dbError(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, Link(a.ID)+"&done=suppress")
}

// incident is one row of the incident log, in the grid schools' policies
// use.
type incident struct {
	When, Name, RoomDevice, Details, Actions, URL string
}

func (p *pages) incidents(c *httpx.Context) ([]incident, bool) {
	ctx := c.Request.Context()
	as, err := p.opt.Store.ListAlerts(ctx, store.AlertFilter{Outcome: store.OutcomeTruePositive, Limit: 1000})
	if err != nil {
		p.dbError(c, err)
		return nil, false
	}
	var out []incident
	for _, a := range as {
		notes, err := p.opt.Store.AlertNotes(ctx, a.ID)
		if err != nil {
			p.dbError(c, err)
			return nil, false
		}
		var actions []string
		for _, n := range notes {
			s := n.At.In(p.opt.Location).Format("2006-01-02 15:04") + " " + n.Actor
			if n.StateFrom != n.StateTo {
				s += " (" + stateText(n.StateFrom) + " → " + stateText(n.StateTo) + ")"
			}
			if n.Note != "" {
				s += ": " + n.Note
			}
			actions = append(actions, s)
		}
		name := a.PersonName
		if a.PersonGroup != "" {
			name += " (" + a.PersonGroup + ")"
		}
		if name == "" {
			name = alert.WhoText(a)
		}
		roomDevice := alert.DeviceText(a)
		if r := alert.RoomText(a); r != "" {
			roomDevice = r + "; " + roomDevice
		}
		details := fmt.Sprintf("%s, %d time(s) between %s and %s. Evidence: %s. Named by %s.", alert.WhatText(a), a.Count,
			a.FirstSeen.In(p.opt.Location).Format("15:04"), a.LastSeen.In(p.opt.Location).Format("15:04 2 Jan"), a.Evidence, alert.HowText(a.AttributedBy))
		out = append(out, incident{When: a.FirstSeen.In(p.opt.Location).Format("2006-01-02 15:04"), Name: name, RoomDevice: roomDevice,
			Details: details, Actions: strings.Join(actions, "\n"), URL: Link(a.ID)})
	}
	return out, true
}

func (p *pages) incidentsPage(c *httpx.Context) {
	rows, ok := p.incidents(c)
	if !ok {
		return
	}
	v := p.srv.View(c, "Incident log")
	v.Data = rows
	p.srv.Render(c, http.StatusOK, p.incidentsT, v)
}

func (p *pages) incidentsPrint(c *httpx.Context) {
	rows, ok := p.incidents(c)
	if !ok {
		return
	}
	c.Header("Content-Type", "text/html; charset=utf-8")
	if err := p.printLog.Execute(c.Writer, map[string]any{"Rows": rows, "Printed": p.opt.Now().In(p.opt.Location).Format("2006-01-02 15:04")}); err != nil {
		p.logger.Error("alertweb: print", "err", err)
	}
}

// CSVHeader is the incident log's columns.
var CSVHeader = []string{"Date and time", "Name", "Room/device", "Details of the incident (with evidence)", "Actions taken and reasons"}

// SafeCell keeps a spreadsheet from reading a cell as a formula: text that
// starts with = + - @ or a tab or carriage return gets a leading '.
func SafeCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func (p *pages) incidentsCSV(c *httpx.Context) {
	rows, ok := p.incidents(c)
	if !ok {
		return
	}
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", `attachment; filename="incident-log-`+p.opt.Now().In(p.opt.Location).Format("2006-01-02")+`.csv"`)
	c.Writer.Write([]byte("\xef\xbb\xbf")) // a BOM, so spreadsheets read UTF-8
	w := csv.NewWriter(c.Writer)
	w.Write(CSVHeader)
	for _, r := range rows {
		w.Write([]string{SafeCell(r.When), SafeCell(r.Name), SafeCell(r.RoomDevice), SafeCell(r.Details), SafeCell(r.Actions)})
	}
	w.Flush()
}

// apiAlert is an alert as the API shows it: the DfE fields and the case
// state (the API is dsl-only too).
type apiAlert struct {
	alert.Event
	State   string `json:"state"`
	Outcome string `json:"outcome,omitempty"`
}

func (p *pages) apiList(c *httpx.Context) {
	state := c.Query("state")
	if state != "" && !slices.Contains(store.AlertStates, state) {
		c.JSON(http.StatusBadRequest, httpx.H{"error": "state must be one of " + strings.Join(store.AlertStates, ", ")})
		return
	}
	as, err := p.opt.Store.ListAlerts(c.Request.Context(), store.AlertFilter{State: state, Limit: 1000})
	if err != nil {
		p.logger.Error("alertweb: api", "err", err)
		c.JSON(http.StatusInternalServerError, httpx.H{"error": "database"})
		return
	}
	out := []apiAlert{}
	for _, a := range as {
		out = append(out, apiAlert{Event: alert.EventOf(a, Link), State: a.State, Outcome: a.Outcome})
	}
	c.JSON(http.StatusOK, httpx.H{"alerts": out})
}

// confidenceText says how sure the sensor was, in the DSL's words.
func confidenceText(c string) string {
	switch c {
	case "certain":
		return " — certain (the protocol's handshake was seen)"
	case "likely":
		return " — likely (a fingerprint or heuristic matched)"
	case "attempt":
		return " — attempt (the device tried; the server never answered)"
	}
	return ""
}
