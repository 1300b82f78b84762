package overview

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
)

// The overview says when the last backup was, and warns when there was
// none, the last run failed, or the last good one is over a week old.
func TestOverviewShowsTheLastBackup(t *testing.T) {
	s := newSite(t, nil)
	nm := s.Browser(t, web.RoleNetwork)
	ctx := context.Background()
	if txt := text(nm.Get(Path).Body); !strings.Contains(txt, `Last backup: never: run "gatehouse backup"`) || !strings.Contains(txt, "needs attention") {
		t.Errorf("no warning without a backup:\n%s", txt)
	}
	if err := s.Store.RecordBackup(ctx, store.BackupRun{At: now.Add(-8 * 24 * time.Hour), File: "/root/gh.db", Size: 3 << 20}); err != nil {
		t.Fatal(err)
	}
	if txt := text(nm.Get(Path).Body); !strings.Contains(txt, "Last backup: Sat 28 Nov 2026 15:30, 3.0 MiB to /root/gh.db — over a week old: run a backup — needs attention") {
		t.Errorf("an old backup is not flagged:\n%s", txt)
	}
	if err := s.Store.RecordBackup(ctx, store.BackupRun{At: now.Add(-time.Hour), File: "/root/gh2.db", Size: 4 << 20}); err != nil {
		t.Fatal(err)
	}
	if txt := text(nm.Get(Path).Body); !strings.Contains(txt, "Last backup: Sun 6 Dec 2026 14:30, 4.0 MiB to /root/gh2.db.") || strings.Contains(txt, "needs attention") {
		t.Errorf("a fresh backup:\n%s", txt)
	}
	if err := s.Store.RecordBackup(ctx, store.BackupRun{At: now.Add(-time.Minute), File: "/full/gh.db", Err: "no space left on device"}); err != nil {
		t.Fatal(err)
	}
	if txt := text(nm.Get(Path).Body); !strings.Contains(txt, "the last run, Sun 6 Dec 2026 15:29, failed (no space left on device); the last good backup was Sun 6 Dec 2026 14:30") {
		t.Errorf("a failed run:\n%s", txt)
	}
}

// Counts read as English: "1 device", not "1 devices".
func TestOverviewCountsAreGrammatical(t *testing.T) {
	s := newSite(t, nil)
	if err := s.Store.SaveDHCP(context.Background(), []store.DHCPLease{{Segment: "pupil", IP: netip.MustParseAddr("10.20.0.10"), MAC: mac(1),
		State: "bound", Start: now.Add(-time.Hour), Expires: now.Add(time.Hour)}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Store.InsertFindings(context.Background(), []store.Finding{{At: now.Add(-time.Minute), SrcMAC: mac(1), Class: "vpn"}}); err != nil {
		t.Fatal(err)
	}
	txt := text(s.Browser(t, web.RoleNetwork).Get(Path).Body)
	for _, want := range []string{"1 device with a DHCP lease, 0 Wi-Fi sign-ins", "0 visitor devices admitted", "0 visitor codes issued today", "1 finding today"} {
		if !strings.Contains(txt, want) {
			t.Errorf("the overview does not say %q:\n%s", want, txt)
		}
	}
}

// The live feed sends the headline sentences as server-sent events, then
// ends so the browser reconnects; the page loads its script and marks what
// it refreshes.
func TestOverviewLiveFeed(t *testing.T) {
	s := newSiteWith(t, Options{LiveEvery: 20 * time.Millisecond, LiveFor: 300 * time.Millisecond})
	seed(t, s.Store)
	nm := s.Browser(t, web.RoleNetwork)
	page := nm.Get(Path).Body
	for _, want := range []string{`<script src="/overview/live.js" defer></script>`, `data-live="online"`, `data-live="codes"`, `data-live="findings"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	r := nm.Get(LivePath)
	if r.StatusCode != 200 || r.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("feed: %d %q", r.StatusCode, r.Header.Get("Content-Type"))
	}
	if !strings.HasPrefix(r.Body, "retry: 20\n\nevent: counts\ndata: {") ||
		!strings.Contains(r.Body, `"online":"3 devices with a DHCP lease, 0 Wi-Fi sign-ins (RADIUS sessions), 0 visitor devices admitted."`) ||
		!strings.Contains(r.Body, `"findings":"4 findings today"`) {
		t.Errorf("feed body:\n%s", r.Body)
	}
	if js := nm.Get(LiveJSPath); js.StatusCode != 200 || !strings.Contains(js.Body, "new EventSource('/overview/live')") {
		t.Errorf("live.js: %d", js.StatusCode)
	}
	if r := s.Browser(t, web.RoleReception).Get(LivePath); r.StatusCode != 403 {
		t.Errorf("reception reads the feed: %d", r.StatusCode)
	}
}
