package policy

import (
	"context"
	"errors"
	"strings"
	"testing"
)

type missingGroups struct{ fakeDirectory }

func (d missingGroups) Devices(ctx context.Context, w Who) ([]Device, error) {
	if w.Kind == Group && w.ID == "Year 99" {
		return nil, errors.New("no such group")
	}
	return d.fakeDirectory.Devices(ctx, w)
}

// Issue 15: a group rule was saved, shown as "on", and not in force.
func TestNotInForceNamesUnresolvableRules(t *testing.T) {
	e := &Enforcer{rules: []Rule{
		{ID: 1, Who: Who{Kind: Group, ID: "Year 9"}},
		{ID: 2, Who: Who{Kind: Group, ID: "Year 99"}},
		{ID: 3, Who: Who{Kind: Group, ID: "Year 99"}, Disabled: true},
		{ID: 4, Who: Who{Kind: Anyone}},
	}, dir: missingGroups{}}
	got, err := e.NotInForce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !strings.Contains(got[2], `"Year 99" cannot be found`) {
		t.Fatalf("NotInForce = %v, want only rule 2, with the group named", got)
	}
	e.dir = nil
	if got, _ := e.NotInForce(context.Background()); len(got) != 2 || !strings.Contains(got[1], "people directory") {
		t.Fatalf("without a directory: %v, want rules 1 and 2", got)
	}
}
