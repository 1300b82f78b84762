package captive

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-net/gatehouse/web/httpx"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
)

// The visitor-code JSON API under /api/v1, for scripts and a reception
// kiosk: the same actions as the pages, through the same functions (Issue,
// Portal.Revoke, Portal.Extend), the same ownership rule (reception sees and
// changes only the codes it issued) and the same audit actor (web:<name>).
// package web checks the bearer token and the role.

// registerAPI adds the API routes for roles.
func (a *admin) registerAPI(roles []string) {
	a.srv.AddAPI(http.MethodGet, "/api/v1/vouchers", roles, a.apiList)
	a.srv.AddAPI(http.MethodPost, "/api/v1/vouchers", roles, a.apiIssue)
	a.srv.AddAPI(http.MethodPost, "/api/v1/vouchers/:id/revoke", roles, a.apiRevoke)
	a.srv.AddAPI(http.MethodPost, "/api/v1/vouchers/:id/extend", roles, a.apiExtend)
}

// apiVoucher is a code as the API shows it: never the code itself.
type apiVoucher struct {
	ID              int64     `json:"id"`
	CreatedBy       string    `json:"created_by"`
	CreatedAt       time.Time `json:"created_at"`
	Batch           string    `json:"batch,omitempty"`
	Note            string    `json:"note,omitempty"`
	Duration        string    `json:"duration"` // Go syntax, like "2h0m0s"
	StartOnFirstUse bool      `json:"start_on_first_use"`
	NotBefore       time.Time `json:"not_before,omitzero"`
	NotAfter        time.Time `json:"not_after,omitzero"`
	MaxDevices      int       `json:"max_devices"` // 0: unlimited
	Devices         int       `json:"devices"`
	// Exact stored values; the request's kbit/s and MB are scaled by 1000
	// and 1000000.
	RateUpBps   int64     `json:"rate_up_bps,omitempty"`
	RateDownBps int64     `json:"rate_down_bps,omitempty"`
	QuotaBytes  int64     `json:"quota_bytes,omitempty"`
	FirstUsedAt time.Time `json:"first_used_at,omitzero"`
	ExpiresAt   time.Time `json:"expires_at,omitzero"`
	ValidUntil  time.Time `json:"valid_until,omitzero"` // absent until known (a first-use code not used yet)
	RevokedAt   time.Time `json:"revoked_at,omitzero"`
}

func toAPIVoucher(v store.Voucher) apiVoucher {
	return apiVoucher{ID: v.ID, CreatedBy: v.CreatedBy, CreatedAt: v.CreatedAt, Batch: v.BatchName, Note: v.Note,
		Duration: v.Duration.String(), StartOnFirstUse: v.StartOnFirstUse, NotBefore: v.NotBefore, NotAfter: v.NotAfter,
		MaxDevices: v.MaxDevices, Devices: v.Devices, RateUpBps: v.RateUpBps, RateDownBps: v.RateDownBps,
		QuotaBytes: v.QuotaBytes, FirstUsedAt: v.FirstUsedAt, ExpiresAt: v.ExpiresAt, ValidUntil: v.Until(),
		RevokedAt: v.RevokedAt}
}

// apiIssued is a new code: the one response that holds it in clear.
type apiIssued struct {
	apiVoucher
	Code string `json:"code"`
}

// apiIssueBody is the body of POST /api/v1/vouchers.
type apiIssueBody struct {
	Duration        string `json:"duration"` // Go syntax: "2h", "90m"
	Count           int    `json:"count"`    // 0: 1
	Devices         *int   `json:"devices"`  // absent: 1; 0: unlimited
	Note            string `json:"note"`
	Batch           string `json:"batch"`
	StartOnFirstUse bool   `json:"start_on_first_use"`
	NotBefore       string `json:"not_before"` // RFC 3339
	NotAfter        string `json:"not_after"`
	RateUpKbps      int64  `json:"rate_up_kbps"`
	RateDownKbps    int64  `json:"rate_down_kbps"`
	QuotaMB         int64  `json:"quota_mb"`
}

// The largest rate and quota the API takes, as the pages do (a million
// Mbit/s, a million MB); the bounds also keep the scaling from overflowing.
const (
	maxAPIKbps = 1_000_000_000
	maxAPIMB   = 1_000_000
)

func apiError(c *httpx.Context, status int, msg string) {
	c.JSON(status, httpx.H{"error": msg})
}

// request turns the body into an IssueRequest, checked by
// IssueRequest.Check like the form is.
func (b apiIssueBody) request(now time.Time) (IssueRequest, error) {
	q := IssueRequest{Now: now, Count: b.Count, MaxDevices: 1, Note: strings.TrimSpace(b.Note),
		Batch: strings.TrimSpace(b.Batch), StartOnFirstUse: b.StartOnFirstUse}
	if q.Count == 0 {
		q.Count = 1
	}
	if b.Devices != nil {
		q.MaxDevices = *b.Devices
	}
	var err error
	if q.Duration, err = time.ParseDuration(b.Duration); err != nil {
		return q, errors.New(`duration must be a duration like "2h" or "90m"`)
	}
	for _, f := range []struct {
		name     string
		v, max   int64
		scale    int64
		dst      *int64
		unitText string
	}{
		{"rate_up_kbps", b.RateUpKbps, maxAPIKbps, 1000, &q.RateUpBps, "kbit/s"},
		{"rate_down_kbps", b.RateDownKbps, maxAPIKbps, 1000, &q.RateDownBps, "kbit/s"},
		{"quota_mb", b.QuotaMB, maxAPIMB, 1_000_000, &q.QuotaBytes, "MB"},
	} {
		// Negative values are left to Check, which words the refusal.
		if f.v > f.max || f.v < -f.max {
			return q, fmt.Errorf("%s must be from 0 to %d %s", f.name, f.max, f.unitText)
		}
		*f.dst = f.v * f.scale
	}
	for _, f := range []struct {
		name, v string
		dst     *time.Time
	}{{"not_before", b.NotBefore, &q.NotBefore}, {"not_after", b.NotAfter, &q.NotAfter}} {
		if f.v == "" {
			continue
		}
		if *f.dst, err = time.Parse(time.RFC3339, f.v); err != nil {
			return q, fmt.Errorf("%s must be an RFC 3339 time like 2026-03-02T09:00:00Z", f.name)
		}
	}
	return q, q.Check()
}

