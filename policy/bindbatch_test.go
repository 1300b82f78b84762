package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// Element messages never outgrow netlink's 16-bit attribute length, however
// many elements one transaction carries and however long the chain a verdict
// element jumps to: github.com/google/nftables would wrap the length of the
// element list silently, and the kernel would read only its start (see
// elemMsgBytes). Every element queued arrives, split over messages.
func TestElementMessagesStayUnder64KiB(t *testing.T) {
	type kind struct {
		set string
		del bool
	}
	var (
		mu       sync.Mutex
		got      = map[kind]int{}
		tooLarge []string
	)
	dial := func(req []netlink.Message) ([]netlink.Message, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range req {
			typ := uint16(m.Header.Type & 0xff)
			if typ != unix.NFT_MSG_NEWSETELEM && typ != unix.NFT_MSG_DELSETELEM || m.Header.Flags&netlink.Dump != 0 {
				continue
			}
			if len(m.Data) > 0xffff {
				tooLarge = append(tooLarge, fmt.Sprintf("%d bytes", len(m.Data)))
				continue
			}
			attrs, err := netlink.UnmarshalAttributes(m.Data[4:])
			if err != nil {
				return nil, err
			}
			var set string
			n := -1
			for _, a := range attrs {
				switch a.Type &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER) {
				case unix.NFTA_SET_ELEM_LIST_SET:
					set = strings.TrimSuffix(string(a.Data), "\x00")
				case unix.NFTA_SET_ELEM_LIST_ELEMENTS:
					els, err := netlink.UnmarshalAttributes(a.Data)
					if err != nil {
						return nil, err
					}
					n = len(els)
				}
			}
			if n < 0 {
				continue // a flush of a whole set
			}
			got[kind{set, typ == unix.NFT_MSG_DELSETELEM}] += n
		}
		return req, nil
	}
	e, err := New(Options{Flows: noFlows{}, testDial: dial}, testNetwork(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	clear(got)
	mu.Unlock()

	const n = 5000
	now := time.Now()
	long := strings.Repeat("c", 250) // nearly the kernel's longest chain name
	var ops []op
	for i := range n {
		k, err := admittedKey(benchDevice(i, 40))
		if err != nil {
			t.Fatal(err)
		}
		ip := k[8:]
		ops = append(ops,
			op{set: SetAdmitted, key: k, add: true, until: now.Add(time.Hour)},
			op{set: SetBudget, key: ip, add: true, until: now.Add(time.Hour), jump: long, was: long},
			op{set: SetApproved, key: k[:6]})
	}
	e.mu.Lock()
	err = e.queueOps(ops, now)
	if err == nil {
		err = e.flush()
	}
	e.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(tooLarge) > 0 {
		t.Errorf("%d element messages past 64 KiB: %v", len(tooLarge), tooLarge)
	}
	want := map[kind]int{
		{SetAdmitted, false}: 2 * n, {SetAdmitted, true}: n, // add, delete, add
		{SetBudget, false}: 2 * n, {SetBudget, true}: n,
		{SetApproved, true}: n,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("set %s, delete %v: %d elements sent, want %d", k.set, k.del, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("elements sent: %v, want %v", got, want)
	}
}
