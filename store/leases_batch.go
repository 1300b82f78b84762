// This file: a DHCP group commit's rows as one argument per statement.

package store

import (
	"context"
	"database/sql"
	"net"
	"net/netip"
	"sync"
	"time"
)

// SaveDHCP ran three statements a lease (the move, the lease, the device),
// each with ten or eleven arguments: database/sql builds a []NamedValue for
// every execution and every string argument is boxed into an interface, so
// at 3,000 exchanges/s in the deployed daemon a commit's arguments were the
// largest single source of garbage (about 1.9 KB a lease, ~25 MB per 5 s),
// and the p99 of both DHCP halves falls in the collector's mark phases.
//
// Now a batch's leases, their moves and its devices are each written into
// a JSON array, in a buffer kept from batch to batch, and each statement
// runs once a batch with that one argument (bound as a blob, which the
// driver passes to SQLite without a copy, and CAST to text for json_each):
// the allocations of a commit no longer grow with its size. SQLite runs an
// INSERT ... SELECT over json_each row by row in array order, so an upsert
// batch gives the rows the same outcome as one statement per row.
//
// Only text that needs no JSON escape takes this way (printable ASCII
// without '"' or '\\'; blobs go as hex): a batch with a host name or vendor
// class holding anything else runs the statements a row at a time as
// before, so that what is stored is byte for byte what it was.

// dhcpArgs is SaveDHCP's argument storage, reused between batches.
type dhcpArgs struct {
	mu     sync.Mutex
	leases []byte
	moves  []byte
	devs   []byte
}

// The batched DHCP statements. The move deletes, for each (MAC, segment)
// a batch leases to, that MAC's other rows on the segment; it runs after
// the upsert with the last address of each pair (dhcpMoves), which leaves
// what the per-lease DELETE before each upsert left.
const (
	leaseUpsertManyQuery = `INSERT INTO dhcp_leases
		(segment, ip, mac, client_id, hostname, state, start_at, expires_at, relay, relay_info)
		SELECT j.value->>0, j.value->>1, j.value->>2, unhex(j.value->>3), j.value->>4, j.value->>5,
			j.value->>6, j.value->>7, j.value->>8, unhex(j.value->>9)
		FROM json_each(CAST(? AS TEXT)) AS j WHERE true
		ON CONFLICT (segment, ip) DO UPDATE SET
		mac = excluded.mac, client_id = excluded.client_id, hostname = excluded.hostname,
		state = excluded.state, start_at = excluded.start_at, expires_at = excluded.expires_at,
		relay = excluded.relay, relay_info = excluded.relay_info`
	leaseMoveManyQuery = `DELETE FROM dhcp_leases WHERE (ip, segment) IN (
		SELECT l.ip, l.segment FROM json_each(CAST(? AS TEXT)) AS j
		JOIN dhcp_leases AS l ON l.mac = j.value->>2 AND l.segment = j.value->>0 AND l.ip <> j.value->>1)`
	deviceSightingManyQuery = `INSERT INTO devices
		(mac, first_seen, last_seen, segment, ip, hostname, vendor_class, fingerprint, os, manufacturer, randomised)
		SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3, j.value->>4, j.value->>5, j.value->>6,
			j.value->>7, j.value->>8, j.value->>9, j.value->>10
		FROM json_each(CAST(? AS TEXT)) AS j WHERE true
		ON CONFLICT (mac) DO UPDATE SET ` + deviceSightingSet
)

// deviceSightingSet is what a sighting changes of a recorded device (both
// ways of writing them share it).
const deviceSightingSet = `first_seen = CASE WHEN devices.first_seen = '' OR excluded.first_seen < devices.first_seen
					THEN excluded.first_seen ELSE devices.first_seen END,
				last_seen = CASE WHEN excluded.last_seen > devices.last_seen THEN excluded.last_seen ELSE devices.last_seen END,
				segment = excluded.segment,
				ip = CASE WHEN excluded.ip <> '' THEN excluded.ip ELSE devices.ip END,
				hostname = CASE WHEN excluded.hostname <> '' THEN excluded.hostname ELSE devices.hostname END,
				vendor_class = excluded.vendor_class, fingerprint = excluded.fingerprint,
				os = CASE WHEN excluded.os <> '' THEN excluded.os ELSE devices.os END,
				manufacturer = excluded.manufacturer, randomised = excluded.randomised`

