package store

// Alerts: findings attributed and folded into cases, the DSL's case history,
// suppressions, and the durable notification outbox (migration 0080).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Alert states, in the order a case moves through them.
const (
	AlertNew     = "new"
	AlertTriaged = "triaged"
	AlertAction  = "action" // action taken
	AlertClosed  = "closed"
)

// AlertStates lists the states in order.
var AlertStates = []string{AlertNew, AlertTriaged, AlertAction, AlertClosed}

// Triage outcomes.
const (
	OutcomeTruePositive  = "true-positive"
	OutcomeFalsePositive = "false-positive"
)

// Severities.
const (
	SeverityHigh   = "high"
	SeverityMedium = "medium"
	SeverityLow    = "low"
)

// Outbox channels.
const (
	ChannelEmail   = "email"  // an immediate email about one alert
	ChannelDigest  = "digest" // a digest email; Payload holds it
	ChannelWebhook = "webhook"
	ChannelSyslog  = "syslog"
)

// Alert is one case: a class of finding from one person or device, with
// every repeat folded in while it is open, and the DfE monitoring fields.
type Alert struct {
	ID        int64
	Key       string // class + who; repeats fold into the open alert with this key
	Class     string
	Severity  string
	State     string
	Outcome   string
	Count     int
	FirstSeen time.Time
	LastSeen  time.Time

	Segment      string
	SrcIP        netip.Addr
	SrcMAC       net.HardwareAddr
	DeviceName   string
	Hostname     string
	Manufacturer string
	PersonName   string
	PersonGroup  string // year/registration group, or staff role
	Room         string
	AccessPoint  string
	SSID         string
	Visitor      string // portal: the code and the name given
	AttributedBy string // radius, portal, lease, device; "" for nobody

	Destination string
	Detail      string
	Evidence    string

	UpdatedAt  time.Time
	NotifiedAt time.Time // zero until the first notification was delivered
}

const alertColumns = `id, rollup_key, class, severity, state, outcome, count, first_seen, last_seen, segment, src_ip, src_mac,
	device_name, hostname, manufacturer, person_name, person_group, room, access_point, ssid, visitor, attributed_by,
	destination, detail, evidence, updated_at, notified_at`

func scanAlert(sc scanner) (Alert, error) {
	var a Alert
	var first, last, ip, mac, upd, notified string
	if err := sc.Scan(&a.ID, &a.Key, &a.Class, &a.Severity, &a.State, &a.Outcome, &a.Count, &first, &last, &a.Segment, &ip, &mac,
		&a.DeviceName, &a.Hostname, &a.Manufacturer, &a.PersonName, &a.PersonGroup, &a.Room, &a.AccessPoint, &a.SSID, &a.Visitor,
		&a.AttributedBy, &a.Destination, &a.Detail, &a.Evidence, &upd, &notified); err != nil {
		return Alert{}, err
	}
	var err error
	for _, p := range []struct {
		dst *time.Time
		s   string
	}{{&a.FirstSeen, first}, {&a.LastSeen, last}, {&a.UpdatedAt, upd}, {&a.NotifiedAt, notified}} {
		if *p.dst, err = parseTime(p.s); err != nil {
			return Alert{}, err
		}
	}
	if a.SrcIP, err = parseAddrText(ip); err != nil {
		return Alert{}, err
	}
	if a.SrcMAC, err = parseMACText(mac); err != nil {
		return Alert{}, err
	}
	return a, nil
}

func macOrEmpty(m net.HardwareAddr) string {
	if len(m) == 0 {
		return ""
	}
	return macText(m)
}

