package store

// The RADIUS server's tables: accounting sessions (who held which MAC and
// address, where, when), the room each access point stands in, and the
// RADIUS side of a device (the segment it was approved for and its sealed
// personal Wi-Fi key).

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// RADIUSSession is one accounting session a NAS reported.
type RADIUSSession struct {
	ID            int64
	NAS           string // the client's name in the configuration
	NASAddr       netip.Addr
	AcctSessionID string
	Username      string
	Person        string // the person it belongs to, when known
	MAC           net.HardwareAddr
	IP            netip.Addr
	AP            string // access point: Called-Station-Id's MAC part
	Room          string // the room the network manager gave the AP
	SSID          string
	NASPort       string
	Start         time.Time
	Updated       time.Time
	Stop          time.Time // zero while open
	StopCause     string
	InOctets      uint64
	OutOctets     uint64
}

// Open reports whether the NAS has not reported the session's end.
func (s RADIUSSession) Open() bool { return s.Stop.IsZero() }

// The accounting statuses RecordAccounting understands.
const (
	AcctStart   = "start"
	AcctInterim = "interim"
	AcctStop    = "stop"
)

// AccountingUpdate is one Accounting-Request's content.
type AccountingUpdate struct {
	Status        string // AcctStart, AcctInterim or AcctStop
	NAS           string
	NASAddr       netip.Addr
	AcctSessionID string
	Username      string
	Person        string
	MAC           net.HardwareAddr
	IP            netip.Addr // invalid: the MAC's DHCP lease is used
	AP            string
	SSID          string
	NASPort       string
	At            time.Time     // when the event happened (now minus Acct-Delay-Time)
	SessionTime   time.Duration // Acct-Session-Time: a session first seen mid-way started this long ago
	InOctets      uint64
	OutOctets     uint64
	StopCause     string
}

const sessionColumns = `id, nas, nas_addr, acct_session_id, username, person, mac, ip, ap, room, ssid, nas_port,
	started_at, updated_at, stopped_at, stop_cause, in_octets, out_octets`

func scanSession(r scanner) (RADIUSSession, error) {
	var s RADIUSSession
	var nasAddr, mac, ip, start, upd, stop string
	var in, out int64
	if err := r.Scan(&s.ID, &s.NAS, &nasAddr, &s.AcctSessionID, &s.Username, &s.Person, &mac, &ip, &s.AP, &s.Room,
		&s.SSID, &s.NASPort, &start, &upd, &stop, &s.StopCause, &in, &out); err != nil {
		return RADIUSSession{}, err
	}
	s.InOctets, s.OutOctets = uint64(in), uint64(out)
	var err error
	if s.NASAddr, err = parseAddrText(nasAddr); err != nil {
		return RADIUSSession{}, err
	}
	if s.MAC, err = parseMACText(mac); err != nil {
		return RADIUSSession{}, err
	}
	if s.IP, err = parseAddrText(ip); err != nil {
		return RADIUSSession{}, err
	}
	if s.Start, err = parseTime(start); err != nil {
		return RADIUSSession{}, err
	}
	if s.Updated, err = parseTime(upd); err != nil {
		return RADIUSSession{}, err
	}
	if s.Stop, err = parseTime(stop); err != nil {
		return RADIUSSession{}, err
	}
	return s, nil
}

// octets keeps a counter inside SQLite's signed 64-bit integers.
func octets(n uint64) int64 {
	if n > 1<<62 {
		return 1 << 62
	}
	return int64(n)
}

