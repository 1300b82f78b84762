// Package recordwatch raises the alarm when Gatehouse is losing records:
// a component dropped some (a full write queue, a database that failed to
// store them) or the database's disk is nearly full. Losing records
// silently is what a hostile client wants (its real lookups and findings
// pushed out of what the DSL sees) and what a full disk does (with it DHCP
// rightly gives no new leases).
//
// A Watcher polls counters the components already keep and the free space
// of the database's file system. When a counter grows or the free space
// falls under the threshold it logs, raises a finding (class
// records-dropped or disk-low) to the finding sink it was given, which the
// alert pipeline turns into an alert, and keeps a Status that the admin pages
// show and the metrics export. It does not store, count or drop anything
// itself.
package recordwatch

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gatehouse-net/gatehouse/alert/finding"
)

// Defaults of the zero Options fields.
const (
	DefaultEvery = time.Minute
	// DefaultMinFreeBytes is the free space under which the disk is
	// low: a day of a busy school's DNS log, and room for the database to
	// finish its checkpoints.
	DefaultMinFreeBytes = 256 << 20
	// DefaultMinFreePercent is the other threshold: the disk is low when
	// either is passed.
	DefaultMinFreePercent = 5
	// DefaultRepeat is how often a condition that persists is raised again.
	DefaultRepeat = 6 * time.Hour
)

// Source is one component's counter of records it lost.
type Source struct {
	Name    string        // e.g. "dns log", "findings", "database writes"
	Dropped func() uint64 // monotonic
}

// Space is a file system's size and free space, in bytes.
type Space struct{ Total, Free uint64 }

// Options configure a Watcher. Path is required.
type Options struct {
	// Path is a file on the file system to watch (the database).
	Path    string
	Sources []Source
	// Findings takes the findings raised: the daemon's one finding sink.
	// nil drops them (finding.Discard); the Status still shows the alarm.
	Findings finding.Sink
	Logger   *slog.Logger
	// MinFreeBytes and MinFreePercent are the thresholds (either
	// passed makes the disk low); 0 means the defaults.
	MinFreeBytes   uint64
	MinFreePercent int
	Every          time.Duration // poll interval; 0: DefaultEvery
	Repeat         time.Duration // re-raise a persisting condition; 0: DefaultRepeat
	Now            func() time.Time
	// StatFS reads the file system's space; nil: statfs(2) on Path.
	StatFS func(path string) (Space, error)
}

// Status is what the watcher last saw, for pages and metrics.
type Status struct {
	CheckedAt time.Time
	Disk      Space
	DiskErr   string // statfs failed
	DiskLow   bool
	// Dropped is each source's count since the daemon started.
	Dropped map[string]uint64
	// LastDropAt is when a count last grew; zero if never.
	LastDropAt time.Time
	LastDrop   string // which source, and by how many
}

// Alarms are Status in words, one line each, for a page; none when all is
// well.
func (s Status) Alarms() []string {
	var out []string
	if s.DiskLow {
		out = append(out, fmt.Sprintf("The database's disk is nearly full: %s free of %s. When it is full no new device gets an address and no record is kept.",
			bytesText(s.Disk.Free), bytesText(s.Disk.Total)))
	}
	if s.DiskErr != "" {
		out = append(out, "The database's free disk space cannot be read: "+s.DiskErr)
	}
	if !s.LastDropAt.IsZero() {
		out = append(out, fmt.Sprintf("Records were lost at %s (%s). Check the daemon's log and the disk.",
			s.LastDropAt.Format("2 Jan 15:04"), s.LastDrop))
	}
	return out
}

func bytesText(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%d MB", n>>20)
	}
	return fmt.Sprintf("%d kB", n>>10)
}

// Watcher polls; build it with New and run it with Run.
type Watcher struct {
	opt Options
	log *slog.Logger

	mu       sync.Mutex
	st       Status
	last     map[string]uint64
	raisedAt map[string]time.Time // class -> when last raised
}