// FoldFinding turns one stored finding into alert work in one transaction:
// when an alert with a.Key is open (not closed) the finding folds into it
// (count, first/last seen, the link to the finding); otherwise a new alert
// is created from a and one outbox row per channel is queued. progress is
// set to findingID in the same transaction, so a crash either did all of
// this or none, and the pipeline resumes after the last finding it folded.
func (s *Store) FoldFinding(ctx context.Context, progress string, findingID int64, a Alert, channels []string, now time.Time) (id int64, created bool, err error) {
	if a.Key == "" || a.Class == "" || a.FirstSeen.IsZero() {
		return 0, false, fmt.Errorf("store: fold finding %d: the alert needs a key, a class and a time", findingID)
	}
	if a.Severity == "" {
		a.Severity = SeverityMedium
	}
	at := formatTime(a.FirstSeen)
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT id FROM alerts WHERE rollup_key = ? AND state <> 'closed' ORDER BY id DESC LIMIT 1`, a.Key).Scan(&id)
		switch {
		case err == nil:
			if _, err := tx.ExecContext(ctx, `UPDATE alerts SET count = count + 1,
				first_seen = min(first_seen, ?1), last_seen = max(last_seen, ?1), updated_at = ?2 WHERE id = ?3`, at, formatTime(now), id); err != nil {
				return err
			}
		case errors.Is(err, sql.ErrNoRows):
			created = true
			res, err := tx.ExecContext(ctx, `INSERT INTO alerts (rollup_key, class, severity, count, first_seen, last_seen, segment,
				src_ip, src_mac, device_name, hostname, manufacturer, person_name, person_group, room, access_point, ssid, visitor,
				attributed_by, destination, detail, evidence, updated_at)
				VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				a.Key, a.Class, a.Severity, at, at, a.Segment, addrText(a.SrcIP.Unmap()), macOrEmpty(a.SrcMAC), a.DeviceName, a.Hostname,
				a.Manufacturer, a.PersonName, a.PersonGroup, a.Room, a.AccessPoint, a.SSID, a.Visitor, a.AttributedBy,
				a.Destination, a.Detail, a.Evidence, formatTime(now))
			if err != nil {
				return err
			}
			if id, err = res.LastInsertId(); err != nil {
				return err
			}
			for _, ch := range channels {
				if _, err := tx.ExecContext(ctx, `INSERT INTO alert_outbox (channel, alert_id, created_at, next_at) VALUES (?, ?, ?, ?)`,
					ch, id, formatTime(now), formatTime(now)); err != nil {
					return err
				}
			}
		default:
			return err
		}
		if findingID != 0 {
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO alert_findings (alert_id, finding_id, at) VALUES (?, ?, ?)`, id, findingID, at); err != nil {
				return err
			}
		}
		return setProgress(ctx, tx, progress, fmt.Sprint(findingID))
	})
	if err != nil {
		return 0, false, fmt.Errorf("store: fold finding %d into %q: %w", findingID, a.Key, err)
	}
	return id, created, nil
}

func setProgress(ctx context.Context, tx *sql.Tx, name, value string) error {
	if name == "" {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO alert_progress (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
	return err
}

// SetAlertProgress records how far a pipeline got (for a finding it skipped:
// suppressed or not worth an alert).
func (s *Store) SetAlertProgress(ctx context.Context, name, value string) error {
	if err := s.inTx(ctx, func(tx *sql.Tx) error { return setProgress(ctx, tx, name, value) }); err != nil {
		return fmt.Errorf("store: set alert progress %s: %w", name, err)
	}
	return nil
}

// AlertProgress returns what SetAlertProgress or FoldFinding recorded; ""
// when nothing was.
func (s *Store) AlertProgress(ctx context.Context, name string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM alert_progress WHERE name = ?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("store: alert progress %s: %w", name, err)
	}
	return v, nil
}

// AlertByID returns one alert; ErrNotFound when there is none.
func (s *Store) AlertByID(ctx context.Context, id int64) (Alert, error) {
	return queryOne(ctx, s.db, fmt.Sprintf("alert %d", id), scanAlert, `SELECT `+alertColumns+` FROM alerts WHERE id = ?`, id)
}

// AlertFilter selects alerts; zero fields select everything.
type AlertFilter struct {
	State      string
	Severities []string
	Outcome    string
	Since      time.Time // first_seen, inclusive
	Until      time.Time // first_seen, exclusive
	Limit      int       // 0 means 100; at most 1000
	Offset     int
}

// ListAlerts returns the alerts f selects, most recently seen first.
func (s *Store) ListAlerts(ctx context.Context, f AlertFilter) ([]Alert, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	if f.Limit > 1000 || f.Offset < 0 {
		return nil, fmt.Errorf("store: alerts: limit %d offset %d out of range", f.Limit, f.Offset)
	}
	q := `SELECT ` + alertColumns + ` FROM alerts WHERE 1 = 1`
	var args []any
	if f.State != "" {
		q += ` AND state = ?`
		args = append(args, f.State)
	}
	if f.Outcome != "" {
		q += ` AND outcome = ?`
		args = append(args, f.Outcome)
	}
	if len(f.Severities) > 0 {
		q += ` AND severity IN (?` + strings.Repeat(", ?", len(f.Severities)-1) + `)`
		for _, sv := range f.Severities {
			args = append(args, sv)
		}
	}
	if !f.Since.IsZero() {
		q += ` AND first_seen >= ?`
		args = append(args, formatTime(f.Since))
	}
	if !f.Until.IsZero() {
		q += ` AND first_seen < ?`
		args = append(args, formatTime(f.Until))
	}
	q += ` ORDER BY last_seen DESC, id DESC LIMIT ? OFFSET ?`
	args = append(args, f.Limit, f.Offset)
	return queryAll(ctx, s.db, "alerts", scanAlert, q, args...)
}

// AlertCounts returns how many alerts are in each state.
func (s *Store) AlertCounts(ctx context.Context) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT state, count(*) FROM alerts GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("store: alert counts: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("store: alert counts: %w", err)
		}
		out[st] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: alert counts: %w", err)
	}
	return out, nil
}

// AlertEvidence returns the findings folded into an alert, newest first, at
// most limit (0: 200).
func (s *Store) AlertEvidence(ctx context.Context, id int64, limit int) ([]Finding, error) {
	if limit <= 0 || limit > MaxFindingsPage {
		limit = 200
	}
	cols := strings.ReplaceAll(`f.`+findingColumns, ", ", ", f.")
	return s.queryFindings(ctx, `SELECT `+cols+` FROM findings f JOIN alert_findings af ON af.finding_id = f.id
		WHERE af.alert_id = ? ORDER BY f.at DESC, f.id DESC LIMIT ?`, id, limit)
}

// AlertNote is one entry of a case's history: a change of state, a note, or
// both.
type AlertNote struct {
	ID        int64
	AlertID   int64
	At        time.Time
	Actor     string
	StateFrom string
	StateTo   string
	Outcome   string
	Note      string
}

// MaxAlertNote bounds a note's length in bytes.
const MaxAlertNote = 4000

// ChangeAlert moves an alert to state (with outcome when triaging) and
// records note, who and when, audited as "alert.change" in the same
// transaction. state "" keeps the state (a note alone); outcome "" keeps
// the outcome.
func (s *Store) ChangeAlert(ctx context.Context, actor string, id int64, state, outcome, note string, at time.Time) (AlertNote, error) {
	if state != "" && !validState(state) {
		return AlertNote{}, fmt.Errorf("store: change alert %d: unknown state %q", id, state)
	}
	if outcome != "" && outcome != OutcomeTruePositive && outcome != OutcomeFalsePositive {
		return AlertNote{}, fmt.Errorf("store: change alert %d: unknown outcome %q", id, outcome)
	}
	if len(note) > MaxAlertNote {
		return AlertNote{}, fmt.Errorf("store: change alert %d: note longer than %d bytes", id, MaxAlertNote)
	}
	if state == "" && outcome == "" && strings.TrimSpace(note) == "" {
		return AlertNote{}, fmt.Errorf("store: change alert %d: nothing to change", id)
	}
	n := AlertNote{AlertID: id, At: at, Actor: actor, Note: note, Outcome: outcome}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var curOutcome string
		err := tx.QueryRowContext(ctx, `SELECT state, outcome FROM alerts WHERE id = ?`, id).Scan(&n.StateFrom, &curOutcome)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		n.StateTo = n.StateFrom
		if state != "" {
			n.StateTo = state
		}
		if outcome == "" {
			outcome = curOutcome
		}
		if _, err := tx.ExecContext(ctx, `UPDATE alerts SET state = ?, outcome = ?, updated_at = ? WHERE id = ?`,
			n.StateTo, outcome, formatTime(at), id); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO alert_notes (alert_id, at, actor, state_from, state_to, outcome, note)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, id, formatTime(at), actor, n.StateFrom, n.StateTo, n.Outcome, note)
		if err != nil {
			return err
		}
		if n.ID, err = res.LastInsertId(); err != nil {
			return err
		}
		before, err := auditJSON(map[string]string{"state": n.StateFrom, "outcome": curOutcome})
		if err != nil {
			return err
		}
		after, err := auditJSON(map[string]string{"state": n.StateTo, "outcome": outcome, "note": note})
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "alert.change", Object: fmt.Sprintf("alert:%d", id), Before: before, After: after})
	})
	if err != nil {
		return AlertNote{}, fmt.Errorf("store: change alert %d: %w", id, err)
	}
	return n, nil
}

func validState(s string) bool {
	for _, v := range AlertStates {
		if v == s {
			return true
		}
	}
	return false
}

func scanAlertNote(sc scanner) (AlertNote, error) {
	var n AlertNote
	var at string
	if err := sc.Scan(&n.ID, &n.AlertID, &at, &n.Actor, &n.StateFrom, &n.StateTo, &n.Outcome, &n.Note); err != nil {
		return AlertNote{}, err
	}
	var err error
	n.At, err = parseTime(at)
	return n, err
}

// AlertNotes returns an alert's history, oldest first.
func (s *Store) AlertNotes(ctx context.Context, id int64) ([]AlertNote, error) {
	return queryAll(ctx, s.db, "alert notes", scanAlertNote, `SELECT id, alert_id, at, actor, state_from, state_to, outcome, note
		FROM alert_notes WHERE alert_id = ? ORDER BY at, id`, id)
}

// Suppression is "not a concern for this device": one class for one MAC
// until an expiry.
type Suppression struct {
	ID        int64
	MAC       net.HardwareAddr
	Class     string
	Reason    string
	Until     time.Time
	CreatedBy string
	CreatedAt time.Time
}

// AddSuppression records a suppression, audited as "alert.suppress".
func (s *Store) AddSuppression(ctx context.Context, actor string, sp Suppression) (Suppression, error) {
	if len(sp.MAC) == 0 || sp.Class == "" || strings.TrimSpace(sp.Reason) == "" || sp.Until.IsZero() {
		return Suppression{}, errors.New("store: add suppression: needs a device, a class, a reason and an expiry")
	}
	if len(sp.Reason) > MaxAlertNote {
		return Suppression{}, fmt.Errorf("store: add suppression: reason longer than %d bytes", MaxAlertNote)
	}
	sp.CreatedBy = actor
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO alert_suppressions (mac, class, reason, until, created_by, created_at)
			VALUES (?, ?, ?, ?, ?, ?)`, macText(sp.MAC), sp.Class, sp.Reason, formatTime(sp.Until), actor, formatTime(sp.CreatedAt))
		if err != nil {
			return err
		}
		if sp.ID, err = res.LastInsertId(); err != nil {
			return err
		}
		after, err := auditJSON(map[string]string{"mac": macText(sp.MAC), "class": sp.Class, "reason": sp.Reason, "until": formatTime(sp.Until)})
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "alert.suppress", Object: "device:" + macText(sp.MAC), After: after})
	})
	if err != nil {
		return Suppression{}, fmt.Errorf("store: add suppression: %w", err)
	}
	return sp, nil
}

