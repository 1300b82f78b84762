package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// MaxVoucherBatch is the most codes one IssueVouchers call creates.
const MaxVoucherBatch = 500

// maxVoucherNote bounds a code's note and a batch's name, in bytes.
const maxVoucherNote = 200

// Voucher is a visitor code as the database keeps it: its HMAC, never the
// code itself.
type Voucher struct {
	ID              int64
	CodeHash        string // hex HMAC-SHA256 of the normalised code under the site key
	BatchID         int64  // 0: not part of a batch
	BatchName       string // filled by lookups
	CreatedBy       string // actor that issued it, "web:alice"
	CreatedAt       time.Time
	Duration        time.Duration // whole seconds, > 0
	StartOnFirstUse bool          // false: the clock starts at CreatedAt
	NotBefore       time.Time     // zero: no lower bound
	NotAfter        time.Time     // zero: no upper bound
	MaxDevices      int           // 0: unlimited
	RateUpBps       int64         // bits per second; 0: the segment's default
	RateDownBps     int64
	QuotaBytes      int64 // 0: none
	Note            string
	FirstUsedAt     time.Time
	ExpiresAt       time.Time // zero until the clock has started
	RevokedAt       time.Time
	Devices         int // devices that redeemed it, filled by lookups
}

// Until is when the code stops admitting: the earlier of its expiry and its
// not-after time. Zero when neither is known yet (first-use code, unused,
// without a not-after bound).
func (v Voucher) Until() time.Time {
	switch {
	case v.ExpiresAt.IsZero():
		return v.NotAfter
	case v.NotAfter.IsZero() || v.ExpiresAt.Before(v.NotAfter):
		return v.ExpiresAt
	}
	return v.NotAfter
}

// VoucherDevice is one device that redeemed a code.
type VoucherDevice struct {
	VoucherID   int64
	MAC         net.HardwareAddr
	IP          netip.Addr
	FirstAt     time.Time
	LastAt      time.Time
	LoggedOutAt time.Time // zero while the device is signed in
}

// Redemption is a visitor's accepted AUP with a code, as RedeemVoucher
// records it.
type Redemption struct {
	CodeHash   string
	MAC        net.HardwareAddr
	IP         netip.Addr
	At         time.Time
	Name       string
	Company    string
	AUPVersion string
}

// GuestAcceptance is one recorded acceptance of the AUP.
type GuestAcceptance struct {
	ID         int64
	At         time.Time
	VoucherID  int64
	MAC        net.HardwareAddr
	Randomised bool // locally administered MAC
	IP         netip.Addr
	Name       string
	Company    string
	AUPVersion string
}

// VoucherAttempt is one code typed at the portal, without the code.
type VoucherAttempt struct {
	ID      int64
	At      time.Time        // the first attempt of the row's minute
	MAC     net.HardwareAddr // nil when the portal could not learn it
	IP      netip.Addr
	Outcome string
	Count   int64 // attempts with this MAC, address and outcome in that minute
}

// PortalAUP is an Acceptable Use Policy text as published.
type PortalAUP struct {
	Version string // hex SHA-256 of the texts
	TextEN  string
	TextCY  string // "" when there is no Welsh text
	SetAt   time.Time
	SetBy   string
}

// GuestDevice is a device admitted by a code that is still valid.
type GuestDevice struct {
	VoucherID int64
	MAC       net.HardwareAddr
	IP        netip.Addr
	Until     time.Time
	// The code's limits, so a restored admission keeps them.
	RateUpBps, RateDownBps, QuotaBytes int64
}

// VoucherFilter narrows ListVouchers.
type VoucherFilter struct {
	CreatedBy string // "" for every issuer
	// Q is a search in the note and the batch name, ignoring case.
	Q      string
	Limit  int // <= 0: 200
	Offset int
}

// where renders the filter as a WHERE clause and its arguments.
func (f VoucherFilter) where() (string, []any) {
	q := `WHERE 1=1 `
	var args []any
	if f.CreatedBy != "" {
		q += `AND v.created_by = ? `
		args = append(args, f.CreatedBy)
	}
	if f.Q != "" {
		like := likePattern(f.Q)
		q += `AND (lower(v.note) LIKE ? ESCAPE '\' OR lower(coalesce(b.name, '')) LIKE ? ESCAPE '\') `
		args = append(args, like, like)
	}
	return q, args
}

