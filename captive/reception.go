package captive

import (
	"bytes"
	"embed"
	"encoding/csv"
	"errors"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-net/gatehouse/web/httpx"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
)

// admin holds the admin pages' templates and dependencies.
type admin struct {
	p           *Portal
	srv         *web.Server
	vouchers    *template.Template
	settings    *template.Template
	print       *template.Template
	confirm     *template.Template
	bulkConfirm *template.Template
	prints      *printCache
}

// RegisterAdminPages adds the visitor-code pages (roles reception and
// network; reception sees and changes only the codes it issued) and the
// portal settings pages (network role: the AUP text, the acceptance export,
// the attempt log) to the admin shell. Call it before srv.Handler or Run.
func RegisterAdminPages(srv *web.Server, p *Portal) error {
	a := &admin{p: p, srv: srv, prints: newPrintCache()}
	var err error
	if a.vouchers, err = template.New("vouchers.html").Funcs(template.FuncMap{"plural": web.Plural}).ParseFS(templateFS, "templates/vouchers.html"); err != nil {
		return fmt.Errorf("captive: parse admin templates: %w", err)
	}
	if a.settings, err = template.New("portal_admin.html").ParseFS(templateFS, "templates/portal_admin.html"); err != nil {
		return fmt.Errorf("captive: parse admin templates: %w", err)
	}
	if a.print, err = template.New("print.html").ParseFS(templateFS, "templates/print.html"); err != nil {
		return fmt.Errorf("captive: parse admin templates: %w", err)
	}
	if a.confirm, err = template.New("revoke.html").Funcs(template.FuncMap{"plural": web.Plural}).ParseFS(templateFS, "templates/revoke.html"); err != nil {
		return fmt.Errorf("captive: parse admin templates: %w", err)
	}
	if a.bulkConfirm, err = template.New("revoke_selected.html").Funcs(template.FuncMap{"plural": web.Plural}).
		ParseFS(templateFS, "templates/revoke_selected.html"); err != nil {
		return fmt.Errorf("captive: parse admin templates: %w", err)
	}
	both := []string{web.RoleReception, web.RoleNetwork}
	network := []string{web.RoleNetwork}
	// Reception's daily work: it lands here, "Issue one code" first.
	srv.AddPage(web.Page{Path: "/vouchers", Title: "Visitor codes", Roles: both, GET: a.listPage, POST: a.issue,
		Menu: web.MenuDaily, LandingFor: []string{web.RoleReception}})
	srv.AddPage(web.Page{Path: "/vouchers/print", Roles: both, GET: a.printPage})
	srv.AddPage(web.Page{Path: "/vouchers.csv", Roles: both, GET: a.exportCodesCSV})
	srv.AddPage(web.Page{Path: "/vouchers/revoke", Roles: both, GET: a.confirmRevoke, POST: a.revoke})
	srv.AddPage(web.Page{Path: "/vouchers/extend", Roles: both, POST: a.extend})
	srv.AddPage(web.Page{Path: BulkRevokePath, Roles: both, POST: a.revokeSelected})
	srv.AddPage(web.Page{Path: "/vouchers/print.css", Roles: both, GET: a.asset("static/print.css", "text/css; charset=utf-8")})
	srv.AddPage(web.Page{Path: "/vouchers/print.js", Roles: both, GET: a.asset("static/print.js", "text/javascript; charset=utf-8")})
	srv.AddPage(web.Page{Path: "/portal", Title: "Portal", Roles: network, GET: a.settingsPage, POST: a.setAUP, Menu: web.MenuSetup})
	srv.AddPage(web.Page{Path: "/portal/acceptances.csv", Roles: network, GET: a.exportCSV})
	srv.AddPage(web.Page{Path: "/portal/limits", Roles: network, POST: a.setLimits})
	srv.AddPage(web.Page{Path: "/portal/branding", Roles: network, POST: a.setBranding, MaxBody: brandingMaxBody})
	srv.AddPage(web.Page{Path: "/vouchers/brand.css", Roles: both, GET: a.brandCSS})
	a.registerAPI(both)
	return nil
}

//go:embed static/*
var staticFS embed.FS

