package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
)

// TestUnknownDevicesOnEverySegment runs the daemon in a testbed school and
// proves each segment x unknown_devices combination with real traffic: on
// every segment a stranger (a MAC nobody approved) and an approved device
// each ask for a lease with udhcpc, visitors redeem a code at the portal,
// and curl says what each of them reaches. What the README promises:
//
//	allow       lease, the segment's defaults, no finding
//	alert       lease, the segment's defaults, an unapproved-device finding
//	quarantine  lease, nothing but the router: web traffic meets the portal
//	deny        no lease, and nothing forwarded for an address it gives itself
//
// and an approved device gets a lease and the internet in every mode. Four
// daemons cover the sixteen combinations; the first runs the default
// configuration (no unknown_devices anywhere), where a BYOD device must
// reach the internet after its lease.
func TestUnknownDevicesOnEverySegment(t *testing.T) {
	testbed.Require(t)
	for _, tool := range []string{"udhcpc", "curl", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("this test needs %s (see build/deps): %v", tool, err)
		}
	}
	bin := buildGatehouse(t)
	// The README's defaults, written out here rather than taken from
	// package policy, so that a change to them fails this test.
	defaults := map[string]string{"staff": "alert", "pupil": "alert", "byod": "allow", "visitor": "allow"}
	runs := []map[string]string{
		nil,
		{"staff": "allow", "pupil": "quarantine", "byod": "deny", "visitor": "alert"},
		{"staff": "quarantine", "pupil": "deny", "byod": "alert", "visitor": "quarantine"},
		{"staff": "deny", "pupil": "allow", "byod": "quarantine", "visitor": "deny"},
	}
	seen := map[string]bool{}
	for _, modes := range runs {
		for seg, def := range defaults {
			mode := modes[seg]
			if mode == "" {
				mode = def
			}
			seen[seg+"/"+mode] = true
		}
	}
	if len(seen) != 16 {
		t.Fatalf("the runs cover %d segment x mode combinations, want 16: %v", len(seen), seen)
	}
	for i, modes := range runs {
		name := fmt.Sprintf("run %d", i)
		if modes == nil {
			name = "the default configuration"
		}
		t.Run(name, func(t *testing.T) {
			segs := testbed.DefaultSegments()
			for j := range segs {
				segs[j].Unconfigured = true
				segs[j].UnknownDevices = modes[segs[j].Name]
			}
			school := testbed.New(t, testbed.Options{Segments: segs})
			files, err := school.Config(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			// Each segment's testbed client is the approved device: the
			// daemon puts the database's approvals in force at start.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			st, err := store.Open(ctx, files.Database)
			if err != nil {
				t.Fatal(err)
			}
			for _, seg := range school.Segments() {
				if err := st.DecideDevice(ctx, "test", seg.ClientMAC, store.DeviceDecision{Approved: true}, time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			st.Close()
			d := startDaemon(t, school, bin, files.Path)
			code, stdout, stderr := cli(t, "", "voucher", "issue", "--config", files.Path, "--duration", "2h", "--count", "2")
			codes := strings.Fields(stdout)
			if code != 0 || len(codes) != 2 {
				t.Fatalf("voucher issue: exit %d, %q, %s", code, stdout, stderr)
			}
			u := unknownRig{t: t, school: school, d: d, dir: t.TempDir(), codes: codes}
			for k, seg := range school.Segments() {
				mode := modes[seg.Name]
				if mode == "" {
					mode = defaults[seg.Name]
				}
				t.Run(seg.Name+" "+mode, func(t *testing.T) {
					u.t = t
					stranger := net.HardwareAddr{0x00, 0x16, 0x3e, 0x5e, byte(i), byte(k)}
					u.stranger(seg, mode, stranger)
					u.approved(seg)
				})
			}
		})
	}
}

// unknownRig drives one segment's client namespace as two devices in turn:
// its interface takes the stranger's MAC, then its own (approved) one.
type unknownRig struct {
	t      *testing.T
	school *testbed.School
	d      *daemonUnderTest
	dir    string
	codes  []string // two visitor codes
	used   int
}

// sh runs a command in the segment's client namespace.
func (u *unknownRig) sh(seg testbed.SegmentInfo, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := u.school.Command(ctx, seg.Name, args[0], args[1:]...).CombinedOutput()
	return string(out), err
}

func (u *unknownRig) must(seg testbed.SegmentInfo, args ...string) {
	u.t.Helper()
	if out, err := u.sh(seg, args...); err != nil {
		u.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// become gives the client's interface mac and no address.
func (u *unknownRig) become(seg testbed.SegmentInfo, mac net.HardwareAddr) {
	u.t.Helper()
	u.must(seg, "ip", "addr", "flush", "dev", testbed.ClientInterface)
	u.must(seg, "ip", "link", "set", testbed.ClientInterface, "down")
	u.must(seg, "ip", "link", "set", testbed.ClientInterface, "address", mac.String())
	u.must(seg, "ip", "link", "set", testbed.ClientInterface, "up")
}

var leaseOf = regexp.MustCompile(`lease of (\d+\.\d+\.\d+\.\d+) obtained`)

// lease runs udhcpc, which configures the interface from the answer; ok is
// false when no server answered.
func (u *unknownRig) lease(seg testbed.SegmentInfo) (ip string, ok bool) {
	u.t.Helper()
	script := filepath.Join(u.dir, "udhcpc.sh")
	if _, err := os.Stat(script); err != nil {
		body := "#!/bin/sh\ncase \"$1\" in bound|renew) ip addr flush dev \"$interface\"; ip addr add \"$ip/$subnet\" dev \"$interface\"; ip route replace default via \"$router\";; esac\n"
		if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
			u.t.Fatal(err)
		}
	}
	out, err := u.sh(seg, "udhcpc", "-f", "-q", "-n", "-i", testbed.ClientInterface, "-s", script, "-t", "4", "-T", "1")
	m := leaseOf.FindStringSubmatch(out)
	if err != nil || m == nil {
		return "", false
	}
	return m[1], true
}

// curl fetches url and returns "STATUS REDIRECT BODY"; err when no HTTP
// answer came.
func (u *unknownRig) curl(seg testbed.SegmentInfo, args ...string) (string, error) {
	base := []string{"curl", "-sS", "-k", "--connect-timeout", "3", "--max-time", "6", "-w", "\n%{http_code} %{redirect_url}"}
	return u.sh(seg, append(base, args...)...)
}

func (u *unknownRig) internet(seg testbed.SegmentInfo) (string, bool) {
	out, err := u.curl(seg, "https://"+testbed.WebIP+"/")
	return out, err == nil && strings.Contains(out, testbed.WebBanner)
}

// redeem signs in at the portal with the next code, as a visitor's phone
// would; it returns curl's verdict.
func (u *unknownRig) redeem(seg testbed.SegmentInfo) (string, error) {
	code := u.codes[u.used%len(u.codes)]
	u.used++
	return u.curl(seg, "--data-urlencode", "code="+code, "-d", "accept=yes", "-d", "lang=en",
		"http://"+seg.Gateway.String()+":8080/login")
}

// stranger plays a device nobody approved.
func (u *unknownRig) stranger(seg testbed.SegmentInfo, mode string, mac net.HardwareAddr) {
	t := u.t
	u.become(seg, mac)
	ip, leased := u.lease(seg)
	if leased != (mode != "deny") {
		t.Fatalf("stranger %s: leased %v (%s), want a lease unless deny", mac, leased, ip)
	}
	if !leased {
		// A stranger refused a lease gives itself an address.
		addr := fmt.Sprintf("%s/%d", seg.ClientAddr, seg.Subnet.Bits())
		u.must(seg, "ip", "addr", "add", addr, "dev", testbed.ClientInterface)
		u.must(seg, "ip", "route", "replace", "default", "via", seg.Gateway.String())
		ip = seg.ClientAddr.String()
	}
	if seg.Portal {
		out, err := u.redeem(seg)
		if (mode == "allow" || mode == "alert") && (err != nil || !regexp.MustCompile(`\n(200|303) `).MatchString(out)) {
			t.Fatalf("stranger redeeming a code: %v\n%s", err, out)
		}
	}
	out, reached := u.internet(seg)
	switch mode {
	case "allow", "alert":
		if !reached {
			t.Errorf("stranger %s at %s (%s) does not reach the internet:\n%s", mac, ip, mode, out)
		}
	default:
		if reached {
			t.Errorf("stranger %s at %s (%s) reached the internet:\n%s", mac, ip, mode, out)
		}
	}
	if mode == "quarantine" {
		out, _ := u.curl(seg, "http://"+testbed.WebIP+"/")
		if strings.Contains(out, testbed.WebBanner) || !strings.Contains(out, "\n302 http://10.40.0.1:8080/") {
			t.Errorf("quarantined stranger's web traffic should meet the portal:\n%s", out)
		}
	}
	flagged := func() bool {
		return regexp.MustCompile(`unapproved device"[^\n]* segment=` + seg.Name + ` mac=` + mac.String()).MatchString(u.d.log.String())
	}
	if mode == "allow" {
		if flagged() {
			t.Errorf("stranger %s flagged on a segment that allows unknown devices:\n%s", mac, u.d.log.String())
		}
	} else {
		waitFor(t, "the unapproved-device finding for "+mac.String(), flagged)
	}
}

// approved plays the testbed's own client, approved before the daemon
// started: a lease and the internet in every mode.
func (u *unknownRig) approved(seg testbed.SegmentInfo) {
	t := u.t
	u.become(seg, seg.ClientMAC)
	ip, ok := u.lease(seg)
	if !ok {
		t.Fatalf("approved device %s got no lease", seg.ClientMAC)
	}
	if seg.Portal {
		if out, err := u.redeem(seg); err != nil {
			t.Fatalf("approved device redeeming a code: %v\n%s", err, out)
		}
	}
	if out, ok := u.internet(seg); !ok {
		t.Errorf("approved device %s at %s does not reach the internet:\n%s", seg.ClientMAC, ip, out)
	}
}
