package web

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/gatehouse-net/gatehouse/web/httpx"
)

// FormCSRFCookie holds the double-submit CSRF token of the public forms.
const FormCSRFCookie = "__Host-gh_form_csrf"

const keyFormCSRF = "gatehouse.web.formcsrf"

// PublicForm is a page for people without an account here, such as a
// pupil changing their own Wi-Fi password: anyone may open and post it,
// with no session. Its POST is CSRF-checked by double submit, as the login
// form is: the GET sets a cookie whose value View puts in the form's csrf
// field, and a POST whose field does not match its cookie is refused
// before the handler runs. The handler must do its own rate limiting and
// must not reveal more to a stranger than the form's purpose needs.
type PublicForm struct {
	Path  string // absolute; not under /api/
	Title string // the page's title (public forms are never in the navigation)
	GET   httpx.HandlerFunc
	POST  httpx.HandlerFunc
}

// AddPublicForm adds f. Like AddPage it must be called before the server
// starts, and panics on a programming error.
func (s *Server) AddPublicForm(f PublicForm) {
	if !strings.HasPrefix(f.Path, "/") || strings.HasPrefix(f.Path, "/api/") {
		panic(fmt.Sprintf("web: AddPublicForm: bad path %q", f.Path))
	}
	if f.GET == nil || f.POST == nil {
		panic(fmt.Sprintf("web: AddPublicForm(%q): a public form needs GET and POST", f.Path))
	}
	s.addRoute(route{method: http.MethodGet, path: f.Path, access: accessPublic, handler: func(c *httpx.Context) {
		tok, err := s.formCSRF(c)
		if err != nil {
			s.log.Error("web: public form", "path", f.Path, "err", err)
			s.RenderError(c, http.StatusInternalServerError, "Internal error.")
			return
		}
		c.Set(keyFormCSRF, tok)
		f.GET(c)
	}})
	s.addRoute(route{method: http.MethodPost, path: f.Path, access: accessPublic, handler: func(c *httpx.Context) {
		ck, err := c.Request.Cookie(FormCSRFCookie)
		if err != nil || len(ck.Value) != tokenLen || !equalTokens(ck.Value, c.PostForm("csrf")) {
			s.log.Warn("web: public form csrf token missing or wrong", "path", f.Path, "client", clientAddr(c.Request).String())
			s.RenderError(c, http.StatusForbidden, "This form was out of date. Go back, reload the page and try again.")
			return
		}
		c.Set(keyFormCSRF, ck.Value)
		f.POST(c)
	}})
}

// formCSRF returns the browser's public-form CSRF cookie, setting a fresh
// one if it has none.
func (s *Server) formCSRF(c *httpx.Context) (string, error) {
	if ck, err := c.Request.Cookie(FormCSRFCookie); err == nil && len(ck.Value) == tokenLen {
		return ck.Value, nil
	}
	tok, err := randomToken()
	if err != nil {
		return "", err
	}
	setCookie(c, FormCSRFCookie, tok, 3600)
	return tok, nil
}

// ClientAddr is the request's TCP peer, for a public form's rate limits.
func ClientAddr(c *httpx.Context) netip.Addr { return clientAddr(c.Request) }
