package people

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/store"
)

var _ policy.Directory = (*Service)(nil)

// ErrNoSuchGroup is returned for a rule naming a group nobody could be in.
var ErrNoSuchGroup = errors.New("people: no such group")

// kindGroup maps the built-in staff/pupil group names to a kind.
func kindGroup(name string) string {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "staff":
		return "staff"
	case "pupil", "pupils", "students":
		return "pupil"
	}
	return ""
}

// Members returns the people with access who are in a group: a year group
// ("Year 9"), a registration group ("9C"), "staff" or "pupils", or a group
// the network manager made. A name that is none of those is ErrNoSuchGroup.
func (s *Service) Members(ctx context.Context, group string) ([]store.Person, error) {
	withAccess := []string{store.PersonActive, store.PersonLeaving}
	if k := kindGroup(group); k != "" {
		return s.st.ListPeople(ctx, store.PeopleFilter{Kind: k, States: withAccess})
	}
	name := group
	if y, ok := normaliseYear(group); ok && y != "" {
		name = y
	}
	ps, err := s.st.ListPeople(ctx, store.PeopleFilter{Group: name, States: withAccess})
	if err != nil || len(ps) > 0 {
		return ps, err
	}
	if y, ok := normaliseYear(group); ok && y != "" {
		return nil, nil // a real year group, empty today
	}
	gs, err := s.st.Groups(ctx)
	if err != nil {
		return nil, err
	}
	for _, g := range gs {
		if strings.EqualFold(g.Name, group) {
			return nil, nil
		}
	}
	// A registration group nobody is in now is indistinguishable from a
	// typo; say so, and the rules page shows the rule not in force.
	return nil, fmt.Errorf("%w: %q", ErrNoSuchGroup, group)
}

// Person finds a person by id or by a key (UPN, staff code, admission
// number, username, email).
func (s *Service) Person(ctx context.Context, ref string) (store.Person, error) {
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil && id > 0 {
		if p, err := s.st.PersonByID(ctx, id); err == nil {
			return p, nil
		}
	}
	return s.st.PersonByKey(ctx, ref)
}

// Devices implements policy.Directory: the devices of a person, or of
// every member of a group, who still has access. Devices that are blocked
// are left out (the revoked set already refuses them).
func (s *Service) Devices(ctx context.Context, who policy.Who) ([]policy.Device, error) {
	var ids []int64
	switch who.Kind {
	case policy.Person:
		p, err := s.Person(ctx, who.ID)
		if err != nil {
			return nil, err
		}
		if p.State == store.PersonActive || p.State == store.PersonLeaving {
			ids = []int64{p.ID}
		}
	case policy.Group:
		ps, err := s.Members(ctx, who.ID)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			ids = append(ids, p.ID)
		}
	default:
		return nil, fmt.Errorf("people: devices of %s: not a person or a group", who.Kind)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	ods, err := s.st.DevicesOf(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]policy.Device, 0, len(ods))
	for _, d := range ods {
		if !d.Blocked {
			out = append(out, kernelDevice(d.Device))
		}
	}
	return out, nil
}
