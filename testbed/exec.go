package testbed

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
)

// Cmd is an exec.Cmd that starts inside a namespace of the school. Set its
// fields (Stdout, Env, ...) through the embedded *exec.Cmd as usual, and use
// Cmd's own Start, Run, Output and CombinedOutput: the embedded Cmd's would
// start the program in the caller's namespace.
//
// Start forks from an OS thread switched into the namespace (see Do); the
// child inherits the thread's network namespace and nothing else changes:
// unlike `ip netns exec`, /sys is not remounted and /etc/netns is not
// applied. Close kills whatever still runs in the school's namespaces,
// including daemons the program forked.
type Cmd struct {
	*exec.Cmd
	school *School
	ns     string
}

// Command prepares name with args to run in namespace ns (a full name or
// a role, as for Do). ctx kills the process when done, as with
// exec.CommandContext.
func (s *School) Command(ctx context.Context, ns string, name string, args ...string) *Cmd {
	return &Cmd{Cmd: exec.CommandContext(ctx, name, args...), school: s, ns: ns}
}

// Start starts the program inside the namespace.
func (c *Cmd) Start() error {
	return c.school.Do(c.ns, c.Cmd.Start)
}

// Run starts the program and waits for it.
func (c *Cmd) Run() error {
	if err := c.Start(); err != nil {
		return err
	}
	return c.Wait()
}

// Output runs the program and returns its standard output. As with
// exec.Cmd.Output, when Stderr is unset an *exec.ExitError carries it.
func (c *Cmd) Output() ([]byte, error) {
	if c.Stdout != nil {
		return nil, errors.New("testbed: Stdout already set")
	}
	var stdout, stderr bytes.Buffer
	c.Stdout = &stdout
	captured := c.Stderr == nil
	if captured {
		c.Stderr = &stderr
	}
	err := c.Run()
	var ee *exec.ExitError
	if captured && errors.As(err, &ee) {
		ee.Stderr = stderr.Bytes()
	}
	return stdout.Bytes(), err
}

// CombinedOutput runs the program and returns standard output and
// standard error together.
func (c *Cmd) CombinedOutput() ([]byte, error) {
	if c.Stdout != nil || c.Stderr != nil {
		return nil, errors.New("testbed: Stdout or Stderr already set")
	}
	var b bytes.Buffer
	c.Stdout = &b
	c.Stderr = &b
	err := c.Run()
	return b.Bytes(), err
}
