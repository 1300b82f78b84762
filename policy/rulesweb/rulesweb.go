// Package rulesweb is the admin page for the school's rules (network role
// only): the ordered list, and forms to add, edit, delete and move a rule up
// or down. It is server-rendered and works without JavaScript.
//
// It owns the forms and their parsing into policy.Rule, checked against the
// network with policy.Rule.Validate before anything is stored. It does not
// own storage or the audit trail (package store, through policy/ruledb's
// conversion), sessions, roles or CSRF (package web), or the kernel: after
// every committed change it calls Options.OnChange, with which the daemon
// reloads the rules into the enforcer and the DNS guard.
package rulesweb

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"sort"
	"strconv"

	"github.com/gatehouse-net/gatehouse/web/httpx"

	"github.com/gatehouse-net/gatehouse/alert"
	"github.com/gatehouse-net/gatehouse/alert/finding"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/policy/ruledb"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
)

// Store is the part of *store.Store the pages use.
type Store interface {
	Rules(ctx context.Context) ([]store.Rule, error)
	RuleByID(ctx context.Context, id int64) (store.Rule, error)
	CreateRule(ctx context.Context, actor string, r store.Rule) (store.Rule, error)
	UpdateRule(ctx context.Context, actor string, r store.Rule) (store.Rule, error)
	DeleteRule(ctx context.Context, actor string, id int64) error
	MoveRule(ctx context.Context, actor string, id int64, position int) (store.Rule, error)
}

// Options are the pages' dependencies.
type Options struct {
	Store Store // required
	// Network is what rules are checked against: its segments and named
	// servers are what the forms offer.
	Network policy.Network
	// OnChange is called after every committed change, with the request's
	// context; an error is shown to the user (the rule is saved, but not in
	// force) and logged. Optional.
	OnChange func(context.Context) error
	// NotInForce says which rules cannot be put in force now, and why (a
	// group the people directory cannot find); the table shows it beside
	// the rule. Optional.
	NotInForce func(context.Context) (map[int64]string, error)
	Logger     *slog.Logger
}

//go:embed templates/*.html
var templates embed.FS

type pages struct {
	opts Options
	srv  *web.Server
	log  *slog.Logger
	list *template.Template
	edit *template.Template
}

// Register adds the rule pages to srv: /rules (list and add), /rules/edit,
// /rules/delete and /rules/move, for the network role. Call it before
// srv.Handler or srv.Run.
func Register(srv *web.Server, opts Options) error {
	if opts.Store == nil {
		return errors.New("rulesweb: no store")
	}
	if err := opts.Network.Validate(); err != nil {
		return fmt.Errorf("rulesweb: %w", err)
	}
	p := &pages{opts: opts, srv: srv, log: opts.Logger}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if p.list, err = template.ParseFS(templates, "templates/rules.html", "templates/fields.html"); err != nil {
		return fmt.Errorf("rulesweb: parse templates: %w", err)
	}
	if p.edit, err = template.ParseFS(templates, "templates/edit.html", "templates/fields.html"); err != nil {
		return fmt.Errorf("rulesweb: parse templates: %w", err)
	}
	network := []string{web.RoleNetwork}
	srv.AddPage(web.Page{Path: "/rules", Title: "Rules", Roles: network, GET: p.listPage, POST: p.create})
	srv.AddPage(web.Page{Path: "/rules/edit", Roles: network, GET: p.editPage, POST: p.update})
	srv.AddPage(web.Page{Path: "/rules/delete", Roles: network, POST: p.remove})
	srv.AddPage(web.Page{Path: "/rules/move", Roles: network, POST: p.move})
	return nil
}

// choices are the form's select options.
type choices struct {
	WhoKinds, WhatKinds, WhenKinds, Actions, Protos []option
	Segments, Servers                               []option
	Classes                                         []option // what inspection detects, by its plain-English name
}

// ruleClasses are the detected classes a rule can name: inspection's,
// not the ones the router itself raises (code guessing, a full pool).
var ruleClasses = []string{finding.ClassVPN, finding.ClassTor, finding.ClassProxy, finding.ClassDoH, finding.ClassDoT, finding.ClassDoQ,
	finding.ClassECH, finding.ClassSSH, finding.ClassRemoteAccess, finding.ClassTunnel, finding.ClassTethering}

type option struct{ Value, Label string }

