package policy

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The fast path's transaction is, message for message, what the library
// sends for the same deletes (but for sequence numbers).
func TestElemDeleterMatchesLibrary(t *testing.T) {
	table := &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
	admitted := &nftables.Set{Table: table, Name: SetAdmitted, ID: 1}
	blocked := &nftables.Set{Table: table, Name: SetBlocked, ID: 7}
	sets := []setDeletes{
		{set: admitted, keys: [][]byte{{2, 0, 0, 0, 0x40, 0x0a, 0, 0, 10, 40, 0, 10}, {2, 0, 0, 0, 0x40, 0x0b, 0, 0, 10, 40, 0, 11}}},
		{set: blocked, keys: [][]byte{{198, 51, 100, 7}}},
	}

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
	for _, s := range sets {
		var els []nftables.SetElement
		for _, k := range s.keys {
			els = append(els, nftables.SetElement{Key: k})
		}
		if err := cc.SetDeleteElements(s.set, els); err != nil {
			t.Fatal(err)
		}
	}
	_ = cc.Flush()

	d := &elemDeleter{}
	first, last := d.build(sets)
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
	if len(ours) != len(sent) || len(ours) != 4 {
		t.Fatalf("%d messages, the library sent %d (want 4: begin, two sets, end)", len(ours), len(sent))
	}
	if last-first != 1 || ours[1].Header.Sequence != first || ours[2].Header.Sequence != last {
		t.Fatalf("acknowledged sequence numbers %d..%d, messages carry %d and %d", first, last, ours[1].Header.Sequence, ours[2].Header.Sequence)
	}
	for i := range ours {
		o, l := ours[i], sent[i]
		if o.Header.Type != l.Header.Type || o.Header.Flags != l.Header.Flags || o.Header.Length != l.Header.Length || !bytes.Equal(o.Data, l.Data) {
			t.Errorf("message %d:\n ours    %+v % x\n library %+v % x", i, o.Header, o.Data, l.Header, l.Data)
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
	if e.dels == nil {
		t.Fatal("no fast delete socket")
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
