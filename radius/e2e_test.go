package radius

// End to end with real peers: radclient (freeradius-utils) in the testbed's
// management namespace talks to the server listening in the router
// namespace on the management address only.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/gatehouse-net/gatehouse/password"
	"github.com/gatehouse-net/gatehouse/testbed"
)

const (
	e2eSecret = "e2e-shared-secret"
	e2eAuth   = testbed.MgmtRouterIP + ":1812"
	e2eAcct   = testbed.MgmtRouterIP + ":1813"
)

// e2eRig is a testbed school with the server in its router namespace.
type e2eRig struct {
	*rig
	school *testbed.School
	dir    string
}

func newE2E(t *testing.T) *e2eRig {
	t.Helper()
	if _, err := exec.LookPath("radclient"); err != nil {
		t.Fatal("radclient is not installed (Debian freeradius-utils; build/deps installs it)")
	}
	school := testbed.New(t, testbed.Options{})
	e := &e2eRig{school: school, dir: t.TempDir()}
	e.rig = newRigWith(t, func(o *Options) {
		o.AuthAddr, o.AcctAddr = e2eAuth, e2eAcct
		o.Clients = []Client{{Name: "aps", Prefix: netip.MustParsePrefix(testbed.MgmtNet), Secret: []byte(e2eSecret), RequireMessageAuthenticator: true}}
		o.RejectDelay = 0 // the real 1 s
	}, func(srv *Server) error {
		// Bind inside the router namespace: the sockets stay there.
		return school.Do("router", srv.Listen)
	})
	return e
}

// radclient runs radclient in the management namespace with the given
// attribute lines and returns its output.
func (e *e2eRig) radclient(t *testing.T, kind, server string, attrs ...string) string {
	return e.radclientWait(t, 4, kind, server, attrs...)
}

func (e *e2eRig) radclientWait(t *testing.T, wait int, kind, server string, attrs ...string) string {
	t.Helper()
	f, err := os.CreateTemp(e.dir, "req-*.txt")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, strings.Join(attrs, "\n"))
	f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// -r 1: one try, so "no answer" is not hidden behind a retry.
	out, _ := e.school.Command(ctx, "mgmt", "radclient", "-x", "-r", "1", "-t", fmt.Sprint(wait), "-f", f.Name(), server, kind, e2eSecret).CombinedOutput()
	return string(out)
}

func mabAttrs(mac, ssid string, withMA bool) []string {
	a := []string{
		fmt.Sprintf("User-Name = %q", mac), fmt.Sprintf("User-Password = %q", mac),
		fmt.Sprintf("Calling-Station-Id = %q", mac), fmt.Sprintf("Called-Station-Id = \"0A-00-00-00-00-01:%s\"", ssid),
	}
	if withMA {
		a = append(a, "Message-Authenticator = 0x00")
	}
	return a
}

var vlanLine = regexp.MustCompile(`Tunnel-Private-Group-Id(:0)? = "(\d+)"`)

