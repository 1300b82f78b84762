package policy

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// Admissions arriving together share transactions, and each caller still
// returns only once the kernel holds its element; an eviction right after
// an admission is never overtaken by it.
func TestConcurrentAdmissionsAllReachTheKernelInOrder(t *testing.T) {
	ns, fd := newNS(t)
	e := newEnforcer(t, fd, testNetwork(), time.Now)
	ctx := context.Background()
	if err := e.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Go(func() {
			d := benchDevice(i, 40)
			if err := e.Admit(ctx, d, time.Now().Add(time.Hour)); err != nil {
				errs <- err
				return
			}
			// Every other device is evicted as soon as it is in.
			if i%2 == 1 {
				if err := e.Evict(ctx, d); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := listSet(t, ns, SetAdmitted)
	for i := range n {
		d := benchDevice(i, 40)
		want := fmt.Sprintf("%s . %s", d.MAC, d.IP)
		if in := strings.Contains(got, want); in != (i%2 == 0) {
			t.Errorf("device %d (%s) in the kernel: %v, want %v", i, want, in, i%2 == 0)
		}
	}
	for i := range n {
		if ok := e.Admitted(benchDevice(i, 40).IP, benchDevice(i, 40).MAC); ok != (i%2 == 0) {
			t.Errorf("device %d admitted in the desired state: %v", i, ok)
		}
	}
}

// After Close, an admission sends its own transaction.
func TestAdmitAfterCloseOfTheBatcher(t *testing.T) {
	ns, fd := newNS(t)
	e := newEnforcer(t, fd, testNetwork(), time.Now)
	ctx := context.Background()
	if err := e.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.Admit(ctx, benchDevice(1, 40), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	e.closeAdmits()
	if err := e.Admit(ctx, benchDevice(2, 40), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got := listSet(t, ns, SetAdmitted)
	for _, i := range []int{1, 2} {
		d := benchDevice(i, 40)
		if !strings.Contains(got, fmt.Sprintf("%s . %s", d.MAC, d.IP)) {
			t.Errorf("device %d not in the kernel:\n%s", i, got)
		}
	}
}
