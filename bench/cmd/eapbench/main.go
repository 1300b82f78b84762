// Command eapbench measures WPA-Enterprise: the same bounded parallel
// eapol_test load (PEAP-MSCHAPv2, then TTLS-PAP, over TLS 1.2) against
// Gatehouse's daemon as deployed (`gatehouse run` in a testbed router
// namespace, with a person imported and given a password through the
// command line) and against FreeRADIUS 3 (Debian freeradius, the packaged
// configuration copied to a temporary directory, the same user and the
// same ECDSA P-256 server certificate and CA that Gatehouse's school CA
// made), one server after the other in the same namespace and port.
//
// It prints, per server and method: full authentications per second (wall
// time of the whole load), the server's CPU (utime+stime of its process
// from /proc) per full authentication, the ratio Gatehouse/FreeRADIUS and
// the target (at most 0.5), PASS or FAIL. Every eapol_test checks
// the MPPE keys; a run that is not "SUCCESS" with "MPPE keys OK: 1" counts
// as failed and is reported, never as a success.
//
// It owns nothing of the product: it only drives the gatehouse binary and
// freeradius from outside.
package main

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gatehouse-net/gatehouse/bench/internal/daemon"
	"github.com/gatehouse-net/gatehouse/testbed"
)

const (
	person   = "C00223272516A" // 1002jacc in shared/mis/pupils-sims.csv
	login    = "1002jacc"
	password = "bench correct horse 42"
	radPort  = "1812"
)

func main() {
	bin := flag.String("gatehouse", "", "the gatehouse binary (required)")
	mis := flag.String("mis", "", "the pupils CSV to import (shared/mis/pupils-sims.csv)")
	n := flag.Int("n", 200, "full authentications per server in ttls-pap-cold (each a different pupil's first)")
	repeat := flag.Int("repeat", 3, "peap-mschapv2 and ttls-pap log in n*repeat times: the CPU figure is whole 10 ms ticks, and 200 logins of 0.55 ms are 11 of them, so one tick more or less moved the ratio by 9%")
	par := flag.Int("parallel", 16, "eapol_test runs in flight")
	timeout := flag.Duration("timeout", 5*time.Minute, "hard limit of each server's load for one method")
	skipFR := flag.Bool("no-freeradius", false, "measure Gatehouse only")
	only := flag.String("methods", strings.Join(methods, ","), "the methods to load, comma-separated")
	var prof profile
	flag.StringVar(&prof.out, "perf", "", "`perf record -g` Gatehouse's daemon during one load into this file (bench/eap.sh PERF=)")
	flag.StringVar(&prof.load, "perf-load", "peap-mschapv2", "the load -perf records")
	flag.Parse()
	methods = strings.Split(*only, ",")
	if *bin == "" || *mis == "" || *n < 1 || *n > 5000 || *repeat < 1 || *n**repeat > 20000 || *par < 1 || *par > 64 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *bin, *mis, *n, *repeat, *par, *timeout, *skipFR, prof); err != nil {
		fmt.Fprintln(os.Stderr, "eapbench:", err)
		os.Exit(1)
	}
}

type result struct {
	ok, failed int
	wall       float64 // seconds
	ticks      int64   // the server's CPU, user and system, in /proc's 10 ms ticks
	firstErr   string
}

// The loads. TTLS-PAP runs twice over the same people: first logins
// (ttls-pap-cold: Gatehouse verifies each password against its argon2id
// hash) and then their re-authentications (ttls-pap: within the credential
// cache's expiry, a keyed hash instead of argon2id). FreeRADIUS compares a
// cleartext password both times.
var methods = []string{"peap-mschapv2", "ttls-pap-cold", "ttls-pap"}

// profile says which Gatehouse load to record with perf, if any (-perf,
// -perf-load).
type profile struct{ out, load string }

// eapMethod is the EAP method a load's name stands for.
func eapMethod(load string) string { return strings.TrimSuffix(load, "-cold") }