func (a *admin) asset(name, ctype string) httpx.HandlerFunc {
	return func(c *httpx.Context) {
		b, err := staticFS.ReadFile(name)
		if err != nil {
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
		c.Data(http.StatusOK, ctype, b)
	}
}

type durationChoice struct {
	Value, Label string
	Default      bool
}

var durationChoices = []durationChoice{
	{"30m", "30 minutes", false}, {"1h", "1 hour", false}, {"2h", "2 hours", true}, {"4h", "4 hours", false},
	{"8h", "the school day (8 hours)", false}, {"24h", "1 day", false}, {"72h", "3 days", false}, {"168h", "1 week", false},
}

type codeRow struct {
	ID                int64
	Issued, By, Valid string
	Devices, State    string
	Note, Batch       string
	Live              bool
}

type vouchersData struct {
	Durations  []durationChoice
	MaxBatch   int
	MaxDevices int
	All        bool
	Codes      []codeRow
	Q          string    // the search, echoed into its field
	Pager      web.Pager // the list's pages, keeping the search
	Form       issueForm
	Reprint    string // the batch of this person's last issue, while it can be printed again
}

// issueForm is the issue form as typed: a refused form comes back with
// everything still in it.
type issueForm struct {
	Duration, Count, Batch, NotBefore, NotAfter, Devices string
	RateDown, RateUp, Quota, Note, Layout                string
	FirstUse                                             bool
	More                                                 bool // "more options" open: the person used them
}

// freshForm is the form as the page first shows it.
func freshForm() issueForm {
	return issueForm{Duration: "2h", Count: "1", Devices: "1", Layout: "slip", FirstUse: true}
}

// typedForm reads the issue form back as the person typed it.
func typedForm(c *httpx.Context) issueForm {
	f := issueForm{Duration: c.PostForm("duration"), Count: c.PostForm("count"), Batch: c.PostForm("batch"),
		NotBefore: c.PostForm("not_before"), NotAfter: c.PostForm("not_after"), Devices: c.PostForm("devices"),
		RateDown: c.PostForm("rate_down"), RateUp: c.PostForm("rate_up"), Quota: c.PostForm("quota"),
		Note: c.PostForm("note"), Layout: c.PostForm("layout"), FirstUse: c.PostForm("first_use") == "yes"}
	// The quick form sends only a duration.
	f.More = f.Count != ""
	if !f.More {
		g := freshForm()
		g.Duration = f.Duration
		return g
	}
	return f
}

// mine reports whether the user may only see and change their own codes.
func mine(c *httpx.Context) bool {
	u, _ := web.CurrentUser(c)
	return u.Role != web.RoleNetwork
}

func (a *admin) when(t time.Time) string { return t.In(a.p.loc).Format("2 Jan 2006 15:04") }

// validText says how long a code is valid, for lists and slips.
func (a *admin) validText(v store.Voucher) string {
	var s string
	switch {
	case !v.ExpiresAt.IsZero():
		s = "until " + a.when(v.Until())
	default:
		s = "for " + humanDuration(v.Duration) + " from first use"
		if !v.NotAfter.IsZero() {
			s += ", at the latest until " + a.when(v.NotAfter)
		}
	}
	if !v.NotBefore.IsZero() {
		s += " (not before " + a.when(v.NotBefore) + ")"
	}
	return s
}

func humanDuration(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0 && d >= 24*time.Hour:
		n := int(d / (24 * time.Hour))
		return plural(n, "day")
	case d%time.Hour == 0:
		return plural(int(d/time.Hour), "hour")
	case d > time.Hour:
		return fmt.Sprintf("%s %s", plural(int(d/time.Hour), "hour"), plural(int(d%time.Hour/time.Minute), "minute"))
	}
	return plural(int(d/time.Minute), "minute")
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

func (a *admin) listPage(c *httpx.Context) {
	v := a.srv.View(c, "Visitor codes")
	// Fixed messages by key: a banner never repeats URL text.
	switch c.Query("done") {
	case "revoked":
		// The count is a number or nothing: a banner never repeats URL text.
		switch n, _ := strconv.Atoi(c.Query("disconnected")); {
		case n == 1:
			v.Notice = "Code revoked. 1 device that was signed in with it was disconnected."
		case n > 1:
			v.Notice = fmt.Sprintf("Code revoked. %d devices that were signed in with it were disconnected.", n)
		default:
			v.Notice = "Code revoked. No device was signed in with it, so none was disconnected."
		}
	case "extended":
		v.Notice = "Code extended."
	case "revoked_n":
		// Numbers only: a banner never repeats URL text.
		n, _ := strconv.Atoi(c.Query("n"))
		d, _ := strconv.Atoi(c.Query("disconnected"))
		v.Notice = web.Plural(max(n, 0), "code", "codes") + " revoked; " + disconnectedText(max(d, 0)) + "."
	}
	a.renderList(c, http.StatusOK, v, freshForm())
}

// codeState is a code's state in words, and whether it can still admit.
func (a *admin) codeState(vc store.Voucher, until, now time.Time) (string, bool) {
	switch {
	case !vc.RevokedAt.IsZero():
		return "revoked " + a.when(vc.RevokedAt), false
	case !until.IsZero() && !now.Before(until):
		return "expired", false
	case !vc.NotBefore.IsZero() && now.Before(vc.NotBefore):
		return "not yet valid", true
	case vc.FirstUsedAt.IsZero():
		return "not used yet", true
	}
	return "in use", true
}

// exportCodesCSV sends the codes the list shows (reception: their own;
// the network role: everyone's), newest first, with local times and their
// offset; notes and batch names are typed by people, so every cell goes
// through web.SendCSV's formula guard. Never the code itself: only its
// hash is stored.
func (a *admin) exportCodesCSV(c *httpx.Context) {
	f := store.VoucherFilter{Limit: 10000}
	if mine(c) {
		f.CreatedBy = web.Actor(c)
	}
	vs, err := a.p.st.ListVouchers(c.Request.Context(), f)
	if err != nil {
		a.p.log.Error("export vouchers", "err", err)
		a.srv.RenderError(c, http.StatusInternalServerError, "The codes could not be read from the database.")
		return
	}
	now := a.p.now()
	rows := make([][]string, 0, len(vs))
	for _, vc := range vs {
		state, _ := a.codeState(vc, vc.Until(), now)
		rows = append(rows, []string{strconv.FormatInt(vc.ID, 10), a.srv.CSVTime(vc.CreatedAt), strings.TrimPrefix(vc.CreatedBy, "web:"),
			vc.BatchName, strconv.FormatInt(int64(vc.Duration/time.Second), 10), strconv.Itoa(vc.MaxDevices), strconv.Itoa(vc.Devices),
			a.srv.CSVTime(vc.FirstUsedAt), a.srv.CSVTime(vc.Until()), a.srv.CSVTime(vc.RevokedAt), state, vc.Note})
	}
	a.srv.SendCSV(c, "visitor-codes", []string{"id", "issued", "issued_by", "batch", "duration_s", "max_devices", "devices",
		"first_used", "valid_until", "revoked", "state", "note"}, rows)
}

// codesPageSize is how many codes one page of the list shows.
const codesPageSize = 50

func (a *admin) renderList(c *httpx.Context, status int, v *web.View, form issueForm) {
	f := store.VoucherFilter{Q: strings.TrimSpace(c.Query("q"))}
	if mine(c) {
		f.CreatedBy = web.Actor(c)
	}
	if len(f.Q) > 200 {
		v.Error, status, f.Q = "The search is too long.", http.StatusBadRequest, ""
	}
	page, ok := web.PageNumber(c)
	if !ok {
		v.Error, status = "The page number must be a positive whole number.", http.StatusBadRequest
	}
	ctx := c.Request.Context()
	total, err := a.p.st.CountVouchers(ctx, f)
	if err == nil {
		f.Limit, f.Offset = codesPageSize, (page-1)*codesPageSize
	}
	var vs []store.Voucher
	if err == nil {
		vs, err = a.p.st.ListVouchers(ctx, f)
	}
	if err != nil {
		a.p.log.Error("list vouchers", "err", err)
		a.srv.RenderError(c, http.StatusInternalServerError, "The codes could not be read from the database.")
		return
	}
	now := a.p.now()
	d := vouchersData{Durations: durationChoices, MaxBatch: store.MaxVoucherBatch, MaxDevices: MaxDevicesPerCode, All: !mine(c), Form: form, Q: f.Q}
	d.Pager = web.NewPager("/vouchers", url.Values{"q": {f.Q}}, page, codesPageSize, total)
	if id, _, ok := a.prints.latest(web.Actor(c), now); ok {
		d.Reprint = id
	}
	for _, vc := range vs {
		r := codeRow{ID: vc.ID, Issued: a.when(vc.CreatedAt), By: strings.TrimPrefix(vc.CreatedBy, "web:"), Valid: a.validText(vc),
			Note: vc.Note, Batch: vc.BatchName}
		if vc.MaxDevices == 0 {
			r.Devices = fmt.Sprintf("%d (unlimited)", vc.Devices)
		} else {
			r.Devices = fmt.Sprintf("%d of %d", vc.Devices, vc.MaxDevices)
		}
		until := vc.Until()
		r.State, r.Live = a.codeState(vc, until, now)
		d.Codes = append(d.Codes, r)
	}
	v.Data = d
	a.srv.Render(c, status, a.vouchers, v)
}

// formFail re-renders the list page with an error, and the issue form as
// it was typed when the error was about it.
func (a *admin) formFail(c *httpx.Context, status int, msg string) {
	v := a.srv.View(c, "Visitor codes")
	v.Error = msg
	form := freshForm()
	if c.Request.Method == http.MethodPost && c.FullPath() == "/vouchers" {
		form = typedForm(c)
	}
	a.renderList(c, status, v, form)
}

// parseLocal reads a datetime-local field in the school's time zone.
func (a *admin) parseLocal(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, s, a.p.loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a date and time", s)
}

// issueRequest reads the issue form.
func (a *admin) issueRequest(c *httpx.Context) (IssueRequest, string, error) {
	q := IssueRequest{Now: a.p.now(), Count: 1, MaxDevices: 1, Note: strings.TrimSpace(c.PostForm("note")),
		Batch: strings.TrimSpace(c.PostForm("batch")), StartOnFirstUse: c.PostForm("first_use") == "yes"}
	// The quick form has only a duration: its code starts on first use.
	if c.PostForm("count") == "" {
		q.StartOnFirstUse = true
	}
	var err error
	if q.Duration, err = time.ParseDuration(c.PostForm("duration")); err != nil {
		return q, "", errors.New("choose how long the code is valid for")
	}
	intField := func(name string, dst *int) error {
		if s := c.PostForm(name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				return fmt.Errorf("%s must be a whole number", name)
			}
			*dst = n
		}
		return nil
	}
	if err := intField("count", &q.Count); err != nil {
		return q, "", err
	}
	if err := intField("devices", &q.MaxDevices); err != nil {
		return q, "", err
	}
	for _, f := range []struct {
		name  string
		dst   *int64
		scale float64
	}{{"rate_down", &q.RateDownBps, 1e6}, {"rate_up", &q.RateUpBps, 1e6}, {"quota", &q.QuotaBytes, 1e6}} {
		s := c.PostForm(f.name)
		if s == "" {
			continue
		}
		x, err := strconv.ParseFloat(s, 64)
		if err != nil || x < 0 || x > 1e6 || math.IsNaN(x) {
			return q, "", fmt.Errorf("%s must be a number from 0 to 1000000", strings.ReplaceAll(f.name, "_", " "))
		}
		*f.dst = int64(x * f.scale)
	}
	if q.NotBefore, err = a.parseLocal(c.PostForm("not_before")); err != nil {
		return q, "", fmt.Errorf("not valid before: %w", err)
	}
	if q.NotAfter, err = a.parseLocal(c.PostForm("not_after")); err != nil {
		return q, "", fmt.Errorf("not valid after: %w", err)
	}
	layout := c.PostForm("layout")
	switch layout {
	case "":
		layout = "slip"
		if q.Count > 1 {
			layout = "sheet"
		}
	case "slip", "sheet", "receipt":
	default:
		return q, "", errors.New("choose a print layout")
	}
	return q, layout, q.Check()
}