func (p *pages) choices() choices {
	c := choices{
		WhoKinds:  []option{{"anyone", "anyone"}, {"person", "a person (ID)"}, {"group", "a group (e.g. Year 9, staff)"}, {"device", "a device (MAC)"}},
		WhatKinds: []option{{"any", "any traffic"}, {"service", "a service (protocol and ports)"}, {"subnet", "a destination subnet"}, {"server", "a named server"}, {"domains", "domains (DNS guard)"}, {"class", "a detected class (inspection)"}},
		WhenKinds: []option{{"always", "always"}, {"weekly", "weekly time slots"}, {"term", "term time"}, {"holidays", "holidays"}},
		Actions:   []option{{"allow", "allow"}, {"block", "block"}, {"block-and-alert", "block and alert"}, {"alert", "alert only"}},
		Protos:    []option{{"", "tcp and udp"}, {"tcp", "tcp"}, {"udp", "udp"}},
		Segments:  []option{{"", "every segment"}},
	}
	for _, s := range p.opts.Network.Segments {
		c.Segments = append(c.Segments, option{s.Name, s.Name})
	}
	for _, cl := range ruleClasses {
		c.Classes = append(c.Classes, option{cl, alert.MeaningOf(cl).Title + " (" + cl + ")"})
	}
	var names []string
	for n := range p.opts.Network.Servers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c.Servers = append(c.Servers, option{n, n + " (" + p.opts.Network.Servers[n].String() + ")"})
	}
	return c
}

type row struct {
	ID                                   int64
	Position                             int
	Name, Who, What, Where, When, Action string
	Disabled, First, Last                bool
	NotInForce                           string // why the rule enforces nothing now; "" when it is in force
}

type listData struct {
	Rows    []row
	Form    form
	Choices choices
}

type editData struct {
	Form    form
	Choices choices
}

func (p *pages) dbError(c *httpx.Context, what string, err error) {
	p.log.Error("rulesweb: "+what, "err", err)
	p.srv.RenderError(c, http.StatusInternalServerError, "The database could not be read or written. Try again; if it keeps failing, check the daemon's log.")
}

func (p *pages) listPage(c *httpx.Context) {
	v := p.srv.View(c, "Rules")
	switch c.Query("done") {
	case "created":
		v.Notice = "Rule added."
	case "updated":
		v.Notice = "Rule saved."
	case "deleted":
		v.Notice = "Rule deleted."
	case "moved":
		v.Notice = "Rule moved."
	}
	if c.Query("apply") == "failed" {
		v.Error = "The change is saved but could not be put in force; the previous rules still apply. The daemon's log says why."
	}
	p.renderList(c, http.StatusOK, v, form{WhoKind: "anyone", WhatKind: "any", WhenKind: "always", Action: "block"})
}

func (p *pages) renderList(c *httpx.Context, status int, v *web.View, f form) {
	rows, err := p.opts.Store.Rules(c.Request.Context())
	if err != nil {
		p.dbError(c, "list rules", err)
		return
	}
	d := listData{Form: f, Choices: p.choices()}
	var notInForce map[int64]string
	if p.opts.NotInForce != nil {
		if notInForce, err = p.opts.NotInForce(c.Request.Context()); err != nil {
			p.log.Warn("rulesweb: which rules are not in force", "err", err)
		}
	}
	for i, sr := range rows {
		r := ruledb.FromStore(sr)
		where := r.Where
		if where == "" {
			where = "every segment"
		}
		d.Rows = append(d.Rows, row{ID: r.ID, Position: sr.Position, Name: r.Name, Who: whoText(r.Who), What: whatText(r.What),
			Where: where, When: whenText(r.When), Action: string(r.Action), Disabled: r.Disabled,
			NotInForce: notInForce[r.ID], First: i == 0, Last: i == len(rows)-1})
	}
	v.Data = d
	p.srv.Render(c, status, p.list, v)
}

func formFrom(c *httpx.Context) form {
	return form{
		Name: c.PostForm("name"), WhoKind: c.PostForm("who_kind"), WhoID: c.PostForm("who_id"),
		WhatKind: c.PostForm("what_kind"), Proto: c.PostForm("proto"), Ports: c.PostForm("ports"),
		Subnet: c.PostForm("subnet"), Server: c.PostForm("server"), Domains: c.PostForm("domains"),
		Class: c.PostForm("class"), Where: c.PostForm("where"), WhenKind: c.PostForm("when_kind"),
		Slots: c.PostForm("slots"), Action: c.PostForm("action"), Disabled: c.PostForm("disabled") != "",
	}
}

// parse reads and checks the posted rule; the message is for the user.
func (p *pages) parse(c *httpx.Context) (form, policy.Rule, string) {
	f := formFrom(c)
	r, err := f.rule()
	if err == nil {
		err = r.Validate(p.opts.Network)
	}
	if err != nil {
		return f, r, "The rule was not saved: " + err.Error()
	}
	return f, r, ""
}

