package dhcp

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
)

// SQLStore is the LeaseStore over Gatehouse's database.
//
// DeviceStatus answers from memory: a SQLite query per packet cost more
// than the rest of the exchange (issue 16's profile). The memory copy is
// correct whoever writes the devices table, by construction: triggers log
// the MAC of every change of a device's presence, approval and blocking in
// store's device change log (store.ChangesSince), and the copy follows that
// log, reading again each MAC it names, at most statusInline behind (a
// gap in the log: it reloads every state), so the admin pages, people,
// RADIUS, the purges and the CLI in another process need not know it
// exists. The server's own
// sightings are written through at once, so a device it just recorded is
// known to the next packet.
type SQLStore struct {
	st     *store.Store
	states deviceStates
	// saveMu guards ls and ds, SaveBatch's conversions, reused between
	// batches (the committer calls it once a batch; store.SaveDHCP keeps
	// nothing) so that a batch does not allocate its size again.
	saveMu sync.Mutex
	ls     []store.DHCPLease
	ds     []store.Device
}

// NewSQLStore adapts st.
func NewSQLStore(st *store.Store) *SQLStore {
	return &SQLStore{st: st}
}

// How far the in-memory device states may lag the database: refreshed in
// the background when older than statusRefresh, and in line (the packet
// waits) when older than statusInline, so a decision made in any process
// (a leaver revoked, a device blocked) reaches the next packet that comes
// statusInline after it at the latest. When the database cannot be read
// for statusStale, lookups fail (and the handler fails closed) rather than
// serve old decisions.
const (
	statusRefresh = 100 * time.Millisecond
	statusInline  = 500 * time.Millisecond
	statusStale   = 5 * time.Second
	// changesPerRead bounds one read of the change log; more changes than
	// that since the last refresh (a bulk import) make it reload in full.
	changesPerRead = 4096
)

// Device state bits in deviceStates.m; presence in the map is "known".
const (
	stateApproved uint8 = 1 << iota
	stateBlocked
)

// deviceStates is the in-memory copy of every device's state. The map is
// as large as the devices table, which the store bounds (SetMaxDevices).
type deviceStates struct {
	mu     sync.RWMutex
	m      map[[6]byte]uint8
	seq    int64     // change log position m reflects
	loaded time.Time // last successful refresh; zero before the first
	// refresh is held by the one goroutine reading the log; the others
	// answer from the copy meanwhile.
	refresh sync.Mutex
}

func key6(mac net.HardwareAddr) (k [6]byte, ok bool) {
	if len(mac) != 6 {
		return k, false
	}
	copy(k[:], mac)
	return k, true
}

// catchUp brings the copy up to date when it is older than statusRefresh.
// A copy younger than statusInline answers at once and is refreshed on a
// goroutine of its own: the packet's worker does not wait for SQLite (a
// refresh reads every MAC the change log names, which on a busy morning
// is hundreds of this server's own sightings, and waits for a connection
// beside the daemon's other readers), so no OFFER queues behind it. Under
// load the packets keep the copy younger than that. An older copy (a
// quiet segment: the last packet, and so the last refresh, was a while
// ago) is refreshed in line, so that the first packet after a quiet spell
// never acts on a decision undone since; a copy that could not be
// refreshed for statusStale fails the lookup (closed).
func (s *SQLStore) catchUp(ctx context.Context) error {
	d := &s.states
	now := time.Now()
	d.mu.RLock()
	at := d.loaded
	d.mu.RUnlock()
	if !at.IsZero() && now.Sub(at) < statusRefresh {
		return nil
	}
	if !at.IsZero() && now.Sub(at) < statusInline {
		if d.refresh.TryLock() {
			go func() {
				defer d.refresh.Unlock()
				rctx, cancel := context.WithTimeout(context.Background(), statusStale)
				defer cancel()
				s.refreshLocked(rctx)
			}()
		}
		return nil // this packet, and the others meanwhile, use the copy
	}
	d.refresh.Lock()
	defer d.refresh.Unlock()
	d.mu.RLock()
	at = d.loaded
	d.mu.RUnlock()
	err := s.refreshLocked(ctx)
	if err != nil && !at.IsZero() && time.Since(at) < statusStale {
		return nil
	}
	return err
}

// refreshLocked follows the change log unless another refresh just did.
// Only the holder of states.refresh calls it.
func (s *SQLStore) refreshLocked(ctx context.Context) error {
	d := &s.states
	d.mu.RLock()
	at, seq := d.loaded, d.seq
	d.mu.RUnlock()
	if !at.IsZero() && time.Since(at) < statusRefresh {
		return nil
	}
	return s.follow(ctx, at.IsZero(), seq)
}

