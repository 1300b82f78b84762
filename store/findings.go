package store

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Finding is one stored inspection finding: what the inspect engine saw
// (a bypass attempt or a device problem) and, once attributed, which device
// and person it belongs to. The store does not interpret Class or Detail.
type Finding struct {
	ID       int64
	At       time.Time
	Source   string // the component that raised it (finding.Source*); "" in old rows
	Segment  string // "" when the sensor could not tell
	SrcIP    netip.Addr
	SrcMAC   net.HardwareAddr // nil when unknown
	DstIP    netip.Addr       // invalid when there is no far end
	DstPort  uint16
	Proto    string
	Class    string
	Detail   string
	Evidence string
	// Confidence is the inspect engine's: "certain", "likely" or
	// "attempt"; "" for other sources and older rows.
	Confidence string
	// Attribution; 0 until the alert pipeline has worked out who it was.
	DeviceID int64
	PersonID int64
}

// DefaultFindingRetention is how long findings are kept unless the school
// says otherwise: long enough to see a pattern over a half term.
const DefaultFindingRetention = 90 * 24 * time.Hour

// MaxFindingsPage bounds one Findings call.
const MaxFindingsPage = 1000

// InsertFindings stores a batch in one transaction: all of them or, on
// error, none. The devices the findings name (by source MAC) are recorded
// in the inventory as seen then, in the same transaction. On success each finding's ID is set. Findings are what
// devices did, not a person's change, so they are not audited.
func (s *Store) InsertFindings(ctx context.Context, fs []Finding) error {
	if len(fs) == 0 {
		return nil
	}
	ids := make([]int64, len(fs))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		ins, err := tx.PrepareContext(ctx, `INSERT INTO findings
			(at, segment, src_ip, src_mac, dst_ip, dst_port, proto, class, detail, evidence, device_id, person_id, source, confidence)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for i, f := range fs {
			if f.At.IsZero() || f.Class == "" {
				return fmt.Errorf("finding %d (%q from %v): needs a time and a class", i, f.Class, f.SrcIP)
			}
			mac := ""
			if len(f.SrcMAC) > 0 {
				mac = macText(f.SrcMAC)
			}
			res, err := ins.ExecContext(ctx, formatTime(f.At), f.Segment, addrText(f.SrcIP.Unmap()), mac,
				addrText(f.DstIP.Unmap()), int(f.DstPort), f.Proto, f.Class, f.Detail, f.Evidence,
				nullID(f.DeviceID), nullID(f.PersonID), f.Source, f.Confidence)
			if err != nil {
				return err
			}
			if ids[i], err = res.LastInsertId(); err != nil {
				return err
			}
		}
		n, err := sightFindingsTx(ctx, tx, fs)
		if err != nil || n == 0 {
			return err
		}
		return s.evictDevicesTx(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("store: insert %d findings: %w", len(fs), err)
	}
	for i := range fs {
		fs[i].ID = ids[i]
	}
	return nil
}

func nullID(id int64) sql.NullInt64 { return sql.NullInt64{Int64: id, Valid: id != 0} }

// FindingFilter selects findings; zero fields select everything.
type FindingFilter struct {
	Class   string
	Segment string
	MAC     net.HardwareAddr // the device on our side
	Since   time.Time        // inclusive
	Until   time.Time        // exclusive
	Limit   int              // 0 means 100; at most MaxFindingsPage
	Offset  int
}

// where renders the filter as a WHERE clause and its arguments.
func (f FindingFilter) where() (string, []any) {
	q := ` WHERE 1 = 1`
	var args []any
	if f.Class != "" {
		q += ` AND class = ?`
		args = append(args, f.Class)
	}
	if f.Segment != "" {
		q += ` AND segment = ?`
		args = append(args, f.Segment)
	}
	if len(f.MAC) > 0 {
		q += ` AND src_mac = ?`
		args = append(args, macText(f.MAC))
	}
	if !f.Since.IsZero() {
		q += ` AND at >= ?`
		args = append(args, formatTime(f.Since))
	}
	if !f.Until.IsZero() {
		q += ` AND at < ?`
		args = append(args, formatTime(f.Until))
	}
	return q, args
}

// Findings returns the findings f selects, newest first.
func (s *Store) Findings(ctx context.Context, f FindingFilter) ([]Finding, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	if f.Limit > MaxFindingsPage || f.Offset < 0 {
		return nil, fmt.Errorf("store: findings: limit %d offset %d out of range", f.Limit, f.Offset)
	}
	where, args := f.where()
	q := `SELECT ` + findingColumns + ` FROM findings` + where + ` ORDER BY at DESC, id DESC LIMIT ? OFFSET ?`
	args = append(args, f.Limit, f.Offset)
	return s.queryFindings(ctx, q, args...)
}

const findingColumns = `id, at, segment, src_ip, src_mac, dst_ip, dst_port, proto, class, detail, evidence, device_id, person_id, source, confidence`

// FindingsAfter returns up to limit findings with an id above after, in id
// order: the alert pipeline's feed. Ids grow in commit order (one writer at
// a time), so a reader that remembers the last id it handled misses none.
func (s *Store) FindingsAfter(ctx context.Context, after int64, limit int) ([]Finding, error) {
	if limit <= 0 || limit > MaxFindingsPage {
		limit = MaxFindingsPage
	}
	return s.queryFindings(ctx, `SELECT `+findingColumns+` FROM findings WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
}

func (s *Store) queryFindings(ctx context.Context, q string, args ...any) ([]Finding, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: findings: %w", err)
	}
	defer rows.Close()
	var out []Finding
	for rows.Next() {
		var fd Finding
		var at, src, mac, dst string
		var port int
		var dev, person sql.NullInt64
		if err := rows.Scan(&fd.ID, &at, &fd.Segment, &src, &mac, &dst, &port, &fd.Proto, &fd.Class,
			&fd.Detail, &fd.Evidence, &dev, &person, &fd.Source, &fd.Confidence); err != nil {
			return nil, fmt.Errorf("store: findings: %w", err)
		}
		if fd.At, err = parseTime(at); err != nil {
			return nil, fmt.Errorf("store: findings: row %d: %w", fd.ID, err)
		}
		if fd.SrcIP, err = parseAddrText(src); err != nil {
			return nil, fmt.Errorf("store: findings: row %d: %w", fd.ID, err)
		}
		if fd.SrcMAC, err = parseMACText(mac); err != nil {
			return nil, fmt.Errorf("store: findings: row %d: %w", fd.ID, err)
		}
		if fd.DstIP, err = parseAddrText(dst); err != nil {
			return nil, fmt.Errorf("store: findings: row %d: %w", fd.ID, err)
		}
		fd.DstPort = uint16(port)
		fd.DeviceID, fd.PersonID = dev.Int64, person.Int64
		out = append(out, fd)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: findings: %w", err)
	}
	return out, nil
}

// CountFindings returns how many findings f selects, ignoring Limit and
// Offset.
func (s *Store) CountFindings(ctx context.Context, f FindingFilter) (int, error) {
	where, args := f.where()
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM findings`+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count findings: %w", err)
	}
	return n, nil
}

// FindingSegments lists the segments that have findings, sorted, for a
// filter's choices.
func (s *Store) FindingSegments(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT segment FROM findings WHERE segment <> '' ORDER BY segment`)
	if err != nil {
		return nil, fmt.Errorf("store: finding segments: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var seg string
		if err := rows.Scan(&seg); err != nil {
			return nil, fmt.Errorf("store: finding segments: %w", err)
		}
		out = append(out, seg)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: finding segments: %w", err)
	}
	return out, nil
}

// PurgeFindings deletes findings older than before and returns how many
// went, audited as "findings.purge" (see purgeOlder).
func (s *Store) PurgeFindings(ctx context.Context, actor string, before time.Time) (int64, error) {
	return s.purgeOlder(ctx, actor, "findings", "findings.purge", before)
}
