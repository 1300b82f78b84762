package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/config"
	"github.com/gatehouse-net/gatehouse/store"
)

// voucherCLI runs cmdVoucher directly, so it is tested whether or not the
// command table lists it yet.
func voucherCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := cmdVoucher(context.Background(), &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &out}, args)
	return out.String(), err
}

func TestVoucherIssuePrintsCodesOnePerLine(t *testing.T) {
	cfgPath := writeConfig(t, t.TempDir())
	out, err := voucherCLI(t, "issue", "--config", cfgPath, "--duration", "2h", "--count", "3", "--devices", "2", "--note", "Governors",
		"--not-after", "2099-01-01 12:00")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	codeRE := regexp.MustCompile(`^[2-9A-HJKMNP-TV-Z]{5}-[2-9A-HJKMNP-TV-Z]{5}$`)
	if len(lines) != 3 {
		t.Fatalf("output %q, want 3 lines", out)
	}
	for _, l := range lines {
		if !codeRE.MatchString(l) {
			t.Fatalf("line %q is not a code", l)
		}
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	vs, err := st.ListVouchers(context.Background(), store.VoucherFilter{})
	if err != nil || len(vs) != 3 {
		t.Fatalf("stored %d, %v", len(vs), err)
	}
	v := vs[0]
	wantNA := time.Date(2099, 1, 1, 12, 0, 0, 0, cfg.Site.Location)
	if v.Duration != 2*time.Hour || v.MaxDevices != 2 || v.Note != "Governors" || !v.StartOnFirstUse || v.BatchName == "" ||
		!v.NotAfter.Equal(wantNA) || !strings.HasPrefix(v.CreatedBy, "cli:") {
		t.Fatalf("stored %+v", v)
	}
	for _, l := range lines {
		if strings.Contains(v.CodeHash, strings.ReplaceAll(l, "-", "")) {
			t.Fatal("code stored in clear")
		}
	}
}

func TestVoucherIssueMistakes(t *testing.T) {
	cfgPath := writeConfig(t, t.TempDir())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "missing subcommand"},
		{[]string{"print"}, `unknown subcommand "print"`},
		{[]string{"issue", "--duration", "2h"}, "missing --config"},
		{[]string{"issue", "--config", cfgPath}, "missing --duration"},
		{[]string{"issue", "--config", cfgPath, "--duration", "2h", "--count", "501"}, "1 to 500"},
		{[]string{"issue", "--config", cfgPath, "--duration", "2h", "--devices", "-1"}, "devices"},
		{[]string{"issue", "--config", cfgPath, "--duration", "2h", "--not-after", "soon"}, "--not-after"},
	} {
		_, err := voucherCLI(t, tc.args...)
		if _, ok := err.(usageError); !ok || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want usage error with %q", tc.args, err, tc.want)
		}
	}
}
