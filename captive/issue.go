package captive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/store"
)

// MaxDuration is the longest a code may last.
const MaxDuration = 366 * 24 * time.Hour

// MaxDevicesPerCode bounds the devices-per-code option (0 means unlimited).
const MaxDevicesPerCode = 1000

// IssueRequest says what codes to make. The zero values of the optional
// fields mean: one code, clock starts on issue, no date window, one device,
// no rate or quota values, no note, no batch.
type IssueRequest struct {
	// Key hashes the codes: CodeKeyFrom the site key. nil: the key an older
	// version kept in the database (tests and tools that predate the site
	// key); the daemon and the CLI always pass the site key's.
	Key             []byte
	Count           int           // 1..store.MaxVoucherBatch; 0 means 1
	Duration        time.Duration // required, rounded to the second
	StartOnFirstUse bool
	NotBefore       time.Time
	NotAfter        time.Time
	MaxDevices      int // 0: unlimited
	RateUpBps       int64
	RateDownBps     int64
	QuotaBytes      int64
	Note            string
	Batch           string    // batch name; required when Count > 1
	Now             time.Time // issue time; zero: time.Now
}

// IssuedCode is a new code: the code in clear (like ABCDE-FGHJK), for the slip
// or the CLI's output only, and its stored record.
type IssuedCode struct {
	Code    string
	Voucher store.Voucher
}

// Check reports what is wrong with the request, in words for a form.
func (q IssueRequest) Check() error {
	switch {
	case q.Count < 0 || q.Count > store.MaxVoucherBatch:
		return fmt.Errorf("the number of codes must be 1 to %d", store.MaxVoucherBatch)
	case q.Duration < time.Minute:
		return errors.New("the duration must be at least a minute")
	case q.Duration > MaxDuration:
		return errors.New("the duration must be at most 366 days")
	case q.MaxDevices < 0 || q.MaxDevices > MaxDevicesPerCode:
		return fmt.Errorf("devices per code must be 1 to %d, or unlimited", MaxDevicesPerCode)
	case q.RateUpBps < 0 || q.RateDownBps < 0 || q.QuotaBytes < 0:
		return errors.New("rate limits and quota must not be negative")
	case !rateSettable(q.RateUpBps) || !rateSettable(q.RateDownBps):
		return fmt.Errorf("a rate limit must be at least %d kbit/s, the slowest the router can set", policy.RateTiers()[0]*8/1000)
	case len(q.Note) > 200:
		return errors.New("the note must be at most 200 characters")
	case len(q.Batch) > 200:
		return errors.New("the batch name must be at most 200 characters")
	case q.Count > 1 && q.Batch == "":
		return errors.New("a batch of codes needs a name")
	case !q.NotBefore.IsZero() && !q.NotAfter.IsZero() && !q.NotAfter.After(q.NotBefore):
		return errors.New("the 'valid until' date must be after the 'valid from' date")
	}
	return nil
}

// rateSettable reports whether the kernel can hold a device to bits per
// second (0: no limit of the code's own).
func rateSettable(bits int64) bool {
	_, err := policy.RateTier(uint64(bits) / 8)
	return err == nil
}

// Issue makes new codes and stores their hashes, audited as actor. It is
// what the reception page and `gatehouse voucher issue` call. rnd is the
// randomness (nil: crypto/rand).
func Issue(ctx context.Context, st Issuer, actor string, q IssueRequest, rnd io.Reader) ([]IssuedCode, error) {
	if err := q.Check(); err != nil {
		return nil, fmt.Errorf("captive: issue: %w", err)
	}
	if q.Count == 0 {
		q.Count = 1
	}
	if q.Now.IsZero() {
		q.Now = time.Now()
	}
	key := q.Key
	if key == nil {
		k, err := st.VoucherKey(ctx)
		if err != nil {
			return nil, fmt.Errorf("captive: issue: %w", err)
		}
		key = k
	}
	// A clash with an existing code (about 2^-49 per pair) is retried with
	// fresh codes rather than reported.
	for attempt := 0; ; attempt++ {
		codes := make([]string, q.Count)
		vs := make([]store.Voucher, q.Count)
		seen := map[string]bool{}
		for i := range codes {
			c, err := NewCode(rnd)
			if err != nil {
				return nil, err
			}
			if seen[c] {
				c, err = NewCode(rnd)
				if err != nil || seen[c] {
					return nil, fmt.Errorf("captive: issue: random source repeats itself")
				}
			}
			seen[c] = true
			codes[i] = c
			vs[i] = store.Voucher{CodeHash: HashCode(key, c), CreatedAt: q.Now, Duration: q.Duration.Round(time.Second),
				StartOnFirstUse: q.StartOnFirstUse, NotBefore: q.NotBefore, NotAfter: q.NotAfter, MaxDevices: q.MaxDevices,
				RateUpBps: q.RateUpBps, RateDownBps: q.RateDownBps, QuotaBytes: q.QuotaBytes, Note: q.Note}
		}
		stored, err := st.IssueVouchers(ctx, actor, q.Batch, vs)
		if errors.Is(err, store.ErrExists) && attempt < 3 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("captive: issue: %w", err)
		}
		out := make([]IssuedCode, len(stored))
		for i, v := range stored {
			out[i] = IssuedCode{Code: FormatCode(codes[i]), Voucher: v}
		}
		return out, nil
	}
}
