package store

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
)

// DeviceOwnerPerson is the person a device is linked to (package people's
// link, not a free-text owner) and the custom groups they are in.
type DeviceOwnerPerson struct {
	Person Person
	Groups []string // as GroupsOf, in no particular order
}

// DeviceOwnerPeople returns, by MAC (as net.HardwareAddr.String, lower
// case), the person each of macs is linked to with their groups: what
// DeviceOwner, PersonByID and GroupsOf read per device, in one query. The
// RADIUS server's device cache preload asks it for every approved device
// at start, where a query or three per device held up the first logins.
// A MAC with no linked person (or none recorded) has no entry.
func (s *Store) DeviceOwnerPeople(ctx context.Context, macs []net.HardwareAddr) (map[string]DeviceOwnerPerson, error) {
	if len(macs) == 0 {
		return map[string]DeviceOwnerPerson{}, nil
	}
	texts := make([]string, len(macs))
	for i, m := range macs {
		texts[i] = macText(m)
	}
	b, err := json.Marshal(texts)
	if err != nil {
		return nil, fmt.Errorf("store: owners of devices: %w", err)
	}
	type row struct {
		mac string
		o   DeviceOwnerPerson
	}
	rows, err := queryAll(ctx, s.db, "owners of devices", func(sc scanner) (row, error) {
		var (
			r      row
			groups string
		)
		p, err := scanPerson(suffixScanner{sc, []any{&r.mac, &groups}})
		if err != nil {
			return r, err
		}
		r.o.Person = p
		if err := json.Unmarshal([]byte(groups), &r.o.Groups); err != nil {
			return r, fmt.Errorf("groups of person %d: %w", p.ID, err)
		}
		return r, nil
	}, `SELECT `+personColumns+`, o.mac,
		(SELECT json_group_array(g.name) FROM people_groups g JOIN people_group_members m ON m.group_id = g.id WHERE m.person_id = people.id)
		FROM people JOIN (SELECT mac, person_id FROM devices WHERE mac IN (SELECT value FROM json_each(?))) o ON o.person_id = people.id`, string(b))
	if err != nil {
		return nil, err // queryAll's error names the query
	}
	out := make(map[string]DeviceOwnerPerson, len(rows))
	for _, r := range rows {
		m, err := net.ParseMAC(r.mac)
		if err != nil {
			return nil, fmt.Errorf("store: owners of devices: device %q: %w", r.mac, err)
		}
		out[m.String()] = r.o
	}
	return out, nil
}
