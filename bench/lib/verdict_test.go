// Package lib holds no Go: its test runs verdict_test.sh, the check of the
// verdict lines the bench scripts source from verdict.sh, so that `make
// test` (go test ./...) covers it.
package lib

import (
	"context"
	"os/exec"
	"testing"
	"time"
)

func TestVerdictScript(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", "verdict_test.sh").CombinedOutput()
	if err != nil {
		t.Fatalf("verdict_test.sh: %v\n%s", err, out)
	}
}
