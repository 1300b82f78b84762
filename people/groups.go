package people

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gatehouse-net/gatehouse/store"
)

// maxGroupName bounds a custom group's name (it is a rule's "who").
const maxGroupName = 64

// CreateGroup makes a custom group. Its name must not be one the school's
// own groups use (a year group, "staff", "pupils").
func (s *Service) CreateGroup(ctx context.Context, actor, name, description string) (int64, error) {
	name, ok := cleanValue(name)
	description, ok2 := cleanValue(description)
	if !ok || !ok2 || name == "" || len(name) > maxGroupName {
		return 0, fmt.Errorf("people: a group's name is 1..%d printable characters", maxGroupName)
	}
	if y, ok := normaliseYear(name); (ok && y != "") || kindGroup(name) != "" {
		return 0, fmt.Errorf("people: %q is one of the school's own groups", name)
	}
	return s.st.CreateGroup(ctx, actor, name, description, s.now())
}

// DeleteGroup removes a custom group; rules naming it stop matching anyone.
func (s *Service) DeleteGroup(ctx context.Context, actor string, id int64) error {
	if err := s.st.DeleteGroup(ctx, actor, id, s.now()); err != nil {
		return err
	}
	return s.changed(ctx)
}

// SetMember adds or removes a person, named by any of their keys, from a
// custom group; rules about the group follow at once.
func (s *Service) SetMember(ctx context.Context, actor string, groupID int64, personKey string, in bool) (store.Person, error) {
	p, err := s.Person(ctx, strings.TrimSpace(personKey))
	if errors.Is(err, store.ErrNotFound) {
		return store.Person{}, fmt.Errorf("people: nobody is known as %q", personKey)
	}
	if err != nil {
		return store.Person{}, err
	}
	if err := s.st.SetGroupMember(ctx, actor, groupID, p.ID, in, s.now()); err != nil {
		return p, err
	}
	return p, s.changed(ctx)
}
