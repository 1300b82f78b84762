// Command radiusdaemon stands up Gatehouse's daemon as deployed (`gatehouse
// run` with the testbed's configuration, every component on, in a testbed
// router namespace) for bench/radius.sh to load with radclient from the
// testbed's management namespace, where a school's access points are.
//
// Before the daemon starts it seeds the database the daemon will open:
// -devices approved devices 02:00:00:00:xx:xx (store.ApproveDevice, what
// `gatehouse device approve` calls) and -users pupils imported with
// `gatehouse people import` from a SIMS-style export written from the
// shared one with usernames userN, each given the Wi-Fi password
// benchpassN (an argon2id hash per person, as `gatehouse people password`
// stores it; set through the store so that seeding 200 people does not
// start 200 processes).
//
// It then writes -env (shell assignments: NS_ROUTER, NS_MGMT, ADDR, SECRET,
// PID of the daemon, CLIENTS for FreeRADIUS's clients.conf), starts the
// daemon and waits for SIGTERM or SIGINT, when it stops the daemon and
// removes the namespaces. It owns the namespaces and the daemon process.
package main

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/gatehouse-net/gatehouse/bench/internal/daemon"
	"github.com/gatehouse-net/gatehouse/password"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/testbed"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "radiusdaemon:", err)
		os.Exit(1)
	}
}

func run() error {
	bin := flag.String("gatehouse", "", "the gatehouse binary (required)")
	mis := flag.String("mis", "", "SIMS-style pupil export to take the people from (required)")
	dir := flag.String("dir", "", "directory for the configuration, database and log (required)")
	env := flag.String("env", "", "file to write the shell assignments to (required)")
	nDevices := flag.Int("devices", 1000, "approved devices to seed")
	nUsers := flag.Int("users", 200, "people with a Wi-Fi password to seed")
	flag.Parse()
	if *bin == "" || *mis == "" || *dir == "" || *env == "" || *nDevices < 1 || *nDevices > 65536 || *nUsers < 1 {
		flag.Usage()
		return errors.New("missing or bad flag")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	s, err := daemon.StartSchool(ctx, testbed.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	files, err := s.Config(*dir)
	if err != nil {
		return err
	}
	// The pupil segment (VLAN 20) serves the Pupils SSID the requests name.
	if _, err := daemon.ServePupilsSSID(files.Path); err != nil {
		return err
	}

	// People first (the import is the daemon's own command), then the
	// devices and passwords through the store.
	csvPath := filepath.Join(*dir, "pupils.csv")
	if err := writePupils(*mis, csvPath, *nUsers); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	out, err := exec.CommandContext(cctx, *bin, "people", "import", "--config", files.Path, "--apply", csvPath).CombinedOutput()
	cancel()
	if err != nil {
		return fmt.Errorf("gatehouse people import: %w\n%s", err, out)
	}
	if err := seed(ctx, files.Database, *nDevices, *nUsers); err != nil {
		return err
	}

	log, err := os.Create(filepath.Join(*dir, "gatehouse.log"))
	if err != nil {
		return err
	}
	defer log.Close()
	gh, err := daemon.Run(s, "router", *bin, files.Path, log, 20*time.Second)
	if err != nil {
		return err
	}
	defer gh.Stop()
	d, done := gh.Cmd, gh.Done
	vars := fmt.Sprintf("NS_ROUTER=%s\nNS_MGMT=%s\nADDR=%s\nSECRET=%s\nPID=%d\nCLIENTS=%s\n",
		s.RouterNS(), s.MgmtNS(), testbed.MgmtRouterIP, files.RadiusSecret, d.Process.Pid, testbed.MgmtNet)
	if err := os.WriteFile(*env+".tmp", []byte(vars), 0o600); err != nil {
		return err
	}
	if err := os.Rename(*env+".tmp", *env); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return nil
	case <-done:
		return errors.New("the daemon exited; see " + log.Name())
	}
}

// writePupils writes the first n pupils of the export who have not left,
// with usernames user0... (the logins both servers know).
func writePupils(from, to string, n int) error {
	f, err := os.Open(from)
	if err != nil {
		return err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return fmt.Errorf("%s: %w", from, err)
	}
	if len(rows) < 2 {
		return fmt.Errorf("%s: no pupils", from)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for _, h := range []string{"UPN", "Leaving Date", "Username", "Email"} {
		if _, ok := col[h]; !ok {
			return fmt.Errorf("%s: no %q column", from, h)
		}
	}
	out := [][]string{rows[0]}
	for _, r := range rows[1:] {
		if len(out) == n+1 {
			break
		}
		if r[col["Leaving Date"]] != "" || r[col["UPN"]] == "" {
			continue
		}
		i := len(out) - 1
		r[col["Username"]] = fmt.Sprintf("user%d", i)
		r[col["Email"]] = fmt.Sprintf("user%d@pupils.school.example", i)
		out = append(out, r)
	}
	if len(out) != n+1 {
		return fmt.Errorf("%s: %d pupils who have not left, want %d", from, len(out)-1, n)
	}
	w, err := os.Create(to)
	if err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	if err := cw.WriteAll(out); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// seed approves the devices and sets the people's passwords.
func seed(ctx context.Context, db string, nDevices, nUsers int) error {
	st, err := store.Open(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	now := time.Now()
	for i := range nDevices {
		mac := net.HardwareAddr{2, 0, 0, 0, byte(i >> 8), byte(i)}
		if err := st.ApproveDevice(ctx, "bench", mac, "", "", now); err != nil {
			return err
		}
	}
	hashes := make([]string, nUsers)
	errs := make([]error, nUsers)
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.NumCPU())
	for i := range nUsers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			hashes[i], errs[i] = password.Hash(fmt.Sprintf("benchpass%d", i))
		}()
	}
	wg.Wait()
	for i := range nUsers {
		if errs[i] != nil {
			return errs[i]
		}
		p, err := st.PersonByKey(ctx, fmt.Sprintf("user%d", i))
		if err != nil {
			return fmt.Errorf("person user%d: %w", i, err)
		}
		if err := st.SetPersonWiFiCredentials(ctx, "bench", p.ID, hashes[i], nil, now); err != nil {
			return err
		}
	}
	return nil
}
