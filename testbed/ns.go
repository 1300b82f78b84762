package testbed

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Where named namespaces and owner markers live. These are the paths
// iproute2 and netns.NewNamed use; they are fixed so `ip netns exec` works.
const (
	netnsDir  = "/run/netns"
	markerDir = "/run/gatehouse-testbed"
)

// nsNameRE matches the namespaces this package creates: gh<pid>x<4 hex>-<role>.
var nsNameRE = regexp.MustCompile(`^(gh([0-9]+)x[0-9a-f]{4})-[a-z0-9-]+$`)

// marker records who owns an instance's namespaces. The process start time
// guards against a recycled pid.
type marker struct {
	PID        int      `json:"pid"`
	Start      uint64   `json:"start"`
	Namespaces []string `json:"namespaces,omitempty"`
}

// createNamed creates a network namespace bound at /run/netns/name and
// returns an open handle to it. The work happens on a throwaway OS thread:
// the goroutine locks its thread, unshares, and exits still locked, so the
// runtime destroys the thread instead of reusing one left in the new
// namespace.
func createNamed(name string) (netns.NsHandle, error) {
	type result struct {
		h   netns.NsHandle
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		h, err := bindNewNS(name)
		ch <- result{h, err}
	}()
	r := <-ch
	if r.err != nil {
		return netns.None(), fmt.Errorf("testbed: create namespace %s: %w", name, r.err)
	}
	return r.h, nil
}

// bindNewNS must run on a locked thread that is discarded afterwards.
func bindNewNS(name string) (netns.NsHandle, error) {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return netns.None(), err
	}
	path := filepath.Join(netnsDir, name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return netns.None(), err
	}
	f.Close()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		os.Remove(path)
		return netns.None(), fmt.Errorf("unshare: %w", err)
	}
	self := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
	if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
		os.Remove(path)
		return netns.None(), fmt.Errorf("bind mount: %w", err)
	}
	h, err := netns.GetFromPath(path)
	if err != nil {
		deleteNamed(name)
		return netns.None(), fmt.Errorf("open: %w", err)
	}
	return h, nil
}

// deleteNamed unbinds and removes /run/netns/name. A namespace that is
// already gone is not an error.
func deleteNamed(name string) error {
	path := filepath.Join(netnsDir, name)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("testbed: unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("testbed: remove %s: %w", path, err)
	}
	return nil
}

// doIn runs fn on an OS thread switched into target, on a goroutine of its
// own so the caller's thread is never touched. If the thread cannot be
// switched back it stays locked and the runtime discards it when the
// goroutine ends. A panic in fn is re-raised in the caller.
func doIn(target netns.NsHandle, fn func() error) error {
	type result struct {
		err      error
		panicked bool
		panicVal any
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		var r result
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("testbed: get current namespace: %w", err)}
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("testbed: enter namespace: %w", err)}
			return
		}
		returned := false
		defer func() {
			if p := recover(); p != nil {
				r = result{panicked: true, panicVal: p}
			} else if !returned {
				r.err = errors.New("testbed: function run in a namespace called runtime.Goexit (t.FailNow?); return an error instead")
			}
			if err := netns.Set(orig); err != nil {
				r.err = errors.Join(r.err, fmt.Errorf("testbed: leave namespace (thread discarded): %w", err))
			} else {
				runtime.UnlockOSThread()
			}
			done <- r
		}()
		r.err = fn()
		returned = true
	}()
	r := <-done
	if r.panicked {
		panic(r.panicVal)
	}
	return r.err
}

// procStart returns the start time (clock ticks since boot) of a running
// process, field 22 of /proc/<pid>/stat. A zombie counts as gone: its
// owner died and only its parent has yet to reap it.
func procStart(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("testbed: parse /proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return 0, fmt.Errorf("testbed: parse /proc/%d/stat: %d fields", pid, len(f))
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0, fmt.Errorf("testbed: process %d has exited", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

func markerPath(id string) string { return filepath.Join(markerDir, id+".json") }

func writeMarker(id string, m marker) error {
	if err := os.MkdirAll(markerDir, 0o755); err != nil {
		return fmt.Errorf("testbed: create %s: %w", markerDir, err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("testbed: encode marker: %w", err)
	}
	f, err := os.OpenFile(markerPath(id), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("testbed: write marker: %w", err)
	}
	_, werr := f.Write(b)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("testbed: write marker %s: %w", markerPath(id), werr)
	}
	return nil
}

// readMarker returns the marker of instance id; ok is false when there is
// none or it cannot be read (a run killed while writing it).
func readMarker(id string) (marker, bool) {
	b, err := os.ReadFile(markerPath(id))
	if err != nil {
		return marker{}, false
	}
	var m marker
	if json.Unmarshal(b, &m) != nil || m.PID <= 0 {
		return marker{}, false
	}
	return m, true
}

// ownerAlive reports whether instance id's owner still runs. Without a
// readable marker the pid in the name decides.
func ownerAlive(id string, pidInName int) bool {
	m, ok := readMarker(id)
	if !ok {
		_, err := procStart(pidInName)
		return err == nil
	}
	start, err := procStart(m.PID)
	return err == nil && start == m.Start
}

// cleanStale removes namespaces and markers left by instances whose owner
// process is gone, killing processes still running in those namespaces.
// It leaves live instances, including other processes', alone.
func cleanStale() error {
	var errs []error
	entries, err := os.ReadDir(netnsDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("testbed: read %s: %w", netnsDir, err)
	}
	alive := map[string]bool{}
	for _, e := range entries {
		sm := nsNameRE.FindStringSubmatch(e.Name())
		if sm == nil {
			continue
		}
		id := sm[1]
		pid, err := strconv.Atoi(sm[2])
		if err != nil {
			continue
		}
		a, seen := alive[id]
		if !seen {
			a = ownerAlive(id, pid)
			alive[id] = a
		}
		if a {
			continue
		}
		if err := killProcsIn(filepath.Join(netnsDir, e.Name())); err != nil {
			errs = append(errs, err)
		}
		if err := deleteNamed(e.Name()); err != nil {
			errs = append(errs, err)
		}
	}
	markers, err := os.ReadDir(markerDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("testbed: read %s: %w", markerDir, err))
	}
	for _, e := range markers {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		sm := nsNameRE.FindStringSubmatch(id + "-x")
		if sm == nil {
			continue
		}
		a, seen := alive[id]
		if !seen {
			pid, _ := strconv.Atoi(sm[2])
			a = ownerAlive(id, pid)
		}
		if !a {
			if err := os.Remove(markerPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("testbed: remove stale marker: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

// killProcsIn sends SIGKILL to every process whose network namespace is
// the one bound at nsPath, and waits (bounded) until none is left. Our own
// process is skipped: only its threads ever enter, never its main thread.
func killProcsIn(nsPath string) error {
	var target unix.Stat_t
	if err := unix.Stat(nsPath, &target); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("testbed: stat %s: %w", nsPath, err)
	}
	find := func() []int {
		var pids []int
		ents, err := os.ReadDir("/proc")
		if err != nil {
			return nil
		}
		self := os.Getpid()
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == self {
				continue
			}
			var st unix.Stat_t
			// A zombie has no namespace any more: stat fails and it is skipped.
			if unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st) != nil {
				continue
			}
			if st.Dev == target.Dev && st.Ino == target.Ino {
				pids = append(pids, pid)
			}
		}
		return pids
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		pids := find()
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testbed: processes %v still running in %s after SIGKILL", pids, nsPath)
		}
		for _, pid := range pids {
			unix.Kill(pid, unix.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