// Suppressed reports whether class is suppressed for mac at t.
func (s *Store) Suppressed(ctx context.Context, mac net.HardwareAddr, class string, t time.Time) (bool, error) {
	if len(mac) == 0 {
		return false, nil
	}
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM alert_suppressions WHERE mac = ? AND class = ? AND until > ? AND created_at <= ?`,
		macText(mac), class, formatTime(t), formatTime(t)).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store: suppressed %v %s: %w", mac, class, err)
	}
	return n > 0, nil
}

// ActiveSuppressions lists the suppressions in force at now.
func (s *Store) ActiveSuppressions(ctx context.Context, now time.Time) ([]Suppression, error) {
	return queryAll(ctx, s.db, "suppressions", func(sc scanner) (Suppression, error) {
		var sp Suppression
		var mac, until, created string
		if err := sc.Scan(&sp.ID, &mac, &sp.Class, &sp.Reason, &until, &sp.CreatedBy, &created); err != nil {
			return sp, err
		}
		var err error
		if sp.MAC, err = parseMACText(mac); err != nil {
			return sp, err
		}
		if sp.Until, err = parseTime(until); err != nil {
			return sp, err
		}
		sp.CreatedAt, err = parseTime(created)
		return sp, err
	}, `SELECT id, mac, class, reason, until, created_by, created_at FROM alert_suppressions WHERE until > ? ORDER BY until`, formatTime(now))
}

// OutboxItem is one notification waiting to be (or already) delivered.
type OutboxItem struct {
	ID        int64
	Channel   string
	AlertID   int64 // 0 for a digest
	Payload   string
	CreatedAt time.Time
	Attempts  int
	NextAt    time.Time
	LastError string
	SentAt    time.Time
}

func scanOutbox(sc scanner) (OutboxItem, error) {
	var o OutboxItem
	var alert sql.NullInt64
	var created, next, sent string
	if err := sc.Scan(&o.ID, &o.Channel, &alert, &o.Payload, &created, &o.Attempts, &next, &o.LastError, &sent); err != nil {
		return o, err
	}
	o.AlertID = alert.Int64
	var err error
	if o.CreatedAt, err = parseTime(created); err != nil {
		return o, err
	}
	if o.NextAt, err = parseTime(next); err != nil {
		return o, err
	}
	o.SentAt, err = parseTime(sent)
	return o, err
}

// EnqueueDigest queues a digest email and records progress (the digest's
// period end) in the same transaction, so a digest is queued exactly once.
func (s *Store) EnqueueDigest(ctx context.Context, payload, progress, value string, now time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if payload != "" {
			if _, err := tx.ExecContext(ctx, `INSERT INTO alert_outbox (channel, payload, created_at, next_at) VALUES ('digest', ?, ?, ?)`,
				payload, formatTime(now), formatTime(now)); err != nil {
				return err
			}
		}
		return setProgress(ctx, tx, progress, value)
	})
	if err != nil {
		return fmt.Errorf("store: enqueue digest: %w", err)
	}
	return nil
}

// DueOutbox returns undelivered items whose next attempt is due at now,
// oldest first, at most limit.
func (s *Store) DueOutbox(ctx context.Context, now time.Time, limit int) ([]OutboxItem, error) {
	return queryAll(ctx, s.db, "outbox", scanOutbox, `SELECT id, channel, alert_id, payload, created_at, attempts, next_at, last_error, sent_at
		FROM alert_outbox WHERE sent_at = '' AND next_at <= ? ORDER BY next_at, id LIMIT ?`, formatTime(now), limit)
}

// NextOutboxAt returns when the earliest undelivered item is due; ok false
// when nothing waits.
func (s *Store) NextOutboxAt(ctx context.Context) (t time.Time, ok bool, err error) {
	var next sql.NullString
	if err := s.db.QueryRowContext(ctx, `SELECT min(next_at) FROM alert_outbox WHERE sent_at = ''`).Scan(&next); err != nil {
		return time.Time{}, false, fmt.Errorf("store: next outbox item: %w", err)
	}
	if !next.Valid {
		return time.Time{}, false, nil
	}
	t, err = parseTime(next.String)
	return t, err == nil, err
}

// OutboxSent marks an item delivered at `at`, and its alert notified if it
// was not yet.
func (s *Store) OutboxSent(ctx context.Context, id int64, at time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE alert_outbox SET sent_at = ?, attempts = attempts + 1, last_error = '' WHERE id = ?`, formatTime(at), id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE alerts SET notified_at = ? WHERE notified_at = '' AND id = (SELECT alert_id FROM alert_outbox WHERE id = ?)`, formatTime(at), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: outbox %d sent: %w", id, err)
	}
	return nil
}

// OutboxFailed records a failed attempt and when to try again.
func (s *Store) OutboxFailed(ctx context.Context, id int64, next time.Time, why string) error {
	if len(why) > 500 {
		why = why[:500]
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE alert_outbox SET attempts = attempts + 1, next_at = ?, last_error = ? WHERE id = ?`, formatTime(next), why, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: outbox %d failed: %w", id, err)
	}
	return nil
}