// apiIssue makes codes and answers 201 with them in clear. The codes are
// not logged.
func (a *admin) apiIssue(c *httpx.Context) {
	var b apiIssueBody
	if err := c.DecodeJSON(&b); err != nil {
		apiError(c, http.StatusBadRequest, err.Error())
		return
	}
	q, err := b.request(a.p.now())
	if err == nil {
		var failed bool
		if err, failed = a.receptionBound(c.Request.Context(), c, &q); failed {
			a.p.log.Error("read reception limits", "err", err)
			apiError(c, http.StatusInternalServerError, "the codes could not be issued; the database could not be read")
			return
		}
	}
	if err != nil {
		apiError(c, http.StatusBadRequest, err.Error())
		return
	}
	q.Key = a.p.issueKey()
	out, err := Issue(c.Request.Context(), a.p.st, web.Actor(c), q, a.p.rand)
	if err != nil {
		a.p.log.Error("issue vouchers", "by", web.Actor(c), "err", err)
		apiError(c, http.StatusInternalServerError, "the codes could not be issued; the database could not be written")
		return
	}
	a.p.log.Info("vouchers issued", "by", web.Actor(c), "count", len(out), "first_id", out[0].Voucher.ID)
	codes := make([]apiIssued, 0, len(out))
	for _, ic := range out {
		codes = append(codes, apiIssued{apiVoucher: toAPIVoucher(ic.Voucher), Code: ic.Code})
	}
	c.JSON(http.StatusCreated, httpx.H{"codes": codes})
}

// apiList lists the codes the caller may see, newest first:
// ?limit=1..1000 (default 200, as the page shows) &offset=N.
func (a *admin) apiList(c *httpx.Context) {
	limit, offset := 200, 0
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			apiError(c, http.StatusBadRequest, "limit must be a whole number from 1 to 1000")
			return
		}
		limit = n
	}
	if s := c.Query("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			apiError(c, http.StatusBadRequest, "offset must be a whole number, 0 or more")
			return
		}
		offset = n
	}
	f := store.VoucherFilter{Limit: limit, Offset: offset}
	if mine(c) {
		f.CreatedBy = web.Actor(c)
	}
	vs, err := a.p.st.ListVouchers(c.Request.Context(), f)
	if err != nil {
		a.p.log.Error("list vouchers", "err", err)
		apiError(c, http.StatusInternalServerError, "the codes could not be read from the database")
		return
	}
	out := make([]apiVoucher, 0, len(vs))
	for _, v := range vs {
		out = append(out, toAPIVoucher(v))
	}
	c.JSON(http.StatusOK, httpx.H{"vouchers": out, "limit": limit, "offset": offset})
}

// apiCode fetches the code named by the path's id, answering 404 for
// someone else's code as for a missing one.
func (a *admin) apiCode(c *httpx.Context) (store.Voucher, bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		apiError(c, http.StatusBadRequest, "the id must be a positive whole number")
		return store.Voucher{}, false
	}
	v, err := a.visibleCode(c, id)
	if errors.Is(err, store.ErrNotFound) {
		apiError(c, http.StatusNotFound, "no such code among yours")
		return store.Voucher{}, false
	}
	if err != nil {
		a.p.log.Error("look up voucher", "id", id, "err", err)
		apiError(c, http.StatusInternalServerError, "the database could not be read")
		return store.Voucher{}, false
	}
	return v, true
}

func (a *admin) apiRevoke(c *httpx.Context) {
	v, ok := a.apiCode(c)
	if !ok {
		return
	}
	id := v.ID
	v, _, err := a.p.Revoke(c.Request.Context(), web.Actor(c), id)
	if err != nil {
		a.p.log.Error("revoke voucher", "id", id, "err", err)
		apiError(c, http.StatusInternalServerError, "the code could not be fully revoked: "+err.Error())
		return
	}
	c.JSON(http.StatusOK, toAPIVoucher(v))
}

func (a *admin) apiExtend(c *httpx.Context) {
	var b struct {
		By string `json:"by"` // Go syntax: "1h"
	}
	if err := c.DecodeJSON(&b); err != nil {
		apiError(c, http.StatusBadRequest, err.Error())
		return
	}
	v, ok := a.apiCode(c)
	if !ok {
		return
	}
	by, status, msg := extension(v, b.By, a.p.now())
	if status != 0 {
		apiError(c, status, msg)
		return
	}
	id := v.ID
	v, err := a.p.Extend(c.Request.Context(), web.Actor(c), id, by)
	if err != nil {
		a.p.log.Error("extend voucher", "id", id, "err", err)
		apiError(c, http.StatusInternalServerError, "the code could not be extended: "+err.Error())
		return
	}
	c.JSON(http.StatusOK, toAPIVoucher(v))
}
