package findingstore

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
)

// memStore is the two methods a Sink needs, without a database: the sink
// depends on them alone, not on *store.Store.
type memStore struct {
	mu   sync.Mutex
	rows []store.Finding
	fail error
}

func (m *memStore) InsertFindings(_ context.Context, fs []store.Finding) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.rows = append(m.rows, fs...)
	return nil
}

func (m *memStore) PurgeFindings(context.Context, string, time.Time) (int64, error) { return 0, nil }

func (m *memStore) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.rows)
}

func TestASinkWritesThroughItsStoreInterface(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	m := &memStore{}
	s, err := New(Options{Store: m, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	s.Offer(vpnFinding(now, "10.20.0.10"))
	stop := runSink(t, s)
	stop()
	if m.len() != 1 || m.rows[0].Class != "vpn" || m.rows[0].SrcMAC.String() != pupilMAC.String() {
		t.Errorf("rows %+v, want the one vpn finding", m.rows)
	}
	// A store that refuses the batch is counted, not hidden.
	m.fail = errors.New("disk full")
	s2, err := New(Options{Store: m, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	s2.Offer(vpnFinding(now, "10.20.0.11"))
	stop = runSink(t, s2)
	stop()
	if st := s2.Stats(); st.WriteErrors != 1 || st.Stored != 0 {
		t.Errorf("stats %+v after a refused write, want one write error and nothing stored", st)
	}
}
