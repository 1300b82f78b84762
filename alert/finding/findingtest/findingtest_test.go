package findingtest

import (
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/alert/finding"
)

func TestCollectorKeepsEveryFindingInOrder(t *testing.T) {
	var c Collector
	var s finding.Sink = &c
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			class := finding.ClassVPN
			if i%5 == 0 {
				class = finding.ClassTor
			}
			s.Offer(finding.Finding{Time: at, Source: finding.SourceInspect, Class: class})
		}()
	}
	wg.Wait()
	if n := len(c.All()); n != 50 {
		t.Errorf("kept %d findings, want 50", n)
	}
	if n := len(c.Class(finding.ClassTor)); n != 10 {
		t.Errorf("%d tor findings, want 10", n)
	}
	s.Offer(finding.Finding{Time: at, Source: finding.SourceDHCP, Class: finding.ClassRogueDHCP})
	if all := c.All(); all[len(all)-1].Class != finding.ClassRogueDHCP {
		t.Errorf("last finding %v, want the one offered last", all[len(all)-1])
	}
}
