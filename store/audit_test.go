package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func appendN(t *testing.T, s *Store, n int) []AuditEntry {
	t.Helper()
	var out []AuditEntry
	for i := range n {
		e, err := s.Audit(context.Background(), AuditEntry{
			Actor: "cli:root", Action: "test.step", Object: fmt.Sprintf("step:%d", i),
			Before: `{"n":` + fmt.Sprint(i) + `}`, After: `{"n":` + fmt.Sprint(i+1) + `}`,
		})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func wantBreak(t *testing.T, err error, id int64, reason string) {
	t.Helper()
	var br *AuditBreak
	if !errors.As(err, &br) {
		t.Fatalf("VerifyAudit err = %v, want *AuditBreak at row %d", err, id)
	}
	if br.ID != id || !strings.Contains(br.Reason, reason) {
		t.Fatalf("VerifyAudit = %v, want row %d with reason containing %q", br, id, reason)
	}
}

func TestAuditChainLinksAndVerifies(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	if n, err := s.VerifyAudit(ctx); err != nil || n != 0 {
		t.Fatalf("empty log: VerifyAudit = %d, %v", n, err)
	}
	at := time.Date(2025, 9, 1, 8, 30, 0, 123456789, time.FixedZone("BST", 3600))
	first, err := s.Audit(ctx, AuditEntry{At: at, Actor: "web:alice", Action: "user.create", Object: "user:bob", After: `{"name":"bob"}`})
	if err != nil {
		t.Fatal(err)
	}
	if first.ID != 1 || first.PrevHash != strings.Repeat("0", 64) || len(first.Hash) != 64 {
		t.Fatalf("first entry = %+v", first)
	}
	if !first.At.Equal(at) || first.At.Location() != time.UTC {
		t.Errorf("At = %v, want %v in UTC", first.At, at)
	}
	rest := appendN(t, s, 4)
	if rest[0].PrevHash != first.Hash {
		t.Errorf("second entry prev_hash %s != first hash %s", rest[0].PrevHash, first.Hash)
	}
	if rest[0].At.IsZero() {
		t.Errorf("At not filled")
	}
	if n, err := s.VerifyAudit(ctx); err != nil || n != 5 {
		t.Fatalf("VerifyAudit = %d, %v; want 5, nil", n, err)
	}

	list, err := s.AuditList(ctx, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != 4 || list[1].ID != 3 {
		t.Fatalf("AuditList(2, 1) ids = %v, want [4 3]", ids(list))
	}
	if list[0] != rest[2] {
		t.Errorf("listed entry %+v differs from appended %+v", list[0], rest[2])
	}
	if _, err := s.AuditList(ctx, 0, 0); err == nil {
		t.Errorf("AuditList(0, 0) accepted")
	}
}

func ids(es []AuditEntry) []int64 {
	var out []int64
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func TestAuditHashEncodingIsUnambiguous(t *testing.T) {
	at := time.Unix(0, 0)
	a := auditHash(1, at, "web:al", "ice", "o", "", "", genesisHash)
	b := auditHash(1, at, "web:a", "lice", "o", "", "", genesisHash)
	c := auditHash(1, at, "web:al", "ice", "o", "", "", genesisHash)
	if a == b {
		t.Errorf("moving bytes between fields kept the hash")
	}
	if a != c {
		t.Errorf("hash not deterministic")
	}
}

func TestAuditRejectsBadEntries(t *testing.T) {
	s, _ := openTemp(t)
	for _, e := range []AuditEntry{
		{Action: "x.y"},
		{Actor: "cli:root"},
		{Actor: "cli:root", Action: "x.y", Before: "{not json"},
		{Actor: "cli:root", Action: "x.y", After: "password"},
	} {
		if _, err := s.Audit(context.Background(), e); err == nil {
			t.Errorf("Audit(%+v) accepted", e)
		}
	}
	if n, err := s.VerifyAudit(context.Background()); n != 0 || err != nil {
		t.Errorf("rejected entries left rows: %d, %v", n, err)
	}
}

func TestAuditTriggersBlockUpdateAndDelete(t *testing.T) {
	s, path := openTemp(t)
	appendN(t, s, 2)
	db := rawDB(t, path)
	for _, q := range []string{
		`UPDATE audit_log SET actor = 'nobody' WHERE id = 1`,
		`DELETE FROM audit_log WHERE id = 2`,
	} {
		if _, err := db.Exec(q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want append-only abort", q, err)
		}
	}
	if n, err := s.VerifyAudit(context.Background()); n != 2 || err != nil {
		t.Errorf("VerifyAudit = %d, %v", n, err)
	}
}

// TestVerifyAuditFindsTampering plays someone who drops the triggers with the
// sqlite3 CLI and then edits or deletes rows.
func TestVerifyAuditFindsTampering(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		tamper     []string
		thenAppend bool
		wantID     int64
		wantRows   int
		reason     string
	}{
		{"edited actor", []string{`UPDATE audit_log SET actor = 'web:mallory' WHERE id = 4`}, false, 4, 3, "hash does not match its contents"},
		{"edited before json", []string{`UPDATE audit_log SET before_json = '{}' WHERE id = 1`}, false, 1, 0, "hash does not match its contents"},
		{"edited timestamp", []string{`UPDATE audit_log SET at = '2020-01-01T00:00:00.000000000Z' WHERE id = 6`}, false, 6, 5, "hash does not match its contents"},
		{"garbled timestamp", []string{`UPDATE audit_log SET at = 'yesterday' WHERE id = 2`}, false, 2, 1, "timestamp"},
		{"deleted middle row", []string{`DELETE FROM audit_log WHERE id = 3`}, false, 4, 2, "rows 3..3 are missing"},
		{"deleted first row", []string{`DELETE FROM audit_log WHERE id = 1`}, false, 2, 0, "rows 1..1 are missing"},
		{"deleted last rows", []string{`DELETE FROM audit_log WHERE id >= 5`}, false, 5, 4, "missing from the end"},
		{"deleted last rows then appended", []string{`DELETE FROM audit_log WHERE id >= 5`}, true, 7, 4, "rows 5..6 are missing"},
		{"renumbered after delete", []string{`DELETE FROM audit_log WHERE id = 3`, `UPDATE audit_log SET id = id - 1 WHERE id > 3`, `UPDATE sqlite_sequence SET seq = 5 WHERE name = 'audit_log'`}, false, 3, 2, "hash does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, path := openTemp(t)
			appendN(t, s, 6)
			db := rawDB(t, path)
			for _, q := range append([]string{`DROP TRIGGER audit_log_no_update`, `DROP TRIGGER audit_log_no_delete`}, tc.tamper...) {
				if _, err := db.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			if tc.thenAppend {
				appendN(t, s, 1)
			}
			n, err := s.VerifyAudit(ctx)
			wantBreak(t, err, tc.wantID, tc.reason)
			if n != tc.wantRows {
				t.Errorf("VerifyAudit verified %d rows before the break, want %d", n, tc.wantRows)
			}
		})
	}
}

// A forger who recomputes a row's hash after editing it still breaks the
// next row's link.
func TestVerifyAuditFindsRehashedRow(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	es := appendN(t, s, 3)
	e := es[1]
	e.Actor = "web:mallory"
	forged := auditHash(e.ID, e.At, e.Actor, e.Action, e.Object, e.Before, e.After, e.PrevHash)
	db := rawDB(t, path)
	for _, q := range []string{`DROP TRIGGER audit_log_no_update`, `UPDATE audit_log SET actor = 'web:mallory', hash = '` + forged + `' WHERE id = 2`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.VerifyAudit(ctx)
	wantBreak(t, err, 3, "prev_hash does not match")
	if n != 2 {
		t.Errorf("verified %d rows before the break, want 2", n)
	}
}

func TestConcurrentAuditKeepsOneChain(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name          string
		stores        int // a second Store on the same file stands in for the CLI writing while the daemon runs
		writers, each int
	}{
		{"one process, 8 writers x 50", 1, 8, 50},
		// Small on purpose: across processes the waiter polls (busy_timeout)
		// while the other process's writers run back to back, so its wait is
		// bounded by the other side's total work, fsyncs included.
		{"two processes, 2+2 writers x 10", 2, 4, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, path := openTemp(t)
			stores := []*Store{s}
			for range tc.stores - 1 {
				s2, err := Open(ctx, path)
				if err != nil {
					t.Fatal(err)
				}
				defer s2.Close()
				stores = append(stores, s2)
			}
			var wg sync.WaitGroup
			errs := make(chan error, tc.writers)
			for w := range tc.writers {
				st := stores[w%len(stores)]
				wg.Go(func() {
					for i := range tc.each {
						if _, err := st.Audit(ctx, AuditEntry{Actor: fmt.Sprintf("test:w%d", w), Action: "test.concurrent", Object: fmt.Sprint(i)}); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			n, err := s.VerifyAudit(ctx)
			if err != nil || n != tc.writers*tc.each {
				t.Fatalf("VerifyAudit = %d, %v; want %d, nil", n, err, tc.writers*tc.each)
			}
		})
	}
}

// VerifyAudit reads one snapshot, so appends racing with it never look like
// missing rows.
func TestVerifyAuditDuringAppends(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	appendN(t, s, 5)
	done := make(chan error, 1)
	go func() {
		for range 100 {
			if _, err := s.Audit(ctx, AuditEntry{Actor: "scheduler", Action: "test.bg"}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range 20 {
		if _, err := s.VerifyAudit(ctx); err != nil {
			t.Errorf("VerifyAudit during appends: %v", err)
			break
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestAuditRowRollsBackWithItsChange(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	boom := errors.New("boom")
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.auditTx(ctx, tx, AuditEntry{Actor: "test", Action: "test.rollback"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("inTx err = %v", err)
	}
	if list, err := s.AuditList(ctx, 10, 0); err != nil || len(list) != 0 {
		t.Fatalf("audit row survived rollback: %v, %v", list, err)
	}
	if e, err := s.Audit(ctx, AuditEntry{Actor: "test", Action: "test.after"}); err != nil || e.ID != 1 {
		t.Fatalf("after rollback: %+v, %v (want id 1)", e, err)
	}
}