// CountVouchers counts the codes f selects (Limit and Offset ignored).
func (s *Store) CountVouchers(ctx context.Context, f VoucherFilter) (int, error) {
	where, args := f.where()
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*)`+voucherFrom+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count vouchers: %w", err)
	}
	return n, nil
}

// voucherAudit is what the audit log records about a code: never its hash.
type voucherAudit struct {
	ID              int64     `json:"id"`
	BatchID         int64     `json:"batch_id,omitempty"`
	DurationS       int64     `json:"duration_s"`
	StartOnFirstUse bool      `json:"start_on_first_use"`
	NotBefore       time.Time `json:"not_before,omitzero"`
	NotAfter        time.Time `json:"not_after,omitzero"`
	MaxDevices      int       `json:"max_devices"`
	RateUpBps       int64     `json:"rate_up_bps,omitempty"`
	RateDownBps     int64     `json:"rate_down_bps,omitempty"`
	QuotaBytes      int64     `json:"quota_bytes,omitempty"`
	Note            string    `json:"note,omitempty"`
	ExpiresAt       time.Time `json:"expires_at,omitzero"`
	RevokedAt       time.Time `json:"revoked_at,omitzero"`
}

func auditOfVoucher(v Voucher) voucherAudit {
	return voucherAudit{ID: v.ID, BatchID: v.BatchID, DurationS: int64(v.Duration / time.Second),
		StartOnFirstUse: v.StartOnFirstUse, NotBefore: v.NotBefore, NotAfter: v.NotAfter, MaxDevices: v.MaxDevices,
		RateUpBps: v.RateUpBps, RateDownBps: v.RateDownBps, QuotaBytes: v.QuotaBytes, Note: v.Note,
		ExpiresAt: v.ExpiresAt, RevokedAt: v.RevokedAt}
}

// VoucherKey returns the site's key for hashing codes, creating a random
// 32-byte key on first use.
func (s *Store) VoucherKey(ctx context.Context) ([]byte, error) {
	var key []byte
	err := s.db.QueryRowContext(ctx, `SELECT key FROM voucher_key WHERE id = 1`).Scan(&key)
	if err == nil {
		return key, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: voucher key: %w", err)
	}
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("store: voucher key: %w", err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		// Another writer may have made it first: keep theirs.
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO voucher_key (id, key) VALUES (1, ?)`, fresh); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT key FROM voucher_key WHERE id = 1`).Scan(&key)
	})
	if err != nil {
		return nil, fmt.Errorf("store: voucher key: %w", err)
	}
	return key, nil
}

// LegacyVoucherKey returns the code key kept in the database by versions
// before the site key file, without creating one; ok is false when there is
// none. Codes hashed with it still redeem.
func (s *Store) LegacyVoucherKey(ctx context.Context) (key []byte, ok bool, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT key FROM voucher_key WHERE id = 1`).Scan(&key)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: legacy voucher key: %w", err)
	}
	return key, true, nil
}

func checkVoucher(v Voucher) error {
	switch {
	case v.CodeHash == "":
		return errors.New("no code hash")
	case v.Duration < time.Second || v.Duration%time.Second != 0:
		return fmt.Errorf("duration %v must be a positive whole number of seconds", v.Duration)
	case v.MaxDevices < 0:
		return fmt.Errorf("devices %d must be 0 (unlimited) or more", v.MaxDevices)
	case v.RateUpBps < 0 || v.RateDownBps < 0 || v.QuotaBytes < 0:
		return errors.New("rate limits and quota must not be negative")
	case len(v.Note) > maxVoucherNote:
		return fmt.Errorf("note is longer than %d bytes", maxVoucherNote)
	case !v.NotBefore.IsZero() && !v.NotAfter.IsZero() && !v.NotAfter.After(v.NotBefore):
		return fmt.Errorf("not-after %v is not after not-before %v", v.NotAfter, v.NotBefore)
	}
	return nil
}

