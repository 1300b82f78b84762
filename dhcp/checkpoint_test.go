package dhcp

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// cpStore is a memStore that counts its WAL checkpoints.
type cpStore struct {
	*memStore
	n atomic.Int64
}

func (c *cpStore) Checkpoint(context.Context) error {
	c.n.Add(1)
	return nil
}

// TestCheckpointsOnlyWhileCommitting: a store that can checkpoint is
// checkpointed by the server after group commits, and left alone while
// nothing is committed.
func TestCheckpointsOnlyWhileCommitting(t *testing.T) {
	st := &cpStore{memStore: newMemStore()}
	s, err := New(Config{Segments: testSegments()[:1], Store: st, Listen: func(string) (net.PacketConn, error) {
		return net.ListenPacket("udp4", "127.0.0.1:0")
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	<-s.Ready()
	time.Sleep(3 * checkpointEvery)
	if n := st.n.Load(); n != 0 {
		t.Fatalf("%d checkpoints with nothing committed, want 0", n)
	}
	if err := s.commit.commit(ctx, nil, []Device{{MAC: hw(t, "00:1c:b3:00:00:52"), FirstSeen: time.Now(), LastSeen: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for st.n.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint after a group commit")
		}
		time.Sleep(checkpointEvery / 5)
	}
	time.Sleep(3 * checkpointEvery)
	if n := st.n.Load(); n != 1 {
		t.Fatalf("%d checkpoints after one group commit, want 1", n)
	}
}
