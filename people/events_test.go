package people

import (
	"context"
	"testing"

	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/store"
)

// A finished revocation is announced on the hub as an events.PersonRevoked,
// which a subscriber reads without importing this package.
func TestARevocationIsPublishedOnTheHub(t *testing.T) {
	hub := events.New()
	sub := events.Subscribe[events.PersonRevoked](hub, "test", 8)
	s, _ := newService(t, sampleNow, Options{Hub: hub})
	importFile(t, s, "pupils-sims.csv") // revokes the pupil who left last week
	revoked, err := s.st.ListPeople(context.Background(), store.PeopleFilter{States: []string{store.PersonRevoked}})
	if err != nil || len(revoked) != 1 {
		t.Fatalf("revoked after import: %d, %v", len(revoked), err)
	}
	got := sub.Drain()
	if len(got) != 1 || got[0].PersonID != revoked[0].ID || got[0].RevocationID == 0 || got[0].At.IsZero() {
		t.Fatalf("published %+v, want one revocation of person %d", got, revoked[0].ID)
	}
}
