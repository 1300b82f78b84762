package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const crashChildEnv = "GATEHOUSE_STORE_CRASH_CHILD_DB"

// TestCrashChild is the writer half of TestCommittedWritesSurviveSIGKILL. Run
// normally it does nothing; run as the child it writes until it is killed,
// printing each write only after the call that made it has returned.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		t.Skip("only runs as the child of TestCommittedWritesSurviveSIGKILL")
	}
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(2)
	}
	for i := range 100000 {
		if i%2 == 0 {
			e, err := s.Audit(ctx, AuditEntry{Actor: "test:child", Action: "test.crash", Object: strconv.Itoa(i)})
			if err != nil {
				fmt.Printf("error %v\n", err)
				os.Exit(2)
			}
			fmt.Printf("audit %d\n", e.ID)
		} else {
			name := "u" + strconv.Itoa(i)
			if _, err := s.CreateUser(ctx, "test:child", User{Name: name, Role: RoleDSL, PasswordHash: "h"}); err != nil {
				fmt.Printf("error %v\n", err)
				os.Exit(2)
			}
			fmt.Printf("user %s\n", name)
		}
	}
	os.Exit(3) // never killed: the parent's deadline will report it
}

// TestCommittedWritesSurviveSIGKILL kills a writing process and checks that
// every write it had been told was committed is there, and the audit chain is
// intact. SIGKILL leaves the kernel's page cache intact, so this does not
// prove survival of power loss; that rests on synchronous=FULL (each commit
// fsyncs the WAL), whose presence on every connection is checked by
// TestEveryPooledConnectionIsDurableWALWithForeignKeys.
func TestCommittedWritesSurviveSIGKILL(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		t.Skip("child")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var auditIDs []int64
	var users []string
	sc := bufio.NewScanner(out)
	for sc.Scan() && len(auditIDs)+len(users) < 60 {
		kind, val, _ := strings.Cut(sc.Text(), " ")
		switch kind {
		case "audit":
			id, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				t.Fatalf("child said %q", sc.Text())
			}
			auditIDs = append(auditIDs, id)
		case "user":
			users = append(users, val)
		case "error":
			t.Fatalf("child failed: %s", val)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() { // anything reported before the kill landed also counts
		kind, val, _ := strings.Cut(sc.Text(), " ")
		switch kind {
		case "audit":
			if id, err := strconv.ParseInt(val, 10, 64); err == nil {
				auditIDs = append(auditIDs, id)
			}
		case "user":
			users = append(users, val)
		}
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL: %v (%d writes seen)", err, len(auditIDs)+len(users))
	}
	if len(auditIDs) == 0 || len(users) == 0 {
		t.Fatalf("child reported %d audits and %d users before the kill", len(auditIDs), len(users))
	}

	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer s.Close()
	n, err := s.VerifyAudit(context.Background())
	if err != nil {
		t.Fatalf("audit chain after SIGKILL: %v", err)
	}
	// Each user creation also wrote an audit row.
	if want := len(auditIDs) + len(users); n < want {
		t.Errorf("%d audit rows after SIGKILL, child had committed at least %d", n, want)
	}
	for _, id := range auditIDs {
		if int(id) > n {
			t.Errorf("committed audit row %d is missing (%d rows)", id, n)
		}
	}
	for _, name := range users {
		if _, err := s.UserByName(context.Background(), name); err != nil {
			t.Errorf("committed user %s is missing: %v", name, err)
		}
	}
}
