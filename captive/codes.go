// This file: what the portal does with a code (redeem, admit, revoke,
// extend, restore); code.go says what a code is.

package captive

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-net/gatehouse/alert/finding"
	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/store"
)

// codeLimits turns a code's options (bits per second, bytes) into the
// kernel limits its devices are admitted with. The quota is the code's:
// every device of code id counts against one budget.
func codeLimits(id, upBits, downBits, quota int64) policy.Limits {
	l := policy.Limits{UpBps: uint64(upBits) / 8, DownBps: uint64(downBits) / 8, QuotaBytes: uint64(quota)}
	if quota > 0 {
		l.QuotaKey = "v" + strconv.FormatInt(id, 10)
	}
	return l
}

// admitDevice opens the gate for mac/ip until the code's end and records the
// address. signIn, for a sign-in, is how its writes went; its log line
// then also says how long the visitor waited for them and for the kernel.
func (p *Portal) admitDevice(ctx context.Context, v store.Voucher, mac net.HardwareAddr, ip netip.Addr, reason string, signIn *signInTiming) error {
	until := v.Until()
	t0 := time.Now()
	if err := p.adm.AdmitWith(ctx, policy.Device{MAC: mac, IP: ip}, until, codeLimits(v.ID, v.RateUpBps, v.RateDownBps, v.QuotaBytes)); err != nil {
		return err
	}
	admitted := time.Since(t0)
	if n := p.conns.closeIdle(ip); n > 0 {
		p.log.Debug("closed connections opened before admission", "ip", ip, "connections", n)
	}
	if reason == "returned" {
		if err := p.st.TouchVoucherDevice(ctx, v.ID, mac, ip, p.now()); err != nil {
			p.log.Warn("record returning device's address", "mac", mac, "err", err)
		}
	}
	p.ends.note(until)
	events.Publish(p.hub, events.SessionStarted{Source: events.SourcePortal, At: p.now(), VoucherID: v.ID, MAC: mac, IP: ip, Until: until, Reason: reason})
	if signIn != nil {
		p.log.Info("guest admitted", "voucher", v.ID, "mac", mac, "ip", ip, "until", until, "reason", reason,
			"batch", signIn.batch, "recorded_ms", millis(signIn.wait), "commit_ms", millis(signIn.commit), "kernel_ms", millis(admitted))
		return nil
	}
	p.log.Info("guest admitted", "voucher", v.ID, "mac", mac, "ip", ip, "until", until, "reason", reason)
	return nil
}

// ReadmitOnLease is for the DHCP server's lease hook: a device that comes
// back (same MAC, maybe a new address) while its code is valid is admitted
// again without the portal. It reports whether it was.
func (p *Portal) ReadmitOnLease(ctx context.Context, mac net.HardwareAddr, ip netip.Addr) (bool, error) {
	v, d, err := p.st.VoucherForDevice(ctx, mac, p.now())
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("captive: readmit %v: %w", mac, err)
	}
	if d.IP.IsValid() && d.IP != ip {
		// The old address is no longer this device's: close it.
		if err := p.adm.Evict(ctx, policy.Device{MAC: mac, IP: d.IP}); err != nil {
			p.log.Warn("evict previous address", "mac", mac, "ip", d.IP, "err", err)
		}
	}
	if err := p.admitDevice(ctx, v, mac, ip, "returned", nil); err != nil {
		return false, fmt.Errorf("captive: readmit %v: %w", mac, err)
	}
	return true, nil
}

// Restore re-admits every signed-in device of a valid code, for daemon start:
// the kernel's admissions are rebuilt from the database. It returns how many
// were admitted and the errors of those that could not be.
func (p *Portal) Restore(ctx context.Context) (int, error) {
	gs, err := p.st.ActiveGuestDevices(ctx, p.now())
	if err != nil {
		return 0, fmt.Errorf("captive: restore: %w", err)
	}
	n := 0
	var errs []error
	for _, g := range gs {
		if !g.IP.IsValid() {
			continue
		}
		if err := p.adm.AdmitWith(ctx, policy.Device{MAC: g.MAC, IP: g.IP}, g.Until, codeLimits(g.VoucherID, g.RateUpBps, g.RateDownBps, g.QuotaBytes)); err != nil {
			errs = append(errs, fmt.Errorf("%v/%v: %w", g.MAC, g.IP, err))
			continue
		}
		n++
	}
	if len(errs) > 0 {
		return n, fmt.Errorf("captive: restore: %w", errors.Join(errs...))
	}
	p.log.Info("guest admissions restored", "devices", n)
	return n, nil
}

