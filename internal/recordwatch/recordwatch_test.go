package recordwatch

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/alert/finding"
	"github.com/gatehouse-net/gatehouse/alert/finding/findingtest"
)

type rig struct {
	w       *Watcher
	dropped atomic.Uint64
	space   Space
	clock   time.Time
	found   findingtest.Collector
	seen    int // findings already returned by raised
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{space: Space{Total: 100 << 30, Free: 50 << 30}, clock: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	r.dropped.Store(7) // from before the watcher started: not raised
	var err error
	r.w, err = New(Options{Path: "/var/lib/gatehouse/gatehouse.db", Findings: &r.found,
		Sources: []Source{{Name: "dns log", Dropped: r.dropped.Load}},
		Now:     func() time.Time { return r.clock },
		StatFS:  func(string) (Space, error) { return r.space, nil }})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// raised returns the findings offered since the last call (Offer is
// synchronous).
func (r *rig) raised(t *testing.T) []finding.Finding {
	t.Helper()
	all := r.found.All()
	out := all[r.seen:]
	r.seen = len(all)
	return out
}

func TestLostRecordsRaiseAnAlarmOnce(t *testing.T) {
	r := newRig(t)
	r.w.Check()
	if got := r.raised(t); len(got) != 0 || len(r.w.Status().Alarms()) != 0 {
		t.Fatalf("all well, yet raised %v and alarms %v", got, r.w.Status().Alarms())
	}
	r.dropped.Add(40)
	r.clock = r.clock.Add(time.Minute)
	r.w.Check()
	got := r.raised(t)
	if len(got) != 1 || got[0].Class != finding.ClassRecordsDropped || got[0].Source != finding.SourceGatehouse || !strings.Contains(got[0].Evidence, "dns log: 40") {
		t.Fatalf("after 40 dropped records raised %+v, want one records-dropped finding naming the dns log", got)
	}
	if err := got[0].Valid(); err != nil {
		t.Error(err)
	}
	al := r.w.Status().Alarms()
	if len(al) != 1 || !strings.Contains(al[0], "Records were lost") {
		t.Errorf("alarms %v", al)
	}
	// More losses within the repeat interval are logged and shown, not
	// raised again.
	r.dropped.Add(1)
	r.clock = r.clock.Add(time.Minute)
	r.w.Check()
	if got := r.raised(t); len(got) != 0 {
		t.Errorf("raised again within the repeat interval: %v", got)
	}
	if st := r.w.Status(); st.Dropped["dns log"] != 48 || !st.LastDropAt.Equal(r.clock) {
		t.Errorf("status %+v", st)
	}
}

func TestADiskPastTheThresholdRaisesAnAlarm(t *testing.T) {
	r := newRig(t)
	r.space.Free = 3 << 30 // 3 GB of 100: under 5 %
	r.w.Check()
	got := r.raised(t)
	if len(got) != 1 || got[0].Class != finding.ClassDiskLow {
		t.Fatalf("raised %+v, want one disk-low finding", got)
	}
	st := r.w.Status()
	if !st.DiskLow || len(st.Alarms()) != 1 || !strings.Contains(st.Alarms()[0], "3.0 GB free of 100.0 GB") {
		t.Errorf("status %+v, alarms %v", st, st.Alarms())
	}
	// Still low an hour later: not raised again until the repeat is due.
	r.clock = r.clock.Add(time.Hour)
	r.w.Check()
	if got := r.raised(t); len(got) != 0 {
		t.Errorf("raised again after an hour: %v", got)
	}
	r.clock = r.clock.Add(DefaultRepeat)
	r.w.Check()
	if got := r.raised(t); len(got) != 1 {
		t.Errorf("raised %v after the repeat interval, want the alarm again", got)
	}
	// Space freed: the alarm clears.
	r.space.Free = 60 << 30
	r.w.Check()
	if st := r.w.Status(); st.DiskLow || len(st.Alarms()) != 0 {
		t.Errorf("after space was freed: %+v %v", st, st.Alarms())
	}
	// The absolute threshold on a small disk.
	r.space = Space{Total: 4 << 30, Free: 200 << 20}
	r.w.Check()
	if !r.w.Status().DiskLow {
		t.Error("200 MB free is not low")
	}
}

func TestStatfsReadsARealFileSystem(t *testing.T) {
	sp, err := statfs(t.TempDir())
	if err != nil || sp.Total == 0 || sp.Free > sp.Total {
		t.Errorf("statfs: %+v %v", sp, err)
	}
}
