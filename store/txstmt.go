// This file: statements prepared once for the sign-in transaction.

package store

import (
	"context"
	"database/sql"
)

// txq runs a transaction's statements prepared once per Store (see
// prepared) where the same statement runs for every item of a batch: a
// morning rush's sign-ins ran nine statements each, and parsing them cost
// more than running them. It only uses statements prepared before the
// transaction began (prepareRedeem): preparing one needs a connection of
// its own, which inside a transaction could wait for ever on a pool of
// one. A statement not prepared, or with s nil, runs as a plain one.
type txq struct {
	ctx context.Context
	s   *Store
	tx  *sql.Tx
}

// stmt returns statement id bound to the transaction, or nil.
func (q txq) stmt(id int) *sql.Stmt {
	if q.s == nil {
		return nil
	}
	q.s.stmtMu.Lock()
	st := q.s.stmts[id]
	q.s.stmtMu.Unlock()
	if st == nil {
		return nil
	}
	return q.tx.StmtContext(q.ctx, st)
}

func (q txq) exec(id int, query string, args ...any) (sql.Result, error) {
	if st := q.stmt(id); st != nil {
		return st.ExecContext(q.ctx, args...)
	}
	return q.tx.ExecContext(q.ctx, query, args...)
}

func (q txq) queryRow(id int, query string, args ...any) scanner {
	if st := q.stmt(id); st != nil {
		return st.QueryRowContext(q.ctx, args...)
	}
	return q.tx.QueryRowContext(q.ctx, query, args...)
}

// The sign-in statements, by id, for prepareRedeem.
var redeemStmts = []struct {
	id    int
	query string
}{
	{stmtRedeemVoucher, redeemVoucherQuery},
	{stmtRedeemKnown, redeemKnownQuery},
	{stmtRedeemFirstUse, redeemFirstUseQuery},
	{stmtRedeemDevice, redeemDeviceQuery},
	{stmtRedeemAcceptance, redeemAcceptanceQuery},
	{stmtAttemptBump, attemptBumpQuery},
	{stmtAttemptInsert, attemptInsertQuery},
}

// prepareRedeem prepares the sign-in statements, for a caller about to
// begin a transaction that runs them. A statement that fails to prepare
// runs unprepared (the transaction reports any real problem with it).
func (s *Store) prepareRedeem(ctx context.Context) {
	for _, st := range redeemStmts {
		_, _ = s.prepared(ctx, st.id, st.query)
	}
}