// New returns a watcher.
func New(opt Options) (*Watcher, error) {
	if opt.Path == "" {
		return nil, fmt.Errorf("recordwatch: new: Options.Path is empty")
	}
	if opt.Findings == nil {
		opt.Findings = finding.Discard{}
	}
	if opt.MinFreeBytes == 0 {
		opt.MinFreeBytes = DefaultMinFreeBytes
	}
	if opt.MinFreePercent <= 0 {
		opt.MinFreePercent = DefaultMinFreePercent
	}
	if opt.Every <= 0 {
		opt.Every = DefaultEvery
	}
	if opt.Repeat <= 0 {
		opt.Repeat = DefaultRepeat
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.StatFS == nil {
		opt.StatFS = statfs
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	w := &Watcher{opt: opt, log: log, last: map[string]uint64{}, raisedAt: map[string]time.Time{}}
	w.st.Dropped = map[string]uint64{}
	// Counts from before the watcher started are the baseline: a restart
	// does not raise what the last run already did.
	for _, s := range opt.Sources {
		w.last[s.Name] = s.Dropped()
	}
	return w, nil
}

func statfs(path string) (Space, error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil {
		return Space{}, fmt.Errorf("statfs %s: %w", path, err)
	}
	return Space{Total: fs.Blocks * uint64(fs.Bsize), Free: fs.Bavail * uint64(fs.Bsize)}, nil
}

// Run checks at once and then every Options.Every until ctx is done.
func (w *Watcher) Run(ctx context.Context) error {
	t := time.NewTicker(w.opt.Every)
	defer t.Stop()
	for {
		w.Check()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Status returns what the last check saw.
func (w *Watcher) Status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.st
	st.Dropped = make(map[string]uint64, len(w.st.Dropped))
	for k, v := range w.st.Dropped {
		st.Dropped[k] = v
	}
	return st
}

// Check polls once: the sources' counters and the disk.
func (w *Watcher) Check() {
	now := w.opt.Now()
	var raise []finding.Finding
	w.mu.Lock()
	w.st.CheckedAt = now
	var grew []string
	for _, s := range w.opt.Sources {
		n := s.Dropped()
		w.st.Dropped[s.Name] = n
		if n > w.last[s.Name] {
			grew = append(grew, fmt.Sprintf("%s: %d", s.Name, n-w.last[s.Name]))
		}
		w.last[s.Name] = n
	}
	if len(grew) > 0 {
		sort.Strings(grew)
		w.st.LastDropAt, w.st.LastDrop = now, strings.Join(grew, ", ")
		w.log.Error("recordwatch: records were lost", "lost", w.st.LastDrop)
		if w.due(finding.ClassRecordsDropped, now) {
			raise = append(raise, finding.Finding{Time: now, Source: finding.SourceGatehouse, Class: finding.ClassRecordsDropped, Detail: "records-lost",
				Evidence: "Gatehouse could not keep every record it should have: " + w.st.LastDrop + " lost since the last check."})
		}
	}
	sp, err := w.opt.StatFS(w.opt.Path)
	if err != nil {
		w.st.DiskErr = err.Error()
		w.log.Warn("recordwatch: free disk space", "err", err)
	} else {
		w.st.DiskErr, w.st.Disk = "", sp
		low := sp.Free < w.opt.MinFreeBytes || (sp.Total > 0 && sp.Free*100 < sp.Total*uint64(w.opt.MinFreePercent))
		if low && !w.st.DiskLow {
			w.log.Error("recordwatch: the database's disk is nearly full", "free_bytes", sp.Free, "total_bytes", sp.Total, "path", w.opt.Path)
		}
		w.st.DiskLow = low
		if low && w.due(finding.ClassDiskLow, now) {
			raise = append(raise, finding.Finding{Time: now, Source: finding.SourceGatehouse, Class: finding.ClassDiskLow, Detail: "disk-low",
				Evidence: fmt.Sprintf("The disk holding %s has %s free of %s; below %s or %d%% Gatehouse warns, and when it is full no record is kept and no new device gets an address.",
					w.opt.Path, bytesText(sp.Free), bytesText(sp.Total), bytesText(w.opt.MinFreeBytes), w.opt.MinFreePercent)})
		}
	}
	w.mu.Unlock()
	for _, f := range raise {
		w.opt.Findings.Offer(f)
	}
}

// due reports whether class may be raised now, and notes that it is.
func (w *Watcher) due(class string, now time.Time) bool {
	if at, ok := w.raisedAt[class]; ok && now.Sub(at) < w.opt.Repeat {
		return false
	}
	w.raisedAt[class] = now
	return true
}
