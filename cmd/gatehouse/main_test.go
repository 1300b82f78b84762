package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-net/gatehouse/internal/shared"
)

// cli runs one command line in-process and returns its exit code and output.
func cli(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = runCLI(context.Background(), &cliEnv{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb}, args)
	return code, out.String(), errb.String()
}

func TestCommandLineMistakesExit2WithOneLine(t *testing.T) {
	cfg := writeConfig(t, t.TempDir())
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "Usage"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown flag", []string{"check-config", "--confg", cfg}, "flag provided but not defined: -confg"},
		{"missing config", []string{"check-config"}, "missing --config FILE"},
		{"flag without value", []string{"run", "--config"}, "flag needs an argument"},
		{"stray argument", []string{"version", "extra"}, `unexpected argument "extra"`},
		{"user without subcommand", []string{"user"}, "missing subcommand"},
		{"user bad role", []string{"user", "add", "--config", cfg, "--role", "head", "--name", "x"}, `unknown role "head"`},
		{"user missing name", []string{"user", "add", "--config", cfg, "--role", "dsl"}, "missing --name NAME"},
		{"audit unknown subcommand", []string{"audit", "check"}, `unknown subcommand "check"`},
		{"replay without files", []string{"inspect", "replay"}, "missing capture FILE"},
		{"run bad log format", []string{"run", "--config", cfg, "--log", "xml"}, `unknown --log "xml"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := cli(t, "", tc.args...)
			if code != 2 {
				t.Errorf("exit code %d, want 2 (stderr %q)", code, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q does not mention %q", stderr, tc.want)
			}
			if tc.args != nil && strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("stderr is more than one line: %q", stderr)
			}
		})
	}
}

func TestEveryCommandExplainsItselfWithAnExample(t *testing.T) {
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := cli(t, "", c.name, "--help")
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			if !strings.Contains(stdout, "Example") || !strings.Contains(stdout, "gatehouse "+c.name) {
				t.Errorf("help for %s lacks a description and an example:\n%s", c.name, stdout)
			}
		})
	}
}

func TestCheckConfigAcceptsTheSharedExample(t *testing.T) {
	exampleConfig := shared.Path(t, "gatehouse.example.yaml")
	code, stdout, stderr := cli(t, "", "check-config", "--config", exampleConfig)
	if code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "ok (4 segments)") {
		t.Errorf("stdout %q", stdout)
	}
	// The example names lan.10 etc., which this machine lacks: warnings, not errors.
	if !strings.Contains(stderr, "warning:") {
		t.Errorf("expected host warnings on stderr, got %q", stderr)
	}
	// The example sets no guest SSID: slips would name no network (issue 15).
	if !strings.Contains(stderr, "site.guest_ssid") || !strings.Contains(stderr, "slips") {
		t.Errorf("check-config does not warn that site.guest_ssid is unset: %q", stderr)
	}
}

func TestCheckConfigReportsProblemsWithLineAndExits1(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.yaml")
	data := strings.Replace(testConfig(dir), "  timezone: Europe/London", "  timezone: Europe/Atlantis", 1)
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := cli(t, "", "check-config", "--config", path)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %q", code, stderr)
	}
	if !strings.Contains(stderr, path+":3:") || !strings.Contains(stderr, "site.timezone") {
		t.Errorf("stderr does not name file, line 3 and field: %q", stderr)
	}
}

func TestUserAddCreatesAuditedUserFromStdin(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir)
	code, stdout, stderr := cli(t, "correct horse battery staple\n", "user", "add", "--config", cfg, "--role", "reception", "--name", "frontdesk")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "user frontdesk created with role reception") {
		t.Errorf("stdout %q", stdout)
	}
	code, _, stderr = cli(t, "correct horse battery staple\n", "user", "add", "--config", cfg, "--role", "reception", "--name", "frontdesk")
	if code != 1 || !strings.Contains(stderr, "already exists") {
		t.Errorf("duplicate user: exit %d stderr %q", code, stderr)
	}
	code, _, stderr = cli(t, "short\n", "user", "add", "--config", cfg, "--role", "dsl", "--name", "dsl1")
	if code != 1 || !strings.Contains(stderr, "at least 10 characters") {
		t.Errorf("short password: exit %d stderr %q", code, stderr)
	}
	code, stdout, stderr = cli(t, "", "audit", "verify", "--config", cfg)
	if code != 0 || !strings.Contains(stdout, "audit log ok: 1 rows") {
		t.Errorf("audit verify: exit %d stdout %q stderr %q", code, stdout, stderr)
	}
}

// testConfig is a valid configuration whose files live in dir and whose
// interfaces are the loopback, so that HostProblems is empty on any machine.
func testConfig(dir string) string {
	return `site:
  name: Test School
  timezone: Europe/London
database: ` + filepath.Join(dir, "gatehouse.db") + `
admin:
  listen: 127.0.0.1:8443
  tls: auto
segments:
  - name: staff
    vlan: 10
    interface: lo
    subnet: 10.10.0.0/22
    gateway: 10.10.0.1
    dhcp: { range: 10.10.0.50-10.10.3.250, lease: 8h }
dns:
  upstream: [203.0.113.53]
`
}

func writeConfig(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(path, []byte(testConfig(dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
