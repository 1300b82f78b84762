package testbed

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netns"
)

// hostLinkNames lists the host's interfaces as `ip -o link` shows them.
func hostLinkNames(t *testing.T) map[string]bool {
	t.Helper()
	out, err := exec.Command("ip", "-o", "link").CombinedOutput()
	if err != nil {
		t.Fatalf("ip -o link: %v: %s", err, out)
	}
	names := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 {
			names[strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0]] = true
		}
	}
	return names
}

func ipNetnsList(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	return string(out)
}

// serverGoroutines returns the stacks of goroutines that belong to the
// testbed's servers.
func serverGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, marker := range []string{"miekg/dns.(*Server)", "net/http.(*Server).Serve", "net/http.(*conn).serve", "testbed.startDNS", "testbed.startWeb"} {
			if strings.Contains(g, marker) {
				found = append(found, g)
				break
			}
		}
	}
	return found
}

// Not parallel: it counts goroutines and host links, which other tests
// of this package would disturb.
func TestCloseLeavesNothingBehind(t *testing.T) {
	Require(t)
	before := hostLinkNames(t)
	s, err := Start(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			s.Close()
		}
	}()
	var ours []string
	for _, seg := range s.Segments() {
		ours = append(ours, seg.Interface)
	}
	ours = append(ours, UplinkInterface, InternetInterface, MgmtInterface)
	during := hostLinkNames(t)
	for _, name := range ours {
		if during[name] && !before[name] {
			t.Errorf("interface %s appeared in the host namespace", name)
		}
	}
	if len(during) != len(before) {
		t.Logf("host links changed while the school ran (another process?): %v -> %v", before, during)
	}
	// Leave work for the servers so Close has connections to end.
	get(t, s, "staff", "http://203.0.113.80/", "")
	get(t, s, "staff", "https://203.0.113.80/", "")
	lookup(t, s, "staff", "www.example.com", dns.TypeA)
	if len(serverGoroutines()) == 0 {
		t.Fatal("no server goroutines found while running: the leak check below could not fail")
	}
	namespaces := s.Namespaces()
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	closed = true

	for _, ns := range namespaces {
		if _, err := os.Stat(filepath.Join(netnsDir, ns)); !os.IsNotExist(err) {
			t.Errorf("%s still in %s: %v", ns, netnsDir, err)
		}
	}
	if list := ipNetnsList(t); strings.Contains(list, s.ID()) {
		t.Errorf("ip netns list still shows the school:\n%s", list)
	}
	if _, err := os.Stat(markerPath(s.ID())); !os.IsNotExist(err) {
		t.Errorf("owner marker left behind: %v", err)
	}
	// Only our own names can be our leak; other processes on the host are
	// not this test's business, but are reported.
	ourNames := map[string]bool{ClientInterface: true}
	for _, name := range ours {
		ourNames[name] = true
	}
	for name := range hostLinkNames(t) {
		switch {
		case before[name]:
		case ourNames[name] || strings.HasPrefix(name, "gh"):
			t.Errorf("host namespace gained interface %s", name)
		default:
			t.Logf("host namespace gained interface %s (not a testbed name)", name)
		}
	}
	// Handler goroutines finish just after Shutdown closes their
	// connections; allow them a moment.
	deadline := time.Now().Add(3 * time.Second)
	for g := serverGoroutines(); len(g) > 0; g = serverGoroutines() {
		if time.Now().After(deadline) {
			t.Fatalf("server goroutines left after Close:\n%s", strings.Join(g, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// Not parallel: Start in any test would clean the planted leftovers too.
func TestStartRemovesStaleLeftovers(t *testing.T) {
	Require(t)
	pidMax, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		t.Fatal(err)
	}
	max, err := strconv.Atoi(strings.TrimSpace(string(pidMax)))
	if err != nil {
		t.Fatal(err)
	}
	deadPID := max + 1 // no process can have it
	self := os.Getpid()
	start, err := procStart(self)
	if err != nil {
		t.Fatal(err)
	}
	plant := func(id string, m *marker) string {
		t.Helper()
		name := id + "-router"
		h, err := createNamed(name)
		if err != nil {
			t.Fatal(err)
		}
		h.Close()
		t.Cleanup(func() { deleteNamed(name) })
		if m != nil {
			if err := writeMarker(id, *m); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Remove(markerPath(id)) })
		}
		return name
	}
	deadOwner := plant(fmt.Sprintf("gh%dxdead", deadPID), &marker{PID: deadPID, Start: 1})
	noMarker := plant(fmt.Sprintf("gh%dxbeef", deadPID), nil)
	recycledPID := plant(fmt.Sprintf("gh%dxc0de", self), &marker{PID: self, Start: start + 12345})
	live := plant(fmt.Sprintf("gh%dxfeed", self), &marker{PID: self, Start: start})
	orphanMarker := fmt.Sprintf("gh%dxf00d", deadPID)
	if err := writeMarker(orphanMarker, marker{PID: deadPID, Start: 1}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(markerPath(orphanMarker)) })

	// A process left running in a dead run's namespace must go too.
	var sleeper *exec.Cmd
	h, err := netns.GetFromPath(filepath.Join(netnsDir, deadOwner))
	if err != nil {
		t.Fatal(err)
	}
	err = doIn(h, func() error {
		sleeper = exec.Command("sleep", "60")
		return sleeper.Start()
	})
	h.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer sleeper.Process.Kill()

	s := New(t, Options{Segments: DefaultSegments()[:1]})

	for _, gone := range []string{deadOwner, noMarker, recycledPID} {
		if _, err := os.Stat(filepath.Join(netnsDir, gone)); !os.IsNotExist(err) {
			t.Errorf("stale namespace %s survived Start: %v", gone, err)
		}
	}
	if _, err := os.Stat(filepath.Join(netnsDir, live)); err != nil {
		t.Errorf("live instance's namespace %s was removed: %v", live, err)
	}
	for _, id := range []string{fmt.Sprintf("gh%dxdead", deadPID), orphanMarker} {
		if _, err := os.Stat(markerPath(id)); !os.IsNotExist(err) {
			t.Errorf("stale marker %s survived: %v", id, err)
		}
	}
	if err := sleeper.Wait(); err == nil {
		t.Error("process in the stale namespace was not killed")
	}
	if _, err := os.Stat(filepath.Join(netnsDir, s.RouterNS())); err != nil {
		t.Errorf("new school missing: %v", err)
	}
}

