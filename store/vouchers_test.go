package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 10, 6, 8, 0, 0, 0, time.UTC)

func mustMAC(t *testing.T, s string) net.HardwareAddr {
	t.Helper()
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func issueOne(t *testing.T, s *Store, v Voucher) Voucher {
	t.Helper()
	out, err := s.IssueVouchers(context.Background(), "web:reception", "", []Voucher{v})
	if err != nil {
		t.Fatal(err)
	}
	return out[0]
}

func TestVoucherKeyIsCreatedOnceAndKept(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	k1, err := s.VoucherKey(ctx)
	if err != nil || len(k1) != 32 {
		t.Fatalf("VoucherKey = %x, %v", k1, err)
	}
	k2, err := s.VoucherKey(ctx)
	if err != nil || string(k1) != string(k2) {
		t.Fatalf("second VoucherKey = %x, %v; want %x", k2, err, k1)
	}
	s.Close()
	s2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	k3, err := s2.VoucherKey(ctx)
	if err != nil || string(k3) != string(k1) {
		t.Fatalf("after reopen VoucherKey = %x, %v; want %x", k3, err, k1)
	}
}

func TestIssueVouchersStoresEveryOptionAndAuditsWithoutHash(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	in := Voucher{CodeHash: "hash-a", CreatedAt: t0, Duration: 2 * time.Hour, StartOnFirstUse: false,
		NotBefore: t0.Add(time.Hour), NotAfter: t0.Add(48 * time.Hour), MaxDevices: 3,
		RateUpBps: 1_000_000, RateDownBps: 5_000_000, QuotaBytes: 1 << 30, Note: "Ms Jones, Acme, host Mr Smith"}
	v := issueOne(t, s, in)
	// The clock starts on issue, but not before the code becomes valid.
	if v.ID == 0 || v.CreatedBy != "web:reception" || !v.ExpiresAt.Equal(t0.Add(3*time.Hour)) {
		t.Fatalf("issued %+v", v)
	}
	got, err := s.VoucherByHash(ctx, "hash-a")
	if err != nil {
		t.Fatal(err)
	}
	if got != v {
		t.Fatalf("VoucherByHash = %+v\nwant %+v", got, v)
	}
	if byID, err := s.VoucherByID(ctx, v.ID); err != nil || byID != v {
		t.Fatalf("VoucherByID = %+v, %v", byID, err)
	}
	if _, err := s.VoucherByHash(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown hash: %v", err)
	}
	list := assertAuditClean(t, s, "hash-a")
	if len(list) != 1 || list[0].Action != "voucher.issue" || !strings.Contains(list[0].After, `"max_devices":3`) {
		t.Fatalf("audit = %+v", list)
	}

	first := issueOne(t, s, Voucher{CodeHash: "hash-b", CreatedAt: t0, Duration: time.Hour, StartOnFirstUse: true})
	if !first.ExpiresAt.IsZero() || !first.Until().IsZero() {
		t.Fatalf("first-use code has an expiry before use: %+v", first)
	}
	if _, err := s.IssueVouchers(ctx, "web:x", "", []Voucher{{CodeHash: "hash-b", Duration: time.Hour}}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate hash: %v", err)
	}
}

func TestIssueVouchersRefusesBadOptions(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	for _, tc := range []struct {
		name string
		v    Voucher
		want string
	}{
		{"no hash", Voucher{Duration: time.Hour}, "no code hash"},
		{"no duration", Voucher{CodeHash: "h"}, "duration"},
		{"fractional duration", Voucher{CodeHash: "h", Duration: 1500 * time.Millisecond}, "duration"},
		{"negative devices", Voucher{CodeHash: "h", Duration: time.Hour, MaxDevices: -1}, "devices"},
		{"negative quota", Voucher{CodeHash: "h", Duration: time.Hour, QuotaBytes: -1}, "quota"},
		{"window backwards", Voucher{CodeHash: "h", Duration: time.Hour, NotBefore: t0, NotAfter: t0}, "not-after"},
		{"long note", Voucher{CodeHash: "h", Duration: time.Hour, Note: strings.Repeat("x", 201)}, "note"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.IssueVouchers(ctx, "web:x", "", []Voucher{tc.v})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want mention of %q", err, tc.want)
			}
		})
	}
	if _, err := s.IssueVouchers(ctx, "web:x", "", make([]Voucher, MaxVoucherBatch+1)); err == nil {
		t.Fatal("a batch of 501 was accepted")
	}
}

