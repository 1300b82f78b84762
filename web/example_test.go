package web_test

import (
	"html/template"
	"net/http"

	"github.com/gatehouse-net/gatehouse/web/httpx"

	"github.com/gatehouse-net/gatehouse/web"
)

// A feature package adds its pages before the server starts and renders
// them inside the shared layout. The shell has already checked the session,
// the role and (on POST) the CSRF token when the handler runs.
func ExampleServer_AddPage() {
	var srv *web.Server // from web.New, in cmd/gatehouse
	page := template.Must(template.New("vouchers").Parse(
		`<form method="post" action="/vouchers">{{.CSRFField}}<button>Issue a code</button></form><p>{{.Data}}</p>`))
	srv.AddPage(web.Page{
		Path:  "/vouchers",
		Title: "Visitor codes",
		Roles: []string{web.RoleReception, web.RoleNetwork},
		GET: func(c *httpx.Context) {
			v := srv.View(c, "Visitor codes")
			v.Data = "No codes issued today."
			srv.Render(c, http.StatusOK, page, v)
		},
		POST: func(c *httpx.Context) {
			// ... issue the code through the feature's API, auditing as web.Actor(c) ...
			c.Redirect(http.StatusSeeOther, "/vouchers")
		},
	})
}
