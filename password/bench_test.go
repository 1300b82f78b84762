package password

import (
	"sync"
	"testing"
)

// BenchmarkVerifyTwoAtOnce is two checks in parallel, as a burst of
// logins on a two-core router runs them. Run it under the daemon's soft
// memory limit to see what the limit costs (cmd/gatehouse/memlimit.go):
//
//	GOMEMLIMIT=48MiB go test -run '^$' -bench VerifyTwoAtOnce -benchtime 20x ./password
//	GOMEMLIMIT=124MiB go test -run '^$' -bench VerifyTwoAtOnce -benchtime 20x ./password
func BenchmarkVerifyTwoAtOnce(b *testing.B) {
	const pw = "correct horse battery"
	h, err := Hash(pw)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				if ok, err := Verify(h, pw); err != nil || !ok {
					b.Error("the right password did not verify:", err)
				}
			})
		}
		wg.Wait()
	}
}
