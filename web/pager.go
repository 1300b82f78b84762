package web

import (
	"html/template"
	"net/url"
	"strconv"

	"github.com/gatehouse-net/gatehouse/web/httpx"
)

// MaxPage bounds the page number a list accepts, so a typed URL cannot ask
// the database to skip an absurd number of rows.
const MaxPage = 100_000

// PageNumber reads the "page" query parameter: 1 when absent; ok false
// (with nothing written) when it is not a whole number from 1 to MaxPage.
func PageNumber(c *httpx.Context) (page int, ok bool) {
	s := c.Query("page")
	if s == "" {
		return 1, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxPage {
		return 1, false
	}
	return n, true
}

// Pager is a list's position among its pages, for the links under a table.
// Its links keep the list's filters (the query it was made with), so a
// filtered, paged view stays a URL that can be bookmarked or sent.
type Pager struct {
	Page, Pages, Total int
	PrevURL, NextURL   string // "" when there is none
}

// NewPager places page (1-based) of size rows in a list of total rows;
// path and query (without "page") make the links.
func NewPager(path string, query url.Values, page, size, total int) Pager {
	p := Pager{Page: page, Total: total, Pages: max(1, (total+size-1)/size)}
	link := func(n int) string {
		q := url.Values{}
		for k, vs := range query {
			for _, v := range vs {
				if v != "" && k != "page" {
					q.Add(k, v)
				}
			}
		}
		if n > 1 {
			q.Set("page", strconv.Itoa(n))
		}
		if len(q) == 0 {
			return path
		}
		return path + "?" + q.Encode()
	}
	if page > 1 {
		p.PrevURL = link(min(page-1, p.Pages))
	}
	if page < p.Pages {
		p.NextURL = link(page + 1)
	}
	return p
}

// Offset is the number of rows before this page.
func (p Pager) Offset(size int) int { return (p.Page - 1) * size }

// HTML renders the page links (nothing when everything fits one page).
func (p Pager) HTML() template.HTML {
	if p.PrevURL == "" && p.NextURL == "" {
		return ""
	}
	esc := template.HTMLEscapeString
	out := `<nav class="pager" aria-label="Pages">`
	if p.PrevURL != "" {
		out += `<a rel="prev" href="` + esc(p.PrevURL) + `">Previous page</a>`
	}
	out += `<span>Page ` + strconv.Itoa(p.Page) + ` of ` + strconv.Itoa(p.Pages) + `</span>`
	if p.NextURL != "" {
		out += `<a rel="next" href="` + esc(p.NextURL) + `">Next page</a>`
	}
	return template.HTML(out + `</nav>`)
}
