package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
)

const backupUsage = `gatehouse backup: copy the database while the daemon runs.

Writes a consistent copy of the whole database (people, devices, leases,
codes, rules, the audit log) to FILE: every change committed before the
backup started is in it. The daemon keeps serving meanwhile. FILE must not
exist; it is created 0600 because it holds password hashes and keys. Keep
backups away from the router, and keep the site key file (site.key beside
the database) separately: the database alone does not reveal codes or
personal Wi-Fi keys.

Flags:
  --config FILE   the configuration file (required; names the database)

Example:
  gatehouse backup --config /etc/gatehouse/gatehouse.yaml /root/gatehouse-$(date +%F).db
`

const restoreUsage = `gatehouse restore: put a backup in place of the database.

Stop the daemon first: restore refuses while it runs. The backup is checked
before it replaces anything: it must open as a Gatehouse database (an older
one is migrated forward; one from a newer Gatehouse is refused) and its audit
log must be whole. A refused backup leaves the database as it was.

Flags:
  --config FILE   the configuration file (required; names the database)

Example:
  systemctl stop gatehouse
  gatehouse restore --config /etc/gatehouse/gatehouse.yaml /root/gatehouse-2026-12-01.db
  systemctl start gatehouse
`

// backupArgs parses "--config F FILE" for both commands.
func backupArgs(name string, args []string) (cfgPath, file string, err error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	path := fs.String("config", "", "configuration file")
	if err := parseFlags(fs, args, true); err != nil {
		return "", "", err
	}
	if err := requireConfig(*path); err != nil {
		return "", "", err
	}
	switch fs.NArg() {
	case 0:
		return "", "", usagef("missing FILE")
	case 1:
		return *path, fs.Arg(0), nil
	default:
		return "", "", usagef("unexpected argument %q", fs.Arg(1))
	}
}

func cmdBackup(ctx context.Context, env *cliEnv, args []string) error {
	path, file, err := backupArgs("backup", args)
	if err != nil {
		return err
	}
	cfg, st, err := openDatabase(ctx, path)
	if err != nil {
		return err
	}
	defer st.Close()
	run := store.BackupRun{At: time.Now(), File: file}
	if abs, err := filepath.Abs(file); err == nil {
		run.File = abs
	}
	backupErr := st.Backup(ctx, file)
	if backupErr != nil {
		run.Err = backupErr.Error()
	} else if fi, err := os.Stat(file); err == nil {
		run.Size = fi.Size()
	}
	// The overview shows the last run and warns when no backup worked for
	// a week; a run that cannot be recorded still did (or did not) back up.
	if err := st.RecordBackup(ctx, run); err != nil {
		fmt.Fprintf(env.stderr, "warning: the backup run was not recorded for the overview: %v\n", err)
	}
	if backupErr != nil {
		return backupErr
	}
	fmt.Fprintf(env.stdout, "backup of %s written to %s (%d bytes)\n", cfg.Database, file, run.Size)
	return nil
}

func cmdRestore(ctx context.Context, env *cliEnv, args []string) error {
	path, file, err := backupArgs("restore", args)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(path)
	if err != nil {
		return err
	}
	rep, err := store.Restore(ctx, file, cfg.Database)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "restored %s from %s: audit log whole, %d rows\n", cfg.Database, file, rep.AuditRows)
	return nil
}
