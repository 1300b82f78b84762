package httpx_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-net/gatehouse/web/httpx"
)

func do(t *testing.T, h http.Handler, method, target, body string) *httptest.ResponseRecorder {
	t.Helper()
	var req *http.Request
	if body != "" {
		req = httptest.NewRequest(method, target, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, target, nil)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// The router matches gin's route syntax, runs middleware around the
// route's handlers, and sends every unmatched method or path to NoRoute.
func TestRouterRoutesLikeGin(t *testing.T) {
	r := httpx.NewRouter()
	var order []string
	r.Use(func(c *httpx.Context) {
		order = append(order, "mw-before:"+c.FullPath())
		c.Next()
		order = append(order, "mw-after:"+http.StatusText(c.Writer.Status()))
	})
	r.NoRoute(func(c *httpx.Context) { c.String(http.StatusNotFound, "none: %s", c.Request.URL.Path) })
	r.Handle(http.MethodGet, "/", func(c *httpx.Context) { c.String(http.StatusOK, "home") })
	r.Handle(http.MethodPost, "/api/v1/vouchers/:id/revoke", func(c *httpx.Context) {
		c.JSON(http.StatusOK, httpx.H{"id": c.Param("id"), "why": c.PostForm("why"), "q": c.Query("q")})
	})
	r.Handle(http.MethodGet, "/files/*rest", func(c *httpx.Context) { c.String(http.StatusOK, "%s", c.Param("rest")) })

	if rec := do(t, r, "GET", "/", ""); rec.Code != 200 || rec.Body.String() != "home" {
		t.Errorf("GET /: %d %q", rec.Code, rec.Body)
	}
	if rec := do(t, r, "GET", "/elsewhere", ""); rec.Code != 404 || rec.Body.String() != "none: /elsewhere" {
		t.Errorf("GET /elsewhere: %d %q; the root route must not match the tree under it", rec.Code, rec.Body)
	}
	rec := do(t, r, "POST", "/api/v1/vouchers/42/revoke?q=x&why=query", "why=lost")
	if rec.Code != 200 || rec.Body.String() != `{"id":"42","q":"x","why":"lost"}` {
		t.Errorf("POST revoke: %d %q", rec.Code, rec.Body)
	}
	if got := rec.Header().Get("Content-Type"); got != "application/json; charset=utf-8" {
		t.Errorf("JSON content type %q", got)
	}
	if rec := do(t, r, "GET", "/api/v1/vouchers/42/revoke", ""); rec.Code != 404 || !strings.HasPrefix(rec.Body.String(), "none:") {
		t.Errorf("wrong method: %d %q; want NoRoute's 404 as gin gave, not a 405", rec.Code, rec.Body)
	}
	if rec := do(t, r, "GET", "/files/a/b", ""); rec.Body.String() != "a/b" {
		t.Errorf("wildcard: %q", rec.Body)
	}
	want := []string{"mw-before:/", "mw-after:OK", "mw-before:", "mw-after:Not Found"}
	if strings.Join(order[:4], ",") != strings.Join(want, ",") {
		t.Errorf("middleware order %q, want %q first", order, want)
	}
}

// Abort stops the chain; the status set before the first byte is the one
// written, and a chain that writes nothing answers 200.
func TestAbortAndStatus(t *testing.T) {
	r := httpx.NewRouter()
	r.Use(func(c *httpx.Context) {
		if c.GetHeader("X-Deny") != "" {
			c.Header("WWW-Authenticate", "Bearer")
			c.AbortWithStatusJSON(http.StatusUnauthorized, httpx.H{"error": "no"})
			return
		}
		c.Set("user", "ada")
		c.Next()
	})
	r.Handle(http.MethodGet, "/who", func(c *httpx.Context) {
		v, _ := c.Get("user")
		c.Status(http.StatusTeapot)
		c.Status(http.StatusAccepted) // changed before anything was written
		c.Data(http.StatusAccepted, "text/x-name", []byte(v.(string)))
	})
	r.Handle(http.MethodGet, "/quiet", func(*httpx.Context) {})
	r.Handle(http.MethodGet, "/go", func(c *httpx.Context) { c.Redirect(http.StatusSeeOther, "/who?x=1") })

	req := httptest.NewRequest("GET", "/who", nil)
	req.Header.Set("X-Deny", "1")
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	if rec.Code != 401 || rec.Body.String() != `{"error":"no"}` || rec.Header().Get("WWW-Authenticate") != "Bearer" {
		t.Errorf("aborted: %d %q %v", rec.Code, rec.Body, rec.Header())
	}
	if rec := do(t, r, "GET", "/who", ""); rec.Code != 202 || rec.Body.String() != "ada" || rec.Header().Get("Content-Type") != "text/x-name" {
		t.Errorf("who: %d %q %v", rec.Code, rec.Body, rec.Header())
	}
	if rec := do(t, r, "GET", "/quiet", ""); rec.Code != 200 || rec.Body.Len() != 0 {
		t.Errorf("quiet: %d %q", rec.Code, rec.Body)
	}
	if rec := do(t, r, "GET", "/go", ""); rec.Code != 303 || rec.Header().Get("Location") != "/who?x=1" {
		t.Errorf("redirect: %d %v", rec.Code, rec.Header())
	}
}

func TestQueryDefaultsAndMuxPattern(t *testing.T) {
	c := httpx.NewContext(httptest.NewRecorder(), httptest.NewRequest("GET", "/?a=1&e=", nil))
	if c.DefaultQuery("a", "x") != "1" || c.DefaultQuery("e", "x") != "" || c.DefaultQuery("m", "x") != "x" || c.Query("m") != "" {
		t.Errorf("queries: %q %q %q", c.DefaultQuery("a", "x"), c.DefaultQuery("e", "x"), c.DefaultQuery("m", "x"))
	}
	// PostForm reads the body only, never the query.
	body := url.Values{"b": {"2"}}.Encode()
	req := httptest.NewRequest("POST", "/?b=query", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	c = httpx.NewContext(httptest.NewRecorder(), req)
	if c.PostForm("b") != "2" || c.PostForm("a") != "" {
		t.Errorf("PostForm b=%q", c.PostForm("b"))
	}
	for in, want := range map[string]string{
		"/":                      "/{$}",
		"/vouchers":              "/vouchers",
		"/api/v1/vouchers/:id/x": "/api/v1/vouchers/{id}/x",
		"/files/*rest":           "/files/{rest...}",
		"/a/{id}":                "/a/{id}",
	} {
		if got := httpx.MuxPattern(in); got != want {
			t.Errorf("MuxPattern(%q) = %q, want %q", in, got, want)
		}
	}
}