// plainText reports whether s goes into JSON as it is.
func plainText(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// batchable reports whether every text of the batch is plainText (see
// the file's comment). MACs, addresses, times and blobs are formatted here
// and always are.
func batchable(leases []DHCPLease, devices []Device) bool {
	for _, l := range leases {
		if !plainText(l.Segment) || !plainText(l.Hostname) || !plainText(l.State) {
			return false
		}
	}
	for _, d := range devices {
		if !plainText(d.Segment) || !plainText(d.Hostname) || !plainText(d.VendorClass) || !plainText(d.Fingerprint) ||
			!plainText(d.OS) || !plainText(d.Manufacturer) {
			return false
		}
	}
	return true
}

const hexDigits = "0123456789abcdef"

// jsonRows writes a JSON array of arrays, the batched statements' one
// argument, into storage kept between batches: row starts an inner array
// and each value method adds one value, with its comma. Every value is
// written as the statement-per-row way binds it, so that both store the
// same bytes.
type jsonRows struct {
	b          []byte
	rows, vals int // rows started; values in the current row
}

// start begins an empty array in b's storage.
func (w *jsonRows) start(b []byte) { *w = jsonRows{b: append(b[:0], '[')} }

// row starts the next inner array.
func (w *jsonRows) row() {
	if w.rows > 0 {
		w.b = append(w.b, ']', ',')
	}
	w.b = append(w.b, '[')
	w.rows, w.vals = w.rows+1, 0
}

// end closes the arrays and returns the argument.
func (w *jsonRows) end() []byte {
	if w.rows > 0 {
		w.b = append(w.b, ']')
	}
	return append(w.b, ']')
}

// value starts the next value of the row.
func (w *jsonRows) value() {
	if w.vals > 0 {
		w.b = append(w.b, ',')
	}
	w.vals++
}

// str adds s as it is: batchable has checked it needs no escape.
func (w *jsonRows) str(s string) {
	w.value()
	w.b = append(w.b, '"')
	w.b = append(w.b, s...)
	w.b = append(w.b, '"')
}

// mac adds m as macText writes it (lower-case hex, colons).
func (w *jsonRows) mac(m net.HardwareAddr) {
	w.value()
	w.b = append(w.b, '"')
	for i, c := range m {
		if i > 0 {
			w.b = append(w.b, ':')
		}
		w.b = append(w.b, hexDigits[c>>4], hexDigits[c&0xf])
	}
	w.b = append(w.b, '"')
}

// addr adds a as addrText writes it ("" when invalid).
func (w *jsonRows) addr(a netip.Addr) {
	w.value()
	w.b = append(w.b, '"')
	if a.IsValid() {
		w.b = a.AppendTo(w.b)
	}
	w.b = append(w.b, '"')
}

// time adds t as formatTime writes it.
func (w *jsonRows) time(t time.Time) {
	w.value()
	w.b = append(w.b, '"')
	if !t.IsZero() {
		w.b = t.UTC().AppendFormat(w.b, timeLayout)
	}
	w.b = append(w.b, '"')
}

// blob adds v as hex for unhex, null for nil (a NULL column, as the
// driver binds a nil []byte).
func (w *jsonRows) blob(v []byte) {
	w.value()
	if v == nil {
		w.b = append(w.b, "null"...)
		return
	}
	w.b = append(w.b, '"')
	for _, c := range v {
		w.b = append(w.b, hexDigits[c>>4], hexDigits[c&0xf])
	}
	w.b = append(w.b, '"')
}

// boolean adds v as the driver binds it (1 or 0).
func (w *jsonRows) boolean(v bool) {
	w.value()
	if v {
		w.b = append(w.b, '1')
	} else {
		w.b = append(w.b, '0')
	}
}

// dhcpLeaseRows writes leases as the upsert's JSON array, in its columns'
// order.
func dhcpLeaseRows(b []byte, leases []DHCPLease) []byte {
	var w jsonRows
	w.start(b)
	for _, l := range leases {
		w.row()
		w.str(l.Segment)
		w.addr(l.IP)
		w.mac(l.MAC)
		w.blob(l.ClientID)
		w.str(l.Hostname)
		w.str(l.State)
		w.time(l.Start)
		w.time(l.Expires)
		w.addr(l.Relay)
		w.blob(l.RelayInfo)
	}
	return w.end()
}

// dhcpMoves writes, for each (MAC, segment) of leases, its last address
// in the batch, as [segment, ip, mac] rows for the move; it reports
// whether there is any (leases without a MAC, declined addresses, move
// nothing).
func dhcpMoves(b []byte, leases []DHCPLease) ([]byte, bool) {
	var w jsonRows
	w.start(b)
	for i, l := range leases {
		if len(l.MAC) == 0 || laterSamePair(leases[i+1:], l) {
			continue
		}
		w.row()
		w.str(l.Segment)
		w.addr(l.IP)
		w.mac(l.MAC)
	}
	return w.end(), w.rows > 0
}

// laterSamePair reports whether a lease of rest has l's MAC and segment.
// Quadratic in the batch, which the DHCP committer bounds (512) and which
// under load holds tens: cheaper than a map's keys.
func laterSamePair(rest []DHCPLease, l DHCPLease) bool {
	for _, k := range rest {
		if k.Segment == l.Segment && string(k.MAC) == string(l.MAC) {
			return true
		}
	}
	return false
}

// dhcpDeviceRows writes devices as the sighting's JSON array, in its
// columns' order.
func dhcpDeviceRows(b []byte, devices []Device) []byte {
	var w jsonRows
	w.start(b)
	for _, d := range devices {
		w.row()
		w.mac(d.MAC)
		w.time(d.FirstSeen)
		w.time(d.LastSeen)
		w.str(d.Segment)
		w.addr(d.IP)
		w.str(d.Hostname)
		w.str(d.VendorClass)
		w.str(d.Fingerprint)
		w.str(d.OS)
		w.str(d.Manufacturer)
		w.boolean(d.Randomised)
	}
	return w.end()
}

// saveDHCPBatched is SaveDHCP's transaction body for a batchable batch
// (already checked): at most three statements, one argument each, built
// in s.dhcpArgs, which is held until the last has run (the driver reads
// the argument while its statement runs).
func (s *Store) saveDHCPBatched(ctx, sctx context.Context, tx *sql.Tx, leases []DHCPLease, devices []Device) error {
	a := &s.dhcpArgs
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(leases) > 0 {
		up, err := s.txPrepared(ctx, tx, stmtLeaseUpsertMany, leaseUpsertManyQuery)
		if err != nil {
			return err
		}
		a.leases = dhcpLeaseRows(a.leases, leases)
		if _, err := up.ExecContext(sctx, a.leases); err != nil {
			return err
		}
		var moved bool
		a.moves, moved = dhcpMoves(a.moves, leases)
		if moved {
			mv, err := s.txPrepared(ctx, tx, stmtLeaseMoveMany, leaseMoveManyQuery)
			if err != nil {
				return err
			}
			if _, err := mv.ExecContext(sctx, a.moves); err != nil {
				return err
			}
		}
	}
	if len(devices) > 0 {
		up, err := s.txPrepared(ctx, tx, stmtDeviceSightingMany, deviceSightingManyQuery)
		if err != nil {
			return err
		}
		a.devs = dhcpDeviceRows(a.devs, devices)
		if _, err := up.ExecContext(sctx, a.devs); err != nil {
			return err
		}
	}
	return nil
}
