//go:build linux

package main

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/internal/tooltest"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
)

// TestDaemonFlagsADNSTunnelThroughTheGuard: the daemon's capture leaves
// the segments' queries to the guard out (the guard hands them over,
// parsed), so a tunnel through the school's own resolver is only found if
// the hand-over works in the deployed daemon. A staff client sends the
// NULL queries for encoded subdomains an iodine client sends to the
// guard's address (its gateway); a tunnel finding naming the client and
// the gateway's port 53 must be stored, and only that one.
//
// A pupil client sends the same through another resolver, 8.8.8.8: the
// kernel redirects them to the guard's second port, which answers them
// (as 8.8.8.8, to the client) but does not hand them over, since the
// capture sees and judges them itself. Exactly one tunnel finding, naming
// 8.8.8.8, must be stored: one naming the gateway as well would be the
// same tunnel reported twice to the DSL.
func TestDaemonFlagsADNSTunnelThroughTheGuard(t *testing.T) {
	testbed.Require(t)
	bin := buildGatehouse(t)
	school := testbed.New(t, testbed.Options{Segments: testbed.DefaultSegments()})
	dir := t.TempDir()
	files, err := school.Config(dir)
	if err != nil {
		t.Fatal(err)
	}
	startDaemon(t, school, bin, files.Path)
	staff, _ := school.Segment("staff")
	pupil, _ := school.Segment("pupil")
	other := netip.MustParseAddr("8.8.8.8")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, c := range []struct {
		ns     string
		server netip.Addr
	}{{"staff", staff.Gateway}, {"pupil", other}} {
		for i := range 12 {
			name := fmt.Sprintf("0%cr7vq2x4k9mz3tb8.t.pirate.sea", 'a'+i)
			out, err := school.Command(ctx, c.ns, "dig", "+time=2", "+tries=1", "@"+c.server.String(), name, "NULL").CombinedOutput()
			// dig reports an answer from another address than it asked
			// ("reply from unexpected source"): the status line and
			// SERVER line say the guard answered as the server asked.
			if err != nil || !strings.Contains(string(out), "status:") || !strings.Contains(string(out), "SERVER: "+c.server.String()+"#53") {
				t.Fatalf("%s: dig @%s %s: %v\n%s", c.ns, c.server, name, err, out)
			}
		}
	}
	st, err := store.Open(ctx, files.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// tunnels lists the stored tunnel findings and counts them by client
	// and destination.
	var seen []string
	tunnels := func() map[string]int {
		fs, err := st.Findings(ctx, store.FindingFilter{Class: "tunnel", Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		seen = seen[:0]
		n := map[string]int{}
		for _, f := range fs {
			seen = append(seen, fmt.Sprintf("%s→%s:%d %s %s", f.SrcIP, f.DstIP, f.DstPort, f.Detail, f.Evidence))
			n[fmt.Sprintf("%s→%s:%d", f.SrcIP, f.DstIP, f.DstPort)]++
		}
		return n
	}
	throughGuard := fmt.Sprintf("%s→%s:53", staff.ClientAddr, staff.Gateway)
	throughOther := fmt.Sprintf("%s→%s:53", pupil.ClientAddr, other)
	if !tooltest.WaitFor(20*time.Second, func() bool {
		n := tunnels()
		return n[throughGuard] > 0 && n[throughOther] > 0
	}) {
		t.Fatalf("want tunnel findings %s and %s; tunnel findings:\n%s", throughGuard, throughOther, strings.Join(seen, "\n"))
	}
	// A duplicate would come from the hand-over, within a flush or two of
	// the first: give it the time.
	time.Sleep(5 * time.Second)
	n := tunnels()
	for k, c := range n {
		if c != 1 || (k != throughGuard && k != throughOther) {
			t.Errorf("want exactly one tunnel finding each for %s and %s; tunnel findings:\n%s", throughGuard, throughOther, strings.Join(seen, "\n"))
			break
		}
	}
}
