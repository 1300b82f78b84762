package alert

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
)

// SessionRecords is the part of the store StoreSessions reads: RADIUS
// accounting.
type SessionRecords interface {
	WhoHeld(ctx context.Context, ip netip.Addr, mac net.HardwareAddr, at time.Time) (store.RADIUSSession, error)
}

// StoreSessions is the Attributor's Sessions over RADIUS accounting as the
// store keeps it.
type StoreSessions struct{ Store SessionRecords }

// WhoHeld answers from the accounting session that held ip or mac at at.
func (r StoreSessions) WhoHeld(ctx context.Context, ip netip.Addr, mac net.HardwareAddr, at time.Time) (Session, bool, error) {
	s, err := r.Store.WhoHeld(ctx, ip, mac, at)
	if errors.Is(err, store.ErrNotFound) {
		return Session{}, false, nil
	}
	if err != nil {
		return Session{}, false, err
	}
	return Session{Username: s.Username, PersonRef: s.Person, MAC: s.MAC, IP: s.IP, AccessPoint: s.AP, Room: s.Room, SSID: s.SSID}, true, nil
}

// PersonRecords is the part of the store StorePeople reads: the people
// directory.
type PersonRecords interface {
	PersonByKey(ctx context.Context, key string) (store.Person, error)
}

// StorePeople is the Attributor's People over the people directory as the
// store keeps it: it names the person a device's owner or a RADIUS user is,
// as an alert shows them.
type StorePeople struct{ Store PersonRecords }

// Person names ref: preferred (else legal) forename and surname; a pupil's
// year and registration group; a member of staff's role ("Staff" when the
// directory has none).
func (p StorePeople) Person(ctx context.Context, ref string) (Person, bool, error) {
	v, err := p.Store.PersonByKey(ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		return Person{}, false, nil
	}
	if err != nil {
		return Person{}, false, err
	}
	first := v.PreferredForename
	if first == "" {
		first = v.LegalForename
	}
	out := Person{Name: strings.TrimSpace(first + " " + v.LegalSurname)}
	if v.Kind == "staff" {
		out.Role = v.Role
		if out.Role == "" {
			out.Role = "Staff"
		}
	} else {
		var g []string
		if v.YearGroup != "" {
			g = append(g, "Year "+strings.TrimPrefix(v.YearGroup, "Year "))
		}
		if v.RegGroup != "" {
			g = append(g, v.RegGroup)
		}
		out.Group = strings.Join(g, ", ")
	}
	return out, true, nil
}
