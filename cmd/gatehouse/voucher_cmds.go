package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/gatehouse-net/gatehouse/captive"
	"github.com/gatehouse-net/gatehouse/store"
)

const voucherUsage = `gatehouse voucher issue: issue visitor Wi-Fi codes and print them, one per line.

The codes are printed once, here; the database keeps only their keyed
hashes, so they cannot be shown again. Each code is written to the audit log
(without the code). More than one code makes a batch, named with --batch.

Flags:
  --config FILE       the configuration file (required; names the database)
  --duration D        how long each code is valid, e.g. 2h, 90m, 8h (required)
  --count N           how many codes, 1 to 500 (default 1)
  --devices N         devices per code; 0 means unlimited (default 1)
  --quota-mb N        data each code's devices share, in MB; 0 means none (default 0)
  --first-use         the clock starts when a code is first used (default true);
                      --first-use=false starts it now
  --not-before TIME   not valid before TIME ("2006-01-02 15:04", site time zone)
  --not-after TIME    not valid after TIME
  --note TEXT         visitor, company or host member of staff
  --batch NAME        batch name (default "cli" and the time, when --count > 1)

Example:
  gatehouse voucher issue --config /etc/gatehouse/gatehouse.yaml --duration 2h --count 20 --note "Governors"
`

func cmdVoucher(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 {
		return usagef("missing subcommand (issue)")
	}
	if args[0] == "-h" || args[0] == "--help" {
		return flag.ErrHelp
	}
	if args[0] != "issue" {
		return usagef("unknown subcommand %q (want issue)", args[0])
	}
	fs := flag.NewFlagSet("voucher issue", flag.ContinueOnError)
	path := fs.String("config", "", "configuration file")
	duration := fs.Duration("duration", 0, "validity")
	count := fs.Int("count", 1, "number of codes")
	devices := fs.Int("devices", 1, "devices per code, 0 unlimited")
	quotaMB := fs.Int64("quota-mb", 0, "data quota in MB, 0 none")
	firstUse := fs.Bool("first-use", true, "clock starts on first use")
	notBefore := fs.String("not-before", "", "not valid before")
	notAfter := fs.String("not-after", "", "not valid after")
	note := fs.String("note", "", "note")
	batch := fs.String("batch", "", "batch name")
	if err := parseFlags(fs, args[1:], false); err != nil {
		return err
	}
	if err := requireConfig(*path); err != nil {
		return err
	}
	if *duration == 0 {
		return usagef("missing --duration D (e.g. 2h)")
	}
	now := time.Now()
	q := captive.IssueRequest{Count: *count, Duration: *duration, StartOnFirstUse: *firstUse, MaxDevices: *devices,
		Note: *note, Batch: *batch, Now: now}
	if *quotaMB < 0 || *quotaMB > 1_000_000 {
		return usagef("--quota-mb %d: want 0 to 1000000", *quotaMB)
	}
	q.QuotaBytes = *quotaMB * 1_000_000
	if q.Count > 1 && q.Batch == "" {
		q.Batch = "cli " + now.Format("2006-01-02 15:04")
	}
	if err := q.Check(); err != nil {
		return usagef("%v", err)
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		flag, val string
		dst       *time.Time
	}{{"--not-before", *notBefore, &q.NotBefore}, {"--not-after", *notAfter, &q.NotAfter}} {
		if f.val == "" {
			continue
		}
		t, err := parseLocalTime(f.val, cfg.Site.Location)
		if err != nil {
			return usagef("%s %q: want \"2006-01-02 15:04\" or RFC 3339", f.flag, f.val)
		}
		*f.dst = t
	}
	if err := q.Check(); err != nil {
		return usagef("%v", err)
	}
	st, err := store.Open(ctx, cfg.Database)
	if err != nil {
		return err
	}
	defer st.Close()
	if q.Key, err = codeKey(cfg.Database); err != nil {
		return err
	}
	out, err := captive.Issue(ctx, st, cliActor(), q, nil)
	if err != nil {
		return err
	}
	for _, c := range out {
		fmt.Fprintln(env.stdout, c.Code)
	}
	return nil
}

func parseLocalTime(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	var lastErr error
	for _, layout := range []string{"2006-01-02 15:04", "2006-01-02T15:04", "2006-01-02"} {
		t, err := time.ParseInLocation(layout, s, loc)
		if err == nil {
			return t, nil
		}
		lastErr = err
	}
	return time.Time{}, lastErr
}