// follow applies the change log after seq (each MAC it names is read
// again from the devices table), or reloads every state when full is set
// or the log no longer reaches back to seq (store.ChangesSince's gap).
// Only the holder of states.refresh calls it.
func (s *SQLStore) follow(ctx context.Context, full bool, seq int64) error {
	d := &s.states
	if !full {
		macs, next, gap, err := s.st.ChangesSince(ctx, seq, changesPerRead)
		if err != nil {
			return err
		}
		if !gap {
			// Read after the log (store's reading rule): the states are
			// at least as new as next.
			slices.Sort(macs)
			states, err := s.st.DeviceStatesOf(ctx, slices.Compact(macs))
			if err != nil {
				return err
			}
			d.mu.Lock()
			for _, c := range states {
				k, ok := key6(c.MAC)
				if !ok {
					continue
				}
				if !c.Present {
					delete(d.m, k)
					continue
				}
				d.m[k] = bits(c.Approved, c.Blocked)
			}
			d.seq, d.loaded = next, time.Now()
			d.mu.Unlock()
			return nil
		}
	}
	all, seq, err := s.st.DeviceStates(ctx)
	if err != nil {
		return err
	}
	m := make(map[[6]byte]uint8, len(all))
	for _, st := range all {
		if k, ok := key6(st.MAC); ok {
			m[k] = bits(st.Approved, st.Blocked)
		}
	}
	d.mu.Lock()
	d.m, d.seq, d.loaded = m, seq, time.Now()
	d.mu.Unlock()
	// Changes made while the table was read.
	return s.follow(ctx, false, seq)
}

func bits(approved, blocked bool) uint8 {
	var b uint8
	if approved {
		b |= stateApproved
	}
	if blocked {
		b |= stateBlocked
	}
	return b
}

// LoadLeases implements LeaseStore.
func (s *SQLStore) LoadLeases(ctx context.Context) ([]Lease, error) {
	ls, err := s.st.DHCPLeases(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Lease, 0, len(ls))
	for _, l := range ls {
		out = append(out, Lease{Segment: l.Segment, IP: l.IP, MAC: l.MAC, ClientID: l.ClientID, Hostname: l.Hostname,
			State: LeaseState(l.State), Start: l.Start, Expires: l.Expires, Relay: l.Relay, RelayInfo: l.RelayInfo})
	}
	return out, nil
}

// LoadReservations implements LeaseStore.
func (s *SQLStore) LoadReservations(ctx context.Context) ([]Reservation, error) {
	rs, err := s.st.DHCPReservations(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Reservation, 0, len(rs))
	for _, r := range rs {
		out = append(out, Reservation{Segment: r.Segment, MAC: r.MAC, IP: r.IP})
	}
	return out, nil
}

// SaveBatch implements LeaseStore.
func (s *SQLStore) SaveBatch(ctx context.Context, leases []Lease, devices []Device) error {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	ls, ds := s.ls[:0], s.ds[:0]
	defer func() {
		clear(ls)
		clear(ds)
		s.ls, s.ds = ls[:0], ds[:0]
	}()
	for _, l := range leases {
		ls = append(ls, store.DHCPLease{Segment: l.Segment, IP: l.IP, MAC: l.MAC, ClientID: l.ClientID, Hostname: l.Hostname,
			State: string(l.State), Start: l.Start, Expires: l.Expires, Relay: l.Relay, RelayInfo: l.RelayInfo})
	}
	for _, d := range devices {
		ds = append(ds, store.Device{MAC: d.MAC, FirstSeen: d.FirstSeen, LastSeen: d.LastSeen, Segment: d.Segment, IP: d.IP,
			Hostname: d.Hostname, VendorClass: d.VendorClass, Fingerprint: d.Fingerprint, OS: d.OS,
			Manufacturer: d.Manufacturer, Randomised: d.Randomised})
	}
	if err := s.st.SaveDHCP(ctx, ls, ds); err != nil {
		return err
	}
	// Written through: every device in the batch now has a record. Its
	// approval is whatever the copy (or, soon, the change log) says.
	d := &s.states
	d.mu.Lock()
	if d.m != nil {
		for _, dev := range devices {
			if k, ok := key6(dev.MAC); ok {
				if _, known := d.m[k]; !known {
					d.m[k] = 0
				}
			}
		}
	}
	d.mu.Unlock()
	return nil
}

// DeviceStatus implements LeaseStore.
func (s *SQLStore) DeviceStatus(ctx context.Context, mac net.HardwareAddr) (DeviceStatus, error) {
	k, ok := key6(mac)
	if !ok {
		known, approved, blocked, err := s.st.DeviceStatus(ctx, mac)
		return DeviceStatus{Known: known, Approved: approved, Blocked: blocked}, err
	}
	if err := s.catchUp(ctx); err != nil {
		return DeviceStatus{}, fmt.Errorf("dhcp: device states: %w", err)
	}
	d := &s.states
	d.mu.RLock()
	b, known := d.m[k]
	d.mu.RUnlock()
	return DeviceStatus{Known: known, Approved: b&stateApproved != 0, Blocked: b&stateBlocked != 0}, nil
}

// PurgeUnleasedDevices deletes device records that never completed a lease
// and were first seen before the cut-off (see DevicePurger).
func (s *SQLStore) PurgeUnleasedDevices(ctx context.Context, before time.Time) (int64, error) {
	return s.st.PurgeUnleasedDevices(ctx, "scheduler", before)
}

// PurgeStaleDevices deletes the records of devices last seen before the
// cut-off (see StaleDevicePurger).
func (s *SQLStore) PurgeStaleDevices(ctx context.Context, before, now time.Time) (int64, error) {
	return s.st.PurgeStaleDevices(ctx, "scheduler", before, now)
}
