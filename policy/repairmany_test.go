package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// kernelElems counts the elements the kernel holds in each of the element
// sets, read with nft (not through the enforcer's own connection).
func kernelElems(t *testing.T, ns string, sets []string) map[string]int {
	t.Helper()
	got := map[string]int{}
	type elems struct {
		Elem []json.RawMessage `json:"elem"`
	}
	for _, s := range sets {
		kind := setKind(s)
		out := nsRun(t, ns, "nft", "-j", "list", kind, "inet", TableName, s)
		var doc struct {
			Nftables []struct {
				Set *elems `json:"set"`
				Map *elems `json:"map"`
			} `json:"nftables"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("nft -j list %s %s: %v", kind, s, err)
		}
		for _, o := range doc.Nftables {
			for _, x := range []*elems{o.Set, o.Map} {
				if x != nil {
					got[s] += len(x.Elem)
				}
			}
		}
	}
	return got
}

// setKind is what nft calls s: the verdict maps are maps.
func setKind(s string) string {
	if s == SetLimitUp || s == SetLimitDown || s == SetBudget {
		return "map"
	}
	return "set"
}

// A daemon that starts while its table lacks thousands of elements (the
// database gained them while it was stopped, or someone flushed the sets)
// puts every one back, in every element set, in one go: bench/memory.sh
// starts the daemon on 2,000 visitors it must restore. Sending a set's
// elements as one message used to overflow netlink's 16-bit attribute
// length past about 1,800 admitted elements, so the kernel saw a truncated
// list, and the transaction failed with ENOENT; the sizes here are on both
// sides of that.
func TestRepairRestoresThousandsOfMissingElements(t *testing.T) {
	for _, n := range []int{2000, 5000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			ns, fd := newNS(t)
			ctx := context.Background()
			until := time.Now().Add(8 * time.Hour)
			load := func(e *Enforcer) {
				t.Helper()
				for i := range n {
					v := benchDevice(i, 40)
					if err := e.AdmitWith(ctx, v, until, Limits{UpBps: 500_000, DownBps: 1_000_000, QuotaBytes: 1 << 30, QuotaKey: "code1"}); err != nil {
						t.Fatal(err)
					}
					if err := e.Approve(ctx, benchDevice(i, 30)); err != nil {
						t.Fatal(err)
					}
					if err := e.Quarantine(ctx, benchDevice(i, 31)); err != nil {
						t.Fatal(err)
					}
					if err := e.Revoke(ctx, benchDevice(i, 32)); err != nil {
						t.Fatal(err)
					}
					if err := e.Block(ctx, benchDevice(i, 200).IP); err != nil {
						t.Fatal(err)
					}
					if err := e.Bind(ctx, benchDevice(i, 20), until); err != nil {
						t.Fatal(err)
					}
				}
			}
			sets := []string{SetAdmitted, SetApproved, SetQuarantineMAC, SetQuarantineIP, SetRevokedMAC, SetRevokedIP,
				SetBlocked, SetLimitUp, SetLimitDown, SetBudget, SetBound}
			want := map[string]int{}
			for _, s := range sets {
				want[s] = n
			}
			check := func(what string) {
				t.Helper()
				got := kernelElems(t, ns, sets)
				for _, s := range sets {
					if got[s] != want[s] {
						t.Errorf("%s: set %s holds %d elements, want %d", what, s, got[s], want[s])
					}
				}
			}

			// The previous run left the table with no elements; the
			// database holds n of each kind now.
			// Quiet: every repaired element is logged.
			var logged bytes.Buffer
			quiet := func() *Enforcer {
				e, err := New(Options{NetNSFd: int(fd.Fd()), Flows: noFlows{}}, testNetwork(), slog.New(slog.NewTextHandler(&logged, nil)))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { e.Close() })
				return e
			}
			first := quiet()
			if rebuilt, _, err := first.Start(ctx); err != nil || !rebuilt {
				t.Fatalf("first Start: rebuilt %v, err %v", rebuilt, err)
			}
			first.Close()
			e := quiet()
			load(e)
			rebuilt, repairs, err := e.Start(ctx)
			if err != nil {
				t.Fatalf("Start over a table missing %d elements per set: %v", n, err)
			}
			if rebuilt || repairs < len(sets)*n {
				t.Errorf("Start: rebuilt %v, repairs %d; want an adopted table and at least %d repairs", rebuilt, repairs, len(sets)*n)
			}
			check("after Start")

			// Every set flushed behind the running daemon's back: the
			// check puts them back.
			for _, s := range sets {
				nsRun(t, ns, "nft", "flush", setKind(s), "inet", TableName, s)
			}
			repairs, err = e.Check(ctx)
			if err != nil {
				t.Fatalf("Check over %d flushed sets: %v", len(sets), err)
			}
			if repairs != len(sets)*n {
				t.Errorf("Check repaired %d, want %d", repairs, len(sets)*n)
			}
			check("after Check")
			logged.Reset()
			if repairs, err := e.Check(ctx); err != nil || repairs != 0 {
				t.Errorf("second Check = %d, %v; want 0, nil", repairs, err)
				lines := strings.Split(logged.String(), "\n")
				t.Logf("%d lines logged, the first:\n%s", len(lines), strings.Join(lines[:min(5, len(lines))], "\n"))
			}
		})
	}
}