// RecordAccounting applies one accounting event to the session it names
// (nas, acct session id) and returns the session as stored. A Start or
// Interim-Update for an unknown session opens it; a Stop closes it (creating
// it closed if its Start was lost). When u.IP is not given the MAC's bound
// DHCP lease supplies it, and the room comes from the AP's room. Accounting
// is data the NAS reports, not a change a person made: it is not audited.
func (s *Store) RecordAccounting(ctx context.Context, u AccountingUpdate) (RADIUSSession, error) {
	if u.NAS == "" || u.AcctSessionID == "" || u.At.IsZero() {
		return RADIUSSession{}, fmt.Errorf("store: record accounting: needs a NAS, a session id and a time")
	}
	var out RADIUSSession
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		ip := addrText(u.IP)
		if ip == "" && len(u.MAC) > 0 {
			err := tx.QueryRowContext(ctx, boundIPForMACQuery, macText(u.MAC)).Scan(&ip)
			if err != nil && err != sql.ErrNoRows {
				return err
			}
		}
		var room string
		if u.AP != "" {
			if err := tx.QueryRowContext(ctx, `SELECT room FROM radius_rooms WHERE ap = ?`, u.AP).Scan(&room); err != nil && err != sql.ErrNoRows {
				return err
			}
		}
		mac := ""
		if len(u.MAC) > 0 {
			mac = macText(u.MAC)
		}
		at := formatTime(u.At)
		stop, cause := "", ""
		if u.Status == AcctStop {
			stop, cause = at, u.StopCause
		}
		var id int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM radius_sessions WHERE nas = ? AND acct_session_id = ? AND stopped_at = ''`,
			u.NAS, u.AcctSessionID).Scan(&id)
		switch {
		case err == sql.ErrNoRows:
			start := u.At
			if u.Status != AcctStart {
				start = u.At.Add(-u.SessionTime)
			}
			res, err := tx.ExecContext(ctx, `INSERT INTO radius_sessions (nas, nas_addr, acct_session_id, username, person, mac, ip,
				ap, room, ssid, nas_port, started_at, updated_at, stopped_at, stop_cause, in_octets, out_octets)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				u.NAS, addrText(u.NASAddr), u.AcctSessionID, u.Username, u.Person, mac, ip, u.AP, room, u.SSID, u.NASPort,
				formatTime(start), at, stop, cause, octets(u.InOctets), octets(u.OutOctets))
			if err != nil {
				return err
			}
			if id, err = res.LastInsertId(); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			// Later reports fill in what earlier ones lacked (an address
			// learnt after Start) and never blank what is known.
			if _, err := tx.ExecContext(ctx, `UPDATE radius_sessions SET
				nas_addr = ?, updated_at = ?, stopped_at = ?, stop_cause = ?,
				username = CASE WHEN ? <> '' THEN ? ELSE username END,
				person = CASE WHEN ? <> '' THEN ? ELSE person END,
				mac = CASE WHEN ? <> '' THEN ? ELSE mac END,
				ip = CASE WHEN ? <> '' THEN ? ELSE ip END,
				ap = CASE WHEN ? <> '' THEN ? ELSE ap END,
				room = CASE WHEN ? <> '' THEN ? ELSE room END,
				ssid = CASE WHEN ? <> '' THEN ? ELSE ssid END,
				in_octets = max(in_octets, ?), out_octets = max(out_octets, ?)
				WHERE id = ?`,
				addrText(u.NASAddr), at, stop, cause, u.Username, u.Username, u.Person, u.Person, mac, mac, ip, ip,
				u.AP, u.AP, room, room, u.SSID, u.SSID, octets(u.InOctets), octets(u.OutOctets), id); err != nil {
				return err
			}
		}
		out, err = scanSession(tx.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM radius_sessions WHERE id = ?`, id))
		return err
	})
	if err != nil {
		return RADIUSSession{}, fmt.Errorf("store: record accounting %s/%s: %w", u.NAS, u.AcctSessionID, err)
	}
	return out, nil
}

// CloseNASSessions ends every open session of a NAS (Accounting-On/Off: the
// NAS rebooted or is going down, so none of them survives) and returns how
// many it closed.
func (s *Store) CloseNASSessions(ctx context.Context, nas string, at time.Time, cause string) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE radius_sessions SET stopped_at = ?, updated_at = ?, stop_cause = ?
			WHERE nas = ? AND stopped_at = ''`, formatTime(at), formatTime(at), cause, nas)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: close sessions of %s: %w", nas, err)
	}
	return n, nil
}

