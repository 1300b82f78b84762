package store

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"
)

// One transaction, four sign-ins: an acceptance, one refused by its check,
// an unknown code, and an attempt alone. The refused one leaves nothing
// behind (its savepoint is undone), the others are all written, and every
// attempt is on record with the outcome the caller named.
func TestRedeemVouchersBatchKeepsEachSignInApart(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	ok := issueOne(t, s, Voucher{CodeHash: "ok", CreatedAt: t0, Duration: time.Hour, StartOnFirstUse: true})
	refused := issueOne(t, s, Voucher{CodeHash: "refused", CreatedAt: t0, Duration: time.Hour, StartOnFirstUse: true})
	macA, macB, macC := mustMAC(t, "02:00:00:00:00:0a"), mustMAC(t, "02:00:00:00:00:0b"), mustMAC(t, "02:00:00:00:00:0c")
	ipA, ipB, ipC := netip.MustParseAddr("10.40.0.50"), netip.MustParseAddr("10.40.0.51"), netip.MustParseAddr("10.40.0.52")
	use := t0.Add(time.Minute)
	no := errors.New("device limit")
	outcome := func(_ Voucher, err error) string {
		switch {
		case err == nil:
			return "ok"
		case errors.Is(err, no):
			return "device-limit"
		case errors.Is(err, ErrNotFound):
			return "invalid"
		}
		return "error"
	}
	pass := func(Voucher, bool) error { return nil }
	res, err := s.RedeemVouchers(ctx, []BatchRedemption{
		{Redemption: Redemption{CodeHash: "ok", MAC: macA, IP: ipA, At: use, AUPVersion: "v1"}, Check: pass,
			Attempt: VoucherAttempt{At: use, MAC: macA, IP: ipA}, Outcome: outcome},
		{Redemption: Redemption{CodeHash: "refused", MAC: macB, IP: ipB, At: use, AUPVersion: "v1"}, Check: func(Voucher, bool) error { return no },
			Attempt: VoucherAttempt{At: use, MAC: macB, IP: ipB}, Outcome: outcome},
		{Redemption: Redemption{CodeHash: "nope", MAC: macC, IP: ipC, At: use, AUPVersion: "v1"}, Check: pass,
			Attempt: VoucherAttempt{At: use, MAC: macC, IP: ipC}, Outcome: outcome},
		{Attempt: VoucherAttempt{At: use, IP: ipC, Outcome: "unknown-device"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 4 {
		t.Fatalf("%d results, want 4", len(res))
	}
	if res[0].Err != nil || res[0].Voucher.ID != ok.ID || !res[0].Voucher.ExpiresAt.Equal(use.Add(time.Hour)) || res[0].Voucher.Devices != 1 {
		t.Errorf("accepted sign-in: %+v", res[0])
	}
	if res[1].Err != no {
		t.Errorf("refused sign-in: %v, want the check's error as is", res[1].Err)
	}
	if !errors.Is(res[2].Err, ErrNotFound) {
		t.Errorf("unknown code: %v, want ErrNotFound", res[2].Err)
	}
	acc, err := s.GuestAcceptances(ctx, t0, t0.Add(time.Hour))
	if err != nil || len(acc) != 1 || acc[0].VoucherID != ok.ID {
		t.Fatalf("acceptances %+v, %v: want only the accepted one", acc, err)
	}
	if ds, err := s.VoucherDevices(ctx, refused.ID); err != nil || len(ds) != 0 {
		t.Errorf("the refused code's devices: %+v, %v", ds, err)
	}
	if v, err := s.VoucherByID(ctx, refused.ID); err != nil || !v.FirstUsedAt.IsZero() {
		t.Errorf("the refused code's clock started: %+v, %v", v, err)
	}
	got, err := s.VoucherAttempts(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]bool{}
	for _, a := range got {
		outcomes[a.Outcome] = true
	}
	if len(got) != 4 || !outcomes["ok"] || !outcomes["device-limit"] || !outcomes["invalid"] || !outcomes["unknown-device"] {
		t.Errorf("attempts %+v: want ok, device-limit, invalid and unknown-device", got)
	}
}

// A redemption the store refuses before SQL (no AUP version) fails alone.
func TestRedeemVouchersBatchInvalidRedemptionFailsAlone(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	issueOne(t, s, Voucher{CodeHash: "ok", CreatedAt: t0, Duration: time.Hour})
	mac := mustMAC(t, "02:00:00:00:00:0a")
	ip := netip.MustParseAddr("10.40.0.50")
	pass := func(Voucher, bool) error { return nil }
	res, err := s.RedeemVouchers(ctx, []BatchRedemption{
		{Redemption: Redemption{CodeHash: "ok", MAC: mac, IP: ip, At: t0}, Check: pass},
		{Redemption: Redemption{CodeHash: "ok", MAC: mac, IP: ip, At: t0, AUPVersion: "v1"}, Check: pass},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err == nil || res[1].Err != nil {
		t.Fatalf("results %+v: want the first refused and the second accepted", res)
	}
}