func run(ctx context.Context, bin, mis string, n, repeat, par int, timeout time.Duration, skipFR bool, prof profile) error {
	s, err := daemon.StartSchool(ctx, testbed.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	dir, err := os.MkdirTemp("", "gh-eap-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	files, err := s.Config(dir)
	if err != nil {
		return err
	}
	// The pupil segment carries the Pupils SSID, so the pupil may log in
	// there (Called-Station-Id names it).
	cfg, err := daemon.ServePupilsSSID(files.Path)
	if err != nil {
		return err
	}
	cli := func(stdin string, args ...string) error {
		c, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(c, bin, args...)
		cmd.Stdin = strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("gatehouse %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := cli("", "people", "import", "--config", files.Path, "--apply", mis); err != nil {
		return err
	}
	if err := cli(password+"\n", "people", "password", "--config", files.Path, "--person", person); err != nil {
		return err
	}
	// TTLS-PAP logs in n different pupils (each a first login once), all
	// with the bench's password.
	users, err := pupils(mis, n)
	if err != nil {
		return err
	}
	needPupils := false
	for _, m := range methods {
		needPupils = needPupils || eapMethod(m) == "ttls-pap"
	}
	for _, u := range users {
		if !needPupils {
			break // PEAP alone logs in the one person
		}
		if err := cli(password+"\n", "people", "password", "--config", files.Path, "--person", u.upn); err != nil {
			return err
		}
	}

	log, err := os.Create(filepath.Join(dir, "gatehouse.log"))
	if err != nil {
		return err
	}
	defer log.Close()
	gh, err := daemon.Run(s, "router", bin, files.Path, log, 20*time.Second)
	if err != nil {
		return err
	}
	d, done, stopGH := gh.Cmd, gh.Done, gh.Stop
	defer stopGH()
	pkiDir := filepath.Join(filepath.Dir(files.Path), "pki")
	if db := dbPath(cfg); db != "" {
		pkiDir = filepath.Join(filepath.Dir(db), "pki")
	}
	ca := filepath.Join(pkiDir, "ca.pem")
	if err := waitReady(ctx, s, dir, ca, files.RadiusSecret, done); err != nil {
		return fmt.Errorf("gatehouse: %w\n%s", err, tailFile(log.Name()))
	}
	caCopy := filepath.Join(dir, "ca.pem")
	if err := copyFile(ca, caCopy, 0o644); err != nil {
		return err
	}
	res := map[string]result{}
	for _, m := range methods {
		stopPerf := prof.start(m, d.Process.Pid)
		res["gatehouse "+m] = load(ctx, s, dir, caCopy, files.RadiusSecret, m, users, d.Process.Pid, logins(m, n, repeat), par, timeout)
		stopPerf()
	}
	stopGH()

	if !skipFR {
		raddb, err := freeradiusConfig(dir, pkiDir, files.RadiusSecret, users)
		if err != nil {
			return err
		}
		frLog, err := os.Create(filepath.Join(dir, "freeradius.log"))
		if err != nil {
			return err
		}
		defer frLog.Close()
		fr := s.Command(context.Background(), "router", "freeradius", "-f", "-l", "stdout", "-d", raddb)
		fr.Stdout, fr.Stderr = frLog, frLog
		if err := fr.Start(); err != nil {
			return err
		}
		frDone := make(chan struct{})
		go func() { _ = fr.Wait(); close(frDone) }()
		defer func() { _ = fr.Process.Kill(); <-frDone }()
		if err := waitReady(ctx, s, dir, caCopy, files.RadiusSecret, frDone); err != nil {
			return fmt.Errorf("freeradius: %w\n%s", err, tailFile(frLog.Name()))
		}
		for _, m := range methods {
			res["freeradius "+m] = load(ctx, s, dir, caCopy, files.RadiusSecret, m, users, fr.Process.Pid, logins(m, n, repeat), par, timeout)
		}
	}
	report(res, n, repeat, par, skipFR)
	return nil
}

// start starts `perf record -g` on the daemon (pid) when -perf asks for
// the load m; the function it returns stops it and waits for the file.
// perf runs outside the daemon, so the CPU it takes is not the daemon's
// (its sampling interrupts are, a little: compare figures with PERF unset).
func (p profile) start(m string, pid int) func() {
	if p.out == "" || m != p.load {
		return func() {}
	}
	cmd := exec.Command("perf", "record", "-q", "-F", "499", "-g", "-p", strconv.Itoa(pid), "-o", p.out)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "eapbench: perf:", err)
		return func() {}
	}
	return func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}
}

