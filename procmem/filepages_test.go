package procmem

import (
	"os"
	"testing"
)

func fileRSS(t *testing.T) (exe int64) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range parseSmaps(b) {
		if m.path == self && m.perms[1] != 'w' {
			exe += m.rss
		}
	}
	return exe
}

// dropFilePages unmaps the executable's resident read-only pages, and the
// process goes on running (its code faults back in as it is used).
func TestDropFilePagesUnmapsTheBinarysPages(t *testing.T) {
	if err := smallFileMappings(); err != nil {
		t.Fatal(err)
	}
	before := fileRSS(t)
	n, err := dropFilePages()
	if err != nil {
		t.Fatal(err)
	}
	after := fileRSS(t)
	t.Logf("executable's read-only pages resident: %d KiB before, %d KiB after; %d KiB dropped in all", before>>10, after>>10, n>>10)
	if before == 0 || n < before/2 || after > before/2 {
		t.Errorf("resident %d before, %d after, %d reported dropped: the pages were not unmapped", before, after, n)
	}
}