// Revoke ends a code now and evicts every device that used it. It returns
// how many devices were signed in with it and are now disconnected.
func (p *Portal) Revoke(ctx context.Context, actor string, id int64) (store.Voucher, int, error) {
	now := p.now()
	v, ds, err := p.st.RevokeVoucher(ctx, actor, id, now)
	if err != nil {
		return store.Voucher{}, 0, fmt.Errorf("captive: revoke %d: %w", id, err)
	}
	// Only devices still signed in with a code that was live until now lose
	// anything: the count says what really happened, not how many devices
	// ever used the code.
	online := v.RevokedAt.Equal(now.UTC()) && (v.Until().IsZero() || v.Until().After(now))
	var errs []error
	disconnected := 0
	for _, d := range ds {
		// MAC only: every address the device was admitted on.
		if err := p.adm.Evict(ctx, policy.Device{MAC: d.MAC}); err != nil {
			errs = append(errs, err)
			continue
		}
		if online && d.LoggedOutAt.IsZero() {
			disconnected++
		}
		events.Publish(p.hub, events.SessionEnded{Source: events.SourcePortal, At: p.now(), VoucherID: id, MAC: d.MAC, IP: d.IP, Reason: "revoked"})
	}
	p.log.Info("voucher revoked", "voucher", id, "by", actor, "devices", len(ds), "disconnected", disconnected)
	if len(errs) > 0 {
		return v, disconnected, fmt.Errorf("captive: revoke %d: evict: %w", id, errors.Join(errs...))
	}
	return v, disconnected, nil
}

// SignedIn counts the devices signed in now with code v: what revoking it
// would disconnect.
func (p *Portal) SignedIn(ctx context.Context, v store.Voucher) (int, error) {
	if !v.RevokedAt.IsZero() || (!v.Until().IsZero() && !v.Until().After(p.now())) {
		return 0, nil
	}
	ds, err := p.st.VoucherDevices(ctx, v.ID)
	if err != nil {
		return 0, fmt.Errorf("captive: devices of code %d: %w", v.ID, err)
	}
	n := 0
	for _, d := range ds {
		if d.LoggedOutAt.IsZero() {
			n++
		}
	}
	return n, nil
}

