// Package browser starts Debian's headless Chromium inside a testbed
// namespace and hands a test a chromedp tab over the DevTools port, so the
// portal, admin and DSL tests drive the real browser one way. It is for
// tests only: the product never imports it (it would bring chromedp into
// the router's binary).
package browser

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/remote"

	"github.com/gatehouse-net/gatehouse/internal/testkit"
	"github.com/gatehouse-net/gatehouse/testbed"
)

// flags are what every test's Chromium runs with: headless, and nothing
// that reaches out of the namespace by itself (background networking,
// component updates, sync, crash reports).
var flags = []string{
	"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
	"--disable-quic", "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
	"--disable-component-update", "--disable-sync", "--disable-breakpad", "--disable-domain-reliability",
	"--no-proxy-server",
}

// Prepare is how every page test in Chromium begins: it finds Debian's
// chromium (a -short run without it skips; otherwise its absence fails,
// since build/deps installs it), requires the testbed, and returns the
// browser's path, a fresh testbed school and a profile directory, both
// removed when the test ends.
func Prepare(t *testing.T, opts testbed.Options) (bin string, s *testbed.School, profile string) {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if testing.Short() {
			t.Skip("chromium is not installed (Debian package chromium)")
		}
		t.Fatal("chromium is not installed (Debian package chromium): ", err)
	}
	testbed.Require(t)
	s = testbed.New(t, opts)
	// Not t.TempDir: Chromium may still be writing into its profile when
	// the test's own temporary directory is checked for removal.
	profile, err = os.MkdirTemp("", "gh-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(profile) })
	return bin, s, profile
}

// Serve serves h over plain HTTP on a loopback port inside namespace ns,
// where the test's Chromium runs, and returns its base URL. The server is
// shut down when the test ends, and an error other than the shutdown fails
// the test.
func Serve(t *testing.T, s *testbed.School, ns string, h http.Handler) string {
	t.Helper()
	ln, err := s.Listen(ns, "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serving in %s: %v", ns, err)
		}
	})
	return "http://" + ln.Addr().String()
}

// Start runs bin (Chromium) in namespace ns with a fresh profile directory
// and the test's own args (resolver rules, window size, features), waits
// for its DevTools port, and returns a tab. The browser is killed when the
// test ends.
func Start(t *testing.T, ctx context.Context, s *testbed.School, ns, bin, profile string, args ...string) context.Context {
	t.Helper()
	var out testkit.SyncBuffer
	all := append(append(append([]string{}, flags...), args...),
		"--user-data-dir="+profile, "--remote-debugging-port=9222", "about:blank")
	cmd := s.Command(ctx, ns, bin, all...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	// Ready when its DevTools port accepts a connection.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := s.DialContext(dctx, ns, "tcp4", "127.0.0.1:9222")
		cancel()
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("chromium exited before opening its DevTools port (%v):\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("chromium opened no DevTools port in 30 s:\n%s", out.String())
		}
	}
	fwd := Forward(t, ctx, s, ns, "127.0.0.1:9222")
	actx, acancel := remote.NewAllocator(ctx, "http://"+fwd+"/")
	tab, tcancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		tcancel()
		acancel()
	})
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("attach to chromium: %v\n%s", err, out.String())
	}
	return tab
}

// Forward listens on this process's loopback and relays each connection
// to addr inside namespace ns until the test ends.
func Forward(t *testing.T, ctx context.Context, s *testbed.School, ns, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				up, err := s.DialContext(fctx, ns, "tcp4", addr)
				if err != nil {
					return
				}
				defer up.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
				go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
				select {
				case <-done:
				case <-fctx.Done():
				}
				c.Close()
				up.Close()
				for range cap(done) - len(done) {
					<-done
				}
			})
		}
	})
	t.Cleanup(func() {
		stop()
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}
