package policy

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// BindMany puts several pairs in the kernel's bound set in one call and
// answers each pair on its own: a pair Bind would refuse is refused with
// the same error, the others are bound; an Unbind right after is not
// overtaken by the queued bind it undoes.
func TestBindManyBindsEachPairAndReportsEachError(t *testing.T) {
	ns, fd := newNS(t)
	e := newEnforcer(t, fd, testNetwork(), time.Now)
	ctx := context.Background()
	if err := e.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 40
	until := time.Now().Add(time.Hour)
	var bs []Binding
	for i := range n {
		bs = append(bs, Binding{Device: benchDevice(i, 40), Until: until})
	}
	// Two pairs Bind refuses: a lease already over, and an IPv6 address.
	past := Binding{Device: benchDevice(n, 40), Until: time.Now().Add(-time.Minute)}
	v6 := Binding{Device: Device{MAC: benchDevice(n+1, 40).MAC, IP: netip.MustParseAddr("2001:db8::1")}, Until: until}
	bs = append(bs[:n/2], append([]Binding{past, v6}, bs[n/2:]...)...)
	// A reservation (zero until) in the same call.
	resv := Binding{Device: benchDevice(n+2, 40)}
	bs = append(bs, resv)

	errs := e.BindMany(ctx, bs)
	if len(errs) != len(bs) {
		t.Fatalf("%d errors for %d pairs", len(errs), len(bs))
	}
	for i, b := range bs {
		want := e.Bind(ctx, b.Device, b.Until) // what Bind says of the same pair
		if (errs[i] == nil) != (want == nil) {
			t.Errorf("pair %d (%v): BindMany %v, Bind %v", i, b.Device, errs[i], want)
		}
	}
	if errs[n/2] == nil || errs[n/2+1] == nil {
		t.Errorf("the refused pairs were bound: %v, %v", errs[n/2], errs[n/2+1])
	}
	got := listSet(t, ns, SetBound)
	for i := range n {
		d := benchDevice(i, 40)
		if !strings.Contains(got, fmt.Sprintf("%s . %s", d.MAC, d.IP)) {
			t.Errorf("device %d not in the kernel's bound set", i)
		}
	}
	if d := resv.Device; !strings.Contains(got, fmt.Sprintf("%s . %s", d.MAC, d.IP)) {
		t.Error("the reservation is not in the kernel's bound set")
	}
	if d := past.Device; strings.Contains(got, fmt.Sprintf("%s . %s", d.MAC, d.IP)) {
		t.Error("the expired pair is in the kernel's bound set")
	}

	// A second call with new leases, each unbound as soon as its call
	// returns, from other goroutines: none is left behind in the kernel.
	later := time.Now().Add(2 * time.Hour)
	var again []Binding
	for i := range n {
		again = append(again, Binding{Device: benchDevice(i, 40), Until: later})
	}
	done := make(chan error, n)
	for _, err := range e.BindMany(ctx, again) {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if i%2 == 1 {
			go func() { done <- e.Unbind(ctx, benchDevice(i, 40)) }()
		} else {
			done <- nil
		}
	}
	for range n {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	got = listSet(t, ns, SetBound)
	for i := range n {
		d := benchDevice(i, 40)
		if in := strings.Contains(got, fmt.Sprintf("%s . %s", d.MAC, d.IP)); in != (i%2 == 0) {
			t.Errorf("device %d in the kernel: %v, want %v", i, in, i%2 == 0)
		}
	}
}

// Before Apply, BindMany only records the pairs, as Bind does: Apply sends
// them with the rest of the table. After Close, each pair sends its own
// transaction.
func TestBindManyBeforeApplyAndAfterClose(t *testing.T) {
	ns, fd := newNS(t)
	e := newEnforcer(t, fd, testNetwork(), time.Now)
	ctx := context.Background()
	until := time.Now().Add(time.Hour)
	for _, err := range e.BindMany(ctx, []Binding{{Device: benchDevice(1, 40), Until: until}}) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	e.closeAdmits()
	for _, err := range e.BindMany(ctx, []Binding{{Device: benchDevice(2, 40), Until: until}, {Device: benchDevice(3, 40), Until: until}}) {
		if err != nil {
			t.Fatal(err)
		}
	}
	got := listSet(t, ns, SetBound)
	for _, i := range []int{1, 2, 3} {
		d := benchDevice(i, 40)
		if !strings.Contains(got, fmt.Sprintf("%s . %s", d.MAC, d.IP)) {
			t.Errorf("device %d not in the kernel:\n%s", i, got)
		}
	}
}
