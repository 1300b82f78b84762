package policy

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The fast path's transactions are, message for message, what the library
// sends for the same element changes (but for sequence numbers): deletes,
// additions with and without timeouts, verdict-map elements, and the add,
// delete, add of a careful addition.
func TestElemWriterMatchesLibrary(t *testing.T) {
	sets := map[string]*nftables.Set{}
	for _, s := range membershipSets(newTable()) {
		sets[s.Name] = s
	}
	type msg struct {
		set string
		del bool
		els []nftables.SetElement
	}
	pair := func(i byte) []byte { return []byte{2, 0, 0, 0, 0x40, i, 0, 0, 10, 40, 0, i} }
	ip := func(i byte) []byte { return []byte{10, 40, 0, i} }
	jump := func(chain string) *expr.Verdict { return &expr.Verdict{Kind: expr.VerdictJump, Chain: chain} }
	for _, tc := range []struct {
		name string
		msgs []msg
	}{
		{"deletes", []msg{
			{SetAdmitted, true, []nftables.SetElement{{Key: pair(10)}, {Key: pair(11)}}},
			{SetBlocked, true, []nftables.SetElement{{Key: []byte{198, 51, 100, 7}}}},
		}},
		{"adds with timeouts", []msg{
			{SetBound, false, []nftables.SetElement{{Key: pair(10), Timeout: time.Hour}, {Key: pair(11), Timeout: 1234 * time.Millisecond}}},
			{SetAdmitted, false, []nftables.SetElement{{Key: pair(12), Timeout: 90 * time.Minute}}},
			{SetLimitUp, false, []nftables.SetElement{{Key: ip(12), Timeout: time.Hour, VerdictData: jump(tierChain("up", "t1"))}}},
		}},
		{"adds without timeouts", []msg{
			{SetBound, false, []nftables.SetElement{{Key: pair(10)}, {Key: pair(11)}}},
			{SetApproved, false, []nftables.SetElement{{Key: pair(12)[:6], Timeout: time.Hour}}}, // no timeouts in this set
			{SetBudget, false, []nftables.SetElement{{Key: ip(12), VerdictData: jump("q_10_40_0_12")}}},
		}},
		{"careful adds", []msg{
			{SetBound, false, []nftables.SetElement{{Key: pair(10), Timeout: time.Hour}}},
			{SetBound, true, []nftables.SetElement{{Key: pair(10)}}},
			{SetBound, false, []nftables.SetElement{{Key: pair(10), Timeout: time.Hour}}},
			{SetLimitDown, false, []nftables.SetElement{{Key: ip(10), Timeout: time.Hour, VerdictData: jump(tierChain("down", "t0"))}}},
			{SetLimitDown, true, []nftables.SetElement{{Key: ip(10)}}},
			{SetLimitDown, false, []nftables.SetElement{{Key: ip(10), Timeout: time.Hour, VerdictData: jump(tierChain("down", "t2"))}}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sent []netlink.Message
			cc, err := nftables.New(nftables.AsLasting(), nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
				sent = append(sent, req...)
				acks := make([]netlink.Message, 0, len(req))
				for _, m := range req {
					if m.Header.Flags&netlink.Acknowledge != 0 {
						acks = append(acks, netlink.Message{Header: netlink.Header{Type: netlink.Error, Sequence: m.Header.Sequence}, Data: make([]byte, 4)})
					}
				}
				return acks, nil
			}))
			if err != nil {
				t.Fatal(err)
			}
			d := &elemWriter{}
			d.begin()
			for _, m := range tc.msgs {
				if err := setElements(cc, sets[m.set], m.del, m.els); err != nil {
					t.Fatal(err)
				}
				if !d.elements(sets[m.set], m.del, m.els) {
					t.Fatalf("%s refused for the fast path", m.set)
				}
			}
			_ = cc.Flush()
			first, last := d.end()
			var ours []netlink.Message
			for b := d.out; len(b) > 0; {
				var m netlink.Message
				l := int(binary.NativeEndian.Uint32(b))
				if err := m.UnmarshalBinary(b[:l]); err != nil {
					t.Fatal(err)
				}
				ours = append(ours, m)
				b = b[(l+3)&^3:]
			}
			if len(ours) != len(sent) || len(ours) != len(tc.msgs)+2 {
				t.Fatalf("%d messages, the library sent %d (want %d: begin, one per set change, end)", len(ours), len(sent), len(tc.msgs)+2)
			}
			if int(last-first) != len(tc.msgs)-1 || ours[1].Header.Sequence != first || ours[len(ours)-2].Header.Sequence != last {
				t.Fatalf("acknowledged sequence numbers %d..%d, messages carry %d and %d", first, last, ours[1].Header.Sequence, ours[len(ours)-2].Header.Sequence)
			}
			for i := range ours {
				o, l := ours[i], sent[i]
				if o.Header.Type != l.Header.Type || o.Header.Flags != l.Header.Flags || o.Header.Length != l.Header.Length || !bytes.Equal(o.Data, l.Data) {
					t.Errorf("message %d:\n ours    %+v % x\n library %+v % x", i, o.Header, o.Data, l.Header, l.Data)
				}
			}
		})
	}
}

