package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/internal/testkit"
	"github.com/gatehouse-net/gatehouse/testbed"
	"github.com/gatehouse-net/gatehouse/web/webtest"
)

// buildGatehouse builds the binary the demo starts inside the router.
func buildGatehouse(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gatehouse")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

var (
	adminURL = regexp.MustCompile(`Admin page: (https://\S+)`)
	credLine = regexp.MustCompile(`(?m)^\s+(\w+)\s+user (\S+)\s+password (\S+)$`)
)

func TestDemoRunsTheProductAndRemovesEverything(t *testing.T) {
	testbed.Require(t)
	bin := buildGatehouse(t)
	before := netnsList(t)

	var out testkit.SyncBuffer
	var errOut testkit.SyncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- runCLI(ctx, &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut},
			[]string{"demo", "--listen", "127.0.0.1:0", "--gatehouse", bin})
	}()
	ready := false
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline) && !ready; time.Sleep(100 * time.Millisecond) {
		select {
		case code := <-done:
			t.Fatalf("demo exited with %d before it was ready\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
		default:
		}
		ready = strings.Contains(out.String(), demoReady) && strings.Contains(out.String(), "Press Ctrl-C")
	}
	if !ready {
		t.Fatalf("demo not ready after 2 minutes\nstdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
	}
	// Other tests may make and remove namespaces meanwhile: the demo's are
	// those that are new now.
	mine := newNames(before, netnsList(t))
	if len(mine) == 0 {
		t.Errorf("the demo made no namespaces")
	}

	// The scripted visitor is sent to the portal, then let out by a code.
	for _, want := range []string{"finding stored for the DSL:  ssh on pupil, 10.20.0.10", "sign-in check:    302 http://10.40.0.1:8080/", "HTTPS before a code:         refused", "HTTPS after the code:        200"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the demo's visitor scene lacks %q:\n%s", want, out.String())
		}
	}

	m := adminURL.FindStringSubmatch(out.String())
	creds := credLine.FindAllStringSubmatch(out.String(), -1)
	if m == nil || len(creds) != 3 {
		t.Fatalf("demo output lacks the admin URL or three users:\n%s", out.String())
	}
	for _, cr := range creds {
		role, name, pw := cr[1], cr[2], cr[3]
		// The demo's certificate is the daemon's own self-signed one.
		b := webtest.Remote(t, m[1], nil)
		b.Login(name, pw)
		if r := b.Get("/"); !strings.Contains(r.Body, name) {
			t.Errorf("%s (%s) home page does not name the user:\n%s", name, role, r.Body)
		}
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("demo exited %d after Ctrl-C: %s", code, errOut.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("demo did not stop within a minute of Ctrl-C")
	}
	after := netnsList(t)
	for _, n := range mine {
		for _, a := range after {
			if a == n {
				t.Errorf("namespace %s left behind", n)
			}
		}
	}
}

// newNames lists the names in now that were not in before.
func newNames(before, now []string) []string {
	old := map[string]bool{}
	for _, n := range before {
		old[n] = true
	}
	var out []string
	for _, n := range now {
		if !old[n] {
			out = append(out, n)
		}
	}
	return out
}

// netnsList names the network namespaces mounted under /run/netns.
func netnsList(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("/run/netns")
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "gh") {
			names = append(names, e.Name())
		}
	}
	return names
}
