package store

// Personal Wi-Fi keys as the RADIUS server matches 4-way handshakes
// against them: the keys themselves (sealed by package radius, never seen
// in clear here), the PMKs derived from them per SSID (sealed likewise),
// and the generation counter that tells another process's change.

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"time"
)

// SealedDeviceKey is one approved, unblocked device's sealed personal key
// and the segment it is approved onto ("" when the SSID decides).
type SealedDeviceKey struct {
	MAC     net.HardwareAddr
	Segment string
	Sealed  []byte
	// Expires is when an old key kept for an overlap stops being valid;
	// zero for the device's current key.
	Expires time.Time
}

// Ref names the key (KeyRef of its sealed form), as its PMKs do.
func (k SealedDeviceKey) Ref() string { return KeyRef(k.Sealed) }

// KeyRef names a sealed key without revealing it: the first 16 octets of
// the SHA-256 of its sealed form, in hex. A rotation with an overlap moves
// the same sealed bytes to the old keys, so the name and the PMKs stay.
func KeyRef(sealed []byte) string {
	h := sha256.Sum256(sealed)
	return hex.EncodeToString(h[:16])
}

// SealedPMK is one key's PMK on one SSID, sealed by package radius.
type SealedPMK struct {
	MAC    net.HardwareAddr
	KeyRef string
	SSID   string
	Sealed []byte
}

// maxSealedDeviceKeys bounds one read: a school has a few thousand devices.
const maxSealedDeviceKeys = 100000

// SealedDeviceKeys lists the current personal keys RADIUS may match a 4-way
// handshake against: approved, unblocked devices that have a key.
func (s *Store) SealedDeviceKeys(ctx context.Context) ([]SealedDeviceKey, error) {
	return s.matchableKeys(ctx, time.Time{}, false)
}

// MatchableDeviceKeys is SealedDeviceKeys with, after them, the old keys of
// those devices still valid at now (a rotation's overlap): each may make a
// handshake until it expires.
func (s *Store) MatchableDeviceKeys(ctx context.Context, now time.Time) ([]SealedDeviceKey, error) {
	return s.matchableKeys(ctx, now, true)
}

func (s *Store) matchableKeys(ctx context.Context, now time.Time, withOld bool) ([]SealedDeviceKey, error) {
	q := `SELECT d.mac, coalesce(r.segment, ''), r.psk_sealed, ''
		FROM devices d JOIN radius_devices r ON r.mac = d.mac
		WHERE d.approved AND NOT d.blocked AND r.psk_sealed IS NOT NULL`
	args := []any{}
	if withOld {
		q += ` UNION ALL SELECT d.mac, coalesce(r.segment, ''), k.sealed, k.expires_at
		FROM radius_device_old_keys k JOIN devices d ON d.mac = k.mac LEFT JOIN radius_devices r ON r.mac = k.mac
		WHERE d.approved AND NOT d.blocked AND k.expires_at > ?`
		args = append(args, formatTime(now))
	}
	q += ` ORDER BY 1, 4 LIMIT ?`
	args = append(args, maxSealedDeviceKeys)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: sealed device keys: %w", err)
	}
	defer rows.Close()
	var out []SealedDeviceKey
	for rows.Next() {
		var mac, exp string
		var k SealedDeviceKey
		if err := rows.Scan(&mac, &k.Segment, &k.Sealed, &exp); err != nil {
			return nil, fmt.Errorf("store: sealed device keys: %w", err)
		}
		if k.MAC, err = parseMACText(mac); err != nil {
			return nil, fmt.Errorf("store: sealed device keys: %w", err)
		}
		if k.Expires, err = parseTime(exp); err != nil {
			return nil, fmt.Errorf("store: sealed device keys: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: sealed device keys: %w", err)
	}
	return out, nil
}

// maxDevicePMKs bounds one read: keys times SSIDs.
const maxDevicePMKs = 1000000

// DevicePMKs returns every stored sealed PMK.
func (s *Store) DevicePMKs(ctx context.Context) ([]SealedPMK, error) {
	return queryAll(ctx, s.db, "list device PMKs", func(r scanner) (SealedPMK, error) {
		var p SealedPMK
		var mac string
		if err := r.Scan(&mac, &p.KeyRef, &p.SSID, &p.Sealed); err != nil {
			return p, err
		}
		var err error
		p.MAC, err = parseMACText(mac)
		return p, err
	}, `SELECT mac, key_ref, ssid, sealed FROM radius_device_pmks ORDER BY mac, key_ref, ssid LIMIT ?`, maxDevicePMKs)
}

