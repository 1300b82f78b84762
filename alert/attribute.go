package alert

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
)

// How an alert was attributed: which record said who held the address or
// MAC at the finding's time.
const (
	ByRADIUS = "radius" // an accounting session: person, access point, room, SSID
	ByPortal = "portal" // a visitor code's acceptance: the name given
	ByLease  = "lease"  // a DHCP lease -> device -> owner
	ByDevice = "device" // the device record alone (no lease at that time)
	ByNobody = ""
)

// Session is who held an address or MAC through RADIUS, as the radius
// package answers WhoHeld.
type Session struct {
	Username    string // the RADIUS User-Name (or MAB's MAC)
	PersonRef   string // the person's id or username when known; "" otherwise
	PersonName  string // when the radius side already knows it
	MAC         net.HardwareAddr
	IP          netip.Addr
	AccessPoint string
	Room        string
	SSID        string
}

// Sessions is the RADIUS accounting record: "who held 10.20.3.7 (or this
// MAC) at 10:41:07?". found false when nobody did. nil in Options means no
// RADIUS.
type Sessions interface {
	WhoHeld(ctx context.Context, ip netip.Addr, mac net.HardwareAddr, at time.Time) (s Session, found bool, err error)
}

// Person is what an alert names about a person.
type Person struct {
	Name  string // preferred name + surname
	Group string // year and registration group ("Year 9, 9B"), or "" for staff
	Role  string // staff role ("Teacher", "Staff"), or "" for pupils
}

// People resolves the owner a device record names (a MIS id or username)
// or a RADIUS user to a person. found false when nobody matches. nil in
// Options: the owner text itself is shown as the person.
type People interface {
	Person(ctx context.Context, ref string) (p Person, found bool, err error)
}

// Records is what attribution reads from the store.
type Records interface {
	LeaseFor(ctx context.Context, ip netip.Addr, t time.Time) (store.DHCPLease, error)
	DeviceByMAC(ctx context.Context, mac net.HardwareAddr) (store.Device, error)
	GuestAt(ctx context.Context, mac net.HardwareAddr, ip netip.Addr, t time.Time) (store.GuestHolder, error)
}

// Attribution is who a finding belongs to and how that was worked out.
type Attribution struct {
	By           string
	MAC          net.HardwareAddr // filled from the lease when the finding had only an address
	DeviceName   string
	Hostname     string
	Manufacturer string
	Person       Person
	AccessPoint  string
	Room         string
	SSID         string
	Visitor      string
}

// Attributor answers who held an address or MAC at a time, from three
// sources in order: a RADIUS accounting session, a portal session, a DHCP
// lease (and the device's owner).
type Attributor struct {
	Records  Records  // required
	Sessions Sessions // nil: no RADIUS
	People   People   // nil: the device's owner text is shown as is
}

// Attribute works out who held ip/mac at t. A lookup that fails is an error
// only if nothing could be attributed; what could be is returned with it.
func (a *Attributor) Attribute(ctx context.Context, ip netip.Addr, mac net.HardwareAddr, t time.Time) (Attribution, error) {
	var at Attribution
	var errs []error
	at.MAC = mac
	if a.Sessions != nil && (ip.IsValid() || len(mac) > 0) {
		s, ok, err := a.Sessions.WhoHeld(ctx, ip, mac, t)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("radius session: %w", err))
		case ok:
			at.By = ByRADIUS
			at.AccessPoint, at.Room, at.SSID = s.AccessPoint, s.Room, s.SSID
			if len(at.MAC) == 0 {
				at.MAC = s.MAC
			}
			at.Person.Name = s.PersonName
			// The session's person when RADIUS knew it, else its user name
			// (802.1X and PAP users are people; MAB's is a MAC).
			for _, ref := range []string{s.PersonRef, s.Username} {
				if a.People == nil || ref == "" {
					continue
				}
				p, found, err := a.People.Person(ctx, ref)
				if err != nil {
					errs = append(errs, fmt.Errorf("person %q: %w", ref, err))
					continue
				}
				if found {
					at.Person = p
					break
				}
			}
		}
	}
	// The lease gives the MAC when the finding had only an address.
	leased := false
	if ip.IsValid() {
		l, err := a.Records.LeaseFor(ctx, ip, t)
		switch {
		case err == nil:
			leased = true
			if len(at.MAC) == 0 {
				at.MAC = l.MAC
			}
			at.Hostname = l.Hostname
		case !errors.Is(err, store.ErrNotFound):
			errs = append(errs, err)
		}
	}
	if at.By == ByNobody {
		g, err := a.Records.GuestAt(ctx, at.MAC, ip, t)
		switch {
		case err == nil:
			at.By = ByPortal
			at.Visitor = visitorText(g)
		case !errors.Is(err, store.ErrNotFound):
			errs = append(errs, err)
		}
	}
	if len(at.MAC) > 0 {
		d, err := a.Records.DeviceByMAC(ctx, at.MAC)
		switch {
		case err == nil:
			at.DeviceName, at.Manufacturer = d.Name, d.Manufacturer
			if at.Hostname == "" {
				at.Hostname = d.Hostname
			}
			if at.By == ByNobody {
				at.By = ByDevice
				if leased {
					at.By = ByLease
				}
			}
			if at.Person.Name == "" && d.Owner != "" {
				at.Person = Person{Name: d.Owner}
				if a.People != nil {
					p, found, err := a.People.Person(ctx, d.Owner)
					if err != nil {
						errs = append(errs, fmt.Errorf("owner %q: %w", d.Owner, err))
					} else if found {
						at.Person = p
					}
				}
			}
		case !errors.Is(err, store.ErrNotFound):
			errs = append(errs, err)
		default:
			if leased && at.By == ByNobody {
				at.By = ByLease
			}
		}
	}
	if at.By == ByNobody && len(errs) > 0 {
		return at, fmt.Errorf("alert: attribute %v/%v at %v: %w", ip, mac, t, errors.Join(errs...))
	}
	return at, nil
}

func visitorText(g store.GuestHolder) string {
	parts := []string{fmt.Sprintf("visitor code #%d", g.VoucherID)}
	if g.BatchName != "" {
		parts = append(parts, "batch "+g.BatchName)
	}
	if g.Note != "" {
		parts = append(parts, "note "+g.Note)
	}
	if g.Name != "" {
		parts = append(parts, "name given "+g.Name)
	}
	if g.Company != "" {
		parts = append(parts, "from "+g.Company)
	}
	return strings.Join(parts, ", ")
}
