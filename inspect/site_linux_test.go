//go:build linux

package inspect

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A capture that cannot run is the daemon's failure to report, not a
// segment that quietly goes uninspected.
func TestSiteRunReportsACaptureThatCannotRun(t *testing.T) {
	s := NewSite(SiteOptions{Interfaces: []Interface{{Name: "gh-nosuch0", Segment: "pupil"}}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "gh-nosuch0") {
		t.Fatalf("Run = %v, want an error naming the interface", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Run returned only when the test gave up")
	}
}

func TestSiteWithoutInterfacesRunsUntilCancelled(t *testing.T) {
	s := NewSite(SiteOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case err := <-done:
		t.Fatalf("Run returned %v before its context ended", err)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v after cancellation", err)
	}
}

// What the DNS guard answered reaches every engine of the site.
func TestSiteSharesTheGuardsAnswersWithEveryEngine(t *testing.T) {
	s := NewSite(SiteOptions{Interfaces: []Interface{{Name: "a", Segment: "staff"}, {Name: "b", Segment: "pupil"}}})
	client := pupil
	vpn := server
	s.NoteAnswer(client, "vpn.example", vpn.String(), t0)
	for i, e := range s.engines {
		if name, ok := e.res.nameOf(client, vpn, t0.Add(time.Second)); !ok || name != "vpn.example" {
			t.Errorf("engine %d: name behind %v = %q, %v; want vpn.example", i, vpn, name, ok)
		}
	}
}
