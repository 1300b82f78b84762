package password

import (
	"bytes"
	"fmt"
	"testing"

	"golang.org/x/crypto/argon2"
)

// TestIDKeyMatchesXCrypto checks this package's argon2id against
// x/crypto's over several lane counts, costs and key lengths, and the
// current cost twice in a row, so the second run is over reused (not
// zeroed) memory.
func TestIDKeyMatchesXCrypto(t *testing.T) {
	cases := []params{
		{memory: 8, time: 1, threads: 1},
		{memory: 64, time: 3, threads: 1},
		{memory: 256, time: 2, threads: 2},
		{memory: 1000, time: 2, threads: 3},
		{memory: 512, time: 1, threads: 4},
		current,
		current,
	}
	for i, p := range cases {
		for _, keyLen := range []uint32{16, 32, 64} {
			pw := []byte(fmt.Sprintf("pass %d", i))
			salt := []byte(fmt.Sprintf("some salt %d", i))
			want := argon2.IDKey(pw, salt, p.time, p.memory, p.threads, keyLen)
			if got := idKey(pw, salt, p, keyLen); !bytes.Equal(got, want) {
				t.Fatalf("idKey m=%d t=%d p=%d len %d = %x, x/crypto %x", p.memory, p.time, p.threads, keyLen, got, want)
			}
			if p == current && keyLen != 32 {
				break // the current cost once per run is enough
			}
		}
	}
}
