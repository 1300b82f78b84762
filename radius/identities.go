package radius

import "context"

// maxIdentityLookups bounds the PAP identity lookups in flight at once.
const maxIdentityLookups = 4

// boundedIdentities lets at most n Identities lookups run at once. Each is
// a few SQLite queries (package people over the store), and the store keeps
// 8 idle connections: with the 32 workers all looking people up, database/sql
// opened a connection per query beyond those and closed it again after, an
// open (and re-prepare) costing more than the query. Waiting for a turn is
// cheaper than that, and the lookups are short.
type boundedIdentities struct {
	ids Identities
	sem chan struct{}
}

func newBoundedIdentities(ids Identities, n int) Identities {
	if ids == nil {
		return nil
	}
	return boundedIdentities{ids: ids, sem: make(chan struct{}, n)}
}

// Lookup waits for a turn (or ctx) and asks ids.
func (b boundedIdentities) Lookup(ctx context.Context, username string) (Identity, error) {
	select {
	case b.sem <- struct{}{}:
	case <-ctx.Done():
		return Identity{}, ctx.Err()
	}
	defer func() { <-b.sem }()
	return b.ids.Lookup(ctx, username)
}