func TestIssueBatchOf500WithName(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	vs := make([]Voucher, MaxVoucherBatch)
	for i := range vs {
		vs[i] = Voucher{CodeHash: fmt.Sprintf("h%03d", i), Duration: 8 * time.Hour, CreatedAt: t0, MaxDevices: 1}
	}
	out, err := s.IssueVouchers(ctx, "web:net", "Open evening", vs)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != MaxVoucherBatch || out[0].BatchID == 0 || out[499].BatchID != out[0].BatchID {
		t.Fatalf("batch ids: %d %d", out[0].BatchID, out[499].BatchID)
	}
	got, err := s.VoucherByHash(ctx, "h250")
	if err != nil || got.BatchName != "Open evening" {
		t.Fatalf("batch member = %+v, %v", got, err)
	}
	mine, err := s.ListVouchers(ctx, VoucherFilter{CreatedBy: "web:net", Limit: 1000})
	if err != nil || len(mine) != MaxVoucherBatch {
		t.Fatalf("list own = %d, %v", len(mine), err)
	}
	other, err := s.ListVouchers(ctx, VoucherFilter{CreatedBy: "web:reception"})
	if err != nil || len(other) != 0 {
		t.Fatalf("list other issuer = %d, %v", len(other), err)
	}
}

func TestRedeemStartsClockOnFirstUseAndCountsDevices(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	v := issueOne(t, s, Voucher{CodeHash: "h", CreatedAt: t0, Duration: time.Hour, StartOnFirstUse: true, MaxDevices: 2})
	macA, macB := mustMAC(t, "02:00:00:00:00:0a"), mustMAC(t, "00:11:22:33:44:55")
	ip := netip.MustParseAddr("10.40.0.50")
	use := t0.Add(30 * time.Minute)
	var sawKnown []bool
	check := func(v Voucher, known bool) error { sawKnown = append(sawKnown, known); return nil }
	got, err := s.RedeemVoucher(ctx, Redemption{CodeHash: "h", MAC: macA, IP: ip, At: use, Name: "Ann", AUPVersion: "v1"}, check)
	if err != nil {
		t.Fatal(err)
	}
	if !got.FirstUsedAt.Equal(use) || !got.ExpiresAt.Equal(use.Add(time.Hour)) || got.Devices != 1 {
		t.Fatalf("after first use %+v", got)
	}
	// The same device again: known, no new device, the clock does not restart.
	got, err = s.RedeemVoucher(ctx, Redemption{CodeHash: "h", MAC: macA, IP: ip, At: use.Add(10 * time.Minute), AUPVersion: "v1"}, check)
	if err != nil || !got.ExpiresAt.Equal(use.Add(time.Hour)) || got.Devices != 1 {
		t.Fatalf("second use %+v, %v", got, err)
	}
	got, err = s.RedeemVoucher(ctx, Redemption{CodeHash: "h", MAC: macB, IP: netip.MustParseAddr("10.40.0.51"), At: use, AUPVersion: "v1"}, check)
	if err != nil || got.Devices != 2 {
		t.Fatalf("second device %+v, %v", got, err)
	}
	if fmt.Sprint(sawKnown) != "[false true false]" {
		t.Fatalf("check saw known = %v", sawKnown)
	}
	refuse := errors.New("refused")
	if _, err := s.RedeemVoucher(ctx, Redemption{CodeHash: "h", MAC: macB, IP: ip, At: use, AUPVersion: "v1"},
		func(Voucher, bool) error { return refuse }); err != refuse {
		t.Fatalf("check error not returned as is: %v", err)
	}
	if _, err := s.RedeemVoucher(ctx, Redemption{CodeHash: "zz", MAC: macB, IP: ip, At: use, AUPVersion: "v1"}, check); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown code: %v", err)
	}
	acc, err := s.GuestAcceptances(ctx, t0, t0.Add(24*time.Hour))
	if err != nil || len(acc) != 3 {
		t.Fatalf("acceptances = %+v, %v", acc, err)
	}
	if !acc[0].Randomised || acc[0].Name != "Ann" || acc[0].AUPVersion != "v1" || acc[0].VoucherID != v.ID {
		t.Fatalf("first acceptance %+v", acc[0])
	}
	for _, a := range acc {
		if a.Randomised != (a.MAC.String() == macA.String()) {
			t.Fatalf("randomised flag wrong: %+v", a)
		}
	}
	ds, err := s.VoucherDevices(ctx, v.ID)
	if err != nil || len(ds) != 2 {
		t.Fatalf("devices = %+v, %v", ds, err)
	}
}

