package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base32"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-net/gatehouse/captive"
	"github.com/gatehouse-net/gatehouse/config"
	"github.com/gatehouse-net/gatehouse/password"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
)

const demoUsage = `gatehouse demo: run Gatehouse on a simulated school (needs root).

Builds a school out of network namespaces (a router with one interface per
segment, a client per segment, a management network and a fake internet
with a web server and the school's filtering DNS resolver), writes a
configuration for it, creates one admin user per role with a printed
password, starts 'gatehouse run' inside the router and makes the admin page
reachable from this machine. Runs until Ctrl-C, then removes everything it
made. Nothing touches this machine's own interfaces.

Flags:
  --listen ADDR      where this machine reaches the admin page (default 127.0.0.1:8443)
  --gatehouse PATH   the gatehouse binary to run in the router (default: this one)

Example:
  sudo gatehouse demo
`

// demoReady is printed once the admin page answers; tests wait for it.
const demoReady = "Gatehouse is running."

func cmdDemo(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8443", "host address for the admin page")
	exe := fs.String("gatehouse", "", "gatehouse binary to run in the router")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if *exe == "" {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding this binary: %w", err)
		}
		*exe = self
	}
	if err := testbed.Usable(); err != nil {
		return fmt.Errorf("the demo cannot build its simulated school (run it as root): %w", err)
	}
	log := slog.New(slog.NewTextHandler(env.stderr, logOptions(slog.LevelWarn)))

	dir, err := os.MkdirTemp("", "gatehouse-demo-")
	if err != nil {
		return fmt.Errorf("making the demo's folder: %w", err)
	}
	defer os.RemoveAll(dir)

	fmt.Fprintln(env.stdout, "Building the simulated school ...")
	school, err := testbed.Start(ctx, testbed.Options{Logger: log})
	if err != nil {
		return err
	}
	defer school.Close()

	files, err := school.Config(dir)
	if err != nil {
		return err
	}
	cfg, err := config.Load(files.Path)
	if err != nil {
		return fmt.Errorf("the demo's own configuration is not valid: %w", err)
	}
	creds, err := demoUsers(ctx, cfg.Database)
	if err != nil {
		return err
	}
	if err := reserveStaticClients(ctx, cfg.Database, school); err != nil {
		return err
	}

	logPath := filepath.Join(dir, "gatehouse.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	daemon := school.Command(ctx, "router", *exe, "run", "--config", files.Path)
	daemon.Stdout, daemon.Stderr = logFile, logFile
	if err := daemon.Start(); err != nil {
		return fmt.Errorf("starting gatehouse in the router: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- daemon.Wait() }()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("the admin page's host address: %w", err)
	}
	pctx, stopProxy := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		proxy(pctx, ln, func(ctx context.Context) (net.Conn, error) {
			return school.DialContext(ctx, "router", "tcp", cfg.Admin.Listen)
		})
	}()
	defer func() {
		stopProxy()
		ln.Close()
		wg.Wait()
	}()

	url := "https://" + ln.Addr().String()
	if err := waitHealthy(ctx, url+"/healthz", exited); err != nil {
		tail, _ := os.ReadFile(logPath)
		return fmt.Errorf("%w\n--- gatehouse log ---\n%s", err, tail)
	}

	fmt.Fprintf(env.stdout, "\n%s\n\nAdmin page: %s (self-signed certificate: accept it once)\n\n", demoReady, url)
	for _, c := range creds {
		fmt.Fprintf(env.stdout, "  %-10s user %-10s password %s\n", c.role, c.name, c.password)
	}
	fmt.Fprintln(env.stdout, "\nA visitor arrives (played now, for real, in the visitor's namespace):")
	if err := visitorScene(ctx, env.stdout, school, cfg.Database); err != nil {
		fmt.Fprintf(env.stdout, "  the scene failed: %v\n", err)
	}

	fmt.Fprintln(env.stdout, "\nA pupil tries to get round the filter (played now, in the pupil's namespace):")
	if err := pupilScene(ctx, env.stdout, school, cfg.Database); err != nil {
		fmt.Fprintf(env.stdout, "  the scene failed: %v\n", err)
	}

	seg, _ := school.Segment("pupil")
	visitor, _ := school.Segment("visitor")
	fmt.Fprintf(env.stdout, `
What to try:
  - log in as each user: each role sees only its own pages
  - as net-admin, open the audit log: the users above were created from the command line
  - as reception, issue a code on the Vouchers page and print its slip
  - as dsl, open Findings: the pupil's SSH tunnel is there, with MAC and IP
  - a visitor's phone:  ip netns exec %s curl -i http://%s/   (302 to the portal)
                        then redeem a code: curl -d code=CODE -d accept=yes http://%s:%d/login
  - a pupil's laptop:   ip netns exec %s bash
  - the daemon's log:   %s
  - its configuration:  %s

Press Ctrl-C to stop; everything the demo made is removed.
`, visitor.ClientNS, testbed.WebIP, visitor.Gateway, portalPort, seg.ClientNS, logPath, files.Path)

	select {
	case <-ctx.Done():
		fmt.Fprintln(env.stdout, "\nStopping and removing the simulated school ...")
		return nil
	case err := <-exited:
		tail, _ := os.ReadFile(logPath)
		return fmt.Errorf("gatehouse stopped unexpectedly (%v)\n--- gatehouse log ---\n%s", err, tail)
	}
}