// OutboxDepth returns how many items wait to be delivered, by channel.
func (s *Store) OutboxDepth(ctx context.Context) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT channel, count(*) FROM alert_outbox WHERE sent_at = '' GROUP BY channel`)
	if err != nil {
		return nil, fmt.Errorf("store: outbox depth: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var ch string
		var n int
		if err := rows.Scan(&ch, &n); err != nil {
			return nil, fmt.Errorf("store: outbox depth: %w", err)
		}
		out[ch] = n
	}
	return out, rows.Err()
}

// OutboxItems lists an alert's notifications (0: the digests), newest first.
func (s *Store) OutboxItems(ctx context.Context, alertID int64, limit int) ([]OutboxItem, error) {
	if limit <= 0 {
		limit = 50
	}
	return queryAll(ctx, s.db, "outbox", scanOutbox, `SELECT id, channel, alert_id, payload, created_at, attempts, next_at, last_error, sent_at
		FROM alert_outbox WHERE coalesce(alert_id, 0) = ? ORDER BY id DESC LIMIT ?`, alertID, limit)
}

// PurgeAlerts deletes closed alerts last seen before `before` (with their
// notes, evidence links and notifications) and delivered digests created
// before it, audited as "alerts.purge" with the count in the same
// transaction.
func (s *Store) PurgeAlerts(ctx context.Context, actor string, before time.Time) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM alerts WHERE state = 'closed' AND last_seen < ?`, formatTime(before))
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM alert_outbox WHERE alert_id IS NULL AND sent_at <> '' AND created_at < ?`, formatTime(before)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM alert_suppressions WHERE until < ?`, formatTime(before)); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		after, err := auditJSON(struct {
			Before  time.Time `json:"before"`
			Deleted int64     `json:"deleted"`
		}{before.UTC(), n})
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "alerts.purge", Object: "alerts", After: after})
	})
	if err != nil {
		return 0, fmt.Errorf("store: purge alerts before %v: %w", before, err)
	}
	return n, nil
}