func TestVoucherForDeviceFollowsValidityRevocationAndSignOut(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	v := issueOne(t, s, Voucher{CodeHash: "h", CreatedAt: t0, Duration: 2 * time.Hour, NotAfter: t0.Add(90 * time.Minute), MaxDevices: 0})
	mac := mustMAC(t, "00:11:22:33:44:55")
	ip := netip.MustParseAddr("10.40.0.50")
	ok := func(Voucher, bool) error { return nil }
	if _, err := s.RedeemVoucher(ctx, Redemption{CodeHash: "h", MAC: mac, IP: ip, At: t0, AUPVersion: "v"}, ok); err != nil {
		t.Fatal(err)
	}
	got, d, err := s.VoucherForDevice(ctx, mac, t0.Add(time.Minute))
	if err != nil || got.ID != v.ID || d.IP != ip || !got.Until().Equal(t0.Add(90*time.Minute)) {
		t.Fatalf("VoucherForDevice = %+v %+v %v", got, d, err)
	}
	if _, _, err := s.VoucherForDevice(ctx, mac, t0.Add(90*time.Minute)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after not-after: %v", err)
	}
	gs, err := s.ActiveGuestDevices(ctx, t0.Add(time.Minute))
	if err != nil || len(gs) != 1 || !gs[0].Until.Equal(t0.Add(90*time.Minute)) || gs[0].IP != ip {
		t.Fatalf("ActiveGuestDevices = %+v, %v", gs, err)
	}
	if err := s.TouchVoucherDevice(ctx, v.ID, mac, netip.MustParseAddr("10.40.0.77"), t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, d, _ := s.VoucherForDevice(ctx, mac, t0.Add(3*time.Minute)); d.IP != netip.MustParseAddr("10.40.0.77") {
		t.Fatalf("touch did not move the address: %+v", d)
	}
	if err := s.SignOutVoucherDevice(ctx, v.ID, mac, t0.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.VoucherForDevice(ctx, mac, t0.Add(6*time.Minute)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after sign out: %v", err)
	}
	// Redeeming again signs the device back in.
	if _, err := s.RedeemVoucher(ctx, Redemption{CodeHash: "h", MAC: mac, IP: ip, At: t0.Add(7 * time.Minute), AUPVersion: "v"}, ok); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.VoucherForDevice(ctx, mac, t0.Add(8*time.Minute)); err != nil {
		t.Fatalf("after signing in again: %v", err)
	}
	rv, ds, err := s.RevokeVoucher(ctx, "web:reception", v.ID, t0.Add(10*time.Minute))
	if err != nil || rv.RevokedAt.IsZero() || len(ds) != 1 {
		t.Fatalf("RevokeVoucher = %+v %+v %v", rv, ds, err)
	}
	if _, _, err := s.VoucherForDevice(ctx, mac, t0.Add(11*time.Minute)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after revoke: %v", err)
	}
	if _, _, err := s.ExtendVoucher(ctx, "web:reception", v.ID, time.Hour); err == nil {
		t.Fatal("a revoked code was extended")
	}
	if err := s.SignOutVoucherDevice(ctx, v.ID+99, mac, t0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("sign out of unknown: %v", err)
	}
	list := assertAuditClean(t, s, `"h"`)
	if list[0].Action != "voucher.revoke" {
		t.Fatalf("newest audit = %+v", list[0])
	}
}

func TestExtendVoucherMovesExpiryAndWindow(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	issued := issueOne(t, s, Voucher{CodeHash: "a", CreatedAt: t0, Duration: time.Hour, NotAfter: t0.Add(2 * time.Hour)})
	unused := issueOne(t, s, Voucher{CodeHash: "b", CreatedAt: t0, Duration: time.Hour, StartOnFirstUse: true})
	v, _, err := s.ExtendVoucher(ctx, "web:r", issued.ID, 30*time.Minute)
	if err != nil || !v.ExpiresAt.Equal(t0.Add(90*time.Minute)) || !v.NotAfter.Equal(t0.Add(150*time.Minute)) || v.Duration != 90*time.Minute {
		t.Fatalf("extend started code = %+v, %v", v, err)
	}
	v, _, err = s.ExtendVoucher(ctx, "web:r", unused.ID, time.Hour)
	if err != nil || !v.ExpiresAt.IsZero() || v.Duration != 2*time.Hour {
		t.Fatalf("extend unused first-use code = %+v, %v", v, err)
	}
	if _, _, err := s.ExtendVoucher(ctx, "web:r", 999, time.Hour); !errors.Is(err, ErrNotFound) {
		t.Fatalf("extend unknown: %v", err)
	}
	if _, _, err := s.ExtendVoucher(ctx, "web:r", issued.ID, 0); err == nil {
		t.Fatal("zero extension accepted")
	}
	got, _ := s.VoucherByID(ctx, issued.ID)
	if !got.ExpiresAt.Equal(t0.Add(90 * time.Minute)) {
		t.Fatalf("extension not stored: %+v", got)
	}
}

func TestVoucherAttemptsAUPAndPurge(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	mac := mustMAC(t, "00:11:22:33:44:55")
	for i, o := range []string{"invalid", "invalid", "ok"} {
		if err := s.RecordVoucherAttempt(ctx, VoucherAttempt{At: t0.Add(time.Duration(i) * time.Hour), MAC: mac, IP: netip.MustParseAddr("10.40.0.5"), Outcome: o}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RecordVoucherAttempt(ctx, VoucherAttempt{At: t0, Outcome: "unknown-device"}); err != nil {
		t.Fatal(err)
	}
	as, err := s.VoucherAttempts(ctx, 10)
	if err != nil || len(as) != 4 || as[0].MAC != nil || as[1].Outcome != "ok" || as[1].MAC.String() != mac.String() {
		t.Fatalf("attempts = %+v, %v", as, err)
	}

	if _, err := s.CurrentPortalAUP(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("AUP before any: %v", err)
	}
	p1, err := s.SetPortalAUP(ctx, "web:net", "version-one-0001", "Be kind.", "Byddwch yn garedig.", t0)
	if err != nil {
		t.Fatal(err)
	}
	if p1.Version != "version-one-0001" {
		t.Fatalf("version %s", p1.Version)
	}
	if _, err := s.SetPortalAUP(ctx, "web:net", "version-empty-01", "", "", t0); err == nil {
		t.Fatal("empty AUP accepted")
	}
	if _, err := s.SetPortalAUP(ctx, "web:net", "", "Be kind.", "", t0); err == nil {
		t.Fatal("AUP without a version accepted")
	}
	p2, err := s.SetPortalAUP(ctx, "web:net", "version-two-0002", "Be very kind.", "", t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cur, err := s.CurrentPortalAUP(ctx)
	if err != nil || cur.Version != p2.Version || cur.TextEN != "Be very kind." || cur.SetBy != "web:net" {
		t.Fatalf("current AUP = %+v, %v", cur, err)
	}

	v := issueOne(t, s, Voucher{CodeHash: "h", CreatedAt: t0, Duration: 24 * time.Hour, MaxDevices: 0})
	for i := range 3 {
		r := Redemption{CodeHash: "h", MAC: mac, IP: netip.MustParseAddr("10.40.0.5"), At: t0.Add(time.Duration(i) * time.Hour), AUPVersion: cur.Version}
		if _, err := s.RedeemVoucher(ctx, r, func(Voucher, bool) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	nAcc, nAtt, err := s.PurgeGuestRecords(ctx, "scheduler", t0.Add(90*time.Minute))
	if err != nil || nAcc != 2 || nAtt != 3 {
		t.Fatalf("purge = %d %d %v", nAcc, nAtt, err)
	}
	left, _ := s.GuestAcceptances(ctx, time.Time{}, t0.Add(100*time.Hour))
	if len(left) != 1 || left[0].VoucherID != v.ID {
		t.Fatalf("left after purge: %+v", left)
	}
	assertAuditClean(t, s)
}
