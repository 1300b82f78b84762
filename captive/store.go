package captive

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
)

// Store is the part of the database the portal reads and writes: visitor
// codes and the devices on them, the guest records (acceptances, attempts),
// and the portal's AUP and reception's limits. *store.Store is one; only
// package store speaks SQL.
type Store interface {
	Issuer

	// Codes and the devices on them.
	ListVouchers(ctx context.Context, f store.VoucherFilter) ([]store.Voucher, error)
	CountVouchers(ctx context.Context, f store.VoucherFilter) (int, error)
	VoucherByID(ctx context.Context, id int64) (store.Voucher, error)
	VoucherDevices(ctx context.Context, id int64) ([]store.VoucherDevice, error)
	VoucherForDevice(ctx context.Context, mac net.HardwareAddr, now time.Time) (store.Voucher, store.VoucherDevice, error)
	// RedeemVouchers redeems codes and records code attempts, many
	// visitors' in one transaction (RedeemVoucher's batch form).
	RedeemVouchers(ctx context.Context, batch []store.BatchRedemption) ([]store.RedeemResult, error)
	ExtendVoucher(ctx context.Context, actor string, id int64, d time.Duration) (store.Voucher, []store.VoucherDevice, error)
	RevokeVoucher(ctx context.Context, actor string, id int64, at time.Time) (store.Voucher, []store.VoucherDevice, error)
	TouchVoucherDevice(ctx context.Context, voucherID int64, mac net.HardwareAddr, ip netip.Addr, at time.Time) error
	SignOutVoucherDevice(ctx context.Context, voucherID int64, mac net.HardwareAddr, at time.Time) error
	LegacyVoucherKey(ctx context.Context) (key []byte, ok bool, err error)

	// Guest records.
	ActiveGuestDevices(ctx context.Context, now time.Time) ([]store.GuestDevice, error)
	GuestAcceptances(ctx context.Context, from, to time.Time) ([]store.GuestAcceptance, error)
	VoucherAttempts(ctx context.Context, limit int) ([]store.VoucherAttempt, error)
	PurgeGuestRecords(ctx context.Context, actor string, before time.Time) (acceptances, attempts int64, err error)

	// The portal's AUP and reception's limits.
	CurrentPortalAUP(ctx context.Context) (store.PortalAUP, error)
	SetPortalAUP(ctx context.Context, actor, version, en, cy string, at time.Time) (store.PortalAUP, error)
	ReceptionLimits(ctx context.Context) (store.ReceptionLimits, error)
	SetReceptionLimits(ctx context.Context, actor string, l store.ReceptionLimits, at time.Time) error

	// The school's logo and colour, on the portal and the slips.
	CurrentBranding(ctx context.Context) (store.Branding, error)
	SetBranding(ctx context.Context, actor string, b store.Branding, at time.Time) error
}

// Issuer is what Issue needs of the store: the code-hashing key it kept
// before the site key, and the batch insert.
type Issuer interface {
	VoucherKey(ctx context.Context) ([]byte, error)
	IssueVouchers(ctx context.Context, actor, batchName string, vs []store.Voucher) ([]store.Voucher, error)
}