// IssueVouchers stores up to MaxVoucherBatch new codes in one transaction,
// each audited as "voucher.issue". With a batch name the codes are grouped
// in a new batch. Each Voucher's ID (and BatchID) is assigned, CreatedBy is
// actor, CreatedAt is filled if zero, and a code whose clock starts on issue
// gets its ExpiresAt (from its NotBefore when that is later). A hash already present is ErrExists.
func (s *Store) IssueVouchers(ctx context.Context, actor, batchName string, vs []Voucher) ([]Voucher, error) {
	if len(vs) == 0 || len(vs) > MaxVoucherBatch {
		return nil, fmt.Errorf("store: issue vouchers: %d codes, want 1..%d", len(vs), MaxVoucherBatch)
	}
	if len(batchName) > maxVoucherNote {
		return nil, fmt.Errorf("store: issue vouchers: batch name is longer than %d bytes", maxVoucherNote)
	}
	out := make([]Voucher, len(vs))
	for i, v := range vs {
		if err := checkVoucher(v); err != nil {
			return nil, fmt.Errorf("store: issue vouchers: code %d: %w", i+1, err)
		}
		if v.CreatedAt.IsZero() {
			v.CreatedAt = time.Now()
		}
		v.CreatedAt = v.CreatedAt.UTC()
		v.CreatedBy = actor
		v.FirstUsedAt, v.RevokedAt, v.ExpiresAt, v.Devices = time.Time{}, time.Time{}, time.Time{}, 0
		if !v.StartOnFirstUse {
			// A code dated for later starts its clock when it becomes valid.
			start := v.CreatedAt
			if v.NotBefore.After(start) {
				start = v.NotBefore.UTC()
			}
			v.ExpiresAt = start.Add(v.Duration)
		}
		out[i] = v
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var batchID int64
		if batchName != "" {
			res, err := tx.ExecContext(ctx, `INSERT INTO voucher_batches (name, created_by, created_at) VALUES (?, ?, ?)`,
				batchName, actor, formatTime(out[0].CreatedAt))
			if err != nil {
				return err
			}
			if batchID, err = res.LastInsertId(); err != nil {
				return err
			}
		}
		ins, err := tx.PrepareContext(ctx, `INSERT INTO vouchers (code_hash, batch_id, created_by, created_at, duration_s,
			start_on_use, not_before, not_after, max_devices, rate_up_bps, rate_down_bps, quota_bytes, note, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for i := range out {
			v := &out[i]
			v.BatchID, v.BatchName = batchID, batchName
			var batch any
			if batchID != 0 {
				batch = batchID
			}
			res, err := ins.ExecContext(ctx, v.CodeHash, batch, v.CreatedBy, formatTime(v.CreatedAt), int64(v.Duration/time.Second),
				v.StartOnFirstUse, formatTime(v.NotBefore), formatTime(v.NotAfter), v.MaxDevices, v.RateUpBps, v.RateDownBps,
				v.QuotaBytes, v.Note, formatTime(v.ExpiresAt))
			if err != nil {
				if isUniqueViolation(err) {
					return ErrExists
				}
				return err
			}
			if v.ID, err = res.LastInsertId(); err != nil {
				return err
			}
			after, err := auditJSON(auditOfVoucher(*v))
			if err != nil {
				return err
			}
			if err := s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "voucher.issue", Object: fmt.Sprintf("voucher:%d", v.ID), After: after}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: issue %d vouchers: %w", len(vs), err)
	}
	return out, nil
}

const voucherColumns = `v.id, v.code_hash, coalesce(v.batch_id, 0), coalesce(b.name, ''), v.created_by, v.created_at, v.duration_s,
	v.start_on_use, v.not_before, v.not_after, v.max_devices, v.rate_up_bps, v.rate_down_bps, v.quota_bytes, v.note,
	v.first_used_at, v.expires_at, v.revoked_at, (SELECT count(*) FROM voucher_devices d WHERE d.voucher_id = v.id)`

const voucherFrom = ` FROM vouchers v LEFT JOIN voucher_batches b ON b.id = v.batch_id `

func scanVoucher(sc scanner) (Voucher, error) {
	var v Voucher
	var created, nb, na, first, exp, rev string
	var dur int64
	if err := sc.Scan(&v.ID, &v.CodeHash, &v.BatchID, &v.BatchName, &v.CreatedBy, &created, &dur, &v.StartOnFirstUse,
		&nb, &na, &v.MaxDevices, &v.RateUpBps, &v.RateDownBps, &v.QuotaBytes, &v.Note, &first, &exp, &rev, &v.Devices); err != nil {
		return Voucher{}, err
	}
	v.Duration = time.Duration(dur) * time.Second
	for _, f := range []struct {
		dst *time.Time
		src string
	}{{&v.CreatedAt, created}, {&v.NotBefore, nb}, {&v.NotAfter, na}, {&v.FirstUsedAt, first}, {&v.ExpiresAt, exp}, {&v.RevokedAt, rev}} {
		t, err := parseTime(f.src)
		if err != nil {
			return Voucher{}, fmt.Errorf("voucher %d: %w", v.ID, err)
		}
		*f.dst = t
	}
	return v, nil
}

func voucherWhere(ctx context.Context, q querier, where string, args ...any) (Voucher, error) {
	v, err := scanVoucher(q.QueryRowContext(ctx, `SELECT `+voucherColumns+voucherFrom+`WHERE `+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return Voucher{}, ErrNotFound
	}
	return v, err
}

// VoucherByHash looks a code up by its hash.
func (s *Store) VoucherByHash(ctx context.Context, hash string) (Voucher, error) {
	v, err := voucherWhere(ctx, s.db, `v.code_hash = ?`, hash)
	if err != nil {
		return Voucher{}, fmt.Errorf("store: voucher by hash: %w", err)
	}
	return v, nil
}

// VoucherByID looks a code up by id.
func (s *Store) VoucherByID(ctx context.Context, id int64) (Voucher, error) {
	v, err := voucherWhere(ctx, s.db, `v.id = ?`, id)
	if err != nil {
		return Voucher{}, fmt.Errorf("store: voucher %d: %w", id, err)
	}
	return v, nil
}

// ListVouchers returns codes, newest first.
func (s *Store) ListVouchers(ctx context.Context, f VoucherFilter) ([]Voucher, error) {
	if f.Limit <= 0 {
		f.Limit = 200
	}
	where, args := f.where()
	q := `SELECT ` + voucherColumns + voucherFrom + where
	q += `ORDER BY v.created_at DESC, v.id DESC LIMIT ? OFFSET ?`
	args = append(args, f.Limit, f.Offset)
	return queryAll(ctx, s.db, "list vouchers", scanVoucher, q, args...)
}

func scanVoucherDevice(sc scanner) (VoucherDevice, error) {
	var d VoucherDevice
	var mac, ip, first, last, out string
	if err := sc.Scan(&d.VoucherID, &mac, &ip, &first, &last, &out); err != nil {
		return VoucherDevice{}, err
	}
	var err error
	if d.MAC, err = parseMACText(mac); err != nil {
		return VoucherDevice{}, err
	}
	if d.IP, err = parseAddrText(ip); err != nil {
		return VoucherDevice{}, err
	}
	for _, f := range []struct {
		dst *time.Time
		src string
	}{{&d.FirstAt, first}, {&d.LastAt, last}, {&d.LoggedOutAt, out}} {
		if *f.dst, err = parseTime(f.src); err != nil {
			return VoucherDevice{}, err
		}
	}
	return d, nil
}

func voucherDevices(ctx context.Context, q querier, id int64) ([]VoucherDevice, error) {
	rows, err := q.QueryContext(ctx, `SELECT voucher_id, mac, ip, first_at, last_at, logged_out_at
		FROM voucher_devices WHERE voucher_id = ? ORDER BY first_at, mac`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []VoucherDevice
	for rows.Next() {
		d, err := scanVoucherDevice(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// VoucherDevices lists the devices that redeemed a code.
func (s *Store) VoucherDevices(ctx context.Context, id int64) ([]VoucherDevice, error) {
	ds, err := voucherDevices(ctx, s.db, id)
	if err != nil {
		return nil, fmt.Errorf("store: devices of voucher %d: %w", id, err)
	}
	return ds, nil
}

// RedeemVoucher records a visitor's acceptance with a code in one
// transaction. check sees the code as it is inside the transaction (with its
// device count) and whether this MAC already redeemed it; an error from
// check aborts and is returned unwrapped, so callers can match their own
// sentinels. On success the code's clock starts if this is its first use
// and it starts on first use, the device is (again) signed in with its
// current IP, and an acceptance row is written. The updated code is
// returned. An unknown hash is ErrNotFound. These writes are a visitor's
// doing, not a person's with an account, so they are recorded as
// acceptances rather than audited.
func (s *Store) RedeemVoucher(ctx context.Context, r Redemption, check func(v Voucher, known bool) error) (Voucher, error) {
	if err := r.valid(); err != nil {
		return Voucher{}, err
	}
	var v Voucher
	var checkErr error
	s.prepareRedeem(ctx)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		v, checkErr, err = redeemTx(ctx, s, tx, r, check)
		if checkErr != nil {
			return checkErr
		}
		return err
	})
	if checkErr != nil {
		return Voucher{}, checkErr
	}
	if err != nil {
		return Voucher{}, fmt.Errorf("store: redeem voucher: %w", err)
	}
	return v, nil
}

// valid checks what RedeemVoucher needs of a redemption before any SQL.
func (r Redemption) valid() error {
	if len(r.MAC) == 0 || !r.IP.IsValid() || r.AUPVersion == "" {
		return errors.New("store: redeem voucher: needs a MAC, an IP and an AUP version")
	}
	if len(r.Name) > maxVoucherNote || len(r.Company) > maxVoucherNote {
		return fmt.Errorf("store: redeem voucher: name and company must be at most %d bytes", maxVoucherNote)
	}
	return nil
}

// The sign-in's statements (redeemTx, recordAttemptTx), prepared once.
//
// A parameter in a WHERE clause is written +? (the same value, no
// affinity either way, the same query plan): SQLite 3.54's planner marks
// a bare ? it looked at while planning (whether it is 0 or 1, say) as
// one whose new value may want a new plan, and the driver clears every
// binding before each run, which then expires the statement: every
// execution parsed and planned it again, a tenth of the daemon's CPU at
// a rush (perf, bench/captive.sh) and half the sign-in transaction's
// time. The unary plus hides the parameter from that check.
const (
	redeemVoucherQuery  = `SELECT ` + voucherColumns + voucherFrom + `WHERE v.code_hash = +?`
	redeemKnownQuery    = `SELECT count(*) FROM voucher_devices WHERE voucher_id = +? AND mac = +?`
	redeemFirstUseQuery = `UPDATE vouchers SET first_used_at = ?, expires_at = ? WHERE id = +?`
	redeemDeviceQuery   = `INSERT INTO voucher_devices (voucher_id, mac, ip, first_at, last_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (voucher_id, mac) DO UPDATE SET ip = excluded.ip, last_at = excluded.last_at, logged_out_at = ''`
	redeemAcceptanceQuery = `INSERT INTO guest_acceptances (at, voucher_id, mac, randomised, ip, name, company, aup_version)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	attemptBumpQuery = `UPDATE voucher_attempts SET count = count + 1
		WHERE id = (SELECT id FROM voucher_attempts WHERE mac = +? AND ip = +? AND outcome = +? AND at >= +? AND at < +? ORDER BY id DESC LIMIT 1)`
	attemptInsertQuery = `INSERT INTO voucher_attempts (at, mac, ip, outcome) VALUES (?, ?, ?, ?)`
)

// redeemTx is RedeemVoucher's work inside tx (the caller checked r). A
// refusal by check comes back as checkErr, any other failure as err; either
// way the caller must undo what was written.
// s, when not nil, runs the statements prepared once (txq).
func redeemTx(ctx context.Context, s *Store, tx *sql.Tx, r Redemption, check func(v Voucher, known bool) error) (v Voucher, checkErr, err error) {
	q := txq{ctx: ctx, s: s, tx: tx}
	at := r.At.UTC()
	mac := macText(r.MAC)
	v, err = scanVoucher(q.queryRow(stmtRedeemVoucher, redeemVoucherQuery, r.CodeHash))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Voucher{}, nil, err
	}
	var n int
	if err := q.queryRow(stmtRedeemKnown, redeemKnownQuery, v.ID, mac).Scan(&n); err != nil {
		return Voucher{}, nil, err
	}
	if checkErr = check(v, n > 0); checkErr != nil {
		return Voucher{}, checkErr, nil
	}
	if v.FirstUsedAt.IsZero() {
		v.FirstUsedAt = at
		if v.StartOnFirstUse {
			v.ExpiresAt = at.Add(v.Duration)
		}
		if _, err := q.exec(stmtRedeemFirstUse, redeemFirstUseQuery,
			formatTime(v.FirstUsedAt), formatTime(v.ExpiresAt), v.ID); err != nil {
			return Voucher{}, nil, err
		}
	}
	if _, err := q.exec(stmtRedeemDevice, redeemDeviceQuery,
		v.ID, mac, r.IP.String(), formatTime(at), formatTime(at)); err != nil {
		return Voucher{}, nil, err
	}
	if n == 0 {
		v.Devices++
	}
	if _, err := q.exec(stmtRedeemAcceptance, redeemAcceptanceQuery, formatTime(at), v.ID, mac, r.MAC[0]&2 != 0, r.IP.String(), r.Name, r.Company, r.AUPVersion); err != nil {
		return Voucher{}, nil, err
	}
	return v, nil, nil
}

// activeDeviceWhere selects signed-in devices of unrevoked codes still valid
// at a time (the one argument). +?1, not ?1: see redeemVoucherQuery's
// comment (VoucherForDevice runs for every probe of a rush).
const activeDeviceWhere = `d.logged_out_at = '' AND v.revoked_at = '' AND v.expires_at <> ''
	AND v.expires_at > +?1 AND (v.not_after = '' OR v.not_after > +?1)`

// VoucherForDevice returns the valid code a signed-in device redeemed, and
// the device's row, for re-admitting it without the portal. ErrNotFound when
// it has none.
func (s *Store) VoucherForDevice(ctx context.Context, mac net.HardwareAddr, now time.Time) (Voucher, VoucherDevice, error) {
	var id int64
	// Prepared once: the portal asks this for every probe and page of a
	// device that is not signed in, and parsing the join cost more than
	// running it.
	stmt, err := s.prepared(ctx, stmtVoucherForDevice, `SELECT v.id FROM voucher_devices d JOIN vouchers v ON v.id = d.voucher_id
		WHERE d.mac = +?2 AND `+activeDeviceWhere+` ORDER BY v.expires_at DESC LIMIT 1`)
	if err == nil {
		err = stmt.QueryRowContext(ctx, formatTime(now), macText(mac)).Scan(&id)
	}
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Voucher{}, VoucherDevice{}, fmt.Errorf("store: voucher for %v: %w", mac, err)
	}
	v, err := voucherWhere(ctx, s.db, `v.id = ?`, id)
	if err != nil {
		return Voucher{}, VoucherDevice{}, fmt.Errorf("store: voucher for %v: %w", mac, err)
	}
	d, err := scanVoucherDevice(s.db.QueryRowContext(ctx, `SELECT voucher_id, mac, ip, first_at, last_at, logged_out_at
		FROM voucher_devices WHERE voucher_id = ? AND mac = ?`, id, macText(mac)))
	if err != nil {
		return Voucher{}, VoucherDevice{}, fmt.Errorf("store: voucher for %v: %w", mac, err)
	}
	return v, d, nil
}

// ActiveGuestDevices lists every signed-in device of a code still valid at
// now, with when its admission ends, so the kernel's admissions can be
// rebuilt after a restart.
func (s *Store) ActiveGuestDevices(ctx context.Context, now time.Time) ([]GuestDevice, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT d.voucher_id, d.mac, d.ip, v.expires_at, v.not_after,
		v.rate_up_bps, v.rate_down_bps, v.quota_bytes
		FROM voucher_devices d JOIN vouchers v ON v.id = d.voucher_id WHERE `+activeDeviceWhere+` ORDER BY d.voucher_id, d.mac`,
		formatTime(now))
	if err != nil {
		return nil, fmt.Errorf("store: active guest devices: %w", err)
	}
	defer rows.Close()
	var out []GuestDevice
	for rows.Next() {
		var g GuestDevice
		var mac, ip, exp, na string
		if err := rows.Scan(&g.VoucherID, &mac, &ip, &exp, &na, &g.RateUpBps, &g.RateDownBps, &g.QuotaBytes); err != nil {
			return nil, fmt.Errorf("store: active guest devices: %w", err)
		}
		v := Voucher{}
		if g.MAC, err = parseMACText(mac); err == nil {
			if g.IP, err = parseAddrText(ip); err == nil {
				if v.ExpiresAt, err = parseTime(exp); err == nil {
					v.NotAfter, err = parseTime(na)
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("store: active guest devices: %w", err)
		}
		g.Until = v.Until()
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: active guest devices: %w", err)
	}
	return out, nil
}

// TouchVoucherDevice records a device's current address when it is
// re-admitted without the portal. ErrNotFound when it never redeemed the code.
func (s *Store) TouchVoucherDevice(ctx context.Context, voucherID int64, mac net.HardwareAddr, ip netip.Addr, at time.Time) error {
	return s.updateVoucherDevice(ctx, "touch", `UPDATE voucher_devices SET ip = ?, last_at = ? WHERE voucher_id = ? AND mac = ?`,
		addrText(ip), formatTime(at), voucherID, macText(mac))
}

// SignOutVoucherDevice marks a device as signed out (the visitor pressed
// "log out"): it keeps its place on the code but is no longer re-admitted on
// its own. ErrNotFound when it never redeemed the code.
func (s *Store) SignOutVoucherDevice(ctx context.Context, voucherID int64, mac net.HardwareAddr, at time.Time) error {
	return s.updateVoucherDevice(ctx, "sign out", `UPDATE voucher_devices SET logged_out_at = ? WHERE voucher_id = ? AND mac = ?`,
		formatTime(at), voucherID, macText(mac))
}

func (s *Store) updateVoucherDevice(ctx context.Context, what, q string, args ...any) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		return execOne(ctx, tx, q, args...)
	})
	if err != nil {
		return fmt.Errorf("store: %s voucher device: %w", what, err)
	}
	return nil
}

// changeVoucher applies fn to a code inside one transaction, writes the
// fields fn may change (expires_at, not_after, duration, revoked_at) and
// audits the change. It returns the code after the change and its devices.
func (s *Store) changeVoucher(ctx context.Context, actor, action string, id int64, fn func(v *Voucher) error) (Voucher, []VoucherDevice, error) {
	var v Voucher
	var ds []VoucherDevice
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		before, err := voucherWhere(ctx, tx, `v.id = ?`, id)
		if err != nil {
			return err
		}
		v = before
		if err := fn(&v); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE vouchers SET duration_s = ?, expires_at = ?, not_after = ?, revoked_at = ? WHERE id = ?`,
			int64(v.Duration/time.Second), formatTime(v.ExpiresAt), formatTime(v.NotAfter), formatTime(v.RevokedAt), id); err != nil {
			return err
		}
		if ds, err = voucherDevices(ctx, tx, id); err != nil {
			return err
		}
		b, err := auditJSON(auditOfVoucher(before))
		if err != nil {
			return err
		}
		a, err := auditJSON(auditOfVoucher(v))
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: action, Object: fmt.Sprintf("voucher:%d", id), Before: b, After: a})
	})
	if err != nil {
		return Voucher{}, nil, fmt.Errorf("store: %s %d: %w", action, id, err)
	}
	return v, ds, nil
}

