package web

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse-net/gatehouse/web/httpx"

	"github.com/gatehouse-net/gatehouse/store"
)

// The JSON API under /api/v1. Callers authenticate with
// "Authorization: Bearer <token>" (see requireBearer); the role table
// applies as for pages.

type apiUser struct {
	ID          int64      `json:"id"`
	Name        string     `json:"name"`
	Role        string     `json:"role"`
	CreatedAt   time.Time  `json:"created_at"`
	Disabled    bool       `json:"disabled"`
	LockedUntil *time.Time `json:"locked_until,omitempty"`
}

func toAPIUser(u store.User, now time.Time) apiUser {
	a := apiUser{ID: u.ID, Name: u.Name, Role: u.Role, CreatedAt: u.CreatedAt, Disabled: u.Disabled}
	if now.Before(u.LockedUntil) {
		t := u.LockedUntil
		a.LockedUntil = &t
	}
	return a
}

func (s *Server) apiWhoami(c *httpx.Context) {
	u, _ := CurrentUser(c)
	resp := httpx.H{"id": u.ID, "name": u.Name, "role": u.Role}
	if v, ok := c.Get(keyToken); ok {
		if t, ok := v.(store.APIToken); ok {
			resp["token"] = httpx.H{"id": t.ID, "name": t.Name, "created_at": t.CreatedAt}
		}
	}
	c.JSON(http.StatusOK, resp)
}

type apiAuditEntry struct {
	ID       int64           `json:"id"`
	At       time.Time       `json:"at"`
	Actor    string          `json:"actor"`
	Action   string          `json:"action"`
	Object   string          `json:"object"`
	Before   json.RawMessage `json:"before,omitempty"`
	After    json.RawMessage `json:"after,omitempty"`
	PrevHash string          `json:"prev_hash"`
	Hash     string          `json:"hash"`
}

// rawJSON passes the store's JSON through as JSON (the store checks it is
// valid on write); "" becomes absent.
func rawJSON(s string) json.RawMessage {
	if s == "" || !json.Valid([]byte(s)) {
		return nil
	}
	return json.RawMessage(s)
}

// apiAudit lists audit entries, newest first: ?limit=1..1000 (default 50)
// &offset=N.
func (s *Server) apiAudit(c *httpx.Context) {
	limit, err := queryInt(c, "limit", 50, 1, store.MaxAuditPage)
	if err != nil {
		c.JSON(http.StatusBadRequest, httpx.H{"error": "limit must be a whole number from 1 to " + strconv.Itoa(store.MaxAuditPage)})
		return
	}
	offset, err := queryInt(c, "offset", 0, 0, math.MaxInt) // any offset; 1<<40 overflowed int on 32-bit ARM
	if err != nil {
		c.JSON(http.StatusBadRequest, httpx.H{"error": "offset must be a whole number, 0 or more"})
		return
	}
	entries, err := s.store.AuditList(c.Request.Context(), limit, offset)
	if err != nil {
		s.log.Error("web: api: list audit log", logUser(c), "err", err)
		c.JSON(http.StatusInternalServerError, httpx.H{"error": "database error"})
		return
	}
	out := make([]apiAuditEntry, 0, len(entries))
	for _, e := range entries {
		out = append(out, apiAuditEntry{ID: e.ID, At: e.At, Actor: e.Actor, Action: e.Action, Object: e.Object,
			Before: rawJSON(e.Before), After: rawJSON(e.After), PrevHash: e.PrevHash, Hash: e.Hash})
	}
	c.JSON(http.StatusOK, httpx.H{"entries": out, "limit": limit, "offset": offset})
}

func (s *Server) apiUsers(c *httpx.Context) {
	users, err := s.store.ListUsers(c.Request.Context())
	if err != nil {
		s.log.Error("web: api: list users", logUser(c), "err", err)
		c.JSON(http.StatusInternalServerError, httpx.H{"error": "database error"})
		return
	}
	now := s.now()
	out := make([]apiUser, 0, len(users))
	for _, u := range users {
		out = append(out, toAPIUser(u, now))
	}
	c.JSON(http.StatusOK, httpx.H{"users": out})
}

// queryInt parses an optional integer query parameter in [lo, hi].
func queryInt(c *httpx.Context, name string, def, lo, hi int) (int, error) {
	v := c.Query(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, err
	}
	if n < lo || n > hi {
		return 0, strconv.ErrRange
	}
	return n, nil
}
