package testbed

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Usable reports why this process cannot build a testbed, or nil if it can:
// it needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and network namespace
// support.
func Usable() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("running as uid %d, not root", os.Geteuid())
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		return fmt.Errorf("no network namespace support: %w", err)
	}
	// Try the real thing on a throwaway thread: the goroutine exits locked,
	// so the runtime discards the thread and its new namespace with it.
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- unix.Unshare(unix.CLONE_NEWNET)
	}()
	if err := <-errc; err != nil {
		return fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
	}
	return nil
}

// Require stops the test unless a testbed can be built: with -short it
// skips, otherwise it fails, giving the reason either way.
func Require(t testing.TB) {
	t.Helper()
	err := Usable()
	if err == nil {
		return
	}
	msg := "testbed: needs root to create network namespaces: " + err.Error()
	if testing.Short() {
		t.Skip(msg)
	}
	t.Fatal(msg)
}

// New builds a school for a test (see Require) and closes it when the test
// and its subtests end, failing the test if Close reports an error.
func New(t testing.TB, opts Options) *School {
	t.Helper()
	Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("testbed: start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("testbed: close: %v", err)
		}
	})
	return s
}

// RequireTools fails the test unless every program in tools is on PATH:
// a test that runs ip, nft or a DHCP client must say what is missing
// rather than skip (build/deps installs them all).
func RequireTools(t testing.TB, tools ...string) {
	t.Helper()
	var missing []string
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("testbed: %v not installed; build/deps installs the Debian packages the tests need", missing)
	}
}
