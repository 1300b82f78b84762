package policy

import (
	"errors"
	"testing"
	"time"
)

func TestCheckRecordKeepsTheLastCheckAndTotalsRepairs(t *testing.T) {
	e := &Enforcer{}
	if st := e.LastCheck(); !st.At.IsZero() {
		t.Fatalf("a new enforcer reports a check at %v", st.At)
	}
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	e.checks.note(t0, 2, nil)
	e.checks.note(t0.Add(time.Minute), 0, errors.New("netlink: busy"))
	e.checks.note(t0.Add(2*time.Minute), 1, nil)
	st := e.LastCheck()
	if !st.At.Equal(t0.Add(2*time.Minute)) || st.Repairs != 1 || st.Err != nil || st.Total != 3 {
		t.Errorf("LastCheck = %+v, want the third check: 1 repair, 3 in all", st)
	}
	e.checks.note(t0.Add(3*time.Minute), 0, errors.New("netlink: busy"))
	if st := e.LastCheck(); st.Err == nil || st.Total != 3 {
		t.Errorf("after a failed check LastCheck = %+v, want its error and the total kept", st)
	}
}
