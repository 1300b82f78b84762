//go:build linux

package store

import (
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// walIndex reads the header of the database's WAL index (the -shm file)
// without SQLite: the change watch's way to learn that nothing was
// committed since its last look without a cgo call (changewatch.go says
// why that matters).
//
// The header is SQLite's documented WAL-index format
// (https://sqlite.org/walformat.html, 2.2.1): the first 48 octets of the
// -shm file are the first copy of the WalIndexHdr, which every commit, by
// any connection of any process, rewrites with its transaction counter
// (iChange) moved, its last frame and its checksums; a WAL restart
// changes the salts too. So while those 48 octets stay the same, nothing
// was committed. A read that tears against a commit in progress either
// differs (taken as "changed") or is the old header whole, and then that
// commit has not yet returned to its writer.
//
// The file is opened once and closed only after the database is
// (Store.Close), or once SQLite has made another (replaced): SQLite holds
// POSIX record locks on it, which the kernel drops for the whole process
// when any descriptor of the file is closed. A read is one pread through
// RawSyscall, which does not enter the scheduler's system call state (an
// ordinary system call or a cgo call wakes the runtime's monitor thread
// when it sleeps; see changeWatch), and it comes from memory: every
// SQLite connection maps the file's first page.
type walIndex struct {
	f   *os.File // nil: none could be opened
	fd  uintptr
	ino uint64 // f's inode
}

// walHeaderLen is one copy of the WalIndexHdr.
const walHeaderLen = 48

// openWALIndex opens dbPath's -shm file for reading, or returns nil when
// it cannot (the watch then asks SQLite every time).
func openWALIndex(dbPath string) *walIndex {
	f, err := os.Open(dbPath + "-shm")
	if err != nil {
		return nil
	}
	ino, ok := inode(f.Stat())
	if !ok {
		// Kept open, unread, until Store.Close (see walIndex).
		return &walIndex{f: f}
	}
	return &walIndex{f: f, fd: f.Fd(), ino: ino}
}

// header reads the WAL-index header's first copy; ok is false when it
// cannot (a file SQLite has just truncated to build again).
func (x *walIndex) header() (h [walHeaderLen]byte, ok bool) {
	if x == nil || x.ino == 0 {
		return h, false
	}
	// pread64 at offset 0: the offset's words are zero however an
	// architecture splits or aligns them.
	n, _, errno := unix.RawSyscall6(unix.SYS_PREAD64, x.fd, uintptr(unsafe.Pointer(&h[0])), walHeaderLen, 0, 0, 0)
	return h, errno == 0 && n == walHeaderLen
}

// replaced reports whether dbPath's -shm file is now another file than
// the one x reads, which SQLite's connections (this process's included)
// have moved to, so that x may be closed for it. SQLite removes the file
// only with the WAL, once the last connection of every process closes,
// and this process's pool keeps its connections, so this is not expected;
// the watch checks at each read of data_version all the same.
func (x *walIndex) replaced(dbPath string) bool {
	if x == nil || x.ino == 0 {
		return false
	}
	ino, ok := inode(os.Stat(dbPath + "-shm"))
	return ok && ino != x.ino
}

func inode(fi os.FileInfo, err error) (uint64, bool) {
	if err != nil {
		return 0, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Ino == 0 {
		return 0, false
	}
	return uint64(st.Ino), true
}

// close closes the file: only once the database is closed, or SQLite has
// moved to another file (see walIndex).
func (x *walIndex) close() {
	if x != nil && x.f != nil {
		x.f.Close()
		x.f, x.ino = nil, 0
	}
}