func TestRadclientAgainstTheServerInTheTestbed(t *testing.T) {
	e := newE2E(t)
	ctx := context.Background()
	approved, blocked := mustMAC("02:00:00:00:01:01"), mustMAC("02:00:00:00:01:02")
	if err := e.st.ApproveDevice(ctx, "test", approved, "", "Laptop", time.Now()); err != nil {
		t.Fatal(err)
	}
	e.devices.set(approved.String(), DeviceInfo{Approved: true})
	e.devices.set(blocked.String(), DeviceInfo{Approved: true, Blocked: true})
	key, err := e.keys.Rotate(ctx, "test", approved)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := password.Hash("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	e.ids.set("amy", Identity{Person: "T042", PasswordHash: hash, Active: true, Segment: "staff"})

	t.Run("MAB approved gets the SSID's VLAN and its key", func(t *testing.T) {
		out := e.radclient(t, "auth", e2eAuth, mabAttrs("02-00-00-00-01-01", "Pupils", true)...)
		if !strings.Contains(out, "Received Access-Accept") {
			t.Fatalf("radclient:\n%s", out)
		}
		if m := vlanLine.FindStringSubmatch(out); m == nil || m[2] != "20" {
			t.Fatalf("VLAN not 20:\n%s", out)
		}
		// radclient decrypts Tunnel-Password with the shared secret.
		if !strings.Contains(out, fmt.Sprintf("Tunnel-Password:0 = %q", key)) {
			t.Fatalf("Tunnel-Password does not decrypt to %q:\n%s", key, out)
		}
	})
	t.Run("Proxy-State comes back in order, the reply still authentic", func(t *testing.T) {
		// radclient drops a reply whose Response Authenticator or
		// Message-Authenticator is wrong, so "Received" proves both.
		attrs := append(mabAttrs("02-00-00-00-01-01", "Pupils", true), "Proxy-State = 0x70726f78792d6f6e65", "Proxy-State = 0x00010203")
		out := e.radclient(t, "auth", e2eAuth, attrs...)
		if !strings.Contains(out, "Received Access-Accept") {
			t.Fatalf("radclient:\n%s", out)
		}
		// radclient prints what it sent first: the reply is what follows.
		got := out[strings.Index(out, "Received Access-Accept"):]
		first, second := strings.Index(got, "Proxy-State = 0x70726f78792d6f6e65"), strings.Index(got, "Proxy-State = 0x00010203")
		if first < 0 || second < first {
			t.Fatalf("the reply's Proxy-State is not the request's, in order:\n%s", out)
		}
	})
	t.Run("MAB unknown follows the segment: quarantine VLAN, deny rejects", func(t *testing.T) {
		out := e.radclient(t, "auth", e2eAuth, mabAttrs("02-00-00-00-01-09", "Pupils", true)...)
		if m := vlanLine.FindStringSubmatch(out); !strings.Contains(out, "Received Access-Accept") || m == nil || m[2] != "40" {
			t.Fatalf("unknown on a quarantine segment:\n%s", out)
		}
		out = e.radclient(t, "auth", e2eAuth, mabAttrs("02-00-00-00-01-09", "Lab", true)...)
		if !strings.Contains(out, "Received Access-Reject") {
			t.Fatalf("unknown on a deny segment:\n%s", out)
		}
	})
	t.Run("MAB blocked is rejected", func(t *testing.T) {
		out := e.radclient(t, "auth", e2eAuth, mabAttrs("02-00-00-00-01-02", "Staff", true)...)
		if !strings.Contains(out, "Received Access-Reject") {
			t.Fatalf("radclient:\n%s", out)
		}
	})
	t.Run("without Message-Authenticator there is no answer", func(t *testing.T) {
		out := e.radclient(t, "auth", e2eAuth, mabAttrs("02-00-00-00-01-01", "Staff", false)...)
		if strings.Contains(out, "Received") || !strings.Contains(out, "No reply") {
			t.Fatalf("radclient:\n%s", out)
		}
	})
	t.Run("wrong secret: no answer", func(t *testing.T) {
		f := filepath.Join(e.dir, "wrong.txt")
		os.WriteFile(f, []byte(strings.Join(mabAttrs("02-00-00-00-01-01", "Staff", true), "\n")+"\n"), 0o600)
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		out, _ := e.school.Command(cctx, "mgmt", "radclient", "-x", "-r", "1", "-t", "3", "-f", f, e2eAuth, "auth", "not-the-secret").CombinedOutput()
		if strings.Contains(string(out), "Received") {
			t.Fatalf("radclient:\n%s", out)
		}
	})
	t.Run("Status-Server", func(t *testing.T) {
		for _, addr := range []string{e2eAuth, e2eAcct} {
			out := e.radclient(t, "status", addr, "Message-Authenticator = 0x00")
			if !strings.Contains(out, "Received Access-Accept") && !strings.Contains(out, "Received Accounting-Response") {
				t.Fatalf("Status-Server to %s:\n%s", addr, out)
			}
		}
	})
	t.Run("PAP right and wrong password", func(t *testing.T) {
		pap := func(pw string) string {
			// argon2id is slow on purpose, and slower on a busy machine.
			return e.radclientWait(t, 25, "auth", e2eAuth, `User-Name = "amy"`, fmt.Sprintf("User-Password = %q", pw),
				`Called-Station-Id = "0A-00-00-00-00-01:Staff"`, "Message-Authenticator = 0x00")
		}
		if out := pap("correct horse battery"); !strings.Contains(out, "Received Access-Accept") || vlanLine.FindStringSubmatch(out)[2] != "10" {
			t.Fatalf("right password:\n%s", out)
		}
		if out := pap("wrong"); !strings.Contains(out, "Received Access-Reject") {
			t.Fatalf("wrong password:\n%s", out)
		}
	})
	t.Run("accounting Start makes a session", func(t *testing.T) {
		out := e.radclient(t, "acct", e2eAcct, `Acct-Status-Type = Start`, `Acct-Session-Id = "E2E-1"`, `User-Name = "020000000101"`,
			`Calling-Station-Id = "02-00-00-00-01-01"`, `Called-Station-Id = "0A-00-00-00-00-01:Pupils"`, `Framed-IP-Address = 10.20.0.77`)
		if !strings.Contains(out, "Received Accounting-Response") {
			t.Fatalf("radclient:\n%s", out)
		}
		held, err := e.st.WhoHeld(ctx, netip.MustParseAddr("10.20.0.77"), nil, time.Now())
		if err != nil || held.AcctSessionID != "E2E-1" || held.NASAddr.String() != testbed.MgmtClientIP {
			t.Fatalf("who held: %+v %v", held, err)
		}
	})
	t.Run("tampered and retransmitted packets from the AP's address", func(t *testing.T) {
		conn, err := e.school.DialContext(ctx, "mgmt", "udp", e2eAuth)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		uc := conn.(*net.UDPConn)
		p := mabRequest(e2eSecret, "02-00-00-00-01-01", "0A-00-00-00-00-01:Staff")
		good := signRequest(t, p, false)
		bad := append([]byte(nil), good...)
		bad[len(bad)-1] ^= 0x20 // the SSID changed after signing
		if got := sendOn(t, uc, bad, 2*time.Second); got != nil {
			t.Fatal("answered a tampered request")
		}
		first := sendOn(t, uc, good, 5*time.Second)
		second := sendOn(t, uc, good, 5*time.Second)
		if first == nil || !bytes.Equal(first, second) {
			t.Fatal("the retransmission did not get the identical reply")
		}
		resp := checkReply(t, good, first, e2eSecret)
		if resp.Code != radius.CodeAccessAccept || rfc2865.UserName_GetString(p) == "" {
			t.Fatal(resp.Code)
		}
	})
	t.Run("nothing answers on the uplink", func(t *testing.T) {
		out := e.radclient(t, "status", testbed.RouterUplinkIP+":1812", "Message-Authenticator = 0x00")
		if strings.Contains(out, "Received") {
			t.Fatalf("answered on the uplink:\n%s", out)
		}
	})
}
