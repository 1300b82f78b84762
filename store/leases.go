package store

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

// DHCPLease is one remembered address binding on a segment.
type DHCPLease struct {
	Segment   string
	IP        netip.Addr
	MAC       net.HardwareAddr // nil for a declined address
	ClientID  []byte
	Hostname  string
	State     string // "bound", "released" or "declined"
	Start     time.Time
	Expires   time.Time
	Relay     netip.Addr // invalid when not relayed
	RelayInfo []byte     // option 82 as received
}

// Device is one device of the inventory: what DHCP saw of it last, and what
// people decided about it.
type Device struct {
	MAC          net.HardwareAddr
	FirstSeen    time.Time
	LastSeen     time.Time
	Segment      string
	IP           netip.Addr
	Hostname     string
	VendorClass  string
	Fingerprint  string
	OS           string
	Manufacturer string
	Randomised   bool
	Approved     bool
	Blocked      bool
	Name         string
	Owner        string
}

// DHCPReservation pins an address on a segment to a MAC.
type DHCPReservation struct {
	Segment string
	MAC     net.HardwareAddr
	IP      netip.Addr
}

func macText(m net.HardwareAddr) string { return strings.ToLower(m.String()) }

func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func parseAddrText(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("stored address %q: %w", s, err)
	}
	return a, nil
}

func parseMACText(s string) (net.HardwareAddr, error) {
	if s == "" {
		return nil, nil
	}
	m, err := net.ParseMAC(s)
	if err != nil {
		return nil, fmt.Errorf("stored MAC %q: %w", s, err)
	}
	return m, nil
}

// SaveDHCP writes lease changes and device sightings from the DHCP server in
// one transaction; when it returns nil they are durable. Each lease replaces
// the row for its segment and address and drops any other row of the same
// MAC on that segment. Each device sighting updates the inventory, keeping
// the earliest first-seen time and leaving approval, blocking, name and
// owner alone. These writes are the devices' doing, not a person's, so they
// are not audited.
func (s *Store) SaveDHCP(ctx context.Context, leases []DHCPLease, devices []Device) error {
	if len(leases) == 0 && len(devices) == 0 {
		return nil
	}
	// The statements run with sctx, which cannot be cancelled: given a
	// context that can, the SQLite driver runs every statement on a
	// goroutine of its own (to interrupt it), and under load a goroutine
	// start and two switches per statement cost more than the statement
	// (a batch is three statements, or three a lease when its text would
	// need a JSON escape: leases_batch.go).
	// ctx still bounds the wait for the write lock, and inTx rolls the
	// transaction back if ctx ended before the commit, so a batch is never
	// committed after its caller gave up on it; the statements finish
	// first, and these take microseconds.
	sctx := context.WithoutCancel(ctx)
	err := checkDHCP(leases, devices)
	if err == nil {
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			var err error
			if batchable(leases, devices) {
				err = s.saveDHCPBatched(ctx, sctx, tx, leases, devices)
			} else {
				err = s.saveDHCPRows(ctx, sctx, tx, leases, devices)
			}
			if err != nil || len(devices) == 0 {
				return err
			}
			return s.evictDevicesTx(sctx, tx)
		})
	}
	if err != nil {
		return fmt.Errorf("store: save %d leases, %d devices: %w", len(leases), len(devices), err)
	}
	return nil
}

// saveDHCPRows is SaveDHCP's transaction body for a batch whose text JSON
// would have to escape (already checked): a statement per row, where
// saveDHCPBatched has one per table.
func (s *Store) saveDHCPRows(ctx, sctx context.Context, tx *sql.Tx, leases []DHCPLease, devices []Device) error {
	if len(leases) > 0 {
		del, err := s.txPrepared(ctx, tx, stmtLeaseMove, leaseMoveQuery)
		if err != nil {
			return err
		}
		up, err := s.txPrepared(ctx, tx, stmtLeaseUpsert, `INSERT INTO dhcp_leases
			(segment, ip, mac, client_id, hostname, state, start_at, expires_at, relay, relay_info)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (segment, ip) DO UPDATE SET
			mac = excluded.mac, client_id = excluded.client_id, hostname = excluded.hostname,
			state = excluded.state, start_at = excluded.start_at, expires_at = excluded.expires_at,
			relay = excluded.relay, relay_info = excluded.relay_info`)
		if err != nil {
			return err
		}
		for _, l := range leases {
			mac := ""
			if len(l.MAC) > 0 {
				mac = macText(l.MAC)
				if _, err := del.ExecContext(sctx, mac, l.Segment, l.IP.String()); err != nil {
					return err
				}
			}
			if _, err := up.ExecContext(sctx, l.Segment, l.IP.String(), mac, l.ClientID, l.Hostname, l.State,
				formatTime(l.Start), formatTime(l.Expires), addrText(l.Relay), l.RelayInfo); err != nil {
				return err
			}
		}
	}
	if len(devices) == 0 {
		return nil
	}
	up, err := s.txPrepared(ctx, tx, stmtDeviceSighting, `INSERT INTO devices
		(mac, first_seen, last_seen, segment, ip, hostname, vendor_class, fingerprint, os, manufacturer, randomised)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (mac) DO UPDATE SET `+deviceSightingSet)
	if err != nil {
		return err
	}
	for _, d := range devices {
		if _, err := up.ExecContext(sctx, macText(d.MAC), formatTime(d.FirstSeen), formatTime(d.LastSeen), d.Segment,
			addrText(d.IP), d.Hostname, d.VendorClass, d.Fingerprint, d.OS, d.Manufacturer, d.Randomised); err != nil {
			return err
		}
	}
	return nil
}

