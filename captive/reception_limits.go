package captive

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-net/gatehouse/web/httpx"

	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
)

// The network manager bounds what reception may put on a code (store's
// ReceptionLimits, set on the Portal page): how many devices, how long,
// and the rate and data quota. Reception's codes that leave the rate or
// quota empty get the cap; asking for more than a cap is refused.

// boundForReception applies the limits to q, a request of a reception
// user: it fills an empty rate or quota with its cap and reports, in words
// for the form, what exceeds one.
func boundForReception(q *IssueRequest, l store.ReceptionLimits) error {
	switch {
	case q.MaxDevices == 0:
		return fmt.Errorf("reception may issue codes for at most %d devices each, not unlimited", l.MaxDevices)
	case q.MaxDevices > l.MaxDevices:
		return fmt.Errorf("reception may issue codes for at most %d devices each", l.MaxDevices)
	case q.Duration > l.MaxDuration:
		return fmt.Errorf("reception may issue codes valid for at most %s", humanDuration(l.MaxDuration))
	}
	for _, f := range []struct {
		v    *int64
		max  int64
		what string
	}{{&q.RateDownBps, l.MaxRateBps, "download rate"}, {&q.RateUpBps, l.MaxRateBps, "upload rate"}, {&q.QuotaBytes, l.MaxQuotaBytes, "data quota"}} {
		if f.max == 0 {
			continue
		}
		if *f.v == 0 {
			*f.v = f.max
			continue
		}
		if *f.v > f.max {
			return fmt.Errorf("the %s may be at most %s for reception's codes", f.what, limitText(f.what, f.max))
		}
	}
	return nil
}

func limitText(what string, v int64) string {
	if strings.HasSuffix(what, "rate") {
		return strconv.FormatFloat(float64(v)/1e6, 'f', -1, 64) + " Mbit/s"
	}
	return strconv.FormatFloat(float64(v)/1e6, 'f', -1, 64) + " MB"
}

// receptionBound is boundForReception for the signed-in user: the network
// role is not bounded.
func (a *admin) receptionBound(ctx context.Context, c *httpx.Context, q *IssueRequest) (err error, failed bool) {
	if u, _ := web.CurrentUser(c); u.Role != web.RoleReception {
		return nil, false
	}
	l, err := a.p.st.ReceptionLimits(ctx)
	if err != nil {
		return err, true
	}
	if err := boundForReception(q, l); err != nil {
		return err, false
	}
	return q.Check(), false
}

type limitsData struct {
	MaxDevices              int
	MaxRateMbps, MaxQuotaMB string
	MaxDurationHours        string
	SetBy, SetAt            string
}

func (a *admin) limitsData(ctx context.Context) limitsData {
	l, err := a.p.st.ReceptionLimits(ctx)
	if err != nil {
		a.p.log.Error("read reception limits", "err", err)
		l = store.DefaultReceptionLimits
	}
	d := limitsData{MaxDevices: l.MaxDevices, MaxDurationHours: strconv.FormatFloat(l.MaxDuration.Hours(), 'f', -1, 64), SetBy: l.SetBy}
	if l.MaxRateBps > 0 {
		d.MaxRateMbps = strconv.FormatFloat(float64(l.MaxRateBps)/1e6, 'f', -1, 64)
	}
	if l.MaxQuotaBytes > 0 {
		d.MaxQuotaMB = strconv.FormatFloat(float64(l.MaxQuotaBytes)/1e6, 'f', -1, 64)
	}
	if !l.SetAt.IsZero() {
		d.SetAt = a.when(l.SetAt)
	}
	return d
}

// setLimits saves the network manager's limits for reception.
func (a *admin) setLimits(c *httpx.Context) {
	fail := func(msg string) {
		v := a.srv.View(c, "Portal")
		v.Error = "The limits were not saved: " + msg + "."
		a.renderSettings(c, http.StatusBadRequest, v, nil)
	}
	num := func(name string, max float64) (float64, bool) {
		s := strings.TrimSpace(c.PostForm(name))
		if s == "" {
			return 0, true
		}
		x, err := strconv.ParseFloat(s, 64)
		return x, err == nil && x >= 0 && x <= max && !math.IsNaN(x)
	}
	devices, ok1 := num("max_devices", 1000)
	rate, ok2 := num("max_rate_mbps", 1e6)
	quota, ok3 := num("max_quota_mb", 1e6)
	hours, ok4 := num("max_duration_hours", 366*24)
	if !ok1 || !ok2 || !ok3 || !ok4 || devices != math.Trunc(devices) {
		fail("each field must be a number in its range (devices a whole number)")
		return
	}
	l := store.ReceptionLimits{MaxDevices: int(devices), MaxRateBps: int64(rate * 1e6), MaxQuotaBytes: int64(quota * 1e6),
		MaxDuration: time.Duration(hours * float64(time.Hour)).Round(time.Minute)}
	if err := l.Check(); err != nil {
		fail(err.Error())
		return
	}
	if l.MaxRateBps > 0 && !rateSettable(l.MaxRateBps) {
		fail(fmt.Sprintf("a rate cap must be at least %d kbit/s, the slowest the router can set", policy.RateTiers()[0]*8/1000))
		return
	}
	if err := a.p.st.SetReceptionLimits(c.Request.Context(), web.Actor(c), l, a.p.now()); err != nil {
		a.p.log.Error("set reception limits", "err", err)
		a.srv.RenderError(c, http.StatusInternalServerError, "The limits could not be saved.")
		return
	}
	c.Redirect(http.StatusSeeOther, "/portal?limits=1")
}