// SessionFilter narrows RADIUSSessions; zero fields do not filter.
type SessionFilter struct {
	OpenOnly bool
	MAC      net.HardwareAddr
	Limit    int // 0: 1000
	Offset   int
}

// where renders the filter as a WHERE clause and its arguments.
func (f SessionFilter) where() (string, []any) {
	q := ` WHERE 1=1`
	var args []any
	if f.OpenOnly {
		q += ` AND stopped_at = ''`
	}
	if len(f.MAC) > 0 {
		q += ` AND mac = ?`
		args = append(args, macText(f.MAC))
	}
	return q, args
}

// CountRADIUSSessions counts the sessions f selects (Limit and Offset
// ignored), for a list's pages.
func (s *Store) CountRADIUSSessions(ctx context.Context, f SessionFilter) (int, error) {
	where, args := f.where()
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM radius_sessions`+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count RADIUS sessions: %w", err)
	}
	return n, nil
}

// RADIUSSessions lists sessions, most recently started first.
func (s *Store) RADIUSSessions(ctx context.Context, f SessionFilter) ([]RADIUSSession, error) {
	where, args := f.where()
	q := `SELECT ` + sessionColumns + ` FROM radius_sessions` + where
	if f.Limit <= 0 {
		f.Limit = 1000
	}
	q += ` ORDER BY started_at DESC, id DESC LIMIT ? OFFSET ?`
	args = append(args, f.Limit, max(f.Offset, 0))
	return queryAll(ctx, s.db, "list RADIUS sessions", scanSession, q, args...)
}

// RADIUSSession returns one session by id; ErrNotFound if there is none.
func (s *Store) RADIUSSession(ctx context.Context, id int64) (RADIUSSession, error) {
	r, err := scanSession(s.db.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM radius_sessions WHERE id = ?`, id))
	if err == sql.ErrNoRows {
		return RADIUSSession{}, fmt.Errorf("store: RADIUS session %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return RADIUSSession{}, fmt.Errorf("store: RADIUS session %d: %w", id, err)
	}
	return r, nil
}

// WhoHeld returns the session that held ip (when valid) or else mac at t:
// started at or before t and not stopped before t, the latest such. It
// answers "who held 10.20.3.7 at 10:41:07?" for alert attribution, walking
// the (ip, started_at) or (mac, started_at) index. ErrNotFound when no
// session covers t.
func (s *Store) WhoHeld(ctx context.Context, ip netip.Addr, mac net.HardwareAddr, t time.Time) (RADIUSSession, error) {
	col, key := "ip", addrText(ip)
	if !ip.IsValid() {
		if len(mac) == 0 {
			return RADIUSSession{}, fmt.Errorf("store: who held: needs an address or a MAC")
		}
		col, key = "mac", macText(mac)
	}
	at := formatTime(t)
	r, err := scanSession(s.db.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM radius_sessions
		WHERE `+col+` = ? AND started_at <= ? AND (stopped_at = '' OR stopped_at >= ?)
		ORDER BY started_at DESC, id DESC LIMIT 1`, key, at, at))
	if err == sql.ErrNoRows {
		return RADIUSSession{}, fmt.Errorf("store: who held %s at %s: %w", key, at, ErrNotFound)
	}
	if err != nil {
		return RADIUSSession{}, fmt.Errorf("store: who held %s at %s: %w", key, at, err)
	}
	return r, nil
}

// PurgeRADIUSSessions deletes sessions that ended before the cut-off,
// audited with their count.
func (s *Store) PurgeRADIUSSessions(ctx context.Context, actor string, before time.Time) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM radius_sessions WHERE stopped_at <> '' AND stopped_at < ?`, formatTime(before))
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		after, err := auditJSON(struct {
			Before  time.Time `json:"before"`
			Deleted int64     `json:"deleted"`
		}{before.UTC(), n})
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "radius.sessions.purge", Object: "radius_sessions", After: after})
	})
	if err != nil {
		return 0, fmt.Errorf("store: purge RADIUS sessions: %w", err)
	}
	return n, nil
}

