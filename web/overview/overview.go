// Package overview is the network manager's overview page (/overview),
// where the network role lands after signing in: who is online now on each
// segment (DHCP leases, open RADIUS sessions, admitted visitors), visitor
// codes issued today, findings today by class, the database's disk and
// the daemon's memory, the last `gatehouse backup` run (a warning when none
// worked for a week), and small server-rendered SVG bar charts of
// findings per hour (last 24 hours) and findings and codes per day (last
// 30 days). The page needs no JavaScript: the charts are inline SVG with a
// title and a description a screen reader reads. A small script refreshes
// the headline sentences from a server-sent event feed (LivePath); without
// it the page is the same, only as of its loading.
//
// It owns the page and its charts only. The numbers come from package
// store through the small Source interface; disk and memory come from a
// function the daemon passes (package recordwatch's status), so the page
// never reaches into other packages' state.
package overview

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"runtime"
	"sort"
	"time"

	"github.com/gatehouse-net/gatehouse/web/httpx"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
)

// Path is where the page lives.
const Path = "/overview"

//go:embed templates/overview.html templates/live.js
var templates embed.FS

// Source is what the page reads from the store.
type Source interface {
	FindingHours(ctx context.Context, since time.Time) ([]store.HourCount, error)
	VoucherHours(ctx context.Context, since time.Time) ([]store.HourCount, error)
	FindingClasses(ctx context.Context, since time.Time) (map[string]int, error)
	DHCPLeases(ctx context.Context) ([]store.DHCPLease, error)
	RADIUSSessions(ctx context.Context, f store.SessionFilter) ([]store.RADIUSSession, error)
	ActiveGuestDevices(ctx context.Context, now time.Time) ([]store.GuestDevice, error)
	LastBackups(ctx context.Context) (last, lastOK store.BackupRun, err error)
}

// BackupMaxAge is how old the last good backup may be before the overview
// warns: a school that loses the router should lose at most a week.
const BackupMaxAge = 7 * 24 * time.Hour

// Health is the state of the machine the page shows.
type Health struct {
	CheckedAt           time.Time // zero: not checked yet
	DiskTotal, DiskFree uint64
	DiskLow             bool
	DiskErr             string
	Alarms              []string // in words, one line each
}

// Pool is one segment's DHCP pool.
type Pool struct {
	Segment string
	Size    int // addresses in the range
}

// KernelCheck is the last drift check of the kernel's table.
type KernelCheck struct {
	At      time.Time // zero: none yet
	Repairs int       // differences it repaired
	Err     string    // the check failed
	Total   int       // repairs since the daemon started
}

// Options are the page's dependencies.
type Options struct {
	Source Source // required
	// Health reports disk state; nil shows that the disk is not watched.
	Health func() Health
	// Pools lists the DHCP pools the server hands out, for "pool use";
	// nil (no DHCP server) leaves that table out.
	Pools func() []Pool
	// KernelCheck reports the last comparison of the kernel's table with
	// the rules (and its repairs); nil leaves it out.
	KernelCheck func() KernelCheck
	// Now is the clock; nil uses time.Now.
	Now func() time.Time
	// Location is the school's time zone for "today" and the day buckets;
	// nil uses time.Local.
	Location *time.Location
	Logger   *slog.Logger // database errors; nil discards them

	// LiveEvery is how often the live feed sends the numbers again (0:
	// 15 s); LiveFor is how long one feed connection lasts before the
	// browser reconnects (0: 50 s, inside the server's 60 s write
	// timeout).
	LiveEvery, LiveFor time.Duration
}

// Paths of the live feed and its script.
const (
	LivePath   = "/overview/live"
	LiveJSPath = "/overview/live.js"
)

type page struct {
	srv  *web.Server
	o    Options
	tmpl *template.Template
}

