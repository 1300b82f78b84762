package main

import (
	"bufio"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/testbed"
)

// idleHeapBound is the CI guard of the memory budget (issue 17): far above
// what an idle daemon holds (about 14 MB of heap in use with four
// inspected segments, bench/memory.sh) and far below what preallocating
// inspection's tables did (126 MB), so that a regression of that kind
// fails here without anything being timed.
const idleHeapBound = 48 << 20

func TestIdleDaemonHeapStaysWithinTheBudget(t *testing.T) {
	testbed.Require(t)
	bin := buildGatehouse(t)
	school := testbed.New(t, testbed.Options{})
	files, err := school.Config(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(files.Path)
	if err != nil {
		t.Fatal(err)
	}
	// /metrics for the management network, as a scraper would read it.
	scrape := strings.Replace(string(conf), "\nadmin:\n", "\nadmin:\n    metrics_from: ["+testbed.MgmtNet+"]\n", 1)
	if scrape == string(conf) || !strings.Contains(scrape, "gh-visitor") {
		t.Fatalf("the testbed's configuration has no admin section or no inspected segments:\n%s", conf)
	}
	if err := os.WriteFile(files.Path, []byte(scrape), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, school, bin, files.Path)
	// Every component is running once the admin page answers; inspection
	// has opened its four captures when it says so.
	waitFor(t, "inspection on four interfaces", func() bool { return strings.Count(d.log.String(), "msg=inspecting") == 4 })
	time.Sleep(time.Second)

	heap := metric(t, d, "go_memstats_heap_inuse_bytes")
	t.Logf("idle daemon with four inspected segments: %.1f MiB of Go heap in use", heap/(1<<20))
	if heap > idleHeapBound {
		t.Errorf("the idle daemon holds %.1f MiB of Go heap, over the guard of %d MiB: something is preallocated again (see bench/memory.sh and a -tags gatehouse_pprof heap profile)", heap/(1<<20), idleHeapBound>>20)
	}

	// The file pages (the binary's, the C library's, the capture rings)
	// once start-up's pages were paged out (procmem/filepages.go): about 10 MiB,
	// where the whole binary, 25 MiB and more unstripped, stayed before.
	waitFor(t, "the started line", func() bool { return strings.Contains(d.log.String(), "msg=\"gatehouse started\"") })
	file := procStatusKiB(t, d.cmd.Process.Pid, "RssFile") << 10
	t.Logf("idle daemon: %.1f MiB of file pages resident", float64(file)/(1<<20))
	if file > idleFilePagesBound {
		t.Errorf("the idle daemon holds %.1f MiB of file pages, over the guard of %d MiB: start-up's pages of the binary were not paged out (see bench/memory.sh with SMAPS=dir)", float64(file)/(1<<20), idleFilePagesBound>>20)
	}
}

// idleFilePagesBound is the CI guard of the binary's resident pages:
// between what the idle daemon keeps (about 10 MiB with four rings) and
// the whole binary, which start-up touches.
const idleFilePagesBound = 18 << 20

// procStatusKiB reads one "Key: N kB" line of /proc/PID/status.
func procStatusKiB(t *testing.T, pid int, key string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return n
		}
	}
	t.Fatalf("/proc/%d/status has no %s", pid, key)
	return 0
}

// metric reads one unlabelled series from the daemon's /metrics.
func metric(t *testing.T, d *daemonUnderTest, name string) float64 {
	t.Helper()
	res, err := d.client().Get(d.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", res.Status)
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no %s (err %v)", name, sc.Err())
	return 0
}