// SetAPRoom names the room an access point (its MAC, as in
// Called-Station-Id) is in; an empty room forgets it. Audited as "ap.room".
func (s *Store) SetAPRoom(ctx context.Context, actor string, ap net.HardwareAddr, room string) error {
	if len(ap) == 0 {
		return fmt.Errorf("store: set AP room: no MAC")
	}
	m := macText(ap)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var before string
		if err := tx.QueryRowContext(ctx, `SELECT room FROM radius_rooms WHERE ap = ?`, m).Scan(&before); err != nil && err != sql.ErrNoRows {
			return err
		}
		var err error
		if room == "" {
			_, err = tx.ExecContext(ctx, `DELETE FROM radius_rooms WHERE ap = ?`, m)
		} else {
			_, err = tx.ExecContext(ctx, `INSERT INTO radius_rooms (ap, room) VALUES (?, ?)
				ON CONFLICT (ap) DO UPDATE SET room = excluded.room`, m, room)
		}
		if err != nil {
			return err
		}
		type roomAudit struct {
			AP   string `json:"ap"`
			Room string `json:"room"`
		}
		e := AuditEntry{Actor: actor, Action: "ap.room", Object: "ap:" + m}
		if before != "" {
			if e.Before, err = auditJSON(roomAudit{m, before}); err != nil {
				return err
			}
		}
		if e.After, err = auditJSON(roomAudit{m, room}); err != nil {
			return err
		}
		return s.auditTx(ctx, tx, e)
	})
	if err != nil {
		return fmt.Errorf("store: set room of AP %s: %w", m, err)
	}
	return nil
}

// APRooms returns every access point's room, keyed by lower-case colon MAC.
func (s *Store) APRooms(ctx context.Context) (map[string]string, error) {
	type pair struct{ ap, room string }
	rows, err := queryAll(ctx, s.db, "list AP rooms", func(r scanner) (pair, error) {
		var p pair
		return p, r.Scan(&p.ap, &p.room)
	}, `SELECT ap, room FROM radius_rooms ORDER BY ap`)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(rows))
	for _, p := range rows {
		out[p.ap] = p.room
	}
	return out, nil
}