// Register adds the overview to srv, as the network role's landing page.
// Call it before srv starts serving.
func Register(srv *web.Server, o Options) {
	if o.Source == nil {
		panic("overview: Register without a Source")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.LiveEvery <= 0 {
		o.LiveEvery = 15 * time.Second
	}
	if o.LiveFor <= 0 {
		o.LiveFor = 50 * time.Second
	}
	p := &page{srv: srv, o: o, tmpl: template.Must(template.ParseFS(templates, "templates/overview.html"))}
	network := []string{web.RoleNetwork}
	srv.AddPage(web.Page{Path: LivePath, Roles: network, GET: p.live, Passive: true})
	srv.AddPage(web.Page{Path: LiveJSPath, Roles: network, GET: func(c *httpx.Context) {
		b, _ := templates.ReadFile("templates/live.js")
		c.Header("Cache-Control", "no-cache")
		c.Data(http.StatusOK, "text/javascript; charset=utf-8", b)
	}})
	srv.AddPage(web.Page{
		Path:       Path,
		Title:      "Overview",
		Roles:      []string{web.RoleNetwork},
		GET:        p.show,
		Menu:       web.MenuDaily,
		LandingFor: []string{web.RoleNetwork},
	})
}

// SegmentOnline is one row of "online now".
type SegmentOnline struct {
	Segment string
	Leases  int
}

// Count is a named number.
type Count struct {
	Name string
	N    int
}

type data struct {
	Now string
	// The sentences the live feed refreshes, keyed as the page's
	// data-live attributes are.
	OnlineText, CodesText, FindingsText string
	Online                              []SegmentOnline
	LeasesTotal                         int
	RADIUS                              []Count // open sessions by SSID
	RADIUSTotal                         int
	Visitors                            int
	CodesToday                          int
	FindingsToday                       []Count
	FindingsTodayTotal                  int
	Hourly, Daily, Codes                Chart
	Disk                                string
	DiskLow                             bool
	DiskWatched                         bool
	Alarms                              []string
	Memory                              string
	Pools                               []PoolUse
	Kernel                              string // "" when not known
	KernelBad                           bool
	Backup                              string // the last backup in words
	BackupBad                           bool   // none, failed, or older than BackupMaxAge
}

// PoolUse is one row of "DHCP pool use".
type PoolUse struct {
	Segment      string
	Leased, Size int
	Percent      int
}

func (p *page) show(c *httpx.Context) {
	ctx := c.Request.Context()
	now := p.o.Now()
	d, err := p.collect(ctx, now)
	if err != nil {
		p.o.Logger.Error("overview: read the store", "err", err)
		p.srv.RenderError(c, http.StatusInternalServerError, "The overview could not be read from the database. Try again; if it keeps failing, check the daemon's log.")
		return
	}
	v := p.srv.View(c, "Overview")
	v.Data = d
	p.srv.Render(c, http.StatusOK, p.tmpl, v)
}

func (p *page) collect(ctx context.Context, now time.Time) (*data, error) {
	loc := p.o.Location
	lnow := now.In(loc)
	today := time.Date(lnow.Year(), lnow.Month(), lnow.Day(), 0, 0, 0, 0, loc)
	d := &data{Now: lnow.Format("2006-01-02 15:04 MST")}

	leases, err := p.o.Source.DHCPLeases(ctx)
	if err != nil {
		return nil, fmt.Errorf("read leases: %w", err)
	}
	bySeg := map[string]int{}
	for _, l := range leases {
		if l.State == "bound" && l.Expires.After(now) {
			bySeg[l.Segment]++
			d.LeasesTotal++
		}
	}
	for seg, n := range bySeg {
		d.Online = append(d.Online, SegmentOnline{Segment: seg, Leases: n})
	}
	sort.Slice(d.Online, func(i, j int) bool { return d.Online[i].Segment < d.Online[j].Segment })

	if p.o.Pools != nil {
		for _, pl := range p.o.Pools() {
			u := PoolUse{Segment: pl.Segment, Leased: bySeg[pl.Segment], Size: pl.Size}
			if pl.Size > 0 {
				u.Percent = u.Leased * 100 / pl.Size
			}
			d.Pools = append(d.Pools, u)
		}
	}
	if p.o.KernelCheck != nil {
		k := p.o.KernelCheck()
		switch {
		case k.At.IsZero():
			d.Kernel = "not checked yet since the daemon started"
		case k.Err != "":
			d.Kernel, d.KernelBad = fmt.Sprintf("the check at %s failed: %s", k.At.In(loc).Format("15:04"), k.Err), true
		case k.Repairs > 0:
			d.Kernel, d.KernelBad = fmt.Sprintf("last checked at %s: %s repaired", k.At.In(loc).Format("15:04"), web.Plural(k.Repairs, "difference", "differences")), true
		default:
			d.Kernel = fmt.Sprintf("in sync, last checked at %s", k.At.In(loc).Format("15:04"))
		}
		if !k.At.IsZero() {
			d.Kernel += " (" + web.Plural(k.Total, "repair", "repairs") + " since the daemon started)"
		}
	}

	sess, err := p.o.Source.RADIUSSessions(ctx, store.SessionFilter{OpenOnly: true})
	if err != nil {
		return nil, fmt.Errorf("read RADIUS sessions: %w", err)
	}
	bySSID := map[string]int{}
	for _, s := range sess {
		name := s.SSID
		if name == "" {
			name = "(wired or no SSID)"
		}
		bySSID[name]++
	}
	d.RADIUS, d.RADIUSTotal = counts(bySSID)

	guests, err := p.o.Source.ActiveGuestDevices(ctx, now)
	if err != nil {
		return nil, fmt.Errorf("read admitted visitors: %w", err)
	}
	d.Visitors = len(guests)

	classes, err := p.o.Source.FindingClasses(ctx, today)
	if err != nil {
		return nil, err
	}
	d.FindingsToday, d.FindingsTodayTotal = counts(classes)

	// The charts: hours of the last 24, days of the last 30 (today included).
	hourStart := now.UTC().Truncate(time.Hour).Add(-23 * time.Hour)
	dayStart := today.AddDate(0, 0, -29)
	fh, err := p.o.Source.FindingHours(ctx, dayStart)
	if err != nil {
		return nil, err
	}
	vh, err := p.o.Source.VoucherHours(ctx, dayStart)
	if err != nil {
		return nil, err
	}
	d.Hourly = hourChart("findings-hourly", "Findings per hour, last 24 hours", fh, hourStart, loc)
	d.Daily = dayChart("findings-daily", "Findings per day, last 30 days", fh, dayStart, loc)
	d.Codes = dayChart("codes-daily", "Visitor codes issued per day, last 30 days", vh, dayStart, loc)
	d.CodesToday = d.Codes.Bars[len(d.Codes.Bars)-1].N
	d.OnlineText = web.Plural(d.LeasesTotal, "device", "devices") + " with a DHCP lease, " +
		web.Plural(d.RADIUSTotal, "Wi-Fi sign-in", "Wi-Fi sign-ins") + " (RADIUS sessions), " +
		web.Plural(d.Visitors, "visitor device", "visitor devices") + " admitted."
	d.CodesText = web.Plural(d.CodesToday, "visitor code", "visitor codes") + " issued today"
	d.FindingsText = web.Plural(d.FindingsTodayTotal, "finding", "findings") + " today"

	if p.o.Health != nil {
		h := p.o.Health()
		d.DiskWatched = true
		d.DiskLow = h.DiskLow
		d.Alarms = h.Alarms
		switch {
		case h.DiskErr != "":
			d.Disk = "could not be read: " + h.DiskErr
		case h.CheckedAt.IsZero():
			d.Disk = "not checked yet"
		case h.DiskTotal > 0:
			d.Disk = fmt.Sprintf("%s free of %s (%d%% free)", bytesText(h.DiskFree), bytesText(h.DiskTotal), h.DiskFree*100/h.DiskTotal)
		default:
			d.Disk = "unknown size"
		}
	}
	last, lastOK, err := p.o.Source.LastBackups(ctx)
	if err != nil {
		return nil, fmt.Errorf("read backups: %w", err)
	}
	d.Backup, d.BackupBad = backupText(last, lastOK, now, loc)

	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	d.Memory = fmt.Sprintf("%s held by the daemon (%s in use on the heap)", bytesText(ms.Sys-ms.HeapReleased), bytesText(ms.HeapInuse))
	return d, nil
}

// counts sorts a tally by count, largest first, then name.
func counts(m map[string]int) ([]Count, int) {
	var out []Count
	total := 0
	for k, n := range m {
		out = append(out, Count{k, n})
		total += n
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].N != out[j].N {
			return out[i].N > out[j].N
		}
		return out[i].Name < out[j].Name
	})
	return out, total
}

