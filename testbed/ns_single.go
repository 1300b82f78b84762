package testbed

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/vishvananda/netns"
)

// NS is one empty network namespace for a single test (only lo, down),
// for tests that wire their own topology rather than a School. It is named
// and owned like a School's namespaces (gh<pid>x<hex>-ns, with an owner
// marker), so one left behind by a killed test is removed by the next
// Start or NewNS.
type NS struct {
	// Name is the namespace's name under /run/netns, for `ip netns exec`
	// and `ip -n`.
	Name string

	id string // "" for a namespace joined with JoinNS
	h  netns.NsHandle
}

// NewNS creates a namespace for t under Require's rule (without root it
// skips with -short and fails otherwise) and removes it when t ends, after
// killing any process still running in it.
func NewNS(t testing.TB) *NS {
	t.Helper()
	Require(t)
	n, err := newNS()
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	t.Cleanup(func() {
		if err := n.close(); err != nil {
			t.Errorf("testbed: remove namespace %s: %v", n.Name, err)
		}
	})
	return n
}

func newNS() (*NS, error) {
	if err := cleanStale(); err != nil {
		// Someone else's leftovers must not stop this test; Start logs
		// the same condition.
		fmt.Fprintf(os.Stderr, "testbed: removing stale namespaces: %v\n", err)
	}
	var rnd [2]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("random id: %w", err)
	}
	pid := os.Getpid()
	start, err := procStart(pid)
	if err != nil {
		return nil, fmt.Errorf("own start time: %w", err)
	}
	n := &NS{id: fmt.Sprintf("gh%dx%04x", pid, binary.BigEndian.Uint16(rnd[:])), h: netns.None()}
	n.Name = n.id + "-ns"
	// The marker goes first, as in Start: nobody may see the namespace
	// without an owner record.
	if err := writeMarker(n.id, marker{PID: pid, Start: start, Namespaces: []string{n.Name}}); err != nil {
		return nil, err
	}
	if n.h, err = createNamed(n.Name); err != nil {
		return nil, errors.Join(err, os.Remove(markerPath(n.id)))
	}
	return n, nil
}

// JoinNS returns the existing namespace name (one that NewNS made, perhaps
// in the parent of a helper process) without owning it: when t ends its
// handle is closed and the namespace is left to its owner.
func JoinNS(t testing.TB, name string) *NS {
	t.Helper()
	Require(t)
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("testbed: open namespace %s: %v", name, err)
	}
	t.Cleanup(func() { h.Close() })
	return &NS{Name: name, h: h}
}

// Fd is the namespace's descriptor, for APIs that take one
// (nftables.WithNetNSFd, netlink.NewHandleAt). It stays valid until the
// test ends; do not close it.
func (n *NS) Fd() uintptr { return uintptr(n.h) }

// Handle is the namespace as a netns handle, valid until the test ends; do
// not close it.
func (n *NS) Handle() netns.NsHandle { return n.h }

// Do runs fn with its OS thread inside the namespace, as School.Do does:
// sockets fn creates stay in the namespace; goroutines fn starts do not
// run in it; fn returns errors rather than calling t.FailNow.
func (n *NS) Do(fn func() error) error { return doIn(n.h, fn) }

func (n *NS) close() error {
	errs := []error{killProcsIn(netnsDir + "/" + n.Name)}
	n.h.Close()
	errs = append(errs, deleteNamed(n.Name))
	if err := os.Remove(markerPath(n.id)); err != nil && !os.IsNotExist(err) {
		errs = append(errs, fmt.Errorf("remove marker: %w", err))
	}
	return errors.Join(errs...)
}
