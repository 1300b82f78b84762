package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/gatehouse-net/gatehouse/config"
)

const checkConfigUsage = `gatehouse check-config: check a configuration file without starting anything.

Every problem in the file is reported with its file, line and field. Files and
interfaces the configuration names but this machine lacks are printed as
warnings, so a file can be checked away from the router; 'gatehouse run'
refuses to start without them.

Flags:
  --config FILE   the configuration file (required)

Example:
  gatehouse check-config --config /etc/gatehouse/gatehouse.yaml
`

func cmdCheckConfig(_ context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	path := fs.String("config", "", "configuration file")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if err := requireConfig(*path); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			for _, p := range ce.Problems {
				fmt.Fprintln(env.stderr, p.String())
			}
			return fmt.Errorf("%s: %d problem(s); nothing was started", *path, len(ce.Problems))
		}
		return err
	}
	for _, p := range append(cfg.HostProblems(), cfg.Advice()...) {
		fmt.Fprintf(env.stderr, "warning: %s\n", p.String())
	}
	fmt.Fprintf(env.stdout, "%s: ok (%d segments)\n", *path, len(cfg.Segments))
	return nil
}
