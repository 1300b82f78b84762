package password

import (
	"sync"
	"syscall"
	"testing"

	"golang.org/x/crypto/argon2"
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

// BenchmarkVerifyReused and BenchmarkVerifyXCrypto compare one check over
// this package's reused blocks with x/crypto's IDKey, which allocates
// them per call, and report the process's minor page faults per check
// (getrusage). Under the daemon's limits:
//
//	GOGC=50 GOMEMLIMIT=124MiB go test -run '^$' -bench 'Verify(Reused|XCrypto)' -benchtime 30x ./password
func BenchmarkVerifyReused(b *testing.B) {
	benchFaults(b, func(pw, salt []byte) { idKey(pw, salt, current, keyLen) })
}

func BenchmarkVerifyXCrypto(b *testing.B) {
	benchFaults(b, func(pw, salt []byte) { argon2.IDKey(pw, salt, current.time, current.memory, current.threads, keyLen) })
}

var sink []byte

func benchFaults(b *testing.B, f func(pw, salt []byte)) {
	pw, salt := []byte("correct horse battery"), []byte("0123456789abcdef")
	f(pw, salt)
	var r0, r1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
	for b.Loop() {
		f(pw, salt)
		// A little garbage between two checks, as the daemon makes.
		sink = make([]byte, 64<<10)
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
	b.ReportMetric(float64(r1.Minflt-r0.Minflt)/float64(b.N), "faults/op")
	cpu := func(r syscall.Rusage) float64 {
		return float64(r.Utime.Nano()+r.Stime.Nano()) / 1e6
	}
	// CPU time, not wall time: the machine is shared.
	b.ReportMetric((cpu(r1)-cpu(r0))/float64(b.N), "cpu-ms/op")
}
