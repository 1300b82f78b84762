package findingsweb

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-net/gatehouse/web/httpx"

	"github.com/gatehouse-net/gatehouse/store"
)

// APIPath is where the JSON list lives.
const APIPath = "/api/v1/findings"

// apiFinding is a finding as the API shows it.
type apiFinding struct {
	ID       int64     `json:"id"`
	At       time.Time `json:"at"`
	Segment  string    `json:"segment,omitempty"`
	SrcIP    string    `json:"src_ip,omitempty"`
	SrcMAC   string    `json:"src_mac,omitempty"`
	DstIP    string    `json:"dst_ip,omitempty"`
	DstPort  uint16    `json:"dst_port,omitempty"`
	Proto    string    `json:"proto,omitempty"`
	Class    string    `json:"class"`
	Detail   string    `json:"detail,omitempty"`
	Evidence string    `json:"evidence,omitempty"`
	// Confidence: "certain", "likely" or "attempt" (inspect's findings).
	Confidence string `json:"confidence,omitempty"`
	DeviceID   int64  `json:"device_id,omitempty"`
	PersonID   int64  `json:"person_id,omitempty"`
}

func toAPIFinding(f store.Finding) apiFinding {
	a := apiFinding{ID: f.ID, At: f.At, Segment: f.Segment, DstPort: f.DstPort, Proto: f.Proto, Class: f.Class,
		Detail: f.Detail, Evidence: f.Evidence, Confidence: f.Confidence, DeviceID: f.DeviceID, PersonID: f.PersonID}
	if f.SrcIP.IsValid() {
		a.SrcIP = f.SrcIP.String()
	}
	if len(f.SrcMAC) > 0 {
		a.SrcMAC = f.SrcMAC.String()
	}
	if f.DstIP.IsValid() {
		a.DstIP = f.DstIP.String()
	}
	return a
}

// maxAPIOffset is as deep as the page's numbers reach.
const maxAPIOffset = 100_000 * PageSize

// apiList answers GET /api/v1/findings?class=&segment=&mac=&since=&until=
// &limit=1..1000 (default PageSize)&offset=N with the findings, newest
// first, and how many match. The filters are checked as the page's are;
// since and until take the page's forms or RFC 3339, until inclusive.
func (p *page) apiList(c *httpx.Context) {
	f, msg := checkFilter(strings.TrimSpace(c.Query("class")), strings.TrimSpace(c.Query("segment")),
		strings.TrimSpace(c.Query("mac")), strings.TrimSpace(c.Query("since")), strings.TrimSpace(c.Query("until")),
		p.loc, "since", "until")
	if msg != "" {
		c.JSON(http.StatusBadRequest, httpx.H{"error": msg})
		return
	}
	f.Limit = PageSize
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > store.MaxFindingsPage {
			c.JSON(http.StatusBadRequest, httpx.H{"error": "limit must be a whole number from 1 to " + strconv.Itoa(store.MaxFindingsPage) + "."})
			return
		}
		f.Limit = n
	}
	if s := c.Query("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > maxAPIOffset {
			c.JSON(http.StatusBadRequest, httpx.H{"error": "offset must be a whole number from 0 to " + strconv.Itoa(maxAPIOffset) + "."})
			return
		}
		f.Offset = n
	}
	ctx := c.Request.Context()
	total, err := p.st.CountFindings(ctx, f)
	if err != nil {
		p.apiDBError(c, err)
		return
	}
	found, err := p.st.Findings(ctx, f)
	if err != nil {
		p.apiDBError(c, err)
		return
	}
	out := make([]apiFinding, 0, len(found))
	for _, fd := range found {
		out = append(out, toAPIFinding(fd))
	}
	c.JSON(http.StatusOK, httpx.H{"findings": out, "total": total, "limit": f.Limit, "offset": f.Offset})
}

func (p *page) apiDBError(c *httpx.Context, err error) {
	p.log.Error("findingsweb: read findings", "path", c.Request.URL.Path, "err", err)
	c.JSON(http.StatusInternalServerError, httpx.H{"error": "the findings could not be read from the database"})
}