// DHCPLeases returns every remembered lease.
func (s *Store) DHCPLeases(ctx context.Context) ([]DHCPLease, error) {
	return queryAll(ctx, s.db, "list leases", scanLease, `SELECT segment, ip, mac, client_id, hostname, state, start_at, expires_at, relay, relay_info
		FROM dhcp_leases ORDER BY segment, ip`)
}

// The lease lookups by address and by MAC. Named so that a test can check
// that each searches the table's key or its mac index rather than scanning
// it (TestLeasesByIPMigrationKeepsLeases): at a school's scale a scan is a
// read of every lease on a path that runs per finding, per move and per
// accounting record.
const (
	leaseForQuery = `SELECT segment, ip, mac, client_id, hostname, state, start_at, expires_at, relay, relay_info
		FROM dhcp_leases WHERE ip = ? AND mac <> '' AND start_at <= ? AND (state = 'bound' AND expires_at > ? OR state = 'released' AND expires_at > ?)
		ORDER BY start_at DESC LIMIT 1`
	leaseMoveQuery    = `DELETE FROM dhcp_leases WHERE mac = ? AND segment = ? AND ip <> ?`
	leasesForMACQuery = `SELECT segment, ip, mac, client_id, hostname, state, start_at, expires_at, relay, relay_info
		FROM dhcp_leases WHERE mac = ? ORDER BY start_at DESC LIMIT 100`
	boundIPForMACQuery = `SELECT ip FROM dhcp_leases WHERE mac = ? AND state = 'bound'
		ORDER BY start_at DESC LIMIT 1`
)

// LeaseFor returns the bound lease that held ip at t, for attributing a
// finding to a device. ErrNotFound when none did (as far as the current
// bindings tell: a binding overwritten since is gone).
func (s *Store) LeaseFor(ctx context.Context, ip netip.Addr, t time.Time) (DHCPLease, error) {
	ts := formatTime(t)
	row := s.db.QueryRowContext(ctx, leaseForQuery, addrText(ip), ts, ts, ts)
	l, err := scanLease(row)
	if err == sql.ErrNoRows {
		return DHCPLease{}, fmt.Errorf("store: lease for %v at %v: %w", ip, t, ErrNotFound)
	}
	if err != nil {
		return DHCPLease{}, fmt.Errorf("store: lease for %v at %v: %w", ip, t, err)
	}
	return l, nil
}

func scanLease(sc scanner) (DHCPLease, error) {
	var l DHCPLease
	var ip, mac, start, exp, relay string
	if err := sc.Scan(&l.Segment, &ip, &mac, &l.ClientID, &l.Hostname, &l.State, &start, &exp, &relay, &l.RelayInfo); err != nil {
		return DHCPLease{}, err
	}
	var err error
	if l.IP, err = parseAddrText(ip); err != nil {
		return DHCPLease{}, err
	}
	if l.MAC, err = parseMACText(mac); err != nil {
		return DHCPLease{}, err
	}
	if l.Start, err = parseTime(start); err != nil {
		return DHCPLease{}, err
	}
	if l.Expires, err = parseTime(exp); err != nil {
		return DHCPLease{}, err
	}
	if l.Relay, err = parseAddrText(relay); err != nil {
		return DHCPLease{}, err
	}
	return l, nil
}

const deviceColumns = `mac, first_seen, last_seen, segment, ip, hostname, vendor_class, fingerprint, os, manufacturer,
	randomised, approved, blocked, name, owner`

