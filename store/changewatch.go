package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"sync"
	"time"
)

// changeWatch answers the change logs' "newest entry?" (latest) from one
// connection held for that alone, with its statements prepared on it once
// and run on the driver directly, and skips the log read when nothing was
// committed since the last one.
//
// Why: every in-memory cache of RADIUS checks a log at most 5 ms before
// an answer (radius/devcache.go), so under load that read runs hundreds of
// times a second. Through the pool it cost about 25 us of CPU a read
// (bench/radius.sh, PERF: 6% of a MAC authentication run), most of it
// database/sql's connection grab, per-connection statement lookup and Rows
// machinery rather than SQLite; on one held connection, through the
// driver's own statement, one read is two cgo crossings (step, reset) and
// a few small allocations.
//
// The skip is PRAGMA data_version, which SQLite documents as: two
// invocations from the same connection return different values if
// changes were committed to the database by any other connection in the
// interim (in WAL mode too: it moves when a read finds the WAL's index
// header changed). This connection never writes, so every commit, this
// process's pool's or another process's (`gatehouse device approve`),
// is "another connection". The order is data_version first, then the log:
// a commit between the two is in the log read and moves data_version
// again, so the next call reads the log once more; a commit before both is
// in the log read. A stored value is only reused under the data_version it
// was read after. data_version moves on any commit to any table, so a busy
// daemon often reads both: one cheap statement more than the plain read.
//
// Both statements step to their end before reset, so the connection holds
// no read transaction between calls (a checkpoint never waits for it).
//
// Before either, the WAL index's header (walindex_linux.go): when it is
// the one read just before the last data_version, nothing was committed
// since, data_version would not have moved, and a log value read under it
// is current, without a cgo call. That is the quiet case, and RADIUS's is
// (re-authentications write nothing): there a cgo call every 5 ms woke the
// Go runtime's monitor thread (sysmon) from its sleep each time, and it
// then polled every 20 us for a while, a thread switch each: 6.7% of the
// daemon's CPU in a PAP load (bench/radius.sh, PERF), 0.4% once the call
// stopped. The header is trusted for walTrust at most after a data_version
// read: the bound on a change it could miss (a -shm file SQLite made again
// while this process held none of its connections, see walIndex.replaced).
type changeWatch struct {
	path    string // the database file, for its -shm file
	mu      sync.Mutex
	conn    *sql.Conn      // nil until first use, and after a failure
	version driver.Stmt    // PRAGMA data_version, on conn's driver connection
	dest    []driver.Value // one column, reused
	logs    [numLogs]struct {
		stmt    driver.Stmt // l.latestQ, on conn's driver connection
		valid   bool
		version int64 // the data_version read before value
		value   int64
	}
	wal          *walIndex          // nil: not opened (yet)
	walHeader    [walHeaderLen]byte // read just before lastVersion
	walValid     bool               // walHeader was read, and lastVersion after it
	walAt        time.Time          // when
	lastVersion  int64
	logReads     int // how many times a log was read (tests)
	versionReads int // how many times data_version was read (tests)
}

// walTrust is how long after a read of data_version an unchanged WAL-index
// header stands for it (see changeWatch).
const walTrust = time.Second

// latest is the newest entry of l (see changeWatch).
func (w *changeWatch) latest(ctx context.Context, db *sql.DB, l changeLog) (int64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn == nil {
		conn, err := db.Conn(ctx)
		if err != nil {
			return 0, err
		}
		w.conn, w.dest = conn, make([]driver.Value, 1)
	}
	e := &w.logs[l.index]
	if e.valid && w.walValid && e.version == w.lastVersion && time.Since(w.walAt) < walTrust {
		if h, ok := w.wal.header(); ok && h == w.walHeader {
			return e.value, nil
		}
	}
	w.walValid = false
	w.followWAL()
	h, hok := w.wal.header() // before data_version: a commit after it changes it
	at := time.Now()
	var g int64
	err := w.conn.Raw(func(dc any) error {
		c, ok := dc.(driver.Conn)
		if !ok {
			return fmt.Errorf("driver connection %T", dc)
		}
		if w.version == nil {
			st, err := c.Prepare(`PRAGMA data_version`)
			if err != nil {
				return err
			}
			w.version = st
		}
		w.versionReads++
		v, err := w.queryInt(w.version)
		if err != nil {
			return fmt.Errorf("data_version: %w", err)
		}
		w.walHeader, w.walValid, w.walAt, w.lastVersion = h, hok, at, v
		if e.valid && e.version == v {
			g = e.value
			return nil
		}
		if e.stmt == nil {
			if e.stmt, err = c.Prepare(l.latestQ); err != nil {
				return err
			}
		}
		w.logReads++
		if g, err = w.queryInt(e.stmt); err != nil {
			return err
		}
		e.valid, e.version, e.value = true, v, g
		return nil
	})
	if err != nil {
		w.reset()
		return 0, err
	}
	return g, nil
}

// followWAL opens the WAL index once the -shm file exists (it does once
// this connection has read), and moves to another if SQLite made one.
func (w *changeWatch) followWAL() {
	if w.wal == nil {
		w.wal = openWALIndex(w.path)
		return
	}
	if w.wal.replaced(w.path) {
		w.wal.close()
		w.wal = openWALIndex(w.path)
	}
}

// queryInt runs st, which takes no arguments and returns one integer row.
// Background, not the caller's context: one row, over before a cancel
// could matter, and the driver watches a cancellable context with a
// goroutine per query.
func (w *changeWatch) queryInt(st driver.Stmt) (int64, error) {
	q, ok := st.(driver.StmtQueryContext)
	if !ok {
		return 0, fmt.Errorf("driver statement %T cannot query", st)
	}
	rows, err := q.QueryContext(context.Background(), nil)
	if err != nil {
		return 0, err
	}
	err = rows.Next(w.dest)
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	v, ok := w.dest[0].(int64)
	if !ok {
		return 0, fmt.Errorf("got %T, want an integer", w.dest[0])
	}
	return v, nil
}

// reset gives the connection back after a failure (the next call takes a
// fresh one) and forgets every stored value: data_version is per
// connection, so none compares with the next one's.
func (w *changeWatch) reset() {
	if w.conn != nil {
		// The statements are the driver connection's: closed through it.
		_ = w.conn.Raw(func(any) error {
			for i := range w.logs {
				if w.logs[i].stmt != nil {
					w.logs[i].stmt.Close()
				}
			}
			if w.version != nil {
				w.version.Close()
			}
			return nil
		})
		w.conn.Close()
	}
	for i := range w.logs {
		w.logs[i].stmt, w.logs[i].valid = nil, false
	}
	w.conn, w.version, w.walValid = nil, nil, false
}

// close releases the connection (Store.Close, before the database closes).
func (w *changeWatch) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reset()
}

// closeWAL closes the WAL index's file, once the database is closed
// (walIndex says why not before).
func (w *changeWatch) closeWAL() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.wal.close()
	w.wal = nil
}
