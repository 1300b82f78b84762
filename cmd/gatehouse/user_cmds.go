package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os/user"
	"strings"

	"github.com/gatehouse-net/gatehouse/config"
	"github.com/gatehouse-net/gatehouse/password"
	"github.com/gatehouse-net/gatehouse/store"
)

const userUsage = `gatehouse user add: create a user of the admin page.

The password is read from standard input (one line), so it never appears in
the process list or the shell history. The change is written to the audit log.

Flags:
  --config FILE   the configuration file (required; names the database)
  --role ROLE     reception, network or dsl (required)
  --name NAME     the login name (required)

Example:
  printf '%s\n' "$PASSWORD" | gatehouse user add --config /etc/gatehouse/gatehouse.yaml --role reception --name frontdesk
`

func cmdUser(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 {
		return usagef("missing subcommand (add)")
	}
	if args[0] == "-h" || args[0] == "--help" {
		return flag.ErrHelp
	}
	if args[0] != "add" {
		return usagef("unknown subcommand %q (want add)", args[0])
	}
	fs := flag.NewFlagSet("user add", flag.ContinueOnError)
	path := fs.String("config", "", "configuration file")
	role := fs.String("role", "", "reception, network or dsl")
	name := fs.String("name", "", "login name")
	if err := parseFlags(fs, args[1:], false); err != nil {
		return err
	}
	if err := requireConfig(*path); err != nil {
		return err
	}
	switch {
	case *name == "":
		return usagef("missing --name NAME")
	case *role == "":
		return usagef("missing --role reception|network|dsl")
	case !store.ValidRole(*role):
		return usagef("unknown role %q (want reception, network or dsl)", *role)
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	pw, err := bufio.NewReader(env.stdin).ReadString('\n')
	if err != nil && pw == "" {
		return errors.New("reading the password from standard input: nothing was given")
	}
	pw = strings.TrimRight(pw, "\r\n")
	if len(pw) < 10 {
		return errors.New("the password must be at least 10 characters")
	}
	hash, err := password.Hash(pw)
	if err != nil {
		return fmt.Errorf("hashing the password: %w", err)
	}
	st, err := store.Open(ctx, cfg.Database)
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := st.CreateUser(ctx, cliActor(), store.User{Name: *name, Role: *role, PasswordHash: hash})
	if errors.Is(err, store.ErrExists) {
		return fmt.Errorf("a user called %q already exists", *name)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "user %s created with role %s\n", u.Name, u.Role)
	return nil
}

// cliActor names the person at the terminal for the audit log.
func cliActor() string {
	if u, err := user.Current(); err == nil {
		return "cli:" + u.Username
	}
	return "cli:unknown"
}

// loadConfig loads a configuration and prints every problem in it.
func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, fmt.Errorf("configuration is not valid:\n%w", err)
	}
	return cfg, nil
}
