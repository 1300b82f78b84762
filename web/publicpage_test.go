package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-net/gatehouse/web/httpx"

	"github.com/gatehouse-net/gatehouse/web"
	"github.com/gatehouse-net/gatehouse/web/webtest"
)

// TestAddPublicPageIsReadOnlyAndOpenToAll: a public page answers GET
// without a session, with the shell's security headers, and nothing else.
func TestAddPublicPageIsReadOnlyAndOpenToAll(t *testing.T) {
	site := webtest.New(t, webtest.Options{Setup: func(srv *web.Server) error {
		srv.AddPublicPage("/hello", func(c *httpx.Context) { c.String(http.StatusOK, "hello, stranger") })
		return nil
	}})
	anon := site.NewBrowser(t)
	r := anon.Get("/hello")
	if r.StatusCode != http.StatusOK || r.Body != "hello, stranger" || r.Header.Get("Cache-Control") != "no-store" ||
		!strings.Contains(r.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Fatalf("%d %q %v", r.StatusCode, r.Body, r.Header)
	}
	if r := anon.Post("/hello", url.Values{}); r.StatusCode != http.StatusNotFound {
		t.Fatalf("POST to a public page: %d", r.StatusCode)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("AddPublicPage after the start did not panic")
		}
	}()
	site.Server.AddPublicPage("/late", func(*httpx.Context) {})
}
