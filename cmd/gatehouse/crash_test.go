package main

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/gatehouse-net/gatehouse/store"
)

// TestMain lets this test binary double as the audited writer that the
// crash test kills: with GATEHOUSE_CRASH_WRITER set it writes audit rows
// as fast as it can and prints each id once its commit has returned.
func TestMain(m *testing.M) {
	if db := os.Getenv("GATEHOUSE_CRASH_WRITER"); db != "" {
		crashWriter(db)
		return
	}
	os.Exit(m.Run())
}

func crashWriter(path string) {
	ctx := context.Background()
	st, err := store.Open(ctx, path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	w := bufio.NewWriter(os.Stdout)
	// Bounded: the parent kills us long before this ends.
	for i := 0; i < 100000; i++ {
		e, err := st.Audit(ctx, store.AuditEntry{Actor: "cli:crash-test", Action: "test.write", Object: "row:" + strconv.Itoa(i), After: `{"n":` + strconv.Itoa(i) + `}`})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Fprintf(w, "committed %d %s\n", e.ID, e.Object)
		w.Flush()
	}
}

func TestSIGKILLDuringAuditedWritesLosesNoCommittedRow(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir)
	db := filepath.Join(dir, "gatehouse.db")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GATEHOUSE_CRASH_WRITER="+db)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	committed := map[int64]string{}
	sc := bufio.NewScanner(out)
	for sc.Scan() && len(committed) < 300 {
		var id int64
		var obj string
		if _, err := fmt.Sscanf(sc.Text(), "committed %d %s", &id, &obj); err != nil {
			t.Fatalf("writer said %q: %v", sc.Text(), err)
		}
		committed[id] = obj
	}
	// Kill while the writer is mid-burst: it is still writing as we do this.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if len(committed) < 300 {
		t.Fatalf("writer stopped after %d rows: %s", len(committed), stderr.String())
	}

	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := st.VerifyAudit(context.Background())
	if err != nil {
		t.Fatalf("audit chain broken after SIGKILL: %v", err)
	}
	if rows < len(committed) {
		t.Fatalf("%d rows survive, but the writer saw %d commits", rows, len(committed))
	}
	list, err := st.AuditList(context.Background(), rows, 0)
	if err != nil {
		t.Fatal(err)
	}
	have := map[int64]string{}
	for _, e := range list {
		have[e.ID] = e.Object
	}
	for id, obj := range committed {
		if have[id] != obj {
			t.Errorf("committed row %d (%s) is %q after the crash", id, obj, have[id])
		}
	}
	st.Close()

	code, stdout, stderrOut := cli(t, "", "audit", "verify", "--config", cfg)
	if code != 0 {
		t.Fatalf("audit verify after crash: exit %d %s %s", code, stdout, stderrOut)
	}

	// A hand edit of one row (after dropping the append-only trigger, as
	// someone with the sqlite3 shell could) must be caught and named.
	var victim int64 = 42
	raw, err := sql.Open("sqlite3", db)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	tamper(t, raw, victim)
	code, _, stderrOut = cli(t, "", "audit", "verify", "--config", cfg)
	if code != 1 || !strings.Contains(stderrOut, fmt.Sprintf("row %d", victim)) {
		t.Fatalf("audit verify after tampering: exit %d, stderr %q; want exit 1 naming row %d", code, stderrOut, victim)
	}
}

// tamper rewrites one audit row behind the store's back.
func tamper(t *testing.T, db *sql.DB, id int64) {
	t.Helper()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'trigger'`)
	if err != nil {
		t.Fatal(err)
	}
	var triggers []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		triggers = append(triggers, n)
	}
	rows.Close()
	for _, n := range triggers {
		if _, err := db.Exec(`DROP TRIGGER "` + n + `"`); err != nil {
			t.Fatal(err)
		}
	}
	res, err := db.Exec(`UPDATE audit_log SET actor = 'web:mallory' WHERE id = ?`, id)
	if err != nil {
		t.Fatalf("tampering with row %d: %v", id, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("tampering touched %d rows", n)
	}
}