// pupil is one login of the MIS export.
type pupil struct{ upn, login string }

// pupils returns up to n pupils of the SIMS-style export who have not left
// (leavers are refused), other than the PEAP person.
func pupils(path string, n int) ([]pupil, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(rows) < 2 {
		return nil, fmt.Errorf("%s: no pupils", path)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for _, h := range []string{"UPN", "Leaving Date", "Username"} {
		if _, ok := col[h]; !ok {
			return nil, fmt.Errorf("%s: no %q column", path, h)
		}
	}
	var out []pupil
	for _, r := range rows[1:] {
		if len(out) == n {
			break
		}
		u := pupil{upn: r[col["UPN"]], login: r[col["Username"]]}
		if r[col["Leaving Date"]] != "" || u.upn == "" || u.login == "" || u.upn == person {
			continue
		}
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no pupil who has not left", path)
	}
	return out, nil
}

var dbLine = regexp.MustCompile(`(?m)^database: *(\S+)`)

func dbPath(cfg string) string {
	if m := dbLine.FindStringSubmatch(cfg); m != nil {
		return strings.Trim(m[1], `"'`)
	}
	return ""
}

func network(method, ca, login string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "network={\n\tkey_mgmt=WPA-EAP\n\tca_cert=%q\n", ca)
	switch eapMethod(method) {
	case "peap-mschapv2":
		fmt.Fprintf(&b, "\teap=PEAP\n\tphase2=\"auth=MSCHAPV2\"\n")
	case "ttls-pap":
		fmt.Fprintf(&b, "\teap=TTLS\n\tphase2=\"auth=PAP\"\n")
	}
	fmt.Fprintf(&b, "\tanonymous_identity=\"anonymous@school.example\"\n\tidentity=%q\n\tpassword=%q\n", login, password)
	fmt.Fprintf(&b, "\tphase1=\"tls_disable_tlsv1_0=1 tls_disable_tlsv1_1=1 tls_disable_tlsv1_3=1\"\n}\n")
	return b.String()
}

// eapol runs one full authentication and says whether it succeeded with
// the MPPE keys checked.
func eapol(ctx context.Context, s *testbed.School, conf, secret string, i int) (bool, string) {
	c, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	out, err := s.Command(c, "mgmt", "eapol_test", "-c", conf, "-a", testbed.MgmtRouterIP, "-p", radPort, "-s", secret,
		"-t", "30", "-M", fmt.Sprintf("02:00:00:00:%02x:%02x", (i>>8)&255, i&255), "-N", "30:s:0A-00-00-00-00-01:Pupils").CombinedOutput()
	o := string(out)
	if err == nil && strings.Contains(o, "SUCCESS") && strings.Contains(o, "MPPE keys OK: 1  mismatch: 0") {
		return true, ""
	}
	return false, fmt.Sprintf("%v: %s", err, tail(o, 12))
}

func waitReady(ctx context.Context, s *testbed.School, dir, ca, secret string, exited <-chan struct{}) error {
	conf := filepath.Join(dir, "ready.conf")
	var last string
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		select {
		case <-exited:
			return errors.New("exited during start")
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if _, err := os.Stat(ca); err != nil {
			continue
		}
		if err := os.WriteFile(conf, []byte(network("peap-mschapv2", ca, login)), 0o644); err != nil {
			return err
		}
		ok, out := eapol(ctx, s, conf, secret, 0)
		if ok {
			return nil
		}
		last = out
	}
	return fmt.Errorf("no successful PEAP-MSCHAPv2 within 90 s; last eapol_test:\n%s", last)
}