// ApproveDevice approves a device for a segment ("" = whichever segment its
// SSID asks for), unblocking it and naming it when name is given, creating
// its record ahead of its arrival if need be. The devices row and the
// RADIUS segment change together and are audited as one "device.approve".
func (s *Store) ApproveDevice(ctx context.Context, actor string, mac net.HardwareAddr, segment, name string, now time.Time) error {
	if len(mac) == 0 {
		return fmt.Errorf("store: approve device: no MAC")
	}
	m := macText(mac)
	type approval struct {
		MAC      string `json:"mac"`
		Approved bool   `json:"approved"`
		Blocked  bool   `json:"blocked"`
		Name     string `json:"name"`
		Segment  string `json:"segment"`
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		before := approval{MAC: m}
		var had bool
		err := tx.QueryRowContext(ctx, `SELECT d.approved, d.blocked, d.name, coalesce(r.segment, '')
			FROM devices d LEFT JOIN radius_devices r ON r.mac = d.mac WHERE d.mac = ?`, m).
			Scan(&before.Approved, &before.Blocked, &before.Name, &before.Segment)
		switch {
		case err == sql.ErrNoRows:
		case err != nil:
			return err
		default:
			had = true
		}
		after := approval{MAC: m, Approved: true, Name: before.Name, Segment: segment}
		if name != "" {
			after.Name = name
		}
		// Approved before it was ever seen: first_seen stays empty until
		// DHCP sees it (see DecideDevice).
		if _, err := tx.ExecContext(ctx, `INSERT INTO devices (mac, first_seen, last_seen, approved, blocked, name)
			VALUES (?, '', ?, 1, 0, ?)
			ON CONFLICT (mac) DO UPDATE SET approved = 1, blocked = 0, name = excluded.name`,
			m, formatTime(now), after.Name); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO radius_devices (mac, segment) VALUES (?, ?)
			ON CONFLICT (mac) DO UPDATE SET segment = excluded.segment`, m, segment); err != nil {
			return err
		}
		e := AuditEntry{Actor: actor, Action: "device.approve", Object: "device:" + m}
		if had {
			if e.Before, err = auditJSON(before); err != nil {
				return err
			}
		}
		if e.After, err = auditJSON(after); err != nil {
			return err
		}
		return s.auditTx(ctx, tx, e)
	})
	if err != nil {
		return fmt.Errorf("store: approve device %s: %w", m, err)
	}
	return nil
}

// RADIUSDevice is what the RADIUS server keeps about a device.
type RADIUSDevice struct {
	Segment   string
	PSKSealed []byte // nil: no personal key
	PSKSetAt  time.Time
	// OldKeys are the keys kept beside PSKSealed after a rotation with an
	// overlap, not expired at the time asked for.
	OldKeys []OldKey
}

// RADIUSDeviceByMAC returns the RADIUS side of a device; a device with none
// gives the zero value.
func (s *Store) RADIUSDeviceByMAC(ctx context.Context, mac net.HardwareAddr) (RADIUSDevice, error) {
	return s.RADIUSDeviceAt(ctx, mac, time.Now())
}

// RADIUSDeviceAt is RADIUSDeviceByMAC with the old keys still valid at now.
func (s *Store) RADIUSDeviceAt(ctx context.Context, mac net.HardwareAddr, now time.Time) (RADIUSDevice, error) {
	var d RADIUSDevice
	var at string
	err := s.db.QueryRowContext(ctx, `SELECT segment, psk_sealed, psk_set_at FROM radius_devices WHERE mac = ?`, macText(mac)).
		Scan(&d.Segment, &d.PSKSealed, &at)
	if err == sql.ErrNoRows {
		return RADIUSDevice{}, nil
	}
	if err == nil {
		d.PSKSetAt, err = parseTime(at)
	}
	if err == nil {
		d.OldKeys, err = oldKeys(ctx, s.db, macText(mac), now)
	}
	if err != nil {
		return RADIUSDevice{}, fmt.Errorf("store: RADIUS device %s: %w", mac, err)
	}
	return d, nil
}

// SetDeviceKey stores a device's personal Wi-Fi key, sealed by the caller
// (the store never sees it in clear), replacing any earlier one at once,
// audited as "device.key" without the key. The device must be known.
func (s *Store) SetDeviceKey(ctx context.Context, actor string, mac net.HardwareAddr, sealed []byte, now time.Time) error {
	return s.SetDeviceKeyKeepingOld(ctx, actor, mac, sealed, now, time.Time{})
}

// OldKey is a sealed personal key a device keeps beside its current one
// until Expires.
type OldKey struct {
	Sealed  []byte
	SetAt   time.Time
	Expires time.Time
}

// SetDeviceKeyKeepingOld stores a device's new personal key like
// SetDeviceKey; when keepUntil is after now, the key it replaces stays
// valid until keepUntil (a rotation with an overlap, so devices not yet
// given the new key keep joining). Old keys already expired at now are
// deleted here. Audited as "device.key" with the overlap, without keys.
func (s *Store) SetDeviceKeyKeepingOld(ctx context.Context, actor string, mac net.HardwareAddr, sealed []byte, now, keepUntil time.Time) error {
	return s.SetDeviceKeyWithPMKs(ctx, actor, mac, sealed, nil, now, keepUntil)
}

// SetDeviceKeyWithPMKs is SetDeviceKeyKeepingOld storing, in the same
// transaction, the new key's sealed PMKs (one per SSID, computed by the
// caller when it made the key), so the RADIUS server never derives them.
// The PMKs of a key it replaces without an overlap go with that key.
func (s *Store) SetDeviceKeyWithPMKs(ctx context.Context, actor string, mac net.HardwareAddr, sealed []byte, pmks []SealedPMK, now, keepUntil time.Time) error {
	if len(mac) == 0 || len(sealed) == 0 {
		return fmt.Errorf("store: set device key: needs a MAC and a sealed key")
	}
	m := macText(mac)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM devices WHERE mac = ?`, m).Scan(&one); err == sql.ErrNoRows {
			return ErrNotFound
		} else if err != nil {
			return err
		}
		var before string
		var oldSealed []byte
		if err := tx.QueryRowContext(ctx, `SELECT psk_set_at, psk_sealed FROM radius_devices WHERE mac = ?`, m).Scan(&before, &oldSealed); err != nil && err != sql.ErrNoRows {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM radius_device_old_keys WHERE mac = ? AND expires_at <= ?`, m, formatTime(now)); err != nil {
			return err
		}
		kept := ""
		if oldSealed != nil && keepUntil.After(now) {
			kept = formatTime(keepUntil)
			if _, err := tx.ExecContext(ctx, `INSERT INTO radius_device_old_keys (mac, sealed, set_at, expires_at) VALUES (?, ?, ?, ?)`,
				m, oldSealed, before, kept); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO radius_devices (mac, psk_sealed, psk_set_at) VALUES (?, ?, ?)
			ON CONFLICT (mac) DO UPDATE SET psk_sealed = excluded.psk_sealed, psk_set_at = excluded.psk_set_at`,
			m, sealed, formatTime(now)); err != nil {
			return err
		}
		for _, p := range pmks {
			if macText(p.MAC) != m || p.KeyRef != KeyRef(sealed) {
				return fmt.Errorf("a PMK of another key was given with the key of %s", m)
			}
		}
		if err := putPMKs(ctx, tx, pmks); err != nil {
			return err
		}
		// The PMKs of keys this device no longer holds (the one replaced
		// without an overlap, old keys expired above).
		if err := deleteDeadPMKsOf(ctx, tx, m, sealed); err != nil {
			return err
		}
		type keyAudit struct {
			MAC      string `json:"mac"`
			Rotated  bool   `json:"rotated"`
			Previous string `json:"previous_set_at,omitempty"`
			OldUntil string `json:"previous_valid_until,omitempty"`
		}
		after, err := auditJSON(keyAudit{m, before != "", before, kept})
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "device.key", Object: "device:" + m, After: after})
	})
	if err != nil {
		return fmt.Errorf("store: set key of device %s: %w", m, err)
	}
	return nil
}

