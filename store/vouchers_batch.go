package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// BatchRedemption is one visitor's sign-in for RedeemVouchers: a redemption
// (as for RedeemVoucher) and the code attempt that goes with it, or an
// attempt alone.
type BatchRedemption struct {
	// Redemption is what RedeemVoucher takes; a zero CodeHash means there
	// is no code to redeem, only Attempt to record.
	Redemption Redemption
	Check      func(v Voucher, known bool) error
	// Attempt is recorded in the same transaction. With a redemption,
	// Outcome (when set) names its outcome from the redemption's result
	// (err as RedeemVoucher would return it); "" records nothing (the
	// caller will try again, as with a code hashed under an older key).
	Attempt VoucherAttempt
	Outcome func(v Voucher, err error) string
}

// RedeemResult is one BatchRedemption's result, as RedeemVoucher returns it.
type RedeemResult struct {
	Voucher Voucher
	Err     error
}

// RedeemVouchers runs many visitors' redemptions and records their code
// attempts in one write transaction: at a morning rush every acceptance
// still reaches the disk before its visitor is let in, but a hundred of
// them share one fsync instead of queueing for one each. Each redemption
// runs inside a savepoint, so one that check refuses or that fails leaves
// nothing behind and does not disturb the others; each result is what
// RedeemVoucher would have returned. The returned error is the
// transaction's: when it is not nil nothing was written and every result
// is to be ignored.
func (s *Store) RedeemVouchers(ctx context.Context, batch []BatchRedemption) ([]RedeemResult, error) {
	out := make([]RedeemResult, len(batch))
	if len(batch) == 0 {
		return out, nil
	}
	s.prepareRedeem(ctx)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for i, b := range batch {
			out[i] = RedeemResult{}
			a := b.Attempt
			if b.Redemption.CodeHash != "" {
				v, err, fatal := redeemSavepoint(ctx, s, tx, b.Redemption, b.Check)
				if fatal != nil {
					return fatal
				}
				out[i] = RedeemResult{Voucher: v, Err: err}
				if b.Outcome == nil {
					continue
				}
				if a.Outcome = b.Outcome(v, err); a.Outcome == "" {
					continue
				}
			}
			if a.Outcome == "" {
				continue
			}
			if err := recordAttemptTx(ctx, s, tx, a); err != nil {
				return fmt.Errorf("record voucher attempt: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: redeem %d vouchers: %w", len(batch), err)
	}
	return out, nil
}

// redeemSavepoint runs one redemption of a batch inside a savepoint and
// returns what RedeemVoucher would; a refused or failed one is rolled back
// to the savepoint. fatal is an error that leaves the transaction itself in
// doubt (a savepoint that could not be set, undone or released): the whole
// batch must fail then.
func redeemSavepoint(ctx context.Context, s *Store, tx *sql.Tx, r Redemption, check func(v Voucher, known bool) error) (v Voucher, err, fatal error) {
	if err := r.valid(); err != nil {
		return Voucher{}, err, nil
	}
	if _, err := tx.ExecContext(ctx, `SAVEPOINT redeem`); err != nil {
		return Voucher{}, nil, fmt.Errorf("savepoint: %w", err)
	}
	v, checkErr, err := redeemTx(ctx, s, tx, r, check)
	if checkErr != nil || err != nil {
		for _, q := range []string{`ROLLBACK TO redeem`, `RELEASE redeem`} {
			if _, rbErr := tx.ExecContext(ctx, q); rbErr != nil {
				return Voucher{}, nil, fmt.Errorf("undo a redemption that failed (%v): %w", errors.Join(checkErr, err), rbErr)
			}
		}
		if checkErr != nil {
			return Voucher{}, checkErr, nil
		}
		return Voucher{}, fmt.Errorf("store: redeem voucher: %w", err), nil
	}
	if _, err := tx.ExecContext(ctx, `RELEASE redeem`); err != nil {
		return Voucher{}, nil, fmt.Errorf("release savepoint: %w", err)
	}
	return v, nil, nil
}
