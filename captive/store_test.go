package captive

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
)

// The portal runs over the daemon's store as it is.
var _ Store = (*store.Store)(nil)

// fakeIssuer is all Issue needs: the two methods of Issuer, no database.
type fakeIssuer struct {
	key   []byte
	batch string
	got   []store.Voucher
	clash int // how many IssueVouchers calls to refuse as a clash first
}

func (f *fakeIssuer) VoucherKey(context.Context) ([]byte, error) { return f.key, nil }

func (f *fakeIssuer) IssueVouchers(_ context.Context, _, batch string, vs []store.Voucher) ([]store.Voucher, error) {
	if f.clash > 0 {
		f.clash--
		return nil, store.ErrExists
	}
	f.batch, f.got = batch, vs
	return vs, nil
}

// Issue needs only an Issuer: the codes' hashes under the store's key go to
// it in one batch, and a clash with an existing code is retried with fresh
// codes.
func TestIssueOverAnIssuer(t *testing.T) {
	f := &fakeIssuer{key: bytes.Repeat([]byte{7}, 32), clash: 1}
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	out, err := Issue(context.Background(), f, "reception", IssueRequest{Count: 3, Batch: "Open evening", Duration: 2 * time.Hour, MaxDevices: 1, Now: now}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 || len(f.got) != 3 || f.batch != "Open evening" {
		t.Fatalf("issued %d codes, stored %d in batch %q; want 3 and 3 in the named batch", len(out), len(f.got), f.batch)
	}
	for i, c := range out {
		code, err := NormaliseCode(c.Code)
		if err != nil {
			t.Fatal(err)
		}
		if f.got[i].CodeHash != HashCode(f.key, code) {
			t.Errorf("code %d stored under another hash than the store's key gives", i)
		}
	}
}
