package inspect

import (
	"math/rand/v2"
	"testing"
)

// TestFullyEncryptedMissRate measures how often fullyEncrypted lets a
// uniformly random opening through (its exemptions: six printable bytes
// first, a plausible length prefix, a TLS-like header, low entropy by
// chance), the false-negative rate of every detector built on it
// (Shadowsocks-style streams, WebSocket tunnels, obfs4). The end-to-end
// live-tools test gives a tool a second try because of it. The rates are
// printed (go test -v -run TestFullyEncryptedMissRate ./inspect/) and
// bounded, so that a change that makes the test miss real tunnels more
// often fails here rather than now and then in CI.
func TestFullyEncryptedMissRate(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{1}))
	const n = 20000
	for _, c := range []struct {
		size int
		max  float64 // miss rate bound
	}{{48, 0.05}, {100, 0.012}, {266, 0.006}, {1000, 0.006}} {
		b := make([]byte, c.size)
		missed := 0
		for range n {
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			if !fullyEncrypted(b) {
				missed++
			}
		}
		rate := float64(missed) / n
		t.Logf("%4d random bytes: %.2f%% judged not fully encrypted", c.size, 100*rate)
		if rate > c.max {
			t.Errorf("%d random bytes: %.2f%% missed, bound %.1f%%", c.size, 100*rate, 100*c.max)
		}
	}
}