// bytesText writes n in binary units, one decimal.
func bytesText(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// backupText says when the last backup was and whether that is a worry:
// never, the last run failed, or the last good one is over a week old.
func backupText(last, lastOK store.BackupRun, now time.Time, loc *time.Location) (string, bool) {
	when := func(t time.Time) string { return t.In(loc).Format("Mon 2 Jan 2006 15:04") }
	good := ""
	if lastOK.OK() {
		good = fmt.Sprintf("%s, %s to %s", when(lastOK.At), bytesText(uint64(lastOK.Size)), lastOK.File)
	}
	switch {
	case last.At.IsZero():
		return "never: run \"gatehouse backup\" (see the README) and keep the copy off the router", true
	case !last.OK() && good == "":
		return fmt.Sprintf("the last run, %s, failed (%s), and no backup has ever worked", when(last.At), last.Err), true
	case !last.OK():
		return fmt.Sprintf("the last run, %s, failed (%s); the last good backup was %s", when(last.At), last.Err, good), true
	case now.Sub(lastOK.At) > BackupMaxAge:
		return fmt.Sprintf("%s — over a week old: run a backup", good), true
	}
	return good, false
}

// live streams the overview's headline numbers as server-sent events
// ("counts", a JSON object of the page's data-live texts) every LiveEvery
// for LiveFor, then ends; the page's script (live.js) puts them in place
// and EventSource reconnects. The page is whole without it. The feed is a
// passive page: an overview left open does not keep its session awake.
func (p *page) live(c *httpx.Context) {
	ctx := c.Request.Context()
	c.Header("Content-Type", "text/event-stream")
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusOK)
	// Reconnect after LiveEvery, not the browser's default 3 s.
	if _, err := fmt.Fprintf(c.Writer, "retry: %d\n\n", p.o.LiveEvery.Milliseconds()); err != nil {
		return
	}
	send := func() bool {
		d, err := p.collect(ctx, p.o.Now())
		if err != nil {
			if ctx.Err() == nil {
				p.o.Logger.Error("overview: live feed", "err", err)
			}
			return false
		}
		b, err := json.Marshal(map[string]string{"now": d.Now, "online": d.OnlineText, "codes": d.CodesText, "findings": d.FindingsText})
		if err != nil {
			return false
		}
		if _, err := fmt.Fprintf(c.Writer, "event: counts\ndata: %s\n\n", b); err != nil {
			return false
		}
		c.Writer.Flush()
		return true
	}
	end := time.NewTimer(p.o.LiveFor)
	defer end.Stop()
	tick := time.NewTicker(p.o.LiveEvery)
	defer tick.Stop()
	if !send() {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-end.C:
			return
		case <-tick.C:
			if !send() {
				return
			}
		}
	}
}
