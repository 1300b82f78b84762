package dhcp

import (
	"context"
	"net"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
)

// SQLStore is the LeaseStore over Gatehouse's database.
type SQLStore struct {
	st *store.Store
	// lookups bounds concurrent DeviceStatus queries. Every exchange asks;
	// unbounded, a burst opens a fresh SQLite connection per waiting
	// handler and database/sql closes all but its few idle ones afterwards,
	// so the server spends its time opening connections.
	lookups chan struct{}
}

// statusLookups is how many DeviceStatus queries run at once: as many as
// database/sql keeps idle connections by default, so they are reused.
const statusLookups = 2

// NewSQLStore adapts st.
func NewSQLStore(st *store.Store) *SQLStore {
	return &SQLStore{st: st, lookups: make(chan struct{}, statusLookups)}
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
	ls := make([]store.DHCPLease, 0, len(leases))
	for _, l := range leases {
		ls = append(ls, store.DHCPLease{Segment: l.Segment, IP: l.IP, MAC: l.MAC, ClientID: l.ClientID, Hostname: l.Hostname,
			State: string(l.State), Start: l.Start, Expires: l.Expires, Relay: l.Relay, RelayInfo: l.RelayInfo})
	}
	ds := make([]store.Device, 0, len(devices))
	for _, d := range devices {
		ds = append(ds, store.Device{MAC: d.MAC, FirstSeen: d.FirstSeen, LastSeen: d.LastSeen, Segment: d.Segment, IP: d.IP,
			Hostname: d.Hostname, VendorClass: d.VendorClass, Fingerprint: d.Fingerprint, OS: d.OS,
			Manufacturer: d.Manufacturer, Randomised: d.Randomised})
	}
	return s.st.SaveDHCP(ctx, ls, ds)
}

// DeviceStatus implements LeaseStore.
func (s *SQLStore) DeviceStatus(ctx context.Context, mac net.HardwareAddr) (DeviceStatus, error) {
	select {
	case s.lookups <- struct{}{}:
	case <-ctx.Done():
		return DeviceStatus{}, ctx.Err()
	}
	defer func() { <-s.lookups }()
	known, approved, blocked, err := s.st.DeviceStatus(ctx, mac)
	return DeviceStatus{Known: known, Approved: approved, Blocked: blocked}, err
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
