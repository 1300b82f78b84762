package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-net/gatehouse/config"
	"github.com/gatehouse-net/gatehouse/store"
)

// backup then restore through the command line brings back exactly the
// codes that existed at the backup, and restore refuses while a daemon
// holds the database.
func TestBackupAndRestoreCommands(t *testing.T) {
	ctx := context.Background()
	cfgPath := writeConfig(t, t.TempDir())
	before, err := voucherCLI(t, "issue", "--config", cfgPath, "--duration", "2h", "--count", "2")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "backup.db")
	if code, out, errs := cli(t, "", "backup", "--config", cfgPath, file); code != 0 || !strings.Contains(out, file) {
		t.Fatalf("backup: exit %d, %q %q", code, out, errs)
	}
	if code, _, errs := cli(t, "", "backup", "--config", cfgPath, file); code != 1 || !strings.Contains(errs, "never overwrites") {
		t.Fatalf("backup onto an existing file: exit %d, %q", code, errs)
	}
	after, err := voucherCLI(t, "issue", "--config", cfgPath, "--duration", "2h", "--count", "1")
	if err != nil {
		t.Fatal(err)
	}

	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := store.LockDaemon(cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, errs := cli(t, "", "restore", "--config", cfgPath, file); code != 1 || !strings.Contains(errs, "stop it first") {
		t.Fatalf("restore under a running daemon: exit %d, %q", code, errs)
	}
	unlock()
	if code, out, errs := cli(t, "", "restore", "--config", cfgPath, file); code != 0 || !strings.Contains(out, "audit log whole") {
		t.Fatalf("restore: exit %d, %q %q", code, out, errs)
	}

	st, err := store.Open(ctx, cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	vs, err := st.ListVouchers(ctx, store.VoucherFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 {
		t.Fatalf("after restore %d codes, want the 2 issued before the backup (issued %q, then %q)", len(vs), before, after)
	}
	if code, _, errs := cli(t, "", "backup", "--config", cfgPath); code != 2 || !strings.Contains(errs, "missing FILE") {
		t.Fatalf("backup without FILE: exit %d, %q", code, errs)
	}
}

// Each backup run is recorded for the overview: a written one with its
// size, a refused one with the reason.
func TestBackupRunsAreRecorded(t *testing.T) {
	ctx := context.Background()
	cfgPath := writeConfig(t, t.TempDir())
	file := filepath.Join(t.TempDir(), "backup.db")
	if code, out, errs := cli(t, "", "backup", "--config", cfgPath, file); code != 0 || !strings.Contains(out, "bytes)") {
		t.Fatalf("backup: exit %d, %q %q", code, out, errs)
	}
	if code, _, _ := cli(t, "", "backup", "--config", cfgPath, file); code != 1 {
		t.Fatalf("backup onto an existing file: exit %d", code)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	last, ok, err := st.LastBackups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if last.OK() || !strings.Contains(last.Err, "never overwrites") || !ok.OK() || ok.File != file || ok.Size <= 0 {
		t.Errorf("last run %+v, last good %+v", last, ok)
	}
}
