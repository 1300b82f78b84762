// Package findingsweb is the admin page that lists inspection findings, for
// the DSL and network roles, with filters by class, segment, device and
// time, and the same list as JSON under /api/v1/findings for scripts
// (bearer token, same roles, same filters). The page is server-rendered and
// works without JavaScript: the filters are a GET form, so a filtered view
// is a link that can be bookmarked or sent.
//
// It owns the page and its API route only. Findings are read through
// package store; the shell (sessions, roles, tokens, layout) is package
// web's; the findings themselves come from every source through package
// findingstore. The network role sees findings and their technical
// evidence here; the DSL's case states and notes are on the alert pages.
package findingsweb

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-net/gatehouse/web/httpx"

	"github.com/gatehouse-net/gatehouse/alert/finding"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
)

// Path is where the page lives.
const Path = "/findings"

// PageSize is how many findings one page lists.
const PageSize = 50

// CSVPath exports the findings the page's filters select.
const CSVPath = "/findings.csv"

// csvLimit bounds one export; a narrower filter exports the rest.
const csvLimit = 10_000

//go:embed templates/findings.html
var templates embed.FS

// Store is the part of the database the page and its API read: findings
// under a filter, their count, and the segments they were seen on.
// *store.Store is one; only package store speaks SQL.
type Store interface {
	Findings(ctx context.Context, f store.FindingFilter) ([]store.Finding, error)
	CountFindings(ctx context.Context, f store.FindingFilter) (int, error)
	FindingSegments(ctx context.Context) ([]string, error)
}

// page holds the page's dependencies.
type page struct {
	srv  *web.Server
	st   Store
	tmpl *template.Template
	loc  *time.Location
	log  *slog.Logger
}

// Register adds the findings page to srv. Call it before srv starts
// serving (web.Server.AddPage panics after). log receives database errors;
// nil discards them.
func Register(srv *web.Server, st Store, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &page{
		srv:  srv,
		st:   st,
		tmpl: template.Must(template.ParseFS(templates, "templates/findings.html")),
		loc:  time.Local,
		log:  log,
	}
	srv.AddPage(web.Page{
		Path:  Path,
		Title: "Findings",
		Roles: []string{web.RoleDSL, web.RoleNetwork},
		GET:   p.list,
	})
	srv.AddPage(web.Page{Path: CSVPath, Roles: []string{web.RoleDSL, web.RoleNetwork}, GET: p.exportCSV})
	srv.AddAPI(http.MethodGet, APIPath, []string{web.RoleDSL, web.RoleNetwork}, p.apiList)
}

// exportCSV sends the findings the page's filters select (all pages, up to
// csvLimit), newest first, times in the school's zone with their offset.
// Detail and evidence come from packets a pupil's device sent, so every
// cell goes through web.SendCSV's formula guard.
func (p *page) exportCSV(c *httpx.Context) {
	var d pageData
	f, msg := p.filter(c, &d)
	if msg != "" {
		p.srv.RenderError(c, http.StatusBadRequest, msg)
		return
	}
	f.Limit, f.Offset = store.MaxFindingsPage, 0
	var rows [][]string
	for len(rows) < csvLimit {
		found, err := p.st.Findings(c.Request.Context(), f)
		if err != nil {
			p.dbError(c, err)
			return
		}
		for _, fd := range found {
			src, dst := "", ""
			if fd.SrcIP.IsValid() {
				src = fd.SrcIP.String()
			}
			if fd.DstIP.IsValid() {
				dst = fd.DstIP.String()
			}
			mac := ""
			if len(fd.SrcMAC) > 0 {
				mac = fd.SrcMAC.String()
			}
			rows = append(rows, []string{strconv.FormatInt(fd.ID, 10), p.srv.CSVTime(fd.At), fd.Segment, fd.Class, fd.Confidence, fd.Detail,
				mac, src, dst, strconv.Itoa(int(fd.DstPort)), fd.Proto, fd.Evidence})
		}
		if len(found) < f.Limit {
			break
		}
		f.Offset += len(found)
	}
	p.srv.SendCSV(c, "findings", []string{"id", "at", "segment", "class", "confidence", "detail", "mac", "source", "destination",
		"port", "protocol", "evidence"}, rows)
}

type row struct {
	When, Segment, Class, Detail string
	Confidence                   string
	MAC, DeviceURL               string
	Src, Dst, Evidence           string
}

type pageData struct {
	// The filter as typed, echoed into the form.
	Class, Segment, Device, From, To string
	Classes, Segments                []string

	Rows             []row
	Total            int
	Page             int
	PrevURL, NextURL string // "" when there is none
	CSVURL           string // the export of the same filter
}

// dateTimeLayouts are what the from/to fields accept: a browser's
// datetime-local value, the same with a space, or a bare date.
var dateTimeLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02"}

// parseWhen reads a from/to value in the school's local time. A bare date
// or a time to the minute covers the whole day or minute, so that "to" is
// inclusive as a person means it: end is the instant just after.
func parseWhen(s string, loc *time.Location) (start, end time.Time, err error) {
	// Scripts send RFC 3339, with its own offset; like a typed time to the
	// second it covers that whole second.
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		t = t.Truncate(time.Second)
		return t, t.Add(time.Second), nil
	}
	for _, l := range dateTimeLayouts {
		t, err := time.ParseInLocation(l, s, loc)
		if err != nil {
			continue
		}
		switch l {
		case "2006-01-02":
			return t, t.AddDate(0, 0, 1), nil
		case "2006-01-02T15:04:05":
			return t, t.Add(time.Second), nil
		default:
			return t, t.Add(time.Minute), nil
		}
	}
	return time.Time{}, time.Time{}, fmt.Errorf("%q is not a date (2026-03-02), a date and time (2026-03-02T09:30) or an RFC 3339 time", s)
}