// What the fast path does not write the library's way, and a transaction
// past maxFastBytes, are left to the library.
func TestElemWriterLeavesTheUnusualToTheLibrary(t *testing.T) {
	s := membershipSets(newTable())[0]
	for _, el := range []nftables.SetElement{
		{Key: []byte{1}, IntervalEnd: true},
		{Key: []byte{1}, KeyEnd: []byte{2}},
		{Key: []byte{1}, Val: []byte{2}},
		{Key: []byte{1}, Comment: "x"},
	} {
		d := &elemWriter{}
		d.begin()
		if d.elements(s, false, []nftables.SetElement{el}) {
			t.Errorf("%+v written", el)
		}
	}
	els := make([]nftables.SetElement, maxFastBytes/36+1)
	for i := range els {
		els[i] = nftables.SetElement{Key: make([]byte, 12), Timeout: time.Hour}
	}
	d := &elemWriter{}
	d.begin()
	if d.elements(s, false, els) {
		t.Errorf("%d elements (%d bytes) written", len(els), len(d.out))
	}
}

// An addition the kernel refuses (here a key of the wrong length for its
// set) gets the kernel's error through the fast path, answered alone as
// sendAdmitsNL does; the additions queued with it still go in, and the
// socket stays in step for the next ones.
func TestFastAddRefusedAlone(t *testing.T) {
	ns, fd := newNS(t)
	e := newEnforcer(t, fd, testNetwork(), time.Now)
	ctx := context.Background()
	if err := e.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if e.elems == nil {
		t.Fatal("no fast element socket")
	}
	const n, bad = 8, 4
	until := time.Now().Add(time.Hour)
	seq := e.elems.seq
	waits := make([]*pendingAdmit, n)
	e.mu.Lock()
	for i := range n {
		k, err := admittedKey(benchDevice(i, 40))
		if err != nil {
			t.Fatal(err)
		}
		if i == bad {
			k = k[:5]
		}
		waits[i] = e.queueAdmitLocked(fmt.Sprint("pair ", i), []op{{set: SetBound, key: k, add: true, until: until, fresh: true}})
	}
	e.mu.Unlock()
	for i, p := range waits {
		<-p.done
		if i == bad {
			if !errors.Is(p.err, unix.EINVAL) {
				t.Errorf("pair %d with a short key: %v, want EINVAL", i, p.err)
			}
		} else if p.err != nil {
			t.Errorf("pair %d: %v", i, p.err)
		}
	}
	if e.elems.seq == seq {
		t.Fatal("the additions did not go through the fast path")
	}
	got := listSet(t, ns, SetBound)
	for i := range n {
		d := benchDevice(i, 40)
		if in := strings.Contains(got, fmt.Sprintf("%s . %s", d.MAC, d.IP)); in != (i != bad) {
			t.Errorf("pair %d in the kernel: %v", i, in)
		}
	}
	// The socket is still in step: the next additions are acknowledged.
	more := []Binding{{Device: benchDevice(n, 40), Until: until}, {Device: benchDevice(n+1, 40), Until: until}}
	for i, err := range e.BindMany(ctx, more) {
		if err != nil {
			t.Errorf("pair %d after a refused one: %v", i, err)
		}
	}
	got = listSet(t, ns, SetBound)
	for _, b := range more {
		if !strings.Contains(got, fmt.Sprintf("%s . %s", b.Device.MAC, b.Device.IP)) {
			t.Errorf("%v not in the kernel after a refused pair", b.Device)
		}
	}
}

// A delete the kernel refuses (its element went behind the enforcer's
// back) fails the call with the kernel's error, and the next additions go
// the careful way; the enforcer keeps working.
func TestFastDeleteRefused(t *testing.T) {
	ns, fd := newNS(t)
	e := newEnforcer(t, fd, testNetwork(), time.Now)
	ctx := context.Background()
	if err := e.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if e.elems == nil {
		t.Fatal("no fast element socket")
	}
	v := Device{MAC: mac("02:00:00:00:40:0a"), IP: netip.MustParseAddr("10.40.0.10")}
	if err := e.Admit(ctx, v, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	nsRun(t, ns, "nft", "delete", "element", "inet", TableName, SetAdmitted, "{ 02:00:00:00:40:0a . 10.40.0.10 }")
	if !e.exact.Load() {
		t.Fatal("not exact after Apply")
	}
	err := e.Evict(ctx, v)
	if !errors.Is(err, unix.ENOENT) {
		t.Fatalf("Evict of an element gone from the kernel: %v, want ENOENT", err)
	}
	if e.exact.Load() {
		t.Fatal("still exact after a refused delete")
	}
	// The socket is still in step: the next deletes are acknowledged.
	if err := e.Admit(ctx, v, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := e.Evict(ctx, v); err != nil {
		t.Fatalf("Evict after a refused one: %v", err)
	}
	if got := listSet(t, ns, SetAdmitted); bytes.Contains([]byte(got), []byte("10.40.0.10")) {
		t.Fatalf("evicted visitor still in set:\n%s", got)
	}
}
