package captive

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
)

// A browser opens spare connections to a site before it needs them, and
// keeps used ones alive. While the device is held, the kernel sends them
// all to the portal, for as long as they live; after admission the next
// page must go to the internet, so the portal closes each intercepted
// connection after its answer and, on admission, the device's idle ones.
func TestAdmissionClosesConnectionsOpenedWhileHeld(t *testing.T) {
	h := newHarness(t, Limits{})
	ip := netip.MustParseAddr("127.0.0.1")
	h.nb[ip] = net.HardwareAddr{0x02, 0, 0, 0, 0, 7}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- h.p.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	addr := ln.Addr().String()

	// A spare connection, never used yet.
	spare, err := net.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer spare.Close()

	// An intercepted page: answered, then the connection is closed.
	used, err := net.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer used.Close()
	if _, err := io.WriteString(used, "GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(used), nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound || !res.Close {
		t.Fatalf("intercepted page: %d, Connection %q; want a redirect that closes the connection", res.StatusCode, res.Header.Get("Connection"))
	}

	code := h.issue(IssueRequest{Duration: time.Hour})
	form := url.Values{"code": {code}, "accept": {"yes"}}
	req, err := http.NewRequest("POST", "http://"+addr+"/login", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = portalHost
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %d", res.StatusCode)
	}

	// Closed before the 303 was sent, so the FIN is already here; the
	// deadline stays under the server's 5 s ReadHeaderTimeout, which
	// would close an unused connection anyway.
	if err := spare.SetReadDeadline(time.Now().Add(3 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := spare.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the spare connection is still open after admission: the next page would go to the portal")
	}
	if n != 0 || (err != io.EOF && !strings.Contains(err.Error(), "reset")) {
		t.Fatalf("spare connection after admission: read %d, %v; want it closed", n, err)
	}
}