type slip struct {
	Code, Valid string
	QR          template.URL
}

type printData struct {
	School, SSID, Layout string
	// LogoURI is the school's logo (filled in when the page is shown, so
	// a reprint shows the current one).
	LogoURI template.URL
	Slips   []slip
	Pages   [][]slip
	// JoinQR is a QR code in the standard WIFI: form that joins the guest
	// network, for every slip of the batch; empty without a guest SSID.
	JoinQR template.URL
}

// wifiQR is the payload of a QR code that joins an open network ssid, in
// the form phone cameras read (WIFI:T:nopass;S:<ssid>;;), with the
// characters the form reserves escaped.
func wifiQR(ssid string) string {
	r := strings.NewReplacer(`\`, `\\`, `;`, `\;`, `,`, `\,`, `:`, `\:`, `"`, `\"`)
	return "WIFI:T:nopass;S:" + r.Replace(ssid) + ";;"
}

// issue makes the codes, keeps their print page for a few minutes and
// sends the browser to it (POST, redirect, GET): a refresh of the print
// page shows the same codes and never issues more. The codes are not
// logged and are stored only as hashes.
func (a *admin) issue(c *httpx.Context) {
	q, layout, err := a.issueRequest(c)
	if err == nil {
		var failed bool
		if err, failed = a.receptionBound(c.Request.Context(), c, &q); failed {
			a.p.log.Error("read reception limits", "err", err)
			a.formFail(c, http.StatusInternalServerError, "The codes could not be issued; the database could not be read.")
			return
		}
	}
	if err != nil {
		a.formFail(c, http.StatusBadRequest, "The codes were not issued: "+err.Error()+".")
		return
	}
	q.Key = a.p.issueKey()
	out, err := Issue(c.Request.Context(), a.p.st, web.Actor(c), q, a.p.rand)
	if err != nil {
		a.p.log.Error("issue vouchers", "by", web.Actor(c), "err", err)
		a.formFail(c, http.StatusInternalServerError, "The codes could not be issued; the database could not be written.")
		return
	}
	a.p.log.Info("vouchers issued", "by", web.Actor(c), "count", len(out), "first_id", out[0].Voucher.ID)
	d := printData{School: a.p.school, SSID: a.p.ssid, Layout: layout}
	if a.p.ssid != "" {
		if d.JoinQR, err = web.QRDataURL(wifiQR(a.p.ssid)); err != nil {
			a.p.log.Error("encode QR code", "err", err)
			a.formFail(c, http.StatusInternalServerError, "The QR codes could not be made.")
			return
		}
	}
	for _, ic := range out {
		qr, err := web.QRDataURL(a.p.base.String() + "/?code=" + url.QueryEscape(ic.Code))
		if err != nil {
			a.p.log.Error("encode QR code", "err", err)
			a.formFail(c, http.StatusInternalServerError, "The QR codes could not be made.")
			return
		}
		d.Slips = append(d.Slips, slip{Code: ic.Code, Valid: "Valid " + a.validText(ic.Voucher), QR: qr})
	}
	per := len(d.Slips)
	if layout == "sheet" {
		per = 8
	}
	for i := 0; i < len(d.Slips); i += per {
		d.Pages = append(d.Pages, d.Slips[i:min(i+per, len(d.Slips))])
	}
	id, err := a.prints.put(web.Actor(c), d, a.p.now())
	if err != nil {
		a.p.log.Error("keep print page", "err", err)
		a.formFail(c, http.StatusInternalServerError, "The print page could not be made.")
		return
	}
	c.Redirect(http.StatusSeeOther, "/vouchers/print?batch="+id)
}

// printPage shows an issued batch's slips, to the person who issued it,
// for printKeep after issuing.
func (a *admin) printPage(c *httpx.Context) {
	d, ok := a.prints.get(web.Actor(c), c.Query("batch"), a.p.now())
	if !ok {
		a.srv.RenderError(c, http.StatusGone, fmt.Sprintf("These codes can no longer be shown: a print page stays open for %d minutes after issuing, and only for the person who issued them. If they were not printed, revoke them on the Visitor codes page and issue new ones.", int(printKeep/time.Minute)))
		return
	}
	d.LogoURI = a.p.currentBrand(c.Request.Context()).LogoURI
	var b bytes.Buffer
	if err := a.print.Execute(&b, d); err != nil {
		a.p.log.Error("render print page", "err", err)
		a.srv.RenderError(c, http.StatusInternalServerError, "The print page could not be made.")
		return
	}
	c.Data(http.StatusOK, "text/html; charset=utf-8", b.Bytes())
}

// ownCode fetches the code named by the form's id, refusing reception users
// someone else's code with the same answer as a missing one.
func (a *admin) ownCode(c *httpx.Context) (store.Voucher, bool) {
	id, err := strconv.ParseInt(c.PostForm("id"), 10, 64)
	if err != nil || id <= 0 {
		a.formFail(c, http.StatusBadRequest, "No such code.")
		return store.Voucher{}, false
	}
	v, err := a.visibleCode(c, id)
	if errors.Is(err, store.ErrNotFound) {
		a.formFail(c, http.StatusNotFound, "No such code among yours.")
		return store.Voucher{}, false
	}
	if err != nil {
		a.p.log.Error("look up voucher", "id", id, "err", err)
		a.formFail(c, http.StatusInternalServerError, "The database could not be read.")
		return store.Voucher{}, false
	}
	return v, true
}

// visibleCode fetches code id if the current user may see and change it:
// for reception users someone else's code is store.ErrNotFound, like a
// missing one.
func (a *admin) visibleCode(c *httpx.Context, id int64) (store.Voucher, error) {
	v, err := a.p.st.VoucherByID(c.Request.Context(), id)
	if err == nil && mine(c) && v.CreatedBy != web.Actor(c) {
		return store.Voucher{}, fmt.Errorf("captive: voucher %d belongs to %s: %w", id, v.CreatedBy, store.ErrNotFound)
	}
	return v, err
}

// extension reads how long to extend v by. On refusal it returns the HTTP
// status and the message for the person.
func extension(v store.Voucher, by string, now time.Time) (time.Duration, int, string) {
	d, err := time.ParseDuration(by)
	if err != nil || d < time.Minute || d > 30*24*time.Hour {
		return 0, http.StatusBadRequest, "Choose how long to extend the code by (1m to 720h)."
	}
	d = d.Round(time.Second)
	if !v.RevokedAt.IsZero() {
		return 0, http.StatusConflict, "A revoked code cannot be extended; issue a new one."
	}
	// An expired code stays expired: extending it would revive access
	// nobody issued for today.
	if until := v.Until(); !until.IsZero() && !now.Before(until) {
		return 0, http.StatusConflict, "An expired code cannot be extended; issue a new one."
	}
	// Extensions never take a code past the longest a code may be issued
	// for, however many there are.
	start := v.CreatedAt
	if !v.NotBefore.IsZero() {
		start = v.NotBefore
	}
	if v.Duration+d > MaxDuration || (!v.NotAfter.IsZero() && v.NotAfter.Add(d).Sub(start) > MaxDuration) {
		return 0, http.StatusBadRequest, "A code may last at most 366 days in all, extensions included."
	}
	return d, 0, ""
}

type confirmData struct {
	ID      int64
	Valid   string
	Note    string
	Devices int // signed in now: what revoking disconnects
}

// confirmRevoke says what revoking a code will do before anything
// happens; its button posts the revocation.
func (a *admin) confirmRevoke(c *httpx.Context) {
	id, err := strconv.ParseInt(c.Query("id"), 10, 64)
	if err != nil || id <= 0 {
		a.formFail(c, http.StatusBadRequest, "No such code.")
		return
	}
	v, err := a.visibleCode(c, id)
	if errors.Is(err, store.ErrNotFound) {
		a.formFail(c, http.StatusNotFound, "No such code among yours.")
		return
	}
	if err != nil {
		a.p.log.Error("look up voucher", "id", id, "err", err)
		a.formFail(c, http.StatusInternalServerError, "The database could not be read.")
		return
	}
	n, err := a.p.SignedIn(c.Request.Context(), v)
	if err != nil {
		a.p.log.Error("count devices of voucher", "id", id, "err", err)
		a.formFail(c, http.StatusInternalServerError, "The database could not be read.")
		return
	}
	view := a.srv.View(c, fmt.Sprintf("Revoke code %d?", v.ID))
	view.Data = confirmData{ID: v.ID, Valid: a.validText(v), Note: v.Note, Devices: n}
	a.srv.Render(c, http.StatusOK, a.confirm, view)
}

func (a *admin) revoke(c *httpx.Context) {
	v, ok := a.ownCode(c)
	if !ok {
		return
	}
	_, n, err := a.p.Revoke(c.Request.Context(), web.Actor(c), v.ID)
	if err != nil {
		a.p.log.Error("revoke voucher", "id", v.ID, "err", err)
		a.formFail(c, http.StatusInternalServerError, "The code was revoked, but not every device could be disconnected: "+err.Error())
		return
	}
	c.Redirect(http.StatusSeeOther, "/vouchers?done=revoked&disconnected="+strconv.Itoa(n))
}

func (a *admin) extend(c *httpx.Context) {
	v, ok := a.ownCode(c)
	if !ok {
		return
	}
	by, status, msg := extension(v, c.PostForm("by"), a.p.now())
	if status != 0 {
		a.formFail(c, status, msg)
		return
	}
	if _, err := a.p.Extend(c.Request.Context(), web.Actor(c), v.ID, by); err != nil {
		a.p.log.Error("extend voucher", "id", v.ID, "err", err)
		a.formFail(c, http.StatusInternalServerError, "The code could not be extended: "+err.Error())
		return
	}
	c.Redirect(http.StatusSeeOther, "/vouchers?done=extended")
}

type attemptRow struct {
	At, MAC, IP, Outcome string
	Count                int64 // tries with this outcome from the device in that minute
}

type settingsData struct {
	Brand                   brand
	BrandColour             string // as stored, for the colour field
	Limits                  limitsData
	Version, TextEN, TextCY string
	Attempts                []attemptRow
}

func (a *admin) settingsPage(c *httpx.Context) {
	v := a.srv.View(c, "Portal")
	if c.Query("published") != "" {
		v.Notice = "The Acceptable Use Policy was published."
	}
	if c.Query("limits") != "" {
		v.Notice = "The limits for reception's codes were saved."
	}
	if c.Query("branded") != "" {
		v.Notice = "The logo and colour were saved; the portal and new slips show them now."
	}
	a.renderSettings(c, http.StatusOK, v, nil)
}

func (a *admin) renderSettings(c *httpx.Context, status int, v *web.View, typed *store.PortalAUP) {
	aup := a.p.currentAUP(c.Request.Context())
	if typed != nil {
		aup.TextEN, aup.TextCY = typed.TextEN, typed.TextCY
	}
	d := settingsData{Version: aup.Version[:12], TextEN: aup.TextEN, TextCY: aup.TextCY, Limits: a.limitsData(c.Request.Context()),
		Brand: a.p.currentBrand(c.Request.Context())}
	d.BrandColour = string(d.Brand.Colour)
	as, err := a.p.st.VoucherAttempts(c.Request.Context(), 50)
	if err != nil {
		a.p.log.Error("list code attempts", "err", err)
	}
	for _, at := range as {
		r := attemptRow{At: a.when(at.At), Outcome: at.Outcome, Count: at.Count}
		if at.MAC != nil {
			r.MAC = at.MAC.String()
		}
		if at.IP.IsValid() {
			r.IP = at.IP.String()
		}
		d.Attempts = append(d.Attempts, r)
	}
	v.Data = d
	a.srv.Render(c, status, a.settings, v)
}

func (a *admin) setAUP(c *httpx.Context) {
	en := strings.TrimSpace(c.PostForm("aup_en"))
	cy := strings.TrimSpace(c.PostForm("aup_cy"))
	if en == "" || len(en) > 32<<10 || len(cy) > 32<<10 {
		v := a.srv.View(c, "Portal")
		v.Error = "The English text is required, and each text must be at most 32 KB (the portal page must stay small)."
		a.renderSettings(c, http.StatusBadRequest, v, &store.PortalAUP{TextEN: en, TextCY: cy})
		return
	}
	if _, err := a.p.st.SetPortalAUP(c.Request.Context(), web.Actor(c), AUPVersion(en, cy), en, cy, a.p.now()); err != nil {
		a.p.log.Error("set AUP", "err", err)
		a.srv.RenderError(c, http.StatusInternalServerError, "The text could not be saved.")
		return
	}
	c.Redirect(http.StatusSeeOther, "/portal?published=1")
}

// exportCSV sends the acceptances of the last ?days= days (default 30).
func (a *admin) exportCSV(c *httpx.Context) {
	days := 30
	if s := c.Query("days"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 3660 {
			a.srv.RenderError(c, http.StatusBadRequest, "days must be a whole number from 1 to 3660.")
			return
		}
		days = n
	}
	now := a.p.now()
	acc, err := a.p.st.GuestAcceptances(c.Request.Context(), now.Add(-time.Duration(days)*24*time.Hour), now.Add(time.Second))
	if err != nil {
		a.p.log.Error("export acceptances", "err", err)
		a.srv.RenderError(c, http.StatusInternalServerError, "The acceptances could not be read.")
		return
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"time", "code_id", "mac", "randomised_mac", "ip", "name", "company", "aup_version"})
	for _, g := range acc {
		_ = w.Write([]string{g.At.In(a.p.loc).Format(time.RFC3339), strconv.FormatInt(g.VoucherID, 10), g.MAC.String(),
			strconv.FormatBool(g.Randomised), g.IP.String(), csvSafe(g.Name), csvSafe(g.Company), g.AUPVersion})
	}
	w.Flush()
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="guest-acceptances-%s.csv"`, now.In(a.p.loc).Format("2006-01-02")))
	c.Data(http.StatusOK, "text/csv; charset=utf-8", b.Bytes())
}

// csvSafe defuses visitor-typed text that a spreadsheet would run as a
// formula.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// BulkRevokePath revokes the codes ticked on the list.
const BulkRevokePath = "/vouchers/revoke-selected"

// maxBulkRevoke bounds one bulk revocation: a page of codes and then some.
const maxBulkRevoke = 200

// disconnectedText says how many devices a revocation disconnected.
func disconnectedText(n int) string {
	switch n {
	case 0:
		return "no device was signed in with them, so none was disconnected"
	case 1:
		return "1 device that was signed in was disconnected"
	}
	return strconv.Itoa(n) + " devices that were signed in were disconnected"
}

type bulkCode struct {
	ID          int64
	Valid, Note string
	Devices     int // signed in now
}

type bulkRevokeData struct {
	Codes   []bulkCode
	Devices int // in all: what revoking disconnects
	Skipped int // selected codes already revoked or expired
	Back    string
}

// revokeSelected revokes the codes ticked on the list. The first POST only
// says what will happen (how many codes, how many devices it disconnects)
// and asks again; the second, with confirm=yes, revokes each code (each
// audited by the store) and redirects to the list (post/redirect/get).
// Reception may revoke only its own codes: another's is refused like a
// missing one.
func (a *admin) revokeSelected(c *httpx.Context) {
	_ = c.PostForm("id") // parses the body
	raw := c.Request.PostForm["id"]
	if len(raw) == 0 {
		a.formFail(c, http.StatusBadRequest, "Tick the codes to revoke first.")
		return
	}
	if len(raw) > maxBulkRevoke {
		a.formFail(c, http.StatusBadRequest, fmt.Sprintf("Revoke at most %d codes at a time.", maxBulkRevoke))
		return
	}
	back := "/vouchers"
	if q := strings.TrimSpace(c.PostForm("q")); q != "" && len(q) <= 200 {
		back += "?" + url.Values{"q": {q}}.Encode()
	}
	ctx := c.Request.Context()
	d := bulkRevokeData{Back: back}
	seen := map[int64]bool{}
	for _, r := range raw {
		id, err := strconv.ParseInt(r, 10, 64)
		if err != nil || id <= 0 {
			a.formFail(c, http.StatusBadRequest, "No such code.")
			return
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		v, err := a.visibleCode(c, id)
		if errors.Is(err, store.ErrNotFound) {
			a.formFail(c, http.StatusNotFound, fmt.Sprintf("Code %d is not among yours.", id))
			return
		}
		if err != nil {
			a.p.log.Error("look up voucher", "id", id, "err", err)
			a.formFail(c, http.StatusInternalServerError, "The database could not be read.")
			return
		}
		if _, live := a.codeState(v, v.Until(), a.p.now()); !live {
			d.Skipped++
			continue
		}
		n, err := a.p.SignedIn(ctx, v)
		if err != nil {
			a.p.log.Error("count devices of voucher", "id", id, "err", err)
			a.formFail(c, http.StatusInternalServerError, "The database could not be read.")
			return
		}
		d.Codes = append(d.Codes, bulkCode{ID: v.ID, Valid: a.validText(v), Note: v.Note, Devices: n})
		d.Devices += n
	}
	if c.PostForm("confirm") != "yes" || len(d.Codes) == 0 {
		view := a.srv.View(c, "Revoke "+web.Plural(len(d.Codes), "code", "codes")+"?")
		view.Data = d
		a.srv.Render(c, http.StatusOK, a.bulkConfirm, view)
		return
	}
	revoked, disconnected := 0, 0
	for _, bc := range d.Codes {
		_, n, err := a.p.Revoke(ctx, web.Actor(c), bc.ID)
		if err != nil {
			a.p.log.Error("revoke voucher", "id", bc.ID, "err", err)
			a.formFail(c, http.StatusInternalServerError, fmt.Sprintf("%s revoked; code %d could not be revoked, or not every device disconnected: %v",
				web.Plural(revoked, "code was", "codes were"), bc.ID, err))
			return
		}
		revoked++
		disconnected += n
	}
	sep := "?"
	if strings.Contains(back, "?") {
		sep = "&"
	}
	c.Redirect(http.StatusSeeOther, back+sep+"done=revoked_n&n="+strconv.Itoa(revoked)+"&disconnected="+strconv.Itoa(disconnected))
}
