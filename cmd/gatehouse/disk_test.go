package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
)

// TestADiskFillingUpIsReportedByTheDaemon puts the daemon's database on a
// small tmpfs: under the free-space threshold from the start, so the
// daemon raises the disk-low alarm (a stored finding, the home page, a
// gauge); then filled, so that a DHCP lease cannot be stored, and /healthz
// says the daemon is degraded instead of answering 200 while no new device
// gets an address.
func TestADiskFillingUpIsReportedByTheDaemon(t *testing.T) {
	testbed.Require(t)
	bin := buildGatehouse(t)
	segs := testbed.DefaultSegments()
	for i := range segs {
		segs[i].Unconfigured = segs[i].Name == "pupil"
	}
	school := testbed.New(t, testbed.Options{Segments: segs})
	dir := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=48m,mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", dir, err, out)
		}
	})
	files, err := school.Config(dir)
	if err != nil {
		t.Fatal(err)
	}
	const pw = "a long staff passphrase"
	if code, _, stderr := cli(t, pw+"\n", "user", "add", "--config", files.Path, "--role", "network", "--name", "amy"); code != 0 {
		t.Fatalf("user add: %s", stderr)
	}
	d := startDaemon(t, school, bin, files.Path)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	t.Run("under the threshold: a disk-low finding and the home page say so", func(t *testing.T) {
		st, err := store.Open(ctx, files.Database)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		waitFor(t, "a disk-low finding", func() bool {
			fs, err := st.Findings(ctx, store.FindingFilter{Class: "disk-low"})
			return err == nil && len(fs) > 0
		})
		b := d.browser(t)
		b.Login("amy", pw)
		if r := b.Get("/"); !strings.Contains(r.Body, "disk is nearly full") {
			t.Errorf("the network manager's home page (%d) does not warn of the disk:\n%s", r.StatusCode, r.Body)
		}
	})

	t.Run("full: a lease cannot be stored and /healthz says degraded", func(t *testing.T) {
		// Fill what is left; dd stops at ENOSPC.
		_ = exec.Command("dd", "if=/dev/zero", "of="+filepath.Join(dir, "filler"), "bs=1M").Run()
		out, _ := school.Command(ctx, "pupil", "udhcpc", "-q", "-n", "-f", "-i", "eth0", "-s", "/bin/true", "-t", "3", "-T", "1").CombinedOutput()
		if strings.Contains(string(out), "obtained") {
			t.Logf("a lease was given with the disk full (a write may have fitted in a free page):\n%s", out)
		}
		waitFor(t, "/healthz to report the failing writes", func() bool {
			resp, err := d.client().Get(d.admin + "/healthz")
			if err != nil {
				return false
			}
			body := readAll(t, resp)
			return resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(body, `"degraded"`)
		})
		// Space again: the next stored write clears it.
		if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "/healthz to recover after a lease is stored", func() bool {
			_, _ = school.Command(ctx, "pupil", "udhcpc", "-q", "-n", "-f", "-i", "eth0", "-s", "/bin/true", "-t", "2", "-T", "1").CombinedOutput()
			return d.healthy()
		})
	})
}
