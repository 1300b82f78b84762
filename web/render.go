package web

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-net/gatehouse/web/httpx"

	"github.com/gatehouse-net/gatehouse/store"
)

// View is what every page template is executed with. Feature pages put
// their own data in Data; the layout uses the rest.
type View struct {
	Site    string
	Title   string
	User    *store.User // nil on the login page and anonymous error pages
	Nav     []NavItem   // the pages the user's role may open
	CSRF    string      // for the hidden "csrf" field of every form
	Error   string      // shown above the content
	Notice  string      // shown above the content
	Data    any
	Content template.HTML // the rendered page, for the layout only
}

// NavItem is one navigation link.
type NavItem struct {
	Path, Title string
	Current     bool
}

// CSRFField is the hidden input every form must carry: {{.CSRFField}}.
func (v *View) CSRFField() template.HTML {
	return template.HTML(`<input type="hidden" name="csrf" value="` + template.HTMLEscapeString(v.CSRF) + `">`)
}

// templateFuncs are available to the shell's own templates.
func (s *Server) templateFuncs() template.FuncMap {
	return template.FuncMap{
		"when": s.When,
	}
}

// When is a time as pages show it: the school's local time, in words
// people read without thinking ("Sun 6 Dec 2026 09:15"); "never" for the
// zero time.
func (s *Server) When(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.In(s.loc).Format("Mon 2 Jan 2006 15:04")
}

func (s *Server) parseTemplates() error {
	var err error
	s.layout, err = template.New("layout.html").Funcs(s.templateFuncs()).ParseFS(assets, "templates/layout.html")
	if err != nil {
		return fmt.Errorf("web: parse layout: %w", err)
	}
	files, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return fmt.Errorf("web: list templates: %w", err)
	}
	s.tmpl = map[string]*template.Template{}
	for _, f := range files {
		base := path.Base(f)
		if base == "layout.html" {
			continue
		}
		t, err := template.New(base).Funcs(s.templateFuncs()).ParseFS(assets, f)
		if err != nil {
			return fmt.Errorf("web: parse %s: %w", f, err)
		}
		s.tmpl[strings.TrimSuffix(base, ".html")] = t
	}
	return nil
}

// View returns a View for the current request with the layout fields
// (site, user, navigation, CSRF token) filled in.
func (s *Server) View(c *httpx.Context, title string) *View {
	v := &View{Site: s.site, Title: title, CSRF: CSRFToken(c)}
	if u, ok := CurrentUser(c); ok {
		v.User = &u
		v.Nav = s.nav(u.Role, c.Request.URL.Path)
	}
	return v
}

// nav lists the titled pages role may open, by daily use (Page.Menu), then
// in registration order.
func (s *Server) nav(role, current string) []NavItem {
	s.mu.Lock()
	defer s.mu.Unlock()
	var pages []Page
	for _, p := range s.pages {
		if p.Title == "" || p.GET == nil || !hasRole(p.Roles, role) {
			continue
		}
		pages = append(pages, p)
	}
	// The page the role lands on comes first: that is its daily work.
	rank := func(p Page) int {
		if slices.Contains(p.LandingFor, role) || (p.Path == "/" && s.landingLocked(role) == "/") {
			return -1
		}
		return p.Menu
	}
	slices.SortStableFunc(pages, func(a, b Page) int { return rank(a) - rank(b) })
	items := make([]NavItem, 0, len(pages))
	for _, p := range pages {
		items = append(items, NavItem{Path: p.Path, Title: p.Title, Current: p.Path == current})
	}
	return items
}

// landing is where a sign-in of role goes when no page was asked for.
func (s *Server) landing(role string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.landingLocked(role)
}

func (s *Server) landingLocked(role string) string {
	for _, p := range s.pages {
		if slices.Contains(p.LandingFor, role) && p.GET != nil {
			return p.Path
		}
	}
	return "/"
}

// Render executes t with v and writes the result inside the shared layout.
// Feature pages use it with their own templates; forms in t should include
// {{.CSRFField}}.
func (s *Server) Render(c *httpx.Context, status int, t *template.Template, v *View) {
	var body bytes.Buffer
	if err := t.Execute(&body, v); err != nil {
		s.log.Error("web: render page", "template", t.Name(), "path", c.Request.URL.Path, "err", err)
		c.Data(http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("internal error\n"))
		return
	}
	v.Content = template.HTML(body.String()) // t is an html/template: its output is already escaped
	var page bytes.Buffer
	if err := s.layout.Execute(&page, v); err != nil {
		s.log.Error("web: render layout", "path", c.Request.URL.Path, "err", err)
		c.Data(http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("internal error\n"))
		return
	}
	c.Data(status, "text/html; charset=utf-8", labelCells(page.Bytes()))
}

// renderPage renders one of the shell's own templates.
func (s *Server) renderPage(c *httpx.Context, status int, name string, v *View) {
	t, ok := s.tmpl[name]
	if !ok {
		panic("web: no template " + name) // the set is embedded: a missing one is a build mistake
	}
	s.Render(c, status, t, v)
}

// RenderError renders an error page with msg inside the layout, for feature
// pages as for the shell's own.
func (s *Server) RenderError(c *httpx.Context, status int, msg string) {
	v := s.View(c, http.StatusText(status))
	v.Error = msg
	s.renderPage(c, status, "error", v)
}

func (s *Server) stylesheet(c *httpx.Context) {
	css, err := assets.ReadFile("static/gatehouse.css")
	if err != nil {
		c.AbortWithStatus(http.StatusInternalServerError)
		return
	}
	c.Header("Cache-Control", "public, max-age=3600")
	c.Data(http.StatusOK, "text/css; charset=utf-8", css)
}