// filter reads and checks the query. The message is for the person.
func (p *page) filter(c *httpx.Context, d *pageData) (store.FindingFilter, string) {
	d.Class = strings.TrimSpace(c.Query("class"))
	d.Segment = strings.TrimSpace(c.Query("segment"))
	d.Device = strings.TrimSpace(c.Query("device"))
	d.From = strings.TrimSpace(c.Query("from"))
	d.To = strings.TrimSpace(c.Query("to"))
	d.Page = 1
	f, msg := checkFilter(d.Class, d.Segment, d.Device, d.From, d.To, p.loc, "From", "To")
	if msg != "" {
		return f, msg
	}
	if s := c.Query("page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100_000 {
			return f, "The page number must be a positive whole number."
		}
		d.Page = n
	}
	f.Limit, f.Offset = PageSize, (d.Page-1)*PageSize
	return f, ""
}

// checkFilter checks the filter values as typed (the page's and the API's
// alike); fromName and toName name the time fields in the message.
func checkFilter(class, segment, device, from, to string, loc *time.Location, fromName, toName string) (store.FindingFilter, string) {
	var f store.FindingFilter
	if class != "" && !slices.Contains(finding.Classes, class) {
		return f, "Choose a class from the list."
	}
	f.Class = class
	if len(segment) > 64 {
		return f, "Choose a segment from the list."
	}
	f.Segment = segment
	if device != "" {
		mac, err := net.ParseMAC(device)
		if err != nil || len(mac) != 6 {
			return f, "A device is its MAC address, like aa:bb:cc:dd:ee:ff."
		}
		f.MAC = mac
	}
	if from != "" {
		start, _, err := parseWhen(from, loc)
		if err != nil {
			return f, fromName + ": " + err.Error() + "."
		}
		f.Since = start
	}
	if to != "" {
		_, end, err := parseWhen(to, loc)
		if err != nil {
			return f, toName + ": " + err.Error() + "."
		}
		f.Until = end
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return f, fromName + " must be before " + toName + "."
	}
	return f, ""
}

// pageURL links to another page of the same filter.
func (d *pageData) pageURL(n int) string {
	q := url.Values{}
	for k, v := range map[string]string{"class": d.Class, "segment": d.Segment, "device": d.Device, "from": d.From, "to": d.To} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if n > 1 {
		q.Set("page", strconv.Itoa(n))
	}
	if len(q) == 0 {
		return Path
	}
	return Path + "?" + q.Encode()
}

func (p *page) list(c *httpx.Context) {
	ctx := c.Request.Context()
	v := p.srv.View(c, "Findings")
	d := pageData{Classes: finding.Classes}
	segs, err := p.st.FindingSegments(ctx)
	if err != nil {
		p.dbError(c, err)
		return
	}
	d.Segments = segs
	f, msg := p.filter(c, &d)
	if d.Segment != "" && !slices.Contains(d.Segments, d.Segment) {
		// Keep the chosen segment selectable even when it has no findings
		// (yet, or any more).
		d.Segments = append(d.Segments, d.Segment)
	}
	v.Data = &d
	if msg != "" {
		v.Error = msg
		p.srv.Render(c, http.StatusBadRequest, p.tmpl, v)
		return
	}
	if d.Total, err = p.st.CountFindings(ctx, f); err != nil {
		p.dbError(c, err)
		return
	}
	found, err := p.st.Findings(ctx, f)
	if err != nil {
		p.dbError(c, err)
		return
	}
	for _, fd := range found {
		d.Rows = append(d.Rows, p.row(fd))
	}
	d.CSVURL = CSVPath + strings.TrimPrefix(d.pageURL(1), Path)
	if d.Page > 1 {
		d.PrevURL = d.pageURL(d.Page - 1)
	}
	if f.Offset+len(found) < d.Total {
		d.NextURL = d.pageURL(d.Page + 1)
	}
	p.srv.Render(c, http.StatusOK, p.tmpl, v)
}

func (p *page) row(f store.Finding) row {
	r := row{
		When:       f.At.In(p.loc).Format("2006-01-02 15:04:05"),
		Segment:    f.Segment,
		Class:      f.Class,
		Detail:     f.Detail,
		Evidence:   f.Evidence,
		Confidence: f.Confidence,
	}
	if f.SrcIP.IsValid() {
		r.Src = f.SrcIP.String()
	}
	if len(f.SrcMAC) > 0 {
		r.MAC = f.SrcMAC.String()
		r.DeviceURL = Path + "?" + url.Values{"device": {r.MAC}}.Encode()
	}
	switch {
	case f.DstIP.IsValid() && f.DstPort != 0:
		r.Dst = netip.AddrPortFrom(f.DstIP, f.DstPort).String()
	case f.DstIP.IsValid():
		r.Dst = f.DstIP.String()
	}
	if f.Proto != "" && r.Dst != "" {
		r.Dst += " " + f.Proto
	}
	return r
}

func (p *page) dbError(c *httpx.Context, err error) {
	p.log.Error("findingsweb: read findings", "path", c.Request.URL.Path, "err", err)
	p.srv.RenderError(c, http.StatusInternalServerError, "The findings could not be read from the database. Try again; if it keeps failing, check the daemon's log.")
}
