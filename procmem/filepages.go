package procmem

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The binary's own pages were most of the idle daemon's resident set
// (bench/memory.sh, with SMAPS=dir): Linux reads an executable into the
// page cache as large folios (up to 2 MiB on ext4) and maps a whole folio
// at the first touch, so start-up (every package's init, the migrations,
// the first ruleset), which touches nearly every part of the binary once,
// left all of it resident: 22 MiB of the 40 MiB idle budget. The pages
// are clean copies of the file, but they count against the daemon's
// budget on a router. After start-up dropFilePages pages them out and
// marks the mappings random-access, so the kernel reads back only the
// 4 KiB pages the running daemon touches, with no read-ahead and no large
// folios; smallFileMappings keeps what stays from being mapped 2 MiB at
// a time.

// smallFileMappings makes the kernel map file pages (the binary's code
// and data) in base pages rather than 2 MiB blocks. It also keeps the Go
// heap off transparent huge pages, which the runtime does not ask for
// anyway. A kernel without the prctl just maps as before.
func smallFileMappings() error {
	if err := unix.Prctl(unix.PR_SET_THP_DISABLE, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_THP_DISABLE): %w", err)
	}
	return nil
}

// dropFilePages pages out the process's read-only file mappings (the
// executable's code and read-only data; a C library's pages that other
// processes map too are left by the kernel) with MADV_PAGEOUT, after
// MADV_RANDOM so that what faults back in comes in 4 KiB pages, and
// returns how many bytes were resident in them. Only mappings that are
// clean copies of their file are touched: a read-only mapping holding
// anonymous pages (a library's relocated, write-protected GOT) is skipped.
func dropFilePages() (int64, error) {
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return 0, fmt.Errorf("read smaps: %w", err)
	}
	var dropped int64
	synced := map[string]bool{}
	for _, m := range parseSmaps(b) {
		if !m.droppable() {
			continue
		}
		if !synced[m.path] {
			synced[m.path] = true
			writeBack(m.path)
		}
		for _, advice := range []int{unix.MADV_RANDOM, unix.MADV_PAGEOUT} {
			if _, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(m.start), uintptr(m.end-m.start), uintptr(advice)); errno != 0 {
				return dropped, fmt.Errorf("madvise %x-%x %s: %w", m.start, m.end, m.path, errno)
			}
		}
		dropped += m.rss
	}
	return dropped, nil
}

// writeBack waits for the file's dirty pages to reach the disk: the
// kernel does not evict a dirty page, so a binary started right after it
// was written (installed, or built, as bench/memory.sh does) would keep
// its start-up pages. On a binary long on disk it returns at once. An
// error only means the pages stay, so it is not reported.
func writeBack(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	_ = unix.Fdatasync(int(f.Fd()))
}

// mapping is one entry of /proc/PID/smaps.
type mapping struct {
	start, end uint64
	perms      string // "r-xp"
	path       string // "" for anonymous memory, "[stack]" and the like for the kernel's
	rss, anon  int64  // bytes
	sawAnon    bool   // the entry had an Anonymous line
}

// droppable: a private, read-only mapping of a file, resident, with no
// anonymous (copied-on-write) page in it.
func (m mapping) droppable() bool {
	return len(m.perms) == 4 && m.perms[0] == 'r' && m.perms[1] != 'w' && m.perms[3] == 'p' &&
		strings.HasPrefix(m.path, "/") && m.sawAnon && m.anon == 0 && m.rss > 0
}

// parseSmaps reads the entries of an smaps file; lines it does not know
// are skipped.
func parseSmaps(b []byte) []mapping {
	var out []mapping
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(f[0], "-"); ok && len(f) >= 5 {
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 == nil && err2 == nil {
				m := mapping{start: start, end: end, perms: f[1]}
				if len(f) >= 6 {
					m.path = strings.Join(f[5:], " ")
				}
				out = append(out, m)
				continue
			}
		}
		if len(out) == 0 || len(f) < 2 {
			continue
		}
		kb, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "Rss:":
			out[len(out)-1].rss = kb << 10
		case "Anonymous:":
			out[len(out)-1].anon = kb << 10
			out[len(out)-1].sawAnon = true
		}
	}
	return out
}