// RevokeVoucher ends a code at the given time, audited as "voucher.revoke",
// and returns it with its devices (which the caller must now evict).
// Revoking a revoked code changes nothing but is audited again.
func (s *Store) RevokeVoucher(ctx context.Context, actor string, id int64, at time.Time) (Voucher, []VoucherDevice, error) {
	return s.changeVoucher(ctx, actor, "voucher.revoke", id, func(v *Voucher) error {
		if v.RevokedAt.IsZero() {
			v.RevokedAt = at.UTC()
		}
		return nil
	})
}

// ExtendVoucher lengthens a code by d, audited as "voucher.extend": its
// duration, its expiry (when its clock has started) and its not-after bound
// (when it has one) all move by d. A revoked code cannot be extended.
func (s *Store) ExtendVoucher(ctx context.Context, actor string, id int64, d time.Duration) (Voucher, []VoucherDevice, error) {
	if d < time.Second || d%time.Second != 0 {
		return Voucher{}, nil, fmt.Errorf("store: extend voucher %d: %v is not a positive whole number of seconds", id, d)
	}
	return s.changeVoucher(ctx, actor, "voucher.extend", id, func(v *Voucher) error {
		if !v.RevokedAt.IsZero() {
			return fmt.Errorf("voucher %d was revoked", id)
		}
		v.Duration += d
		if !v.ExpiresAt.IsZero() {
			v.ExpiresAt = v.ExpiresAt.Add(d)
		}
		if !v.NotAfter.IsZero() {
			v.NotAfter = v.NotAfter.Add(d)
		}
		return nil
	})
}

