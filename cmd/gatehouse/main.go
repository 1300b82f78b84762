// Command gatehouse is the one Gatehouse binary: the daemon and the tools a
// network manager runs beside it. It owns the command line and the wiring of
// the feature packages into a running daemon; the features themselves live in
// their own packages.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/gatehouse-net/gatehouse/config"
	"github.com/gatehouse-net/gatehouse/store"
)

// version is set at build time by the Makefile (-ldflags -X main.version=...).
var version = "dev"

// usageError marks a mistake on the command line: it is printed as one line
// and the process exits 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// command is one subcommand. run gets the arguments after the command's name.
type command struct {
	name    string
	summary string
	usage   string // shown by --help: what it does and an example
	run     func(ctx context.Context, env *cliEnv, args []string) error
}

// cliEnv carries the process's streams so commands can be tested.
type cliEnv struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

func commands() []command {
	return []command{
		{name: "run", summary: "run the daemon", usage: runUsage, run: cmdRun},
		{name: "check-config", summary: "check a configuration file", usage: checkConfigUsage, run: cmdCheckConfig},
		{name: "demo", summary: "run Gatehouse on a simulated school (root)", usage: demoUsage, run: cmdDemo},
		{name: "voucher", summary: "issue visitor Wi-Fi codes", usage: voucherUsage, run: cmdVoucher},
		{name: "user", summary: "manage admin page users", usage: userUsage, run: cmdUser},
		{name: "audit", summary: "check the audit log", usage: auditUsage, run: cmdAudit},
		{name: "people", summary: "import the school's people from the MIS, and list them", usage: peopleUsage, run: cmdPeople},
		{name: "backup", summary: "copy the database while the daemon runs", usage: backupUsage, run: cmdBackup},
		{name: "restore", summary: "put a backup in place of the database", usage: restoreUsage, run: cmdRestore},
		{name: "device", summary: "approve a device for Wi-Fi, give it a personal key", usage: deviceUsage, run: cmdDevice},
		{name: "sessions", summary: "list Wi-Fi (RADIUS) sessions", usage: sessionsUsage, run: cmdSessions},
		{name: "inspect", summary: "inspect packet captures for filter bypass", usage: inspectUsage, run: cmdInspect},
		{name: "version", summary: "print the version", usage: versionUsage, run: cmdVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runCLI(ctx, &cliEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:])
	stop()
	os.Exit(code)
}

// runCLI runs one command line and returns the exit code: 0 success, 1 the
// command failed, 2 the command line was wrong.
func runCLI(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(env.stderr, topUsage())
		return 2
	}
	name := args[0]
	if name == "-h" || name == "--help" || name == "help" {
		fmt.Fprint(env.stdout, topUsage())
		return 0
	}
	if name == "--version" {
		name = "version"
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		err := c.run(ctx, env, args[1:])
		var ue usageError
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			fmt.Fprint(env.stdout, c.usage)
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(env.stderr, "gatehouse %s: %s (see 'gatehouse %s --help')\n", c.name, ue.msg, c.name)
			return 2
		default:
			fmt.Fprintf(env.stderr, "gatehouse %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(env.stderr, "gatehouse: unknown command %q (see 'gatehouse --help')\n", name)
	return 2
}

func topUsage() string {
	var b strings.Builder
	b.WriteString("gatehouse: the network-edge controller for schools.\n\nUsage: gatehouse COMMAND [flags]\n\nCommands:\n")
	cs := commands()
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	for _, c := range cs {
		fmt.Fprintf(&b, "  %-13s %s\n", c.name, c.summary)
	}
	b.WriteString("\nRun 'gatehouse COMMAND --help' for a command's flags and an example.\n")
	return b.String()
}

// parseFlags parses args with fs, turning flag's own errors into one-line
// usage errors and refusing stray positional arguments unless allowArgs.
func parseFlags(fs *flag.FlagSet, args []string, allowArgs bool) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if !allowArgs && fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// requireConfig is the check shared by every command that takes --config.
func requireConfig(path string) error {
	if path == "" {
		return usagef("missing --config FILE")
	}
	return nil
}

const versionUsage = `gatehouse version: print the version of this binary.

Example:
  gatehouse version
`

func cmdVersion(_ context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "gatehouse %s\n", version)
	return nil
}

// openDatabase loads the configuration at path and opens (and migrates) the
// database it names: what every command that reads or changes the school's
// data starts with. The caller closes the store.
func openDatabase(ctx context.Context, path string) (*config.Config, *store.Store, error) {
	cfg, err := loadConfig(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := store.Open(ctx, cfg.Database)
	if err != nil {
		return nil, nil, err
	}
	return cfg, st, nil
}
