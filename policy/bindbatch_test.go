package policy

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// elemMessages counts the element messages (adds, deletes) in what a test
// dial saw.
type elemMessages struct {
	mu       sync.Mutex
	add, del int
	fail     bool // refuse the next transaction
}

func (c *elemMessages) dial(req []netlink.Message) ([]netlink.Message, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range req {
		if m.Header.Flags&netlink.Dump != 0 {
			return nil, nil // a read: nothing there
		}
	}
	if c.fail {
		c.fail = false
		return nil, errors.New("refused")
	}
	for _, m := range req {
		switch uint16(m.Header.Type & 0xff) {
		case unix.NFT_MSG_NEWSETELEM:
			c.add++
		case unix.NFT_MSG_DELSETELEM:
			c.del++
		}
	}
	return req, nil // echoed messages stand in for the kernel's acks
}

func (c *elemMessages) take() (add, del int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	add, del = c.add, c.del
	c.add, c.del = 0, 0
	return add, del
}

// Leases new to the table reach the kernel as one add message for the
// whole batch; leases the kernel may hold already (renewed ones) go as add,
// delete, add, each of the three one message for the batch, as do new ones
// after a transaction failed (it may have left elements behind) until the
// table is rebuilt.
func TestBindManyNewPairsShareOneMessage(t *testing.T) {
	var c elemMessages
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	e, err := New(Options{Now: func() time.Time { return t0 }, Flows: noFlows{}, testDial: c.dial}, testNetwork(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	if err := e.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	c.take()
	bindAll := func(first, n int, until time.Time) {
		t.Helper()
		bs := make([]Binding, n)
		for i := range bs {
			bs[i] = Binding{Device: benchDevice(first+i, 20), Until: until}
		}
		for i, err := range e.BindMany(ctx, bs) {
			if err != nil {
				t.Fatalf("pair %d: %v", i, err)
			}
		}
	}
	const n = 16
	bindAll(0, n, t0.Add(time.Hour))
	// BindMany's pairs may be split over transactions by the batcher's
	// timing, but they are never sent one message per pair.
	if add, del := c.take(); add < 1 || add >= n || del != 0 {
		t.Fatalf("%d new pairs: %d add and %d delete messages, want a few adds and no delete", n, add, del)
	}
	bindAll(0, n, t0.Add(2*time.Hour))
	if add, del := c.take(); del < 1 || del >= n || add != 2*del {
		t.Fatalf("%d renewed pairs: %d add and %d delete messages, want a few deletes and two adds each", n, add, del)
	}

	// A refused transaction: afterwards new pairs go the careful way.
	c.mu.Lock()
	c.fail = true
	c.mu.Unlock()
	if err := e.Approve(ctx, benchDevice(1, 30)); err == nil {
		t.Fatal("Approve succeeded through a refused transaction")
	}
	bindAll(100, n, t0.Add(time.Hour))
	if add, del := c.take(); del < 1 || del >= n || add != 2*del {
		t.Fatalf("%d new pairs after a refusal: %d add and %d delete messages, want a few deletes and two adds each", n, add, del)
	}
	if err := e.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	c.take()
	bindAll(200, n, t0.Add(time.Hour))
	if add, del := c.take(); add < 1 || add >= n || del != 0 {
		t.Fatalf("%d new pairs after a rebuild: %d add and %d delete messages, want a few adds and no delete", n, add, del)
	}
}
