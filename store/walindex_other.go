//go:build !linux

package store

// walIndex reads SQLite's WAL-index header on Linux (walindex_linux.go);
// elsewhere there is none, and the change watch asks SQLite every time.
type walIndex struct{}

const walHeaderLen = 48

func openWALIndex(string) *walIndex { return nil }

func (*walIndex) header() (h [walHeaderLen]byte, ok bool) { return h, false }

func (*walIndex) replaced(string) bool { return false }

func (*walIndex) close() {}