// reserveStaticClients reserves each static client's address for its MAC:
// with MAC-address binding, a static address nobody reserved gets nothing
// through the router, on every segment: on a portal segment a code admits
// only an address the router gave (a lease or a reservation).
func reserveStaticClients(ctx context.Context, db string, school *testbed.School) error {
	st, err := store.Open(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, seg := range school.Segments() {
		if seg.Unconfigured || !seg.ClientAddr.IsValid() {
			continue
		}
		r := store.DHCPReservation{Segment: seg.Name, MAC: seg.ClientMAC, IP: seg.ClientAddr}
		if err := st.ReserveAddress(ctx, "cli:demo", r); err != nil {
			return fmt.Errorf("reserve %s's client address: %w", seg.Name, err)
		}
	}
	return nil
}

type demoCred struct{ role, name, password string }

// demoUsers creates one user per role with a fresh random password.
func demoUsers(ctx context.Context, db string) ([]demoCred, error) {
	st, err := store.Open(ctx, db)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var out []demoCred
	for _, c := range []demoCred{{role: store.RoleReception, name: "reception"}, {role: store.RoleNetwork, name: "net-admin"}, {role: store.RoleDSL, name: "dsl"}} {
		b := make([]byte, 10)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		c.password = strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
		hash, err := password.Hash(c.password)
		if err != nil {
			return nil, err
		}
		if _, err := st.CreateUser(ctx, "cli:demo", store.User{Name: c.name, Role: c.role, PasswordHash: hash}); err != nil {
			return nil, fmt.Errorf("demo user %s: %w", c.name, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// proxy accepts on ln until ctx is done and joins each connection to one
// made by dial (inside the router's namespace), so the host reaches the
// admin page without an interface of its own in the simulated school.
func proxy(ctx context.Context, ln net.Listener, dial func(context.Context) (net.Conn, error)) {
	var wg sync.WaitGroup
	defer wg.Wait()
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			up, err := dial(dctx)
			cancel()
			if err != nil {
				return
			}
			defer up.Close()
			stop := context.AfterFunc(ctx, func() { c.Close(); up.Close() })
			defer stop()
			done := make(chan struct{}, 2)
			go func() { io.Copy(up, c); closeWrite(up); done <- struct{}{} }()
			go func() { io.Copy(c, up); closeWrite(c); done <- struct{}{} }()
			<-done
			<-done
		}()
	}
}

// waitHealthy polls url until it answers 200, the daemon exits, or 60 s pass.
func waitHealthy(ctx context.Context, url string, exited <-chan error) error {
	client := &http.Client{
		Timeout: 2 * time.Second,
		// The demo's certificate is self-signed by the daemon it just started.
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("gatehouse exited during start (%v)", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return errors.New("the admin page did not answer /healthz within 60 s")
}

// closeWrite passes on one side's end of stream, so TLS close_notify and
// half-closed HTTP exchanges work through the proxy.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// visitorScene plays a visitor's arrival against the running daemon and
// prints each step: the phone's probe is sent to the portal, reception
// issues a code, the visitor redeems it, and the internet opens.
func visitorScene(ctx context.Context, w io.Writer, school *testbed.School, db string) error {
	visitor, ok := school.Segment("visitor")
	if !ok {
		return errors.New("the school has no visitor segment")
	}
	if err := sceneNeeds("curl"); err != nil {
		return err
	}
	curl := func(args ...string) string {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		base := []string{"-s", "-S", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}"}
		out, err := school.Command(cctx, "visitor", "curl", append(base, args...)...).CombinedOutput()
		if err != nil {
			first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
			return fmt.Sprintf("refused (%s)", first)
		}
		return strings.TrimSpace(string(out))
	}
	probe := []string{"--resolve", "captive.apple.com:80:" + testbed.WebIP, "http://captive.apple.com/hotspot-detect.html"}
	fmt.Fprintf(w, "  1. the phone's sign-in check:    %s\n", curl(probe...))
	fmt.Fprintf(w, "  2. HTTPS before a code:         %s\n", curl("-k", "https://"+testbed.WebIP+"/"))

	st, err := store.Open(ctx, db)
	if err != nil {
		return err
	}
	key, err := codeKey(db)
	if err != nil {
		st.Close()
		return err
	}
	codes, err := captive.Issue(ctx, st, "cli:demo", captive.IssueRequest{Key: key, Duration: 2 * time.Hour, MaxDevices: 1, Note: "demo visitor"}, nil)
	st.Close()
	if err != nil {
		return err
	}
	code := captive.FormatCode(codes[0].Code)
	fmt.Fprintf(w, "  3. reception issues a code:     %s (2 hours, one device)\n", code)
	portal := fmt.Sprintf("http://%s:%d/login", visitor.Gateway, portalPort)
	fmt.Fprintf(w, "  4. the visitor accepts the AUP: %s\n", curl("--data-urlencode", "code="+code, "-d", "accept=yes", portal))
	fmt.Fprintf(w, "  5. HTTPS after the code:        %s\n", curl("-k", "https://"+testbed.WebIP+"/"))
	return nil
}

// pupilScene opens an SSH session from the pupil's laptop to a server in the
// fake internet (the start of an `ssh -D` tunnel round the filter) and
// prints the finding the daemon stored for the DSL.
func pupilScene(ctx context.Context, w io.Writer, school *testbed.School, db string) error {
	pupil, ok := school.Segment("pupil")
	if !ok {
		return errors.New("the school has no pupil segment")
	}
	if err := sceneNeeds("nc"); err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	server := school.Command(sctx, "internet", "nc", "-l", "-s", "192.0.2.22", "-p", "22")
	server.Stdin = strings.NewReader("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
	if err := server.Start(); err != nil {
		return err
	}
	defer func() { server.Process.Kill(); server.Wait() }()
	fmt.Fprintf(w, "  1. the pupil's laptop (%s, %s) opens SSH to 192.0.2.22\n", pupil.ClientAddr, pupil.ClientMAC)

	st, err := store.Open(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	for attempt := 0; attempt < 20; attempt++ {
		client := school.Command(sctx, "pupil", "nc", "-w", "1", "192.0.2.22", "22")
		client.Stdin = strings.NewReader("SSH-2.0-OpenSSH_9.2p1\r\n")
		_ = client.Run()
		fs, err := st.Findings(sctx, store.FindingFilter{MAC: pupil.ClientMAC, Limit: 1})
		if err != nil {
			return err
		}
		if len(fs) > 0 {
			f := fs[0]
			fmt.Fprintf(w, "  2. finding stored for the DSL:  %s on %s, %s %s -> %s:%d (%s)\n", f.Class, f.Segment, f.SrcIP, f.SrcMAC, f.DstIP, f.DstPort, f.Evidence)
			return nil
		}
		select {
		case <-sctx.Done():
			return sctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return errors.New("no finding was stored")
}

// sceneNeeds says in one line which programs a scene lacks, so the demo
// tells the reader why a scene cannot run instead of an exec error.
func sceneNeeds(programs ...string) error {
	var missing []string
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("it needs %s, which this machine lacks (make demo installs it through build/deps)", strings.Join(missing, ", "))
	}
	return nil
}
