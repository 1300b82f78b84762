package captive

import (
	"context"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/testbed"
)

// osProbes are the operating systems' connectivity checks as each sends
// it: URL and User-Agent. live is what the testbed's fake internet answers
// (it mimics the real hosts).
var osProbes = []struct {
	os, url, ua string
	status      string
	body        string
}{
	{"apple", "http://captive.apple.com/hotspot-detect.html", "CaptiveNetworkSupport-481.80.2 wispr", "200", "<TITLE>Success</TITLE>"},
	{"android", "http://connectivitycheck.gstatic.com/generate_204", "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/AP2A.240805.005)", "204", ""},
	{"android google", "http://www.google.com/gen_204", "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/AP2A.240805.005)", "204", ""},
	{"windows", "http://www.msftconnecttest.com/connecttest.txt", "Microsoft NCSI", "200", "Microsoft Connect Test"},
	{"windows legacy", "http://www.msftncsi.com/ncsi.txt", "Microsoft NCSI", "200", "Microsoft NCSI"},
	{"firefox", "http://detectportal.firefox.com/canonical.html", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "200", "success"},
	{"chromeos", "http://www.gstatic.com/generate_204", "Mozilla/5.0 (X11; CrOS x86_64 15917.71.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", "204", ""},
}

// curlResult is one HTTP exchange as curl saw it.
type curlResult struct {
	status, location, headers, body string
}