// PutDevicePMKs stores PMKs (replacing any of the same key and SSID). The
// server adds those a key lacks (an SSID added to the configuration after
// the key was set) so that it derives each once.
func (s *Store) PutDevicePMKs(ctx context.Context, pmks []SealedPMK) error {
	if len(pmks) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		return putPMKs(ctx, tx, pmks)
	})
	if err != nil {
		return fmt.Errorf("store: put device PMKs: %w", err)
	}
	return nil
}

func putPMKs(ctx context.Context, tx *sql.Tx, pmks []SealedPMK) error {
	for _, p := range pmks {
		if len(p.MAC) == 0 || p.KeyRef == "" || p.SSID == "" || len(p.Sealed) == 0 {
			return fmt.Errorf("a PMK needs a MAC, a key, an SSID and its sealed value")
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO radius_device_pmks (mac, key_ref, ssid, sealed) VALUES (?, ?, ?, ?)
			ON CONFLICT (mac, key_ref, ssid) DO UPDATE SET sealed = excluded.sealed`,
			macText(p.MAC), p.KeyRef, p.SSID, p.Sealed); err != nil {
			return err
		}
	}
	return nil
}

// PurgeExpiredDeviceKeys deletes the old keys expired at now and every PMK
// whose key is gone (expired, replaced without an overlap, disabled),
// audited as "device.keys.purge" with the counts when anything went. It
// returns how many old keys went.
func (s *Store) PurgeExpiredDeviceKeys(ctx context.Context, actor string, now time.Time) (int64, error) {
	var keys, pmks int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM radius_device_old_keys WHERE expires_at <= ?`, formatTime(now))
		if err != nil {
			return err
		}
		if keys, err = res.RowsAffected(); err != nil {
			return err
		}
		if pmks, err = deleteOrphanPMKs(ctx, tx); err != nil {
			return err
		}
		if keys == 0 && pmks == 0 {
			return nil
		}
		after, err := auditJSON(struct {
			Before time.Time `json:"before"`
			Keys   int64     `json:"old_keys_deleted"`
			PMKs   int64     `json:"pmks_deleted"`
		}{now.UTC(), keys, pmks})
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "device.keys.purge", Object: "radius_device_old_keys", After: after})
	})
	if err != nil {
		return 0, fmt.Errorf("store: purge expired device keys: %w", err)
	}
	return keys, nil
}

// deleteOrphanPMKs deletes the PMKs of keys no device holds any more. The
// key names are hashes SQLite cannot compute, so the live ones are listed
// here.
func deleteOrphanPMKs(ctx context.Context, tx *sql.Tx) (int64, error) {
	live := map[string]bool{}
	rows, err := tx.QueryContext(ctx, `SELECT mac, psk_sealed FROM radius_devices WHERE psk_sealed IS NOT NULL
		UNION ALL SELECT mac, sealed FROM radius_device_old_keys`)
	if err != nil {
		return 0, err
	}
	for rows.Next() {
		var mac string
		var sealed []byte
		if err := rows.Scan(&mac, &sealed); err != nil {
			rows.Close()
			return 0, err
		}
		live[mac+"|"+KeyRef(sealed)] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	type pair struct{ mac, ref string }
	var dead []pair
	rows, err = tx.QueryContext(ctx, `SELECT DISTINCT mac, key_ref FROM radius_device_pmks`)
	if err != nil {
		return 0, err
	}
	for rows.Next() {
		var p pair
		if err := rows.Scan(&p.mac, &p.ref); err != nil {
			rows.Close()
			return 0, err
		}
		if !live[p.mac+"|"+p.ref] {
			dead = append(dead, p)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	var n int64
	for _, p := range dead {
		res, err := tx.ExecContext(ctx, `DELETE FROM radius_device_pmks WHERE mac = ? AND key_ref = ?`, p.mac, p.ref)
		if err != nil {
			return n, err
		}
		k, err := res.RowsAffected()
		if err != nil {
			return n, err
		}
		n += k
	}
	return n, nil
}
