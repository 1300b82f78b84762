// Package overview is the network manager's overview page (/overview),
// where the network role lands after signing in: who is online now on each
// segment (DHCP leases, open RADIUS sessions, admitted visitors), visitor
// codes issued today, findings today by class, the database's disk and
// the daemon's memory, and small server-rendered SVG bar charts of
// findings per hour (last 24 hours) and findings and codes per day (last
// 30 days). The page needs no JavaScript: the charts are inline SVG with a
// title and a description a screen reader reads.
//
// It owns the page and its charts only. The numbers come from package
// store through the small Source interface; disk and memory come from a
// function the daemon passes (package recordwatch's status), so the page
// never reaches into other packages' state.
package overview

import (
	"context"
	"embed"
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

//go:embed templates/overview.html
var templates embed.FS

// Source is what the page reads from the store.
type Source interface {
	FindingHours(ctx context.Context, since time.Time) ([]store.HourCount, error)
	VoucherHours(ctx context.Context, since time.Time) ([]store.HourCount, error)
	FindingClasses(ctx context.Context, since time.Time) (map[string]int, error)
	DHCPLeases(ctx context.Context) ([]store.DHCPLease, error)
	RADIUSSessions(ctx context.Context, f store.SessionFilter) ([]store.RADIUSSession, error)
	ActiveGuestDevices(ctx context.Context, now time.Time) ([]store.GuestDevice, error)
}

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
}

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
	p := &page{srv: srv, o: o, tmpl: template.Must(template.ParseFS(templates, "templates/overview.html"))}
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
	Now                  string
	Online               []SegmentOnline
	LeasesTotal          int
	RADIUS               []Count // open sessions by SSID
	RADIUSTotal          int
	Visitors             int
	CodesToday           int
	FindingsToday        []Count
	FindingsTodayTotal   int
	Hourly, Daily, Codes Chart
	Disk                 string
	DiskLow              bool
	DiskWatched          bool
	Alarms               []string
	Memory               string
	Pools                []PoolUse
	Kernel               string // "" when not known
	KernelBad            bool
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
			d.Kernel, d.KernelBad = fmt.Sprintf("last checked at %s: %d differences repaired", k.At.In(loc).Format("15:04"), k.Repairs), true
		default:
			d.Kernel = fmt.Sprintf("in sync, last checked at %s", k.At.In(loc).Format("15:04"))
		}
		if !k.At.IsZero() {
			d.Kernel += fmt.Sprintf(" (%d repairs since the daemon started)", k.Total)
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