// GuestHolder is who held a device through the captive portal: the code it
// redeemed and the name the visitor gave.
type GuestHolder struct {
	VoucherID int64
	Note      string // the code's note (often who it was for)
	BatchName string
	Name      string // the name typed at the portal
	Company   string
	At        time.Time // when the AUP was accepted
}

// GuestAt returns the portal acceptance by mac (or, without a MAC, by ip)
// in force at t: the latest acceptance at or before t whose code had not
// expired or been revoked by t. ErrNotFound when there is none.
func (s *Store) GuestAt(ctx context.Context, mac net.HardwareAddr, ip netip.Addr, t time.Time) (GuestHolder, error) {
	where, key := `g.mac = ?`, ""
	switch {
	case len(mac) > 0:
		key = macText(mac)
	case ip.IsValid():
		where, key = `g.ip = ?`, addrText(ip.Unmap())
	default:
		return GuestHolder{}, fmt.Errorf("store: guest at %v: %w", t, ErrNotFound)
	}
	var g GuestHolder
	var at string
	var batch sql.NullString
	ts := formatTime(t)
	err := s.db.QueryRowContext(ctx, `SELECT g.voucher_id, v.note, b.name, g.name, g.company, g.at
		FROM guest_acceptances g JOIN vouchers v ON v.id = g.voucher_id LEFT JOIN voucher_batches b ON b.id = v.batch_id
		WHERE `+where+` AND g.at <= ?2 AND (v.revoked_at = '' OR v.revoked_at > ?2) AND (v.expires_at = '' OR v.expires_at > ?2)
		ORDER BY g.at DESC LIMIT 1`, key, ts).Scan(&g.VoucherID, &g.Note, &batch, &g.Name, &g.Company, &at)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return GuestHolder{}, fmt.Errorf("store: guest at %v: %w", t, err)
	}
	g.BatchName = batch.String
	g.At, err = parseTime(at)
	return g, err
}

