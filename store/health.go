package store

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"
)

// writeHealth remembers whether the database is taking writes: the last
// write transaction's storage failure (disk full, I/O error, read-only
// file) and when writes last succeeded. A refusal by a write's own logic
// (ErrNotFound, a unique violation) says nothing about the disk and is not
// recorded.
type writeHealth struct {
	failing  atomic.Bool
	lastOK   atomic.Int64 // unix nanoseconds
	lastFail atomic.Int64
	failures atomic.Uint64
	lastErr  atomic.Pointer[string]
}

// storageFailure reports whether err is SQLite failing to store, rather
// than a transaction refusing on its own terms.
func storageFailure(err error) bool {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code {
	case sqlite3.ErrFull, sqlite3.ErrIoErr, sqlite3.ErrReadonly, sqlite3.ErrCantOpen, sqlite3.ErrCorrupt, sqlite3.ErrNotADB, sqlite3.ErrProtocol:
		return true
	}
	return false
}

func (h *writeHealth) record(err error) {
	now := time.Now().UnixNano()
	switch {
	case err == nil:
		h.failing.Store(false)
		h.lastOK.Store(now)
	case storageFailure(err):
		h.failing.Store(true)
		h.lastFail.Store(now)
		h.failures.Add(1)
		msg := err.Error()
		h.lastErr.Store(&msg)
	}
}

// WriteHealth is whether the database takes writes, for /healthz.
type WriteHealth struct {
	// Failing is true when the last write transaction failed to store (disk
	// full, I/O error) and none has succeeded since.
	Failing  bool
	LastOK   time.Time // zero: no write since the process started
	LastFail time.Time
	Failures uint64 // storage failures since the process started
	LastErr  string
}

// WriteHealth reports whether this process's writes are being stored.
func (s *Store) WriteHealth() WriteHealth {
	h := &s.health
	w := WriteHealth{Failing: h.failing.Load(), Failures: h.failures.Load()}
	if t := h.lastOK.Load(); t != 0 {
		w.LastOK = time.Unix(0, t)
	}
	if t := h.lastFail.Load(); t != 0 {
		w.LastFail = time.Unix(0, t)
	}
	if p := h.lastErr.Load(); p != nil {
		w.LastErr = *p
	}
	return w
}
