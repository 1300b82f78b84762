package storetest

import (
	"context"
	"testing"

	"github.com/gatehouse-net/gatehouse/store"
)

func TestOpenGivesAMigratedStoreThatClosesWithTheTest(t *testing.T) {
	var st *store.Store
	t.Run("inner", func(t *testing.T) {
		st = Open(t)
		if _, err := st.VerifyAudit(context.Background()); err != nil {
			t.Fatalf("a fresh store's audit chain: %v", err)
		}
	})
	if _, err := st.VerifyAudit(context.Background()); err == nil {
		t.Error("the store was still open after its test ended")
	}
}
