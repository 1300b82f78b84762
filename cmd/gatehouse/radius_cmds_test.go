package main

import (
	"bytes"
	"context"
	"path/filepath"
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

// TestDeviceApproveOwner: `gatehouse device approve --owner` gives the
// device to the person the id names, so it goes when they go: a staff
// code, a username, or a pupil's MIS id (UPN) from an import, on a named
// segment or with the SSID deciding. An owner nobody has is a clear error,
// refused before anything is written.
func TestDeviceApproveOwner(t *testing.T) {
	ctx := context.Background()
	cfgPath := writeConfig(t, t.TempDir())
	mis, _ := filepath.Abs("../../../shared/mis")
	if _, err := peopleCLI(t, "import", "--config", cfgPath, "--apply", filepath.Join(mis, "pupils-sims.csv")); err != nil {
		t.Fatal(err)
	}
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
	check := func(mac string) (known bool, owner int64) {
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

	// Owners nobody has, on a named segment and with the SSID deciding.
	for _, tc := range []struct{ mac, segment, owner string }{
		{"3c:22:fb:01:02:03", "staff", "NOPE99"},
		{"02:00:00:00:aa:02", "", "nobody-at-all"},
	} {
		out, err := deviceCLI(t, "approve", "--config", cfgPath, "--mac", tc.mac, "--segment", tc.segment, "--owner", tc.owner)
		if err == nil || !strings.Contains(err.Error(), `--owner "`+tc.owner+`" names nobody`) {
			t.Fatalf("unknown owner %s: %v\n%s", tc.owner, err, out)
		}
		if known, _ := check(tc.mac); known {
			t.Fatalf("unknown owner %s: the refused approval still recorded the device", tc.owner)
		}
	}

	// A member of staff, by staff code and by username.
	staffMAC := "3c:22:fb:01:02:03"
	for _, id := range []string{"BAG01", "gbailey"} {
		out, err := deviceCLI(t, "approve", "--config", cfgPath, "--mac", staffMAC, "--segment", "staff", "--owner", id, "--name", "laptop")
		if err != nil || !strings.Contains(out, "owned by "+id) {
			t.Fatalf("--owner %s: %v\n%s", id, err, out)
		}
		if known, owner := check(staffMAC); !known || owner != p.ID {
			t.Fatalf("--owner %s: known %v, owner %d; want person %d", id, known, owner, p.ID)
		}
	}

	// A pupil from the MIS import, by UPN, the SSID deciding the segment.
	if out, err := deviceCLI(t, "approve", "--config", cfgPath, "--mac", "02:00:00:00:aa:01", "--segment", "", "--owner", "B00187910201A"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	_, st, err = openDatabase(ctx, cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pupil, err := st.PersonByKey(ctx, "B00187910201A")
	if err != nil {
		t.Fatal(err)
	}
	devs, err := st.DevicesOf(ctx, []int64{pupil.ID})
	if err != nil || len(devs) != 1 || devs[0].MAC.String() != "02:00:00:00:aa:01" {
		t.Fatalf("the pupil's devices: %+v %v", devs, err)
	}
}
