package radiusweb

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
)

// The live sessions list pages: a big school's sessions are not one
// endless table.
func TestLiveSessionsPage(t *testing.T) {
	b := newBench(t)
	ctx := context.Background()
	start := time.Now().Add(-time.Hour)
	for i := range sessionsPageSize + 2 {
		mac := net.HardwareAddr{2, 0, 0, 0, 1, byte(i)}
		if _, err := b.st.RecordAccounting(ctx, store.AccountingUpdate{Status: store.AcctStart, NAS: "aps", NASAddr: netip.MustParseAddr("10.99.0.10"),
			AcctSessionID: fmt.Sprintf("P%d", i), Person: fmt.Sprintf("PUPIL%03d", i), MAC: mac, SSID: "Pupils", At: start.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	nm := b.site.Browser(t, web.RoleNetwork)
	p1 := nm.Get(PagePath).Body
	if n := strings.Count(p1, `action="/radius/disconnect"`); n != sessionsPageSize || !strings.Contains(p1, `href="/radius?page=2"`) || !strings.Contains(p1, "Page 1 of 2") {
		t.Errorf("page 1 lists %d sessions, or has no link to page 2", n)
	}
	p2 := nm.Get(PagePath + "?page=2").Body
	// 53 open sessions: the bench's own and these 52.
	if n := strings.Count(p2, `action="/radius/disconnect"`); n != 3 || !strings.Contains(p2, "PUPIL000") || strings.Contains(p2, "P0042") {
		t.Errorf("page 2 lists %d sessions (want the 3 oldest)", n)
	}
	if r := nm.Get(PagePath + "?page=0"); r.StatusCode != http.StatusBadRequest {
		t.Errorf("page 0: %d", r.StatusCode)
	}
}