func scanDevice(sc scanner) (Device, error) {
	var d Device
	var mac, first, last, ip string
	if err := sc.Scan(&mac, &first, &last, &d.Segment, &ip, &d.Hostname, &d.VendorClass, &d.Fingerprint, &d.OS,
		&d.Manufacturer, &d.Randomised, &d.Approved, &d.Blocked, &d.Name, &d.Owner); err != nil {
		return Device{}, err
	}
	var err error
	if d.MAC, err = parseMACText(mac); err != nil {
		return Device{}, err
	}
	if d.FirstSeen, err = parseTime(first); err != nil {
		return Device{}, err
	}
	if d.LastSeen, err = parseTime(last); err != nil {
		return Device{}, err
	}
	if d.IP, err = parseAddrText(ip); err != nil {
		return Device{}, err
	}
	return d, nil
}

// DeviceByMAC returns one device; ErrNotFound if DHCP never saw it and no
// one recorded it.
func (s *Store) DeviceByMAC(ctx context.Context, mac net.HardwareAddr) (Device, error) {
	d, err := scanDevice(s.db.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM devices WHERE mac = ?`, macText(mac)))
	if err == sql.ErrNoRows {
		return Device{}, fmt.Errorf("store: device %s: %w", mac, ErrNotFound)
	}
	if err != nil {
		return Device{}, fmt.Errorf("store: device %s: %w", mac, err)
	}
	return d, nil
}

// DeviceFilter narrows ListDevices; zero fields do not filter.
type DeviceFilter struct {
	Segment    string
	Approved   *bool
	Randomised *bool
	SeenSince  time.Time
	// Q is a search: part of the MAC, name, owner, host name or address,
	// ignoring case.
	Q      string
	Limit  int // 0: 1000
	Offset int
}

// ListDevices returns devices, most recently seen first.
func (s *Store) ListDevices(ctx context.Context, f DeviceFilter) ([]Device, error) {
	where, args := f.where()
	if f.Limit <= 0 {
		f.Limit = 1000
	}
	q := `SELECT ` + deviceColumns + ` FROM devices` + where + ` ORDER BY last_seen DESC, mac LIMIT ? OFFSET ?`
	args = append(args, f.Limit, max(f.Offset, 0))
	return queryAll(ctx, s.db, "list devices", scanDevice, q, args...)
}

// DeviceStatus reports whether mac is recorded, approved and blocked. An
// unknown MAC is neither approved nor blocked.
func (s *Store) DeviceStatus(ctx context.Context, mac net.HardwareAddr) (known, approved, blocked bool, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT approved, blocked FROM devices WHERE mac = ?`, macText(mac)).Scan(&approved, &blocked)
	if err == sql.ErrNoRows {
		return false, false, false, nil
	}
	if err != nil {
		return false, false, false, fmt.Errorf("store: device status %s: %w", mac, err)
	}
	return true, approved, blocked, nil
}

// deviceAudit is the part of a device a person changes.
type deviceAudit struct {
	MAC      string `json:"mac"`
	Approved bool   `json:"approved"`
	Blocked  bool   `json:"blocked"`
	Name     string `json:"name"`
	Owner    string `json:"owner"`
}

// DeviceDecision is what a person sets on a device.
type DeviceDecision struct {
	Approved bool
	Blocked  bool
	Name     string
	Owner    string
}

// DecideDevice sets approval, blocking, name and owner of a device, creating
// its record if DHCP has not seen it yet (approving ahead of arrival), and
// audits it as "device.update". now stamps a new record.
func (s *Store) DecideDevice(ctx context.Context, actor string, mac net.HardwareAddr, d DeviceDecision, now time.Time) error {
	if len(mac) == 0 {
		return fmt.Errorf("store: decide device: no MAC")
	}
	m := macText(mac)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var before deviceAudit
		var had bool
		err := tx.QueryRowContext(ctx, `SELECT approved, blocked, name, owner FROM devices WHERE mac = ?`, m).
			Scan(&before.Approved, &before.Blocked, &before.Name, &before.Owner)
		switch {
		case err == sql.ErrNoRows:
		case err != nil:
			return err
		default:
			had = true
			before.MAC = m
		}
		// A device recorded by hand has not been seen: first_seen stays
		// empty ("never") until DHCP sees it; last_seen is the recording,
		// so the retention purge counts from it.
		if _, err := tx.ExecContext(ctx, `INSERT INTO devices (mac, first_seen, last_seen, approved, blocked, name, owner)
			VALUES (?, '', ?, ?, ?, ?, ?)
			ON CONFLICT (mac) DO UPDATE SET approved = excluded.approved, blocked = excluded.blocked,
			name = excluded.name, owner = excluded.owner`,
			m, formatTime(now), d.Approved, d.Blocked, d.Name, d.Owner); err != nil {
			return err
		}
		e := AuditEntry{Actor: actor, Action: "device.update", Object: "device:" + m}
		if had {
			if e.Before, err = auditJSON(before); err != nil {
				return err
			}
		}
		if e.After, err = auditJSON(deviceAudit{MAC: m, Approved: d.Approved, Blocked: d.Blocked, Name: d.Name, Owner: d.Owner}); err != nil {
			return err
		}
		return s.auditTx(ctx, tx, e)
	})
	if err != nil {
		return fmt.Errorf("store: decide device %s: %w", m, err)
	}
	return nil
}