// RecordVoucherAttempt logs one code attempt (never the code). Not audited:
// it is a visitor's doing; it is the brute-force trail.
func (s *Store) RecordVoucherAttempt(ctx context.Context, a VoucherAttempt) error {
	s.prepareRedeem(ctx)
	err := s.inTx(ctx, func(tx *sql.Tx) error { return recordAttemptTx(ctx, s, tx, a) })
	if err != nil {
		return fmt.Errorf("store: record voucher attempt: %w", err)
	}
	return nil
}

// recordAttemptTx is RecordVoucherAttempt's work inside tx. Attempts are
// aggregated: one adds to its device's row for the outcome and minute, if
// there is one.
func recordAttemptTx(ctx context.Context, s *Store, tx *sql.Tx, a VoucherAttempt) error {
	q := txq{ctx: ctx, s: s, tx: tx}
	mac := ""
	if len(a.MAC) > 0 {
		mac = macText(a.MAC)
	}
	minute := a.At.UTC().Truncate(time.Minute)
	res, err := q.exec(stmtAttemptBump, attemptBumpQuery,
		mac, addrText(a.IP), a.Outcome, formatTime(minute), formatTime(minute.Add(time.Minute)))
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return err
	}
	_, err = q.exec(stmtAttemptInsert, attemptInsertQuery,
		formatTime(a.At), mac, addrText(a.IP), a.Outcome)
	return err
}

