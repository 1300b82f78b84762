// Package daemon starts what the bench commands that run Gatehouse as
// deployed share: a testbed school (with a bound on its start) and
// `gatehouse run` inside one of its namespaces, logging to a file, stopped
// with SIGTERM and killed only if it outlasts a grace period. Each command
// keeps its own flags, configuration edits and readiness check.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sync"
	"syscall"
	"time"

	"github.com/gatehouse-net/gatehouse/testbed"
)

// StartSchool starts a testbed school with opts, giving it at most a
// minute: a start that hangs is a broken machine, not a slow one.
func StartSchool(ctx context.Context, opts testbed.Options) (*testbed.School, error) {
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return testbed.Start(sctx, opts)
}

// Daemon is a `gatehouse run` process the bench command started and owns.
type Daemon struct {
	// Cmd is the running process (Cmd.Process.Pid for the scripts).
	Cmd *testbed.Cmd
	// Done is closed when the process has exited.
	Done  <-chan struct{}
	grace time.Duration
	once  sync.Once
}

// Run starts bin run --config config in namespace ns of s, its output to
// log. It is not tied to a context: the caller ends it with Stop, which
// waits up to grace after SIGTERM before killing it.
func Run(s *testbed.School, ns, bin, config string, log io.Writer, grace time.Duration) (*Daemon, error) {
	cmd := s.Command(context.Background(), ns, bin, "run", "--config", config)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start gatehouse run in %s: %w", ns, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	return &Daemon{Cmd: cmd, Done: done, grace: grace}, nil
}

// Stop sends SIGTERM and waits for the exit, killing the process if it has
// not exited within the grace period. Calls after the first return at once
// (commands both defer it and call it when the load is over).
func (d *Daemon) Stop() {
	d.once.Do(func() {
		_ = d.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.Done:
		case <-time.After(d.grace):
			_ = d.Cmd.Process.Kill()
			<-d.Done
		}
	})
}

// pupilIface is the pupil segment's interface line in the testbed's
// configuration.
var pupilIface = regexp.MustCompile(`(?m)^( +)interface: gh-pupil\n`)

// ServePupilsSSID edits the configuration at path so that the pupil
// segment (VLAN 20) serves the Pupils SSID (the SSID the benches' RADIUS
// requests name in Called-Station-Id), and returns the new text.
func ServePupilsSSID(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read the configuration: %w", err)
	}
	cfg := pupilIface.ReplaceAllString(string(raw), "${1}interface: gh-pupil\n${1}ssids: [Pupils]\n")
	if cfg == string(raw) {
		return "", errors.New("no pupil segment in the testbed configuration")
	}
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return "", fmt.Errorf("write the configuration: %w", err)
	}
	return cfg, nil
}
