package captive

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
)

// TestVisitorJourneyThroughTheKernel runs the portal in the testbed's router
// namespace with the real policy enforcer and the kernel neighbour table: a
// visitor's probe is redirected to the portal, the code admits it, the
// probe and a page then come from the fake internet, and revocation sends
// it back to the portal.
func TestVisitorJourneyThroughTheKernel(t *testing.T) {
	s := testbed.New(t, testbed.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	router := s.RouterNS()
	visitorNS := s.ClientNS("visitor")

	rh, err := s.OpenNS(router)
	if err != nil {
		t.Fatal(err)
	}
	defer rh.Close()

	seg := func(name, subnet string) policy.SegmentSpec {
		p := netip.MustParsePrefix(subnet)
		return policy.Defaults(name, "gh-"+name, p, p.Addr().Next(), false)
	}
	n := policy.Network{
		Uplink: testbed.UplinkInterface,
		Segments: []policy.SegmentSpec{seg("staff", "10.10.0.0/22"), seg("pupil", "10.20.0.0/21"),
			seg("byod", "10.30.0.0/22"), seg("visitor", "10.40.0.0/23")},
		Servers:    map[string]netip.Prefix{"mis": netip.MustParsePrefix("10.5.0.0/24")},
		AdminAddr:  netip.MustParseAddrPort("10.99.0.1:8443"),
		PortalPort: 8080,
		DNSPort:    5353,
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	enf, err := policy.New(policy.Options{NetNSFd: int(rh)}, n, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer enf.Close()
	if err := enf.Apply(ctx); err != nil {
		t.Fatalf("apply rules: %v", err)
	}

	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "g.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hub := events.New()
	p, err := New(Options{Store: st, Admitter: enf, Neighbours: NeighbourTable{NetNS: int(rh)}, Hub: hub, Logger: logger,
		School: "Testbed School", SSID: "Guest", PortalURL: "http://10.40.0.1:8080"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := s.Listen(router, "tcp4", "0.0.0.0:8080")
	if err != nil {
		t.Fatal(err)
	}
	srvCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- p.Serve(srvCtx, ln) }()
	defer func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	client := s.HTTPClient(visitorNS)
	get := func(host, path string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, "GET", "http://"+testbed.WebIP+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		req.Header.Set("User-Agent", "CaptiveNetworkSupport-443.4 wispr")
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s%s: %v", host, path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	expectSheet := func(when string) {
		t.Helper()
		for _, pr := range probes {
			res, _ := get(pr.host, pr.path)
			if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "http://10.40.0.1:8080/" {
				t.Fatalf("%s: %s probe got %d %q, want the portal redirect", when, pr.os, res.StatusCode, res.Header.Get("Location"))
			}
		}
	}
	expectSheet("before admission")

	// The sign-in page, reached at the address the redirect named.
	res, err := client.Get("http://10.40.0.1:8080/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(page), "Testbed School") || !strings.Contains(string(page), `action="/login"`) {
		t.Fatalf("portal page:\n%s", page)
	}

	out, err := Issue(ctx, st, "web:frontdesk", IssueRequest{Duration: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err = client.PostForm("http://10.40.0.1:8080/login", url.Values{"code": {out[0].Code}, "accept": {"yes"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d\n%s", res.StatusCode, body)
	}

	// Admitted: the probes and a page come from the fake internet itself.
	for _, pr := range probes {
		res, b := get(pr.host, pr.path)
		if res.Header.Get("X-Gatehouse-Testbed") != "web" || res.StatusCode != pr.status {
			t.Fatalf("after admission: %s probe got %d from %q: %q", pr.os, res.StatusCode, res.Header.Get("X-Gatehouse-Testbed"), b)
		}
	}
	if res, b := get("www.example.com", "/"); !strings.Contains(b, testbed.WebBanner) {
		t.Fatalf("page after admission: %d %q", res.StatusCode, b)
	}
	// The portal learned the real MAC from the kernel.
	vh, err := s.OpenNS(visitorNS)
	if err != nil {
		t.Fatal(err)
	}
	defer vh.Close()
	cl, err := netlink.NewHandleAt(vh)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	link, err := cl.LinkByName(testbed.ClientInterface)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := st.GuestAcceptances(ctx, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil || len(acc) != 1 || acc[0].MAC.String() != link.Attrs().HardwareAddr.String() || acc[0].IP.String() != "10.40.0.10" {
		t.Fatalf("acceptance %+v %v; client MAC %v", acc, err, link.Attrs().HardwareAddr)
	}

	// Revoked: back to the sheet (eviction is synchronous and cuts flows).
	if _, _, err := p.Revoke(ctx, "web:frontdesk", out[0].Voucher.ID); err != nil {
		t.Fatal(err)
	}
	expectSheet("after revocation")
}