// DeviceLookups returns the DNS guard's log for a device (by address or
// MAC) in [from, to), oldest first, at most limit: an alert's timeline.
func (s *Store) DeviceLookups(ctx context.Context, ip netip.Addr, mac net.HardwareAddr, from, to time.Time, limit int) ([]DNSQuery, error) {
	if limit <= 0 || limit > 1000 {
		limit = 500
	}
	return queryAll(ctx, s.db, "device lookups", func(sc scanner) (DNSQuery, error) {
		var q DNSQuery
		var at, client, m string
		if err := sc.Scan(&at, &client, &m, &q.Segment, &q.Name, &q.Type, &q.Answer, &q.Action); err != nil {
			return q, err
		}
		var err error
		if q.At, err = parseTime(at); err != nil {
			return q, err
		}
		if q.Client, err = parseAddrText(client); err != nil {
			return q, err
		}
		q.MAC, err = parseMACText(m)
		return q, err
	}, `SELECT at, client, mac, segment, name, qtype, answer, action FROM dns_queries
		WHERE (client = ? OR (mac <> '' AND mac = ?)) AND at >= ? AND at < ? ORDER BY at LIMIT ?`,
		addrText(ip.Unmap()), macOrEmpty(mac), formatTime(from), formatTime(to), limit)
}
