//go:build linux && (amd64 || arm64 || riscv64)

package radius

import (
	"os"
	"runtime/debug"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// commitWatch reads the WAL-index header of an SQLite database in WAL
// mode: the first 96 octets of the "-shm" file beside it, two copies of
// SQLite's WalIndexHdr (wal.c). Every commit by any connection of any
// process rewrites that header (its frame count, salts and checksums
// change) before the commit returns; readers never write it. SQLite's own
// readers compare it to tell whether their page cache is still valid; the
// caches here compare it to tell that the change logs cannot have moved
// since their last read of them, without that read: a query through cgo,
// whose entersyscall woke Go's sysmon thread into 20 µs polling, and the
// two together were about an eighth of the daemon's CPU per RADIUS request
// (bench/radius.sh, perf). It reads mapped memory and makes one raw stat
// of the path (RawSyscall: no entersyscall, so no sysmon wake-up).
//
// It is only ever a reason to skip a read, never to trust one: anything
// it cannot read for certain (no -shm file, a header not initialised or
// half-written, a file replaced since it was mapped) says "cannot tell",
// and the caller reads the log.
//
// Not safe for concurrent use: a follower calls it under its check lock.
type commitWatch struct {
	path     []byte // the -shm file, NUL-terminated for the raw stat
	mem      []byte // its first page, mapped read-only; nil: not mapped
	dev, ino uint64 // of the mapped file
}

// walIndexVersion is WalIndexHdr.iVersion (WALINDEX_MAX_VERSION).
const walIndexVersion = 3007000

func newCommitProbe(dbPath string) func() (commitMark, bool) {
	w := &commitWatch{path: append([]byte(dbPath+"-shm"), 0)}
	return w.mark
}

// mark returns the header as it is now; ok is false when it cannot tell.
func (w *commitWatch) mark() (m commitMark, ok bool) {
	var st unix.Stat_t
	atFDCWD := unix.AT_FDCWD // a variable: the negative constant does not convert to uintptr
	_, _, e := unix.RawSyscall6(unix.SYS_NEWFSTATAT, uintptr(atFDCWD), uintptr(unsafe.Pointer(&w.path[0])),
		uintptr(unsafe.Pointer(&st)), 0, 0, 0)
	if e != 0 || st.Size < commitMarkLen {
		w.unmap()
		return m, false
	}
	if w.mem == nil || uint64(st.Dev) != w.dev || st.Ino != w.ino {
		// SQLite deletes the -shm file when the last connection to the
		// database closes and the next open makes a new one: map the
		// file the path names now.
		w.unmap()
		if !w.mapFile() {
			return m, false
		}
	}
	return w.read()
}

func (w *commitWatch) mapFile() bool {
	f, err := os.Open(string(w.path[:len(w.path)-1]))
	if err != nil {
		return false
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Size < commitMarkLen {
		return false
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, commitMarkLen, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return false
	}
	w.mem, w.dev, w.ino = mem, uint64(st.Dev), st.Ino
	return true
}

func (w *commitWatch) unmap() {
	if w.mem != nil {
		_ = unix.Munmap(w.mem)
		w.mem = nil
	}
}

// read copies the header. A file truncated under the mapping (SQLite
// truncates the -shm file when a process opens a database nobody else
// has open) faults instead of reading: that fault is turned into a panic,
// recovered here as "cannot tell".
func (w *commitWatch) read() (m commitMark, ok bool) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if recover() != nil {
			w.unmap()
			m, ok = commitMark{}, false
		}
	}()
	words := (*[len(commitMark{})]uint32)(unsafe.Pointer(&w.mem[0]))
	for i := range m {
		// Atomic: another process writes these words as we read them.
		m[i] = atomic.LoadUint32(&words[i])
	}
	half := len(m) / 2
	b := (*[commitMarkLen]byte)(unsafe.Pointer(&m))
	// Initialised (isInit, octet 12), the version this layout is, and
	// both copies alike: a writer updates the second copy, then the
	// first, so they differ only while a commit is being published.
	if m[0] != walIndexVersion || b[12] != 1 || [12]uint32(m[:half]) != [12]uint32(m[half:]) {
		return commitMark{}, false
	}
	return m, true
}