// deleteDeadPMKsOf deletes the PMKs of mac's keys other than current and
// its old keys.
func deleteDeadPMKsOf(ctx context.Context, tx *sql.Tx, mac string, current []byte) error {
	live := map[string]bool{}
	if current != nil {
		live[KeyRef(current)] = true
	}
	rows, err := tx.QueryContext(ctx, `SELECT sealed FROM radius_device_old_keys WHERE mac = ?`, mac)
	if err != nil {
		return err
	}
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			rows.Close()
			return err
		}
		live[KeyRef(b)] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	refs, err := queryAll(ctx, tx, "PMK keys", func(r scanner) (string, error) {
		var ref string
		return ref, r.Scan(&ref)
	}, `SELECT DISTINCT key_ref FROM radius_device_pmks WHERE mac = ?`, mac)
	if err != nil {
		return err
	}
	for _, ref := range refs {
		if live[ref] {
			continue
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM radius_device_pmks WHERE mac = ? AND key_ref = ?`, mac, ref); err != nil {
			return err
		}
	}
	return nil
}

// oldKeys reads mac's old keys not yet expired at now, oldest first.
func oldKeys(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, mac string, now time.Time) ([]OldKey, error) {
	rows, err := q.QueryContext(ctx, `SELECT sealed, set_at, expires_at FROM radius_device_old_keys
		WHERE mac = ? AND expires_at > ? ORDER BY id`, mac, formatTime(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []OldKey
	for rows.Next() {
		var k OldKey
		var set, exp string
		if err := rows.Scan(&k.Sealed, &set, &exp); err != nil {
			return nil, err
		}
		if k.SetAt, err = parseTime(set); err != nil {
			return nil, err
		}
		if k.Expires, err = parseTime(exp); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// DeviceForRADIUS is a device as the RADIUS server decides on it: the
// devices row's decisions and the RADIUS side, read in one query (an
// Access-Request's hot path).
type DeviceForRADIUS struct {
	Known, Approved, Blocked bool
	Name, Owner, Segment     string
	PSKSealed                []byte
	// OldKeys are every old key kept beside PSKSealed, expired or not
	// (the caller's clock decides), read only when the device has any.
	OldKeys []OldKey
}

// The owner is the person's id (package people's link) when there is one,
// else the free-text owner the devices page keeps. The RADIUS server holds
// these rows in memory and learns of changes only through the triggers of
// migration 0082: a column or table added here needs its trigger there.
const deviceForRADIUSQuery = `SELECT d.approved, d.blocked, d.name, coalesce(CAST(d.person_id AS TEXT), d.owner),
	coalesce(r.segment, ''), r.psk_sealed,
	EXISTS (SELECT 1 FROM radius_device_old_keys k WHERE k.mac = d.mac)
	FROM devices d LEFT JOIN radius_devices r ON r.mac = d.mac WHERE d.mac = ?`

// DeviceForRADIUS looks a device up for an Access-Request; an unknown
// device gives the zero value (Known false), not an error.
func (s *Store) DeviceForRADIUS(ctx context.Context, mac net.HardwareAddr) (DeviceForRADIUS, error) {
	stmt, err := s.prepared(ctx, stmtDeviceForRADIUS, deviceForRADIUSQuery)
	if err != nil {
		return DeviceForRADIUS{}, fmt.Errorf("store: RADIUS device %s: %w", mac, err)
	}
	d := DeviceForRADIUS{Known: true}
	var hasOld bool
	// A cancellable context makes database/sql start a goroutine and the
	// driver register an interrupt for every query; this one is a single
	// indexed row, over before a cancel could matter.
	err = stmt.QueryRowContext(context.WithoutCancel(ctx), macText(mac)).Scan(&d.Approved, &d.Blocked, &d.Name, &d.Owner, &d.Segment, &d.PSKSealed, &hasOld)
	if err == sql.ErrNoRows {
		return DeviceForRADIUS{}, nil
	}
	if err == nil && hasOld {
		// Rare (an overlap after a rotation): a second query only then.
		d.OldKeys, err = oldKeys(ctx, s.db, macText(mac), time.Time{})
	}
	if err != nil {
		return DeviceForRADIUS{}, fmt.Errorf("store: RADIUS device %s: %w", mac, err)
	}
	return d, nil
}

// ApprovedRADIUSDevice is one row of ApprovedDevicesForRADIUS: a device's MAC and
// what DeviceForRADIUS says of it.
type ApprovedRADIUSDevice struct {
	MAC net.HardwareAddr
	DeviceForRADIUS
}

// ApprovedDevicesForRADIUS reads at most limit approved, unblocked devices
// as DeviceForRADIUS reads each, in one query: the RADIUS server preloads
// its device cache with them at start instead of reading each device as
// it first asks (a MAB burst after a restart went through a worker and
// this query per device). The rows are current as of the read; the caller
// follows the change log for what changes after (the same rule as a
// single lookup).
func (s *Store) ApprovedDevicesForRADIUS(ctx context.Context, limit int) ([]ApprovedRADIUSDevice, error) {
	if limit <= 0 {
		return nil, nil
	}
	type row struct {
		d      ApprovedRADIUSDevice
		hasOld bool
	}
	rows, err := queryAll(ctx, s.db, "approved RADIUS devices", func(r scanner) (row, error) {
		var (
			x   row
			mac string
		)
		x.d.Known = true
		if err := r.Scan(&mac, &x.d.Approved, &x.d.Blocked, &x.d.Name, &x.d.Owner, &x.d.Segment, &x.d.PSKSealed, &x.hasOld); err != nil {
			return x, err
		}
		m, err := net.ParseMAC(mac)
		if err != nil {
			return x, fmt.Errorf("device %q: %w", mac, err)
		}
		x.d.MAC = m
		return x, nil
	}, approvedDevicesForRADIUSQuery, limit)
	if err != nil {
		return nil, err // queryAll's error names the query
	}
	out := make([]ApprovedRADIUSDevice, len(rows))
	for i, x := range rows {
		out[i] = x.d
		if x.hasOld {
			// Rare (an overlap after a rotation): a second query only
			// for those, as DeviceForRADIUS does.
			if out[i].OldKeys, err = oldKeys(ctx, s.db, macText(x.d.MAC), time.Time{}); err != nil {
				return nil, fmt.Errorf("store: old keys of RADIUS device %s: %w", x.d.MAC, err)
			}
		}
	}
	return out, nil
}

// approvedDevicesForRADIUSQuery is deviceForRADIUSQuery over every
// approved, unblocked device (the columns the same, after the MAC): a
// column added to one belongs in the other and in migration 0082's
// triggers.
const approvedDevicesForRADIUSQuery = `SELECT d.mac, d.approved, d.blocked, d.name, coalesce(CAST(d.person_id AS TEXT), d.owner),
	coalesce(r.segment, ''), r.psk_sealed,
	EXISTS (SELECT 1 FROM radius_device_old_keys k WHERE k.mac = d.mac)
	FROM devices d LEFT JOIN radius_devices r ON r.mac = d.mac WHERE d.approved AND NOT d.blocked LIMIT ?`

// Statements prepared once per Store (see prepared).
const (
	stmtDeviceForRADIUS = iota
	stmtDeviceChanges
	stmtLeaseMove
	stmtLeaseUpsert
	stmtDeviceSighting
	stmtLeaseUpsertMany
	stmtLeaseMoveMany
	stmtDeviceSightingMany
	stmtPersonChanges
	stmtVoucherForDevice
	stmtRedeemVoucher
	stmtRedeemKnown
	stmtRedeemFirstUse
	stmtRedeemDevice
	stmtRedeemAcceptance
	stmtAttemptBump
	stmtAttemptInsert
	stmtEvictDevices
	numStmts
)

// prepared returns statement id (whose text is query), prepared once per
// Store, for queries on a per-packet path: preparing costs about as much as
// running them.
func (s *Store) prepared(ctx context.Context, id int, query string) (*sql.Stmt, error) {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if st := s.stmts[id]; st != nil {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	s.stmts[id] = st
	return st, nil
}

// txPrepared is statement id (see prepared) for use inside tx: database/sql
// keeps it prepared on each connection it ran on, so a DHCP commit does not
// parse its statements again every batch. The caller must not close it.
func (s *Store) txPrepared(ctx context.Context, tx *sql.Tx, id int, query string) (*sql.Stmt, error) {
	st, err := s.prepared(ctx, id, query)
	if err != nil {
		return nil, err
	}
	return tx.StmtContext(ctx, st), nil
}

// DisablePersonKeys removes the personal Wi-Fi keys of every device the
// person owns (a leaver, a revocation), audited as "person.keys.disable"
// with how many went, and returns that count.
func (s *Store) DisablePersonKeys(ctx context.Context, actor string, personID int64, now time.Time) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE radius_devices SET psk_sealed = NULL, psk_set_at = ?
			WHERE psk_sealed IS NOT NULL AND mac IN (SELECT mac FROM devices WHERE person_id = ?)`, formatTime(now), personID)
		if err != nil {
			return err
		}
		// Keys kept for an overlap go too: a leaver's old key must not
		// outlive their current one. So do the PMKs of them all.
		if _, err := tx.ExecContext(ctx, `DELETE FROM radius_device_old_keys WHERE mac IN (SELECT mac FROM devices WHERE person_id = ?)`, personID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM radius_device_pmks WHERE mac IN (SELECT mac FROM devices WHERE person_id = ?)`, personID); err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		after, err := auditJSON(struct {
			Person int64 `json:"person"`
			Keys   int64 `json:"keys_disabled"`
		}{personID, n})
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "person.keys.disable", Object: fmt.Sprintf("person:%d", personID), After: after})
	})
	if err != nil {
		return 0, fmt.Errorf("store: disable keys of person %d: %w", personID, err)
	}
	return n, nil
}
