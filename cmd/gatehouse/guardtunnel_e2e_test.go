//go:build linux

package main

import (
	"context"
	"fmt"
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
// the gateway's port 53 must be stored.
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
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := range 12 {
		name := fmt.Sprintf("0%cr7vq2x4k9mz3tb8.t.pirate.sea", 'a'+i)
		out, err := school.Command(ctx, "staff", "dig", "+time=2", "+tries=1", "@"+staff.Gateway.String(), name, "NULL").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "status:") {
			t.Fatalf("dig %s: %v\n%s", name, err, out)
		}
	}
	st, err := store.Open(ctx, files.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var seen []string
	if !tooltest.WaitFor(20*time.Second, func() bool {
		fs, err := st.Findings(ctx, store.FindingFilter{Class: "tunnel", Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		seen = seen[:0]
		for _, f := range fs {
			seen = append(seen, fmt.Sprintf("%s→%s:%d %s %s", f.SrcIP, f.DstIP, f.DstPort, f.Detail, f.Evidence))
			if f.SrcIP == staff.ClientAddr && f.DstIP == staff.Gateway && f.DstPort == 53 {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no stored tunnel finding from %s to %s:53; tunnel findings:\n%s", staff.ClientAddr, staff.Gateway, strings.Join(seen, "\n"))
	}
}