// Extend lengthens a code by d and moves its signed-in devices' admissions
// to the new end.
func (p *Portal) Extend(ctx context.Context, actor string, id int64, d time.Duration) (store.Voucher, error) {
	v, ds, err := p.st.ExtendVoucher(ctx, actor, id, d.Round(time.Second))
	if err != nil {
		return store.Voucher{}, fmt.Errorf("captive: extend %d: %w", id, err)
	}
	until := v.Until()
	p.ends.note(until)
	var errs []error
	if !until.IsZero() && until.After(p.now()) {
		for _, dev := range ds {
			if !dev.LoggedOutAt.IsZero() || !dev.IP.IsValid() {
				continue
			}
			if err := p.adm.AdmitWith(ctx, policy.Device{MAC: dev.MAC, IP: dev.IP}, until, codeLimits(v.ID, v.RateUpBps, v.RateDownBps, v.QuotaBytes)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	p.log.Info("voucher extended", "voucher", id, "by", actor, "until", until)
	if len(errs) > 0 {
		return v, fmt.Errorf("captive: extend %d: admit: %w", id, errors.Join(errs...))
	}
	return v, nil
}

// Outcomes of a code attempt, as logged.
const (
	outcomeOK         = "ok"
	outcomeInvalid    = "invalid"
	outcomeMalformed  = "malformed"
	outcomeExpired    = "expired"
	outcomeNotYet     = "not-yet-valid"
	outcomeRevoked    = "revoked"
	outcomeDevices    = "device-limit"
	outcomeThrottled  = "throttled"
	outcomeNoDevice   = "unknown-device"
	outcomeUnbound    = "no-lease"
	outcomeAdmitError = "admit-failed"
)

// refusal is why redeem refused a code, with what the page should say.
type refusal struct {
	outcome string
	msg     func(lang string) string
}

func (e *refusal) Error() string { return "captive: code refused: " + e.outcome }

// redeem checks a typed code for the device mac/ip, records the acceptance
// and admits the device. The attempt is logged and counted by the limits.
// The acceptance and the attempt are written with other visitors' sign-ins
// in one transaction (signIns); redeem returns only once they are durable.
func (p *Portal) redeem(ctx context.Context, typed string, mac net.HardwareAddr, ip netip.Addr, name, company string) (store.Voucher, error) {
	now := p.now()
	var v store.Voucher
	attempt := store.VoucherAttempt{At: now, MAC: mac, IP: ip}
	// record writes the attempt of a sign-in refused before its code was
	// looked up (it waits, as an acceptance does: the attempt log is the
	// brute-force trail).
	record := func(outcome string) {
		a := attempt
		a.Outcome = outcome
		if r, _ := p.signIns.do(store.BatchRedemption{Attempt: a}); r.Err != nil {
			p.log.Error("record code attempt", "err", r.Err)
		}
	}
	// A device the portal cannot name is throttled by its address, and
	// each try counts as a failure: otherwise it could try without limit.
	key := "ip:" + ip.String()
	if len(mac) > 0 {
		key = mac.String()
	}
	if wait := p.lim.allow(key, now); wait > 0 {
		record(outcomeThrottled)
		return v, &refusal{outcomeThrottled, func(l string) string { return tr(l, "err_throttled", durationText(l, wait)) }}
	}
	if len(mac) == 0 {
		p.lim.fail(key, now)
		record(outcomeNoDevice)
		return v, &refusal{outcomeNoDevice, func(l string) string { return tr(l, "err_device") }}
	}
	if p.bound != nil && !p.bound(mac, ip) {
		// An address the router never gave this MAC: a code must not
		// make it work (MAC-address binding). Not a guess, so no failure.
		record(outcomeUnbound)
		return v, &refusal{outcomeUnbound, func(l string) string { return tr(l, "err_device") }}
	}
	fail := func(o string) error {
		if p.lim.fail(key, now) {
			failures, window, until := p.lim.lim.SiteFailures, p.lim.lim.Window, now.Add(p.lim.lim.BreakerHold)
			p.log.Warn("code guessing breaker tripped: every device slowed", "failures", failures, "window", window, "mac", mac, "ip", ip)
			p.findings.Offer(finding.Finding{Time: now, Source: finding.SourcePortal, Class: finding.ClassCodeGuessing,
				SrcIP: ip, SrcMAC: mac, Proto: "http", Detail: "breaker",
				Evidence: fmt.Sprintf("%d wrong visitor codes within %v across the site; every device is slowed until %s; the last came from this device",
					failures, window, until.Format(time.RFC3339))})
		}
		return &refusal{o, func(l string) string { return tr(l, "err_invalid") }}
	}
	code, err := NormaliseCode(typed)
	if err != nil {
		record(outcomeMalformed)
		return v, fail(outcomeMalformed)
	}
	k, err := p.codeKey(ctx)
	if err != nil {
		record("error")
		return v, err
	}
	aup := p.currentAUP(ctx)
	red := store.Redemption{CodeHash: HashCode(k, code), MAC: mac, IP: ip, At: now,
		Name: clip(name, 100), Company: clip(company, 100), AUPVersion: aup.Version}
	check := func(v store.Voucher, known bool) error {
		switch {
		case !v.RevokedAt.IsZero():
			return &refusal{outcomeRevoked, func(l string) string { return tr(l, "err_revoked") }}
		case !v.NotBefore.IsZero() && now.Before(v.NotBefore):
			at := v.NotBefore.In(p.loc)
			return &refusal{outcomeNotYet, func(l string) string { return tr(l, "err_notyet", dateTimeText(l, at)) }}
		case !v.NotAfter.IsZero() && !now.Before(v.NotAfter), !v.ExpiresAt.IsZero() && !now.Before(v.ExpiresAt):
			return &refusal{outcomeExpired, func(l string) string { return tr(l, "err_expired") }}
		case !known && v.MaxDevices > 0 && v.Devices >= v.MaxDevices:
			n := v.MaxDevices
			return &refusal{outcomeDevices, func(l string) string { return tr(l, "err_devices", n) }}
		}
		return nil
	}
	// retry: with the site key, a code not found may be one printed before
	// it, hashed with the database's old key; its attempt is recorded by
	// that second try.
	retry := p.siteKeyed
	outcomeOf := func(_ store.Voucher, err error) string {
		var ref *refusal
		switch {
		case err == nil:
			return outcomeOK
		case errors.As(err, &ref):
			return ref.outcome
		case errors.Is(err, store.ErrNotFound):
			if retry {
				return ""
			}
			return outcomeInvalid
		}
		return "error"
	}
	r, timing := p.signIns.do(store.BatchRedemption{Redemption: red, Check: check, Attempt: attempt, Outcome: outcomeOf})
	v, err = r.Voucher, r.Err
	if retry && errors.Is(err, store.ErrNotFound) {
		retry = false
		if old, ok := p.legacyKey(ctx); ok {
			red.CodeHash = HashCode(old, code)
			r, timing = p.signIns.do(store.BatchRedemption{Redemption: red, Check: check, Attempt: attempt, Outcome: outcomeOf})
			v, err = r.Voucher, r.Err
		} else {
			record(outcomeInvalid)
		}
	}
	var ref *refusal
	switch {
	case errors.As(err, &ref):
		return v, ref
	case errors.Is(err, store.ErrNotFound):
		return v, fail(outcomeInvalid)
	case err != nil:
		return v, err
	}
	p.lim.succeed(key)
	if err := p.admitDevice(ctx, v, mac, ip, "redeemed", &timing); err != nil {
		// The acceptance (and its "ok" attempt) is on record; the trail
		// also says the kernel then refused the admission.
		record(outcomeAdmitError)
		return v, err
	}
	return v, nil
}

// millis is d in milliseconds with two decimals, for log lines.
func millis(d time.Duration) float64 { return float64(d.Microseconds()/10) / 100 }

func clip(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