// DHCPReservations returns every static reservation.
func (s *Store) DHCPReservations(ctx context.Context) ([]DHCPReservation, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT segment, mac, ip FROM dhcp_reservations ORDER BY segment, ip`)
	if err != nil {
		return nil, fmt.Errorf("store: list reservations: %w", err)
	}
	defer rows.Close()
	var out []DHCPReservation
	for rows.Next() {
		var r DHCPReservation
		var mac, ip string
		if err := rows.Scan(&r.Segment, &mac, &ip); err != nil {
			return nil, fmt.Errorf("store: list reservations: %w", err)
		}
		if r.MAC, err = parseMACText(mac); err != nil {
			return nil, fmt.Errorf("store: list reservations: %w", err)
		}
		if r.IP, err = parseAddrText(ip); err != nil {
			return nil, fmt.Errorf("store: list reservations: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list reservations: %w", err)
	}
	return out, nil
}

type reservationAudit struct {
	Segment string `json:"segment"`
	MAC     string `json:"mac"`
	IP      string `json:"ip"`
}

// ReserveAddress pins r.IP on r.Segment to r.MAC (replacing the MAC's earlier
// reservation there), audited as "dhcp.reserve". An address already reserved
// for another MAC is ErrExists.
func (s *Store) ReserveAddress(ctx context.Context, actor string, r DHCPReservation) error {
	if r.Segment == "" || len(r.MAC) == 0 || !r.IP.Is4() {
		return fmt.Errorf("store: reserve address: needs a segment, a MAC and an IPv4 address")
	}
	m := macText(r.MAC)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var beforeIP string
		err := tx.QueryRowContext(ctx, `SELECT ip FROM dhcp_reservations WHERE segment = ? AND mac = ?`, r.Segment, m).Scan(&beforeIP)
		if err != nil && err != sql.ErrNoRows {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO dhcp_reservations (segment, mac, ip) VALUES (?, ?, ?)
			ON CONFLICT (segment, mac) DO UPDATE SET ip = excluded.ip`, r.Segment, m, r.IP.String()); err != nil {
			if isUniqueViolation(err) {
				return ErrExists
			}
			return err
		}
		e := AuditEntry{Actor: actor, Action: "dhcp.reserve", Object: "reservation:" + r.Segment + "/" + m}
		if beforeIP != "" {
			if e.Before, err = auditJSON(reservationAudit{r.Segment, m, beforeIP}); err != nil {
				return err
			}
		}
		if e.After, err = auditJSON(reservationAudit{r.Segment, m, r.IP.String()}); err != nil {
			return err
		}
		return s.auditTx(ctx, tx, e)
	})
	if err != nil {
		return fmt.Errorf("store: reserve %v on %s for %s: %w", r.IP, r.Segment, m, err)
	}
	return nil
}

// Unreserve removes the MAC's reservation on a segment, audited as
// "dhcp.unreserve"; ErrNotFound if there was none.
func (s *Store) Unreserve(ctx context.Context, actor, segment string, mac net.HardwareAddr) error {
	m := macText(mac)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var ip string
		err := tx.QueryRowContext(ctx, `SELECT ip FROM dhcp_reservations WHERE segment = ? AND mac = ?`, segment, m).Scan(&ip)
		if err == sql.ErrNoRows {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM dhcp_reservations WHERE segment = ? AND mac = ?`, segment, m); err != nil {
			return err
		}
		before, err := auditJSON(reservationAudit{segment, m, ip})
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditEntry{Actor: actor, Action: "dhcp.unreserve", Object: "reservation:" + segment + "/" + m, Before: before})
	})
	if err != nil {
		return fmt.Errorf("store: unreserve %s on %s: %w", m, segment, err)
	}
	return nil
}

// checkDHCP refuses, before any is written, a lease without a segment, an
// IPv4 address or a known state, and a device without a MAC.
func checkDHCP(leases []DHCPLease, devices []Device) error {
	for _, l := range leases {
		if l.Segment == "" || !l.IP.Is4() {
			return fmt.Errorf("lease %q %v: needs a segment and an IPv4 address", l.Segment, l.IP)
		}
		switch l.State {
		case "bound", "released", "declined":
		default:
			return fmt.Errorf("lease %s %v: state %q", l.Segment, l.IP, l.State)
		}
	}
	for _, d := range devices {
		if len(d.MAC) == 0 {
			return errors.New("device without a MAC")
		}
	}
	return nil
}
