package web

import (
	"bytes"
	"encoding/csv"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-net/gatehouse/web/httpx"
)

// CSVSafe keeps a spreadsheet from reading a cell as a formula: a cell that
// starts with = + - @ or a tab or carriage return gets a leading
// apostrophe. Every CSV export of text people or devices typed (names,
// notes, host names) goes through it.
func CSVSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// CSVTime is a time in a CSV export: the school's local time with its
// offset ("2026-12-06T09:15:00+00:00"), so a spreadsheet shows what people
// saw on the page and the instant stays exact; "" for the zero time.
func (s *Server) CSVTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(s.loc).Format("2006-01-02T15:04:05-07:00")
}

// SendCSV answers with a CSV attachment named name-<local date>.csv. Every
// cell passes through CSVSafe.
func (s *Server) SendCSV(c *httpx.Context, name string, header []string, rows [][]string) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(header)
	for _, r := range rows {
		safe := make([]string, len(r))
		for i, cell := range r {
			safe[i] = CSVSafe(cell)
		}
		_ = w.Write(safe)
	}
	w.Flush()
	c.Header("Content-Disposition", `attachment; filename="`+name+"-"+s.now().In(s.loc).Format("2006-01-02")+`.csv"`)
	c.Data(http.StatusOK, "text/csv; charset=utf-8", b.Bytes())
}
