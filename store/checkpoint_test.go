package store

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// dhcpBatch is n new leases and their devices, numbered from *next on.
func dhcpBatch(n int, next *int) ([]DHCPLease, []Device) {
	ls := make([]DHCPLease, n)
	ds := make([]Device, n)
	for j := range ls {
		*next++
		mac := net.HardwareAddr{2, 0, 0, byte(*next >> 16), byte(*next >> 8), byte(*next)}
		ip := netip.AddrFrom4([4]byte{10, 50, byte(*next >> 8), byte(*next)})
		ls[j] = DHCPLease{Segment: "bench", IP: ip, MAC: mac, State: "bound", Start: leaseT0, Expires: leaseT0.Add(time.Hour)}
		ds[j] = Device{MAC: mac, FirstSeen: leaseT0, LastSeen: leaseT0, Segment: "bench", IP: ip, Fingerprint: "1,3,6,15"}
	}
	return ls, ds
}

// TestCheckpointWAL: a checkpoint with nobody reading copies every frame
// of the log into the file, and the leases are still there after.
func TestCheckpointWAL(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	next := 0
	ls, ds := dhcpBatch(50, &next)
	if err := s.SaveDHCP(ctx, ls, ds); err != nil {
		t.Fatal(err)
	}
	frames, done, err := s.CheckpointWAL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if frames == 0 || done != frames {
		t.Fatalf("checkpoint: %d of %d log frames copied, want all of a log that holds the batch", done, frames)
	}
	got, err := s.DHCPLeases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 50 {
		t.Fatalf("%d leases after the checkpoint, want 50", len(got))
	}
}

// BenchmarkSaveDHCPBatchCheckpointed is BenchmarkSaveDHCPBatch's batch of
// 32 with and without the DHCP server's checkpointer beside it (a PASSIVE
// checkpoint every 50 ms, dhcp.checkpointEvery): without it, every
// thousandth log page makes a commit copy the log into the file and fsync
// it before the ACKs waiting on it can go.
func BenchmarkSaveDHCPBatchCheckpointed(b *testing.B) {
	for _, bg := range []bool{false, true} {
		name := "inline"
		if bg {
			name = "background"
		}
		b.Run(name, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s, err := Open(ctx, filepath.Join(b.TempDir(), "gatehouse.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			done := make(chan struct{})
			go func() {
				defer close(done)
				if !bg {
					return
				}
				t := time.NewTicker(50 * time.Millisecond)
				defer t.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-t.C:
					}
					if _, _, err := s.CheckpointWAL(ctx); err != nil && ctx.Err() == nil {
						b.Error(err)
						return
					}
				}
			}()
			defer func() {
				cancel()
				<-done
			}()
			durs := make([]time.Duration, 0, b.N)
			next := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ls, ds := dhcpBatch(32, &next)
				t0 := time.Now()
				if err := s.SaveDHCP(context.Background(), ls, ds); err != nil {
					b.Fatal(err)
				}
				durs = append(durs, time.Since(t0))
			}
			b.StopTimer()
			slices.Sort(durs)
			at := func(p float64) float64 {
				return float64(durs[min(len(durs)-1, int(float64(len(durs))*p))].Microseconds()) / 1000
			}
			b.ReportMetric(at(0.5), "p50-ms")
			b.ReportMetric(at(0.99), "p99-ms")
			b.ReportMetric(at(1), "max-ms")
		})
	}
}