// curl runs curl in the visitor namespace. Names resolve to the fake
// internet's web server by --resolve, so no resolver is asked, and no
// proxy is used.
func curl(t *testing.T, ctx context.Context, s *testbed.School, args ...string) curlResult {
	t.Helper()
	base := []string{"-sS", "--max-time", "5", "--noproxy", "*", "-D", "-", "-w", "\n@@%{http_code} %{redirect_url}"}
	if len(args) > 0 {
		if u, err := url.Parse(args[len(args)-1]); err == nil && u.Hostname() != "" && net.ParseIP(u.Hostname()) == nil {
			base = append(base, "--resolve", u.Hostname()+":80:"+testbed.WebIP)
		}
	}
	out, err := s.Command(ctx, "visitor", "curl", append(base, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	text, tail, ok := strings.Cut(string(out), "\n@@")
	if !ok {
		t.Fatalf("curl %s: no status line in\n%s", strings.Join(args, " "), out)
	}
	var r curlResult
	r.status, r.location, _ = strings.Cut(strings.TrimSpace(tail), " ")
	r.headers, r.body, _ = strings.Cut(text, "\r\n\r\n")
	return r
}

// probesSay checks every OS's probe: held (the answer that opens the
// sign-in sheet: a redirect to the portal) or through to the internet.
func probesSay(t *testing.T, ctx context.Context, s *testbed.School, phase string, held bool) {
	t.Helper()
	for _, pr := range osProbes {
		t.Run(phase+"/"+pr.os, func(t *testing.T) {
			r := curl(t, ctx, s, "-A", pr.ua, pr.url)
			fromInternet := strings.Contains(strings.ToLower(r.headers), "x-gatehouse-testbed: web")
			if held {
				if r.status != "302" || r.location != portalURL+"/" || fromInternet {
					t.Fatalf("got %s to %q (from the internet: %v), want the portal's 302 to %s/", r.status, r.location, fromInternet, portalURL)
				}
				return
			}
			if r.status != pr.status || !strings.Contains(r.body, pr.body) || !fromInternet {
				t.Fatalf("got %s %q (from the internet: %v), want the internet's %s %q", r.status, r.body, fromInternet, pr.status, pr.body)
			}
		})
	}
}

// signIn redeems code from the visitor namespace as the portal's form does.
func signIn(t *testing.T, ctx context.Context, s *testbed.School, code string) {
	t.Helper()
	r := curl(t, ctx, s, "--data-urlencode", "code="+code, "-d", "accept=yes", "-d", "lang=en", portalURL+"/login")
	if r.status != "303" || !strings.HasPrefix(r.location, portalURL+"/status") {
		t.Fatalf("signing in with %s: %s to %q\n%s", code, r.status, r.location, r.body)
	}
}

// TestOSProbesWithCurlThroughTheKernel asks every OS's probe, with its own
// User-Agent, from the visitor namespace through the router's real
// nftables: held before admission, through after it, held again after
// revocation and after the code runs out. Expiry is the kernel's: the code
// ends seconds after it is redeemed (its "valid until" date), the kernel
// drops the element by its timeout, and the portal evicts nothing.
func TestOSProbesWithCurlThroughTheKernel(t *testing.T) {
	requireTool(t, "curl", "curl")
	testbed.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	r := newKernelRig(t, ctx)
	mac := r.visitorMAC()

	probesSay(t, ctx, r.s, "before admission", true)

	out, err := Issue(ctx, r.st, "web:frontdesk", IssueRequest{Duration: 2 * time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	signIn(t, ctx, r.s, out[0].Code)
	probesSay(t, ctx, r.s, "after admission", false)

	if _, _, err := r.p.Revoke(ctx, "web:frontdesk", out[0].Voucher.ID); err != nil {
		t.Fatal(err)
	}
	probesSay(t, ctx, r.s, "after revocation", true)

	// A code valid until a few seconds from now: long enough to redeem on
	// a loaded machine, short enough to wait for.
	notAfter := time.Now().Add(6 * time.Second)
	out, err = Issue(ctx, r.st, "web:frontdesk", IssueRequest{Duration: 2 * time.Hour, NotAfter: notAfter}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, evictsBefore := r.adm.counts()
	signIn(t, ctx, r.s, out[0].Code)
	// The kernel drops the element by itself; bounded wait.
	deadline := notAfter.Add(20 * time.Second)
	for strings.Contains(r.admittedSet(), mac) {
		if time.Now().After(deadline) {
			t.Fatalf("the admission outlived its code by 20 s:\n%s", r.admittedSet())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, evicts := r.adm.counts(); evicts != evictsBefore {
		t.Fatalf("the portal evicted %d times: expiry must be the kernel's timeout, not a Go timer", evicts-evictsBefore)
	}
	probesSay(t, ctx, r.s, "after expiry", true)
}

// TestAdmissionsSurviveRestartAndReboot redeems a code, then builds a new
// portal and enforcer over the same database, as the daemon does when it
// starts: after a restart (the kernel's table kept) and after a reboot (the
// table gone) the visitor is in the kernel's admitted set and online, and
// a revoked code's device is not.
func TestAdmissionsSurviveRestartAndReboot(t *testing.T) {
	requireTool(t, "curl", "curl")
	testbed.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := newKernelRig(t, ctx)
	mac := r.visitorMAC()
	element := mac + " . 10.40.0.10"

	out, err := Issue(ctx, r.st, "web:frontdesk", IssueRequest{Duration: 2 * time.Hour, Count: 2, Batch: "restart"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	signIn(t, ctx, r.s, out[0].Code)
	// A second device on the other code, which is then revoked: it must
	// not come back.
	gone := mustMAC(t, "02:00:00:00:00:99")
	if _, err := r.p.redeem(ctx, out[1].Code, gone, netip.MustParseAddr("10.40.0.99"), "", ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.p.Revoke(ctx, "web:frontdesk", out[1].Voucher.ID); err != nil {
		t.Fatal(err)
	}
	if set := r.admittedSet(); !strings.Contains(set, element) || !strings.Contains(set, "expires") {
		t.Fatalf("admitted set before the restart lacks %s with a timeout:\n%s", element, set)
	}
	online := func(when string) {
		t.Helper()
		res := curl(t, ctx, r.s, "-A", osProbes[1].ua, osProbes[1].url)
		if res.status != "204" || !strings.Contains(strings.ToLower(res.headers), "x-gatehouse-testbed: web") {
			t.Fatalf("%s: Android's probe got %s to %q, want 204 from the internet", when, res.status, res.location)
		}
	}
	check := func(when string) {
		t.Helper()
		set := r.admittedSet()
		if !strings.Contains(set, element) || !strings.Contains(set, "expires") {
			t.Fatalf("%s: admitted set lacks %s with a timeout:\n%s", when, element, set)
		}
		if strings.Contains(set, "10.40.0.99") {
			t.Fatalf("%s: the revoked code's device is back:\n%s", when, set)
		}
		online(when)
	}

	r.restart(ctx)
	check("after a restart")

	// A reboot: the kernel forgets everything.
	r.stop()
	r.nft("delete", "table", "inet", "gatehouse")
	if out := r.nft("list", "tables"); strings.Contains(out, "gatehouse") {
		t.Fatalf("table still there:\n%s", out)
	}
	r.start(ctx, false)
	t.Cleanup(func() { r.stop() })
	check("after a reboot")
}

func mustMAC(t *testing.T, s string) net.HardwareAddr {
	t.Helper()
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
