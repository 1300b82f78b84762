package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/gatehouse-net/gatehouse/store"
)

const auditUsage = `gatehouse audit verify: check that the audit log is whole.

Each row of the audit log carries the hash of the row before it. verify walks
the chain and names the first row that was changed, removed or inserted by
hand. It exits 0 when the chain is whole and 1 when it is broken.

Flags:
  --config FILE   the configuration file (required; names the database)

Example:
  gatehouse audit verify --config /etc/gatehouse/gatehouse.yaml
`

func cmdAudit(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 {
		return usagef("missing subcommand (verify)")
	}
	if args[0] == "-h" || args[0] == "--help" {
		return flag.ErrHelp
	}
	if args[0] != "verify" {
		return usagef("unknown subcommand %q (want verify)", args[0])
	}
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	path := fs.String("config", "", "configuration file")
	if err := parseFlags(fs, args[1:], false); err != nil {
		return err
	}
	if err := requireConfig(*path); err != nil {
		return err
	}
	_, st, err := openDatabase(ctx, *path)
	if err != nil {
		return err
	}
	defer st.Close()
	n, err := st.VerifyAudit(ctx)
	var brk *store.AuditBreak
	if errors.As(err, &brk) {
		return fmt.Errorf("audit log is broken at row %d: %s (%d rows before it are whole)", brk.ID, brk.Reason, n)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "audit log ok: %d rows, chain whole\n", n)
	return nil
}
