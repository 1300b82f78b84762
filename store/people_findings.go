package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// What the DSL may see of people: only those a finding names (the alert
// pipeline's attribution wrote their id on it), and only the devices those
// findings name.

// NamedPerson is a person some finding names, with how many do and when
// the latest was.
type NamedPerson struct {
	Person   Person
	Findings int
	Last     time.Time
}

// NamedDevice is a device a finding naming a person names: its MAC and,
// when the device is known, the name and maker the devices page shows.
type NamedDevice struct {
	MAC          net.HardwareAddr
	Name         string
	Manufacturer string
	Findings     int
	Last         time.Time
}

// PeopleNamedByFindings returns the people that findings name, latest
// first, at most limit. A person whose record was purged is left out.
func (s *Store) PeopleNamedByFindings(ctx context.Context, limit int) ([]NamedPerson, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	type row struct {
		id   int64
		n    int
		last string
	}
	rows, err := queryAll(ctx, s.db, "people named by findings", func(sc scanner) (row, error) {
		var r row
		err := sc.Scan(&r.id, &r.n, &r.last)
		return r, err
	}, `SELECT f.person_id, COUNT(*), MAX(f.at) FROM findings f JOIN people p ON p.id = f.person_id
		WHERE f.person_id IS NOT NULL GROUP BY f.person_id ORDER BY MAX(f.at) DESC, f.person_id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: people named by findings: %w", err)
	}
	out := make([]NamedPerson, 0, len(rows))
	for _, r := range rows {
		p, err := s.PersonByID(ctx, r.id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		last, _ := parseTime(r.last)
		out = append(out, NamedPerson{Person: p, Findings: r.n, Last: last})
	}
	return out, nil
}

// NamedByFindings returns the person if some finding names them, and
// ErrNotFound otherwise (whether or not the person exists), with the
// devices those findings name, latest first.
func (s *Store) NamedByFindings(ctx context.Context, personID int64) (NamedPerson, []NamedDevice, error) {
	type row struct {
		mac  string
		n    int
		last string
	}
	rows, err := queryAll(ctx, s.db, "devices named with a person", func(sc scanner) (row, error) {
		var r row
		err := sc.Scan(&r.mac, &r.n, &r.last)
		return r, err
	}, `SELECT src_mac, COUNT(*), MAX(at) FROM findings WHERE person_id = ? GROUP BY src_mac ORDER BY MAX(at) DESC LIMIT 100`, personID)
	if err != nil {
		return NamedPerson{}, nil, fmt.Errorf("store: findings naming person %d: %w", personID, err)
	}
	if len(rows) == 0 {
		return NamedPerson{}, nil, ErrNotFound
	}
	p, err := s.PersonByID(ctx, personID)
	if err != nil {
		return NamedPerson{}, nil, err
	}
	np := NamedPerson{Person: p}
	var devs []NamedDevice
	for _, r := range rows {
		last, _ := parseTime(r.last)
		np.Findings += r.n
		if last.After(np.Last) {
			np.Last = last
		}
		mac, err := net.ParseMAC(r.mac)
		if err != nil {
			continue // a finding about an address alone names no device
		}
		d := NamedDevice{MAC: mac, Findings: r.n, Last: last}
		if dev, err := s.DeviceByMAC(ctx, mac); err == nil {
			d.Name, d.Manufacturer = dev.Name, dev.Manufacturer
		} else if !errors.Is(err, ErrNotFound) {
			return NamedPerson{}, nil, err
		}
		devs = append(devs, d)
	}
	return np, devs, nil
}
