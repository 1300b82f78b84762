package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/radius"
	"github.com/gatehouse-net/gatehouse/store"
)

func deviceCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := cmdDevice(context.Background(), &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &out}, args)
	return out.String(), err
}

// TestDeviceApproveOwner: --owner takes a staff code or username and links
// the device to that person; an unknown one is a clear error that approves
// nothing.
func TestDeviceApproveOwner(t *testing.T) {
	ctx := context.Background()
	cfgPath := writeConfig(t, t.TempDir())
	_, st, err := openDatabase(ctx, cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.CreatePerson(ctx, "test", store.Person{Kind: "staff", StaffCode: "BAG01", Username: "gbailey",
		LegalForename: "Grace", LegalSurname: "Bailey", State: store.PersonActive}, time.Now())
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	mac := "3c:22:fb:01:02:03"
	out, err := deviceCLI(t, "approve", "--config", cfgPath, "--mac", mac, "--segment", "staff", "--owner", "NOPE99")
	if err == nil || !strings.Contains(err.Error(), `--owner "NOPE99" names nobody`) {
		t.Fatalf("unknown owner: %v\n%s", err, out)
	}
	check := func() (known bool, owner int64) {
		t.Helper()
		_, st, err := openDatabase(ctx, cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		m, _ := radius.ParseMAC(mac)
		known, _, _, err = st.DeviceStatus(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		if known {
			if owner, err = st.DeviceOwner(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		return known, owner
	}
	if known, _ := check(); known {
		t.Fatal("an unknown owner still recorded the device")
	}
	for _, id := range []string{"BAG01", "gbailey"} {
		out, err = deviceCLI(t, "approve", "--config", cfgPath, "--mac", mac, "--segment", "staff", "--owner", id, "--name", "laptop")
		if err != nil || !strings.Contains(out, "owned by "+id) {
			t.Fatalf("--owner %s: %v\n%s", id, err, out)
		}
		if known, owner := check(); !known || owner != p.ID {
			t.Fatalf("--owner %s: known %v, owner %d; want person %d", id, known, owner, p.ID)
		}
	}
}