// failAfter is a context whose Err turns to Canceled after n calls, to stop
// Start part way through building.
type failAfter struct {
	context.Context
	n      int
	onFail func()
}

func (c *failAfter) Err() error {
	c.n--
	if c.n == -1 && c.onFail != nil {
		c.onFail()
	}
	if c.n < 0 {
		return context.Canceled
	}
	return nil
}

// Not parallel: it looks for any namespace of this process.
func TestFailedStartRemovesWhatItBuilt(t *testing.T) {
	Require(t)
	prefix := fmt.Sprintf("gh%dx", os.Getpid())
	leftovers := func() []string {
		var found []string
		for _, dir := range []string{netnsDir, markerDir} {
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), prefix) {
					found = append(found, filepath.Join(dir, e.Name()))
				}
			}
		}
		return found
	}
	if l := leftovers(); len(l) != 0 {
		t.Fatalf("leftovers before the test: %v", l)
	}
	// 7 namespaces, then the first segment: the second segment's check fails.
	var built []string
	ctx := &failAfter{Context: context.Background(), n: 9, onFail: func() { built = leftovers() }}
	s, err := Start(ctx, Options{})
	if err == nil {
		s.Close()
		t.Fatal("Start succeeded with a cancelled context")
	}
	if !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("err = %v", err)
	}
	// Marker and 7 namespaces existed when Start gave up.
	if len(built) != 8 {
		t.Errorf("when Start failed it had built %v, want a marker and 7 namespaces", built)
	}
	if l := leftovers(); len(l) != 0 {
		t.Errorf("failed Start left %v", l)
	}
}
