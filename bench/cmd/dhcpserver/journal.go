package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gatehouse-net/gatehouse/dhcp"
)

// journalStore is a measurement, not a way to run the server: it answers
// "how far would the REQUEST-ACK tail fall if an ACK waited only for its
// lease's append to a journal file and that file's fdatasync, with SQLite
// written behind in larger batches?" (bench/README.md, "A lease journal's
// ceiling"). A product journal would also need replay into SQLite at
// start, and readers of the lease table that wait for it; this has
// neither, so a lease acknowledged and lost with the process stays lost,
// and only -journal-probe (bench/dhcp.sh JOURNAL_PROBE=1) selects it.
//
// Its costs are kept at least those of a real journal's: every batch is
// encoded (JSON), written and fdatasynced before SaveBatch returns, and
// every lease and device still reaches SQLite through the wrapped store.
type journalStore struct {
	dhcp.LeaseStore
	f   *os.File
	off int64 // next write; only the committer's goroutine calls SaveBatch
	// behind carries copies of each journalled batch to run, which writes
	// them to the wrapped store.
	behind chan journalBatch
	failed atomic.Uint64
	log    *slog.Logger
}

// journalBatch is one batch as journalled (JSON) and as handed to run.
type journalBatch struct {
	Leases  []dhcp.Lease
	Devices []dhcp.Device
}

// journalRing is the journal file's size: written once with zeros at
// start, so that a record's fdatasync writes data blocks and never the
// file's size or block map, then reused from the start when full.
const journalRing = 8 << 20

// behindFor is how long run gathers journalled batches into one SQLite
// transaction: long enough for tens of ACKs' batches to share it.
const behindFor = 20 * time.Millisecond

func newJournalStore(inner dhcp.LeaseStore, path string, log *slog.Logger) (*journalStore, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal probe: %w", err)
	}
	if _, err := f.WriteAt(make([]byte, journalRing), 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("journal probe: preallocate %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("journal probe: sync %s: %w", path, err)
	}
	return &journalStore{LeaseStore: inner, f: f, behind: make(chan journalBatch, 1024), log: log}, nil
}

// SaveBatch returns once the batch is in the journal and fdatasynced; the
// database write follows in run.
func (j *journalStore) SaveBatch(ctx context.Context, leases []dhcp.Lease, devices []dhcp.Device) error {
	rec, err := json.Marshal(journalBatch{Leases: leases, Devices: devices})
	if err != nil {
		return fmt.Errorf("journal probe: encode: %w", err)
	}
	if j.off+int64(len(rec)) > journalRing {
		j.off = 0
	}
	if _, err := j.f.WriteAt(rec, j.off); err != nil {
		return fmt.Errorf("journal probe: write: %w", err)
	}
	j.off += int64(len(rec))
	if err := syscall.Fdatasync(int(j.f.Fd())); err != nil {
		return fmt.Errorf("journal probe: fdatasync: %w", err)
	}
	// The committer reuses its slices once SaveBatch returns.
	b := journalBatch{Leases: slices.Clone(leases), Devices: slices.Clone(devices)}
	select {
	case j.behind <- b:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run writes journalled batches to the wrapped store, behindFor's worth
// at a time, until ctx ends and then what is left; main waits for it.
func (j *journalStore) run(ctx context.Context) {
	defer j.f.Close()
	for {
		var b journalBatch
		select {
		case b = <-j.behind:
		case <-ctx.Done():
			j.drain()
			return
		}
		t := time.NewTimer(behindFor)
	gather:
		for {
			select {
			case more := <-j.behind:
				b.Leases = append(b.Leases, more.Leases...)
				b.Devices = append(b.Devices, more.Devices...)
			case <-t.C:
				break gather
			case <-ctx.Done():
				t.Stop()
				break gather
			}
		}
		j.write(b)
	}
}

func (j *journalStore) drain() {
	for {
		select {
		case b := <-j.behind:
			j.write(b)
		default:
			return
		}
	}
}

func (j *journalStore) write(b journalBatch) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := j.LeaseStore.SaveBatch(ctx, b.Leases, b.Devices); err != nil {
		j.failed.Add(1)
		j.log.Error("journal probe: database write behind the journal", "leases", len(b.Leases), "err", err)
	}
}