// changed runs OnChange and redirects to the list with what happened.
func (p *pages) changed(c *httpx.Context, done string) {
	target := "/rules?done=" + done
	if p.opts.OnChange != nil {
		if err := p.opts.OnChange(c.Request.Context()); err != nil {
			p.log.Error("rulesweb: put rules in force", "after", done, "err", err)
			target += "&apply=failed"
		}
	}
	c.Redirect(http.StatusSeeOther, target)
}

func (p *pages) create(c *httpx.Context) {
	f, r, msg := p.parse(c)
	if msg != "" {
		v := p.srv.View(c, "Rules")
		v.Error = msg
		p.renderList(c, http.StatusBadRequest, v, f)
		return
	}
	saved, err := p.opts.Store.CreateRule(c.Request.Context(), web.Actor(c), ruledb.ToStore(r))
	if err != nil {
		p.dbError(c, "create rule", err)
		return
	}
	p.log.Info("rulesweb: rule created", "user", web.Actor(c), "rule", saved.ID)
	p.changed(c, "created")
}

func ruleID(s string) (int64, bool) {
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil && id > 0
}

func (p *pages) editPage(c *httpx.Context) {
	id, ok := ruleID(c.Query("id"))
	if !ok {
		p.srv.RenderError(c, http.StatusBadRequest, "Which rule? The link lacks a rule number.")
		return
	}
	sr, err := p.opts.Store.RuleByID(c.Request.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		p.srv.RenderError(c, http.StatusNotFound, "There is no such rule; it may have been deleted.")
		return
	}
	if err != nil {
		p.dbError(c, "read rule", err)
		return
	}
	v := p.srv.View(c, "Edit rule")
	v.Data = editData{Form: formOf(ruledb.FromStore(sr)), Choices: p.choices()}
	p.srv.Render(c, http.StatusOK, p.edit, v)
}

func (p *pages) update(c *httpx.Context) {
	id, ok := ruleID(c.PostForm("id"))
	if !ok {
		p.srv.RenderError(c, http.StatusBadRequest, "Which rule? The form lacks a rule number.")
		return
	}
	f, r, msg := p.parse(c)
	f.ID, r.ID = id, id
	if msg != "" {
		v := p.srv.View(c, "Edit rule")
		v.Error = msg
		v.Data = editData{Form: f, Choices: p.choices()}
		p.srv.Render(c, http.StatusBadRequest, p.edit, v)
		return
	}
	_, err := p.opts.Store.UpdateRule(c.Request.Context(), web.Actor(c), ruledb.ToStore(r))
	if errors.Is(err, store.ErrNotFound) {
		p.srv.RenderError(c, http.StatusNotFound, "There is no such rule; it may have been deleted.")
		return
	}
	if err != nil {
		p.dbError(c, "update rule", err)
		return
	}
	p.log.Info("rulesweb: rule updated", "user", web.Actor(c), "rule", id)
	p.changed(c, "updated")
}

func (p *pages) remove(c *httpx.Context) {
	id, ok := ruleID(c.PostForm("id"))
	if !ok {
		p.srv.RenderError(c, http.StatusBadRequest, "Which rule? The form lacks a rule number.")
		return
	}
	err := p.opts.Store.DeleteRule(c.Request.Context(), web.Actor(c), id)
	if errors.Is(err, store.ErrNotFound) {
		p.srv.RenderError(c, http.StatusNotFound, "There is no such rule; it may have been deleted already.")
		return
	}
	if err != nil {
		p.dbError(c, "delete rule", err)
		return
	}
	p.log.Info("rulesweb: rule deleted", "user", web.Actor(c), "rule", id)
	p.changed(c, "deleted")
}

func (p *pages) move(c *httpx.Context) {
	id, ok := ruleID(c.PostForm("id"))
	if !ok {
		p.srv.RenderError(c, http.StatusBadRequest, "Which rule? The form lacks a rule number.")
		return
	}
	var delta int
	switch c.PostForm("dir") {
	case "up":
		delta = -1
	case "down":
		delta = 1
	default:
		p.srv.RenderError(c, http.StatusBadRequest, "Move the rule up or down.")
		return
	}
	ctx := c.Request.Context()
	sr, err := p.opts.Store.RuleByID(ctx, id)
	if err == nil {
		_, err = p.opts.Store.MoveRule(ctx, web.Actor(c), id, sr.Position+delta)
	}
	if errors.Is(err, store.ErrNotFound) {
		p.srv.RenderError(c, http.StatusNotFound, "There is no such rule; it may have been deleted.")
		return
	}
	if err != nil {
		p.dbError(c, "move rule", err)
		return
	}
	p.log.Info("rulesweb: rule moved", "user", web.Actor(c), "rule", id, "dir", c.PostForm("dir"))
	p.changed(c, "moved")
}
