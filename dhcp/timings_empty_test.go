package dhcp

import (
	"strings"
	"testing"
)

// TestTimingsEmpty: Empty is true with no sample, false once any one stage
// has a sample (each stage in turn, so a stage Empty forgets fails), and
// true again after Report empties the histograms. LogTimings relies on it
// to log nothing for an idle server.
func TestTimingsEmpty(t *testing.T) {
	var tm Timings
	if !tm.Empty() {
		t.Fatal("new Timings not empty")
	}
	stages := []*hist{&tm.JobWait, &tm.AckQueue, &tm.Commit, &tm.FinishWait, &tm.Finish, &tm.AckTotal, &tm.BatchSize}
	// A stage Report gains must join this list (and Empty's).
	if n := strings.Count(tm.Report(), "\n"); n != len(stages) {
		t.Fatalf("Report has %d stages, the test knows %d", n, len(stages))
	}
	for i, h := range stages {
		h.add(0) // a zero sample is still a sample
		if tm.Empty() {
			t.Errorf("Empty with a sample in stage %d", i)
		}
		tm.Report()
		if !tm.Empty() {
			t.Errorf("not Empty after Report emptied stage %d", i)
		}
	}
}