// ticks is pid's CPU so far, user and system, in USER_HZ (100/s) ticks.
// Kept whole: differences of seconds in floating point (12.34 - 12.23 is
// 0.10999999999999943) put a figure exactly at the target on either side
// of it.
func ticks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("utime of %d: %w", pid, err)
	}
	st, err := strconv.ParseInt(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stime of %d: %w", pid, err)
	}
	return u + st, nil
}

func load(ctx context.Context, s *testbed.School, dir, ca, secret, method string, users []pupil, pid, n, par int, timeout time.Duration) result {
	// PEAP logs in the one person; TTLS-PAP the pupils in turn.
	confs := make([]string, n)
	for i := range confs {
		who := login
		if eapMethod(method) == "ttls-pap" {
			who = users[i%len(users)].login
		}
		confs[i] = filepath.Join(dir, fmt.Sprintf("%s-%s.conf", eapMethod(method), who))
		if err := os.WriteFile(confs[i], []byte(network(method, ca, who)), 0o644); err != nil {
			return result{failed: n, firstErr: err.Error()}
		}
	}
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c0, err := ticks(pid)
	if err != nil {
		return result{failed: n, firstErr: "reading the server's CPU: " + err.Error()}
	}
	t0 := time.Now()
	var (
		mu  sync.Mutex
		r   result
		wg  sync.WaitGroup
		sem = make(chan struct{}, par)
	)
	for i := 0; i < n; i++ {
		if lctx.Err() != nil {
			r.failed += n - i
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			ok, out := eapol(lctx, s, confs[i], secret, i+1)
			mu.Lock()
			defer mu.Unlock()
			if ok {
				r.ok++
			} else {
				r.failed++
				if r.firstErr == "" {
					r.firstErr = out
				}
			}
		}(i)
	}
	wg.Wait()
	r.wall = time.Since(t0).Seconds()
	c1, err := ticks(pid)
	if err != nil {
		// No CPU figure, no measurement: counted as failed, so no ratio.
		r.failed, r.ok, r.firstErr = r.failed+r.ok, 0, "reading the server's CPU: "+err.Error()
		return r
	}
	r.ticks = c1 - c0
	return r
}

// logins is how many full authentications the load m makes: n for the
// cold load (n pupils' first logins), n*repeat for the others.
func logins(m string, n, repeat int) int {
	if strings.HasSuffix(m, "-cold") {
		return n
	}
	return n * repeat
}

func report(res map[string]result, n, repeat, par int, skipFR bool) {
	fmt.Printf("eapol_test load: %d full authentications per server for ttls-pap-cold, %d for the others, %d in flight, TLS 1.2, MPPE keys checked\n", n, n*repeat, par)
	fmt.Printf("ttls-pap-cold: each login a pupil's first (argon2id at Gatehouse); ttls-pap: the same pupils re-authenticating (Gatehouse's credential cache)\n")
	fmt.Printf("%-10s %-14s %6s %6s %8s %8s %14s\n", "server", "method", "ok", "failed", "wall_s", "auth/s", "cpu_ms/auth")
	servers := []string{"gatehouse", "freeradius"}
	if skipFR {
		servers = servers[:1]
	}
	per := func(r result) float64 {
		if r.ok == 0 {
			return 0
		}
		return float64(r.ticks) * 10 / float64(r.ok) // USER_HZ is 100 on Linux: 10 ms a tick
	}
	for _, m := range methods {
		for _, srv := range servers {
			r := res[srv+" "+m]
			fmt.Printf("%-10s %-14s %6d %6d %8.1f %8.1f %14.2f\n", srv, m, r.ok, r.failed, r.wall, float64(r.ok)/r.wall, per(r))
			if r.firstErr != "" {
				fmt.Printf("  first failure: %s\n", r.firstErr)
			}
		}
	}
	if skipFR {
		return
	}
	var pass, fail []string
	for _, m := range methods {
		g, f := res["gatehouse "+m], res["freeradius "+m]
		if g.failed > 0 || f.failed > 0 || per(f) == 0 || g.ok == 0 {
			fmt.Printf("%s: no ratio (failed authentications)\n", m)
			// The verdict line every bench script prints (bench/lib/verdict.sh).
			fmt.Printf("FAIL eap %s CPU ms per full authentication: gatehouse n/a, freeradius n/a, ratio n/a, target <= 0.50\n", m)
			fail = append(fail, m)
			continue
		}
		ratio := per(g) / per(f)
		v := "PASS"
		// Judged in whole ticks, g.ticks/g.ok <= 0.5 * f.ticks/f.ok, so a
		// figure exactly at the target passes as "<=" says.
		if 2*g.ticks*int64(f.ok) > f.ticks*int64(g.ok) {
			v = "FAIL"
			fail = append(fail, m)
		} else {
			pass = append(pass, m)
		}
		// The verdict line every bench script prints (bench/lib/verdict.sh).
		fmt.Printf("%s eap %s CPU ms per full authentication: gatehouse %.2f, freeradius %.2f, ratio %.2f, target <= 0.50\n", v, m, per(g), per(f), ratio)
	}
	fmt.Printf("meet the target: %s; miss it: %s\n", orNone(pass), orNone(fail))
}

func orNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

func tail(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

func tailFile(p string) string {
	b, _ := os.ReadFile(p)
	return tail(string(b), 30)
}

func copyFile(from, to string, mode os.FileMode) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, mode)
}

// freeradiusConfig copies Debian's packaged configuration (default and
// inner-tunnel virtual servers, eap with PEAP and TTLS) into dir and points
// it at Gatehouse's server certificate, key and CA, the same user with the
// same password, and the testbed's access point network and secret.
func freeradiusConfig(dir, pkiDir, secret string, users []pupil) (string, error) {
	raddb := filepath.Join(dir, "raddb")
	if out, err := exec.Command("cp", "-a", "/etc/freeradius/3.0", raddb).CombinedOutput(); err != nil {
		return "", fmt.Errorf("copy /etc/freeradius/3.0: %w: %s", err, out)
	}
	certs := filepath.Join(raddb, "bench-certs")
	if err := os.MkdirAll(certs, 0o755); err != nil {
		return "", err
	}
	for _, f := range []string{"server.pem", "server-key.pem", "ca.pem"} {
		// 0644 in a temporary directory: freeradius drops to freerad.
		if err := copyFile(filepath.Join(pkiDir, f), filepath.Join(certs, f), 0o644); err != nil {
			return "", err
		}
	}
	edit := func(name string, f func(string) string) error {
		p := filepath.Join(raddb, name)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(p, []byte(f(string(b))), 0o644)
	}
	set := func(s, key, val string) string {
		return regexp.MustCompile(`(?m)^(\s*)`+key+` = .*$`).ReplaceAllString(s, "${1}"+key+" = "+val)
	}
	if err := edit("radiusd.conf", func(s string) string { return set(s, "raddbdir", raddb) }); err != nil {
		return "", err
	}
	if err := edit("mods-available/eap", func(s string) string {
		s = set(s, "private_key_file", filepath.Join(certs, "server-key.pem"))
		s = set(s, "certificate_file", filepath.Join(certs, "server.pem"))
		return set(s, "ca_file", filepath.Join(certs, "ca.pem"))
	}); err != nil {
		return "", err
	}
	if err := edit("mods-config/files/authorize", func(s string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "%s Cleartext-Password := %q\n\n", login, password)
		for _, u := range users {
			fmt.Fprintf(&b, "%s Cleartext-Password := %q\n\n", u.login, password)
		}
		return b.String() + s
	}); err != nil {
		return "", err
	}
	if err := edit("clients.conf", func(s string) string {
		return s + fmt.Sprintf("\nclient aps {\n\tipaddr = %s\n\tsecret = %s\n}\n", testbed.MgmtNet, secret)
	}); err != nil {
		return "", err
	}
	if out, err := exec.Command("chmod", "-R", "a+rX", raddb).CombinedOutput(); err != nil {
		return "", fmt.Errorf("chmod: %w: %s", err, out)
	}
	return raddb, nil
}
