package dhcp

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestLogTimings: one record a stage once something was measured, each
// naming its stage and its summary, and nothing when idle (the daemon
// logs them on SIGUSR2 and at stop, and bench/dhcp.sh parses them).
func TestLogTimings(t *testing.T) {
	var buf bytes.Buffer
	s := &Server{log: slog.New(slog.NewTextHandler(&buf, nil))}
	s.LogTimings()
	if buf.Len() != 0 {
		t.Fatalf("idle server logged timings:\n%s", buf.String())
	}
	s.timings.Commit.add(900)
	s.timings.BatchSize.add(6)
	s.LogTimings()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 7 {
		t.Fatalf("got %d records, want one a stage (7):\n%s", len(lines), buf.String())
	}
	if !strings.Contains(buf.String(), `msg="dhcp: stage timings" stage=commit us="n=1 p50=896 `) {
		t.Errorf("no commit record with its summary:\n%s", buf.String())
	}
	buf.Reset()
	s.LogTimings()
	if buf.Len() != 0 {
		t.Errorf("a second report right after the first logged again (histograms not emptied):\n%s", buf.String())
	}
}
