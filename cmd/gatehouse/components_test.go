package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-net/gatehouse/config"
	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/inspect"
)

// untilDone is a component that runs until its context ends, and says
// that it saw the end.
func untilDone(stopped *atomic.Bool) func(context.Context) error {
	return func(ctx context.Context) error {
		<-ctx.Done()
		stopped.Store(true)
		return nil
	}
}

func TestAComponentThatStopsEarlyStopsTheDaemon(t *testing.T) {
	boom := errors.New("capture socket closed")
	cases := []struct {
		name string
		run  func(context.Context) error
		want error
	}{
		{"returns nil", func(context.Context) error { return nil }, errStoppedEarly},
		{"returns an error", func(context.Context) error { return boom }, boom},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var log bytes.Buffer
			var other atomic.Bool
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := runComponents(ctx, slog.New(slog.NewTextHandler(&log, nil)), []component{
				{"dhcp", untilDone(&other)},
				{"inspection 0", tc.run},
			}, func() {}, nil, func() {})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), "inspection 0") {
				t.Fatalf("runComponents = %v, want %v naming the component", err, tc.want)
			}
			if ctx.Err() != nil {
				t.Fatal("runComponents returned only when the test gave up")
			}
			if !other.Load() {
				t.Error("the other components were not stopped and waited for")
			}
			if !strings.Contains(log.String(), "component=\"inspection 0\"") {
				t.Errorf("the log does not name the component that stopped:\n%s", log.String())
			}
		})
	}
}

func TestComponentsStopQuietlyWithTheDaemon(t *testing.T) {
	var a, b atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	hup := make(chan os.Signal, 1)
	reloaded := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- runComponents(ctx, slog.New(slog.DiscardHandler), []component{{"a", untilDone(&a)}, {"b", untilDone(&b)}},
			func() {}, hup, func() { close(reloaded) })
	}()
	hup <- syscall.SIGHUP
	select {
	case <-reloaded:
	case err := <-done:
		t.Fatalf("runComponents returned %v before its context ended", err)
	case <-time.After(10 * time.Second):
		t.Fatal("SIGHUP did not reload")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("a stop by the daemon's own context is no failure: %v", err)
	}
	if !a.Load() || !b.Load() {
		t.Error("runComponents returned before its components")
	}
}

// A reload names every host problem of the refused file, not the first.
func TestReloadReportsEveryHostProblem(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir)
	running, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(testConfig(dir), "interface: lo", "interface: gh-absent0", 1) +
		"uplink:\n  interface: gh-absent1\ninspect:\n  interfaces: [gh-absent2]\n"
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	d := &daemon{
		log:     slog.New(slog.NewTextHandler(&log, nil)),
		cfg:     running,
		hub:     events.New(),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reloads"}, []string{"outcome"}),
	}
	d.reload()
	for _, want := range []string{"configuration reload refused", "gh-absent0", "gh-absent1", "gh-absent2", "3 thing(s)"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, log.String())
		}
	}
	if d.currentConfig() != running {
		t.Error("a refused reload replaced the running configuration")
	}
}

// A reload re-reads inspection's signatures file: an edited file takes
// effect without a restart, and a bad one is refused with its bad line
// named while the set in force stays and the rest of the reload goes on.
func TestReloadAppliesSignaturesAndRefusesABadFile(t *testing.T) {
	dir := t.TempDir()
	sigFile := filepath.Join(dir, "signatures.txt")
	write := func(path, content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(sigFile, "name proxy school-test proxy.example.net a test proxy\n")
	path := filepath.Join(dir, "gatehouse.yaml")
	write(path, testConfig(dir)+"inspect:\n  signatures: "+sigFile+"\n")
	running, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	site := inspect.NewSite(inspect.SiteOptions{Interfaces: []inspect.Interface{{Name: "gh-sig0"}}})
	var log bytes.Buffer
	d := &daemon{
		log:     slog.New(slog.NewTextHandler(&log, nil)),
		cfg:     running,
		hub:     events.New(),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reloads"}, []string{"outcome"}),
		sigs:    site,
	}
	d.reload()
	first := site.Signatures()
	if first.Len() != 1 || !strings.Contains(log.String(), "inspection signatures reloaded") {
		t.Fatalf("after a reload the site applies %d signature(s), want the file's 1; log:\n%s", first.Len(), log.String())
	}
	write(sigFile, "name proxy school-test proxy.example.net\nport vpn x tcp/99999 out of range\n")
	log.Reset()
	d.reload()
	for _, want := range []string{"inspection signatures reload refused", "signatures.txt:2:", "configuration reloaded"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, log.String())
		}
	}
	if site.Signatures() != first {
		t.Error("a bad signatures file replaced the set in force")
	}
}
