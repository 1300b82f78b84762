package web

import (
	"bytes"
	"strconv"
	"strings"

	"golang.org/x/net/html"
)

// labelCells gives every data cell of every table in a rendered page its
// column's header as a data-label attribute, so that below 600 px the
// stylesheet can show each row as a card of "Header: value" lines instead
// of a table wider than the phone. It is done here, once, for every
// feature's pages, rather than in each template. A cell that already has a
// data-label keeps it; a table without a thead is left alone.
func labelCells(page []byte) []byte {
	if !bytes.Contains(page, []byte("<table")) {
		return page
	}
	type table struct {
		heads  []string
		inHead bool
		col    int
		th     *strings.Builder
		thSpan int
	}
	var stack []*table
	var out bytes.Buffer
	out.Grow(len(page) + len(page)/8)
	z := html.NewTokenizer(bytes.NewReader(page))
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		raw := z.Raw()
		var top *table
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch tt {
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			switch tok.Data {
			case "table":
				stack = append(stack, &table{})
			case "thead":
				if top != nil {
					top.inHead = true
				}
			case "tr":
				if top != nil {
					top.col = 0
				}
			case "th":
				if top != nil && top.inHead {
					top.th, top.thSpan = &strings.Builder{}, span(tok)
				}
			case "td":
				if top != nil && !top.inHead && len(top.heads) > 0 {
					label := ""
					if top.col < len(top.heads) {
						label = top.heads[top.col]
					}
					top.col += span(tok)
					if label != "" && !hasAttr(tok, "data-label") {
						tok.Attr = append(tok.Attr, html.Attribute{Key: "data-label", Val: label})
						out.WriteString(tok.String())
						continue
					}
				}
			}
		case html.EndTagToken:
			switch z.Token().Data {
			case "table":
				if len(stack) > 0 {
					stack = stack[:len(stack)-1]
				}
			case "thead":
				if top != nil {
					top.inHead = false
				}
			case "th":
				if top != nil && top.th != nil {
					h := strings.Join(strings.Fields(top.th.String()), " ")
					for range top.thSpan {
						top.heads = append(top.heads, h)
					}
					top.th = nil
				}
			}
		case html.TextToken:
			if top != nil && top.th != nil {
				top.th.WriteString(html.UnescapeString(string(raw)))
			}
		}
		out.Write(raw)
	}
	return out.Bytes()
}

// span is a cell's colspan (1 when absent or silly).
func span(t html.Token) int {
	for _, a := range t.Attr {
		if a.Key == "colspan" {
			if n, err := strconv.Atoi(a.Val); err == nil && n >= 1 && n <= 100 {
				return n
			}
		}
	}
	return 1
}

func hasAttr(t html.Token, key string) bool {
	for _, a := range t.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}
