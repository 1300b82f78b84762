// Command radiusserver runs Gatehouse's RADIUS server (package radius, with
// device lookups in the SQLite store exactly as the daemon adapts them) on
// one address, for bench/radius.sh to load with radclient beside
// FreeRADIUS. It is the daemon's RADIUS component alone: no admin page,
// policy or DHCP, so the figures are the RADIUS server's own.
//
// It owns nothing beyond this process: the database is the file -db names,
// seeded with -devices approved devices 02:00:00:xx:xx:xx and -users PAP
// users userN / benchpassN (argon2id, package password, as people stores
// them; the directory is an in-memory map). PAP checks go through the
// server's credential cache (its default: 10 minutes), so a user's first
// login pays argon2id and a re-authentication does not.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"github.com/gatehouse-net/gatehouse/password"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/radius"
	"github.com/gatehouse-net/gatehouse/store"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "radiusserver:", err)
		os.Exit(1)
	}
}

type identities map[string]radius.Identity

func (m identities) Lookup(_ context.Context, u string) (radius.Identity, error) {
	id, ok := m[u]
	if !ok {
		return radius.Identity{}, radius.ErrNoIdentity
	}
	return id, nil
}

// MAC returns the bench's device n.
func MAC(n int) net.HardwareAddr {
	return net.HardwareAddr{2, 0, 0, byte(n >> 16), byte(n >> 8), byte(n)}
}

func run() error {
	db := flag.String("db", "", "SQLite database file (required)")
	auth := flag.String("auth", "127.0.0.1:1812", "authentication listen address")
	acct := flag.String("acct", "127.0.0.1:1813", "accounting listen address")
	secret := flag.String("secret", "", "shared secret of the client 127.0.0.0/8 (required)")
	nDevices := flag.Int("devices", 1000, "approved devices to seed")
	nUsers := flag.Int("users", 10, "PAP users to seed")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *db == "" || *secret == "" {
		flag.Usage()
		return errors.New("missing a required flag")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	st, err := store.Open(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	for i := range *nDevices {
		if err := st.ApproveDevice(ctx, "bench", MAC(i), "", "", time.Now()); err != nil {
			return err
		}
	}
	// The users' hashes, a core each at a time (argon2id is slow).
	hashes := make([]string, *nUsers)
	errs := make([]error, *nUsers)
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.NumCPU())
	for i := range *nUsers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			hashes[i], errs[i] = password.Hash(fmt.Sprintf("benchpass%d", i))
		}()
	}
	wg.Wait()
	ids := identities{}
	for i := range *nUsers {
		if errs[i] != nil {
			return errs[i]
		}
		ids[fmt.Sprintf("user%d", i)] = radius.Identity{Person: fmt.Sprintf("P%d", i), PasswordHash: hashes[i], Active: true}
	}
	srv, err := radius.New(radius.Options{
		AuthAddr: *auth, AcctAddr: *acct,
		Clients:  []radius.Client{{Name: "bench", Prefix: netip.MustParsePrefix("127.0.0.0/8"), Secret: []byte(*secret), RequireMessageAuthenticator: true}},
		Segments: []radius.Segment{{Name: "pupil", VLAN: 20, SSIDs: []string{"Pupils"}, Unknown: policy.UnknownDeny}},
		Devices:  radius.StoreDevices{Store: st}, Identities: ids, Sessions: st,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	fmt.Println("ready")
	return srv.Run(ctx)
}