// VoucherAttempts returns the newest attempts, newest first.
func (s *Store) VoucherAttempts(ctx context.Context, limit int) ([]VoucherAttempt, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, at, mac, ip, outcome, count FROM voucher_attempts ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: voucher attempts: %w", err)
	}
	defer rows.Close()
	var out []VoucherAttempt
	for rows.Next() {
		var a VoucherAttempt
		var at, mac, ip string
		if err := rows.Scan(&a.ID, &at, &mac, &ip, &a.Outcome, &a.Count); err != nil {
			return nil, fmt.Errorf("store: voucher attempts: %w", err)
		}
		if a.At, err = parseTime(at); err == nil {
			if a.MAC, err = parseMACText(mac); err == nil {
				a.IP, err = parseAddrText(ip)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("store: voucher attempts: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: voucher attempts: %w", err)
	}
	return out, nil
}

// SetPortalAUP publishes new AUP texts under version (what the portal
// records against each acceptance; package captive says how a version is
// made), audited as "portal.aup"; the previous texts stay on record.
func (s *Store) SetPortalAUP(ctx context.Context, actor, version, en, cy string, at time.Time) (PortalAUP, error) {
	if en == "" {
		return PortalAUP{}, errors.New("store: set portal AUP: the English text is empty")
	}
	if len(version) < 12 {
		return PortalAUP{}, errors.New("store: set portal AUP: a version of at least 12 characters is required")
	}
	if len(en) > 64<<10 || len(cy) > 64<<10 {
		return PortalAUP{}, errors.New("store: set portal AUP: a text is longer than 64 KiB")
	}
	p := PortalAUP{Version: version, TextEN: en, TextCY: cy, SetAt: at.UTC(), SetBy: actor}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO portal_aup (version, text_en, text_cy, set_at, set_by) VALUES (?, ?, ?, ?, ?)`,
			p.Version, en, cy, formatTime(p.SetAt), actor); err != nil {
			return err
		}
		after, err := auditJSON(struct {
			Version string `json:"version"`
			Bytes   int    `json:"bytes"`
		}{p.Version, len(en) + len(cy)})
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "portal.aup", Object: "aup:" + p.Version[:12], After: after})
	})
	s.portal.changed()
	if err != nil {
		return PortalAUP{}, fmt.Errorf("store: set portal AUP: %w", err)
	}
	return p, nil
}

// CurrentPortalAUP returns the AUP in force; ErrNotFound when none was set.
func (s *Store) CurrentPortalAUP(ctx context.Context) (PortalAUP, error) {
	if p, found, ok := s.portal.aup(); ok {
		if !found {
			return PortalAUP{}, fmt.Errorf("store: portal AUP: %w", ErrNotFound)
		}
		return p, nil
	}
	gen := s.portal.generation()
	var p PortalAUP
	var at string
	err := s.db.QueryRowContext(ctx, `SELECT version, text_en, text_cy, set_at, set_by FROM portal_aup ORDER BY id DESC LIMIT 1`).
		Scan(&p.Version, &p.TextEN, &p.TextCY, &at, &p.SetBy)
	if errors.Is(err, sql.ErrNoRows) {
		s.portal.keepAUP(gen, PortalAUP{}, false)
		err = ErrNotFound
	}
	if err == nil {
		p.SetAt, err = parseTime(at)
	}
	if err != nil {
		return PortalAUP{}, fmt.Errorf("store: portal AUP: %w", err)
	}
	s.portal.keepAUP(gen, p, true)
	return p, nil
}

// GuestAcceptances returns acceptances with from <= at < to, oldest first.
func (s *Store) GuestAcceptances(ctx context.Context, from, to time.Time) ([]GuestAcceptance, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, at, voucher_id, mac, randomised, ip, name, company, aup_version
		FROM guest_acceptances WHERE at >= ? AND at < ? ORDER BY at, id`, formatTime(from), formatTime(to))
	if err != nil {
		return nil, fmt.Errorf("store: guest acceptances: %w", err)
	}
	defer rows.Close()
	var out []GuestAcceptance
	for rows.Next() {
		var g GuestAcceptance
		var at, mac, ip string
		if err := rows.Scan(&g.ID, &at, &g.VoucherID, &mac, &g.Randomised, &ip, &g.Name, &g.Company, &g.AUPVersion); err != nil {
			return nil, fmt.Errorf("store: guest acceptances: %w", err)
		}
		if g.At, err = parseTime(at); err == nil {
			if g.MAC, err = parseMACText(mac); err == nil {
				g.IP, err = parseAddrText(ip)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("store: guest acceptances: %w", err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: guest acceptances: %w", err)
	}
	return out, nil
}

// PurgeGuestRecords deletes acceptances and code attempts older than before
// (the school's retention), audited as "guest.purge" with the counts.
func (s *Store) PurgeGuestRecords(ctx context.Context, actor string, before time.Time) (acceptances, attempts int64, err error) {
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM guest_acceptances WHERE at < ?`, formatTime(before))
		if err != nil {
			return err
		}
		if acceptances, err = res.RowsAffected(); err != nil {
			return err
		}
		if res, err = tx.ExecContext(ctx, `DELETE FROM voucher_attempts WHERE at < ?`, formatTime(before)); err != nil {
			return err
		}
		if attempts, err = res.RowsAffected(); err != nil {
			return err
		}
		after, err := auditJSON(struct {
			Before      time.Time `json:"before"`
			Acceptances int64     `json:"acceptances"`
			Attempts    int64     `json:"attempts"`
		}{before.UTC(), acceptances, attempts})
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "guest.purge", Object: "guest_records", After: after})
	})
	if err != nil {
		return 0, 0, fmt.Errorf("store: purge guest records: %w", err)
	}
	return acceptances, attempts, nil
}
