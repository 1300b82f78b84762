package web

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-net/gatehouse/web/httpx"

	"github.com/gatehouse-net/gatehouse/password"
	"github.com/gatehouse-net/gatehouse/store"
)

// MinPasswordLength is the shortest password the pages accept. Length is
// what makes a password hard to guess; no composition rules.
const MinPasswordLength = 12

// auditPageSize is how many audit entries one page shows.
const auditPageSize = 50

// roleText says what each role is for, on its home page.
func roleText(role string) string {
	switch role {
	case RoleReception:
		return "Reception: issue visitors time-limited Wi-Fi codes and print their slips."
	case RoleNetwork:
		return "Network manager: segments and rules, devices, people, users and the audit log."
	case RoleDSL:
		return "Designated Safeguarding Lead: alerts about filtering bypass attempts and unapproved devices, and the incident log."
	}
	return ""
}

type homeData struct {
	RoleText string
	Alarms   []string // see AddAlarms
	Links    []NavItem
	// Network role only.
	Users  int
	Recent []store.AuditEntry
}

func (s *Server) homePage(c *httpx.Context) {
	u, _ := CurrentUser(c)
	v := s.View(c, "Home")
	d := homeData{RoleText: roleText(u.Role), Alarms: s.alarmLines(u.Role)}
	for _, n := range v.Nav {
		if n.Path != "/" {
			d.Links = append(d.Links, n)
		}
	}
	if u.Role == RoleNetwork {
		users, err := s.store.ListUsers(c.Request.Context())
		if err != nil {
			s.dbError(c, "list users", err)
			return
		}
		d.Users = len(users)
		if d.Recent, err = s.store.AuditList(c.Request.Context(), 10, 0); err != nil {
			s.dbError(c, "list audit log", err)
			return
		}
	}
	v.Data = d
	s.renderPage(c, http.StatusOK, "home", v)
}

// dbError answers a request whose store call failed.
func (s *Server) dbError(c *httpx.Context, what string, err error) {
	s.log.Error("web: "+what, "path", c.Request.URL.Path, logUser(c), "err", err)
	s.RenderError(c, http.StatusInternalServerError, "The database could not be read or written. Try again; if it keeps failing, check the daemon's log.")
}

// auditRow is one audit entry as the page shows it.
type auditRow struct {
	store.AuditEntry
	When, Sentence string
}

type auditData struct {
	Entries          []auditRow
	Page, Prev, Next int // Prev, Next: 0 when there is none
	// The filters, as typed, and the query string that keeps them for the
	// pager and the CSV link.
	Who, Kind, Text, From, To string
	Query                     template.URL // already encoded
	Actors                    []string
	Kinds                     []string
}

// auditFilter reads the audit page's filters from the URL. From and To are
// dates (YYYY-MM-DD) in the school's time zone; To is inclusive.
func (s *Server) auditFilter(c *httpx.Context, d *auditData) (store.AuditFilter, string) {
	d.Who, d.Kind, d.Text = c.Query("who"), c.Query("kind"), strings.TrimSpace(c.Query("q"))
	d.From, d.To = c.Query("from"), c.Query("to")
	f := store.AuditFilter{Actor: d.Who, Kind: d.Kind, Text: d.Text}
	if len(d.Text) > 100 || len(d.Who) > 200 || len(d.Kind) > 100 {
		return f, "A filter is too long."
	}
	if d.From != "" {
		t, err := time.ParseInLocation("2006-01-02", d.From, s.loc)
		if err != nil {
			return f, "The 'from' date must be a date like 2026-12-06."
		}
		f.From = t
	}
	if d.To != "" {
		t, err := time.ParseInLocation("2006-01-02", d.To, s.loc)
		if err != nil {
			return f, "The 'to' date must be a date like 2026-12-06."
		}
		f.Before = t.AddDate(0, 0, 1)
	}
	q := url.Values{}
	for k, v := range map[string]string{"who": d.Who, "kind": d.Kind, "q": d.Text, "from": d.From, "to": d.To} {
		if v != "" {
			q.Set(k, v)
		}
	}
	d.Query = template.URL(q.Encode()) // url.Values.Encode escapes every value
	return f, ""
}

// userRoles maps admin user names to their roles, for sentences.
func (s *Server) userRoles(ctx context.Context) map[string]string {
	m := map[string]string{}
	users, err := s.store.ListUsers(ctx)
	if err != nil {
		s.log.Warn("web: list users for the audit log", "err", err)
		return m
	}
	for _, u := range users {
		m[u.Name] = u.Role
	}
	return m
}

func (s *Server) auditRows(ctx context.Context, es []store.AuditEntry) []auditRow {
	roles := s.userRoles(ctx)
	out := make([]auditRow, len(es))
	for i, e := range es {
		out[i] = auditRow{AuditEntry: e, When: s.When(e.At), Sentence: auditSentence(e, roles)}
	}
	return out
}

func (s *Server) auditPage(c *httpx.Context) {
	page := 1
	if p := c.Query("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 1_000_000 {
			s.RenderError(c, http.StatusBadRequest, "The page number must be a positive whole number.")
			return
		}
		page = n
	}
	var d auditData
	f, msg := s.auditFilter(c, &d)
	v := s.View(c, "Audit log")
	status := http.StatusOK
	if msg != "" {
		v.Error, status = msg, http.StatusBadRequest
		f = store.AuditFilter{}
	}
	// One more than a page tells whether there is a next page.
	f.Limit, f.Offset = auditPageSize+1, (page-1)*auditPageSize
	entries, err := s.store.AuditSearch(c.Request.Context(), f)
	if err != nil {
		s.dbError(c, "list audit log", err)
		return
	}
	d.Page = page
	if len(entries) > auditPageSize {
		entries, d.Next = entries[:auditPageSize], page+1
	}
	if page > 1 {
		d.Prev = page - 1
	}
	d.Entries = s.auditRows(c.Request.Context(), entries)
	if d.Actors, err = s.store.AuditActors(c.Request.Context()); err != nil {
		s.dbError(c, "list audit actors", err)
		return
	}
	d.Kinds = auditKinds()
	v.Data = d
	s.renderPage(c, status, "audit", v)
}

// auditKinds are the first parts of the actions the kind filter offers.
func auditKinds() []string {
	seen := map[string]bool{}
	var out []string
	for a := range auditVerbs {
		k, _, _ := strings.Cut(a, ".")
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// auditCSV exports what the audit page's filters select (at most
// store.MaxAuditPage entries), with the sentence beside the raw JSON.
func (s *Server) auditCSV(c *httpx.Context) {
	var d auditData
	f, msg := s.auditFilter(c, &d)
	if msg != "" {
		s.RenderError(c, http.StatusBadRequest, msg)
		return
	}
	f.Limit = store.MaxAuditPage
	entries, err := s.store.AuditSearch(c.Request.Context(), f)
	if err != nil {
		s.dbError(c, "export audit log", err)
		return
	}
	rows := make([][]string, 0, len(entries))
	for _, r := range s.auditRows(c.Request.Context(), entries) {
		rows = append(rows, []string{strconv.FormatInt(r.ID, 10), s.CSVTime(r.At), r.Actor, r.Action, r.Object, r.Sentence, r.Before, r.After})
	}
	s.SendCSV(c, "audit-log", []string{"id", "time", "actor", "action", "object", "in_words", "before", "after"}, rows)
}

type usersData struct {
	Users       []store.User
	Roles       []string
	Now         time.Time
	Name        string // form values kept after an error
	DisplayName string
	Role        string
	MinLength   int
	MaxDisplay  int
}

func (s *Server) usersPage(c *httpx.Context) {
	v := s.View(c, "Users")
	v.Notice = notice(c)
	s.renderUsers(c, http.StatusOK, v, "", "", "")
}

func (s *Server) renderUsers(c *httpx.Context, status int, v *View, name, display, role string) {
	users, err := s.store.ListUsers(c.Request.Context())
	if err != nil {
		s.dbError(c, "list users", err)
		return
	}
	v.Data = usersData{Users: users, Roles: Roles(), Now: s.now(), Name: name, DisplayName: display, Role: role,
		MinLength: MinPasswordLength, MaxDisplay: store.MaxDisplayName}
	s.renderPage(c, status, "users", v)
}

// validUserName mirrors the store's rule (letters, digits, . _ - @, at most
// 64 bytes) so the form can say what is wrong instead of "database error".
func validUserName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-', r == '@':
		default:
			return false
		}
	}
	return true
}

// checkNewPassword returns what is wrong with a new password, or "".
func checkNewPassword(pw, confirm string) string {
	switch {
	case len([]rune(pw)) < MinPasswordLength:
		return fmt.Sprintf("The password must be at least %d characters long.", MinPasswordLength)
	case len(pw) > password.MaxLength:
		return fmt.Sprintf("The password must be at most %d bytes long.", password.MaxLength)
	case pw != confirm:
		return "The two passwords do not match."
	}
	return ""
}

func (s *Server) createUser(c *httpx.Context) {
	name := strings.TrimSpace(c.PostForm("name"))
	display := strings.Join(strings.Fields(c.PostForm("display_name")), " ")
	role := c.PostForm("role")
	pw := c.PostForm("password")
	v := s.View(c, "Users")
	fail := func(status int, msg string) {
		v.Error = msg
		s.renderUsers(c, status, v, name, display, role)
	}
	if !validUserName(name) {
		msg := "The login name must be 1 to 64 letters, digits or . _ - @, with no spaces."
		if strings.ContainsRune(name, ' ') {
			msg += " Put a name with spaces, like \"" + name + "\", in the display name."
		}
		fail(http.StatusBadRequest, msg)
		return
	}
	if len(display) > store.MaxDisplayName {
		fail(http.StatusBadRequest, fmt.Sprintf("The display name must be at most %d characters.", store.MaxDisplayName))
		return
	}
	if !store.ValidRole(role) {
		fail(http.StatusBadRequest, "Choose one of the roles.")
		return
	}
	if msg := checkNewPassword(pw, c.PostForm("confirm")); msg != "" {
		fail(http.StatusBadRequest, msg)
		return
	}
	hash, err := s.hashPassword(c.Request.Context(), pw)
	if err != nil {
		s.log.Error("web: create user: hash password", "err", err)
		fail(http.StatusInternalServerError, "The password could not be hashed.")
		return
	}
	u, err := s.store.CreateUser(c.Request.Context(), Actor(c), store.User{Name: name, DisplayName: display, Role: role, PasswordHash: hash, CreatedAt: s.now()})
	if errors.Is(err, store.ErrExists) {
		fail(http.StatusConflict, "There is already a user called "+name+".")
		return
	}
	if err != nil {
		s.log.Error("web: create user", logUser(c), "err", err)
		fail(http.StatusInternalServerError, "The user could not be saved.")
		return
	}
	s.log.Info("web: user created", logUser(c), "new_user", u.Name, "role", u.Role)
	c.Redirect(http.StatusSeeOther, "/users?done=user-created")
}

// hashPassword hashes under the same concurrency bound as verification:
// each argon2 run takes password.HashMemory (19 MiB).
func (s *Server) hashPassword(ctx context.Context, pw string) (string, error) {
	select {
	case s.verifySem <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-s.verifySem }()
	return password.Hash(pw)
}

// notices are the banners a redirect after a change may ask for, by the
// fixed key in its "done" parameter. A banner never repeats URL text: a link
// someone else made must not be able to put words in the shell's mouth.
var notices = map[string]string{
	"user-created":     "User created.",
	"token-revoked":    "Token revoked.",
	"password-changed": "Password changed. Your other sessions and your API tokens have ended.",
}

// notice is the banner for the request's "done" key; "" for none or an
// unknown key.
func notice(c *httpx.Context) string { return notices[c.Query("done")] }

// tokenView is a token as the list shows it.
type tokenView struct {
	store.APIToken
	UserName  string // the owner, in the network role's list of every token
	ExpiresAt time.Time
}

type tokensData struct {
	Tokens   []tokenView // the user's own, by name
	Others   []tokenView // network role: every other user's, to revoke
	NewToken string      // the clear token, shown once right after creation
	NewName  string
	Name     string // form value kept after an error
}

// tokensPage lets every user create API tokens for themselves, see them
// (name, created, last used) and revoke them. A new token is shown once, in
// the response to the form that made it; only its hash is stored, so it
// cannot be shown again.
func (s *Server) tokensPage(c *httpx.Context) {
	v := s.View(c, "API tokens")
	v.Notice = notice(c)
	s.renderTokens(c, http.StatusOK, v, tokensData{})
}

// renderTokens renders the tokens page with the current user's tokens
// listed in d.
func (s *Server) renderTokens(c *httpx.Context, status int, v *View, d tokensData) {
	u, _ := CurrentUser(c)
	own, err := s.store.APITokensByUser(c.Request.Context(), u.ID)
	if err != nil {
		s.dbError(c, "list api tokens", err)
		return
	}
	for _, t := range own {
		d.Tokens = append(d.Tokens, tokenView{APIToken: t, UserName: u.Name, ExpiresAt: t.CreatedAt.Add(APITokenLifetime)})
	}
	if u.Role == RoleNetwork {
		all, err := s.store.AllAPITokens(c.Request.Context())
		if err != nil {
			s.dbError(c, "list api tokens", err)
			return
		}
		for _, t := range all {
			if t.UserID != u.ID {
				d.Others = append(d.Others, tokenView{APIToken: t.APIToken, UserName: t.UserName, ExpiresAt: t.CreatedAt.Add(APITokenLifetime)})
			}
		}
	}
	v.Data = d
	s.renderPage(c, status, "tokens", v)
}

// apiTokenPrefix marks Gatehouse tokens, so a token pasted somewhere it
// should not be is recognisable (and findable by secret scanners).
const apiTokenPrefix = "gh_"

func (s *Server) createToken(c *httpx.Context) {
	u, _ := CurrentUser(c)
	name := strings.TrimSpace(c.PostForm("name"))
	v := s.View(c, "API tokens")
	fail := func(status int, msg string) {
		v.Error = msg
		s.renderTokens(c, status, v, tokensData{Name: name})
	}
	if !validUserName(name) {
		fail(http.StatusBadRequest, "A token name is 1 to 64 letters, digits or . _ - @.")
		return
	}
	raw, err := randomToken()
	if err != nil {
		fail(http.StatusInternalServerError, "Internal error.")
		return
	}
	tok := apiTokenPrefix + raw
	_, err = s.store.CreateAPIToken(c.Request.Context(), Actor(c), store.APIToken{Name: name, UserID: u.ID, TokenHash: hashToken(tok), CreatedAt: s.now()})
	if errors.Is(err, store.ErrExists) {
		fail(http.StatusConflict, "You already have a token called "+name+".")
		return
	}
	if err != nil {
		s.log.Error("web: create api token", logUser(c), "err", err)
		fail(http.StatusInternalServerError, "The token could not be saved.")
		return
	}
	s.log.Info("web: api token created", logUser(c), "token_name", name)
	v.Notice = "Token " + name + " created. Copy it now: it is not stored and will not be shown again."
	s.renderTokens(c, http.StatusOK, v, tokensData{NewToken: tok, NewName: name})
}

// deleteToken revokes a token by the id the list on the tokens page posts:
// one of the user's own, or for the network role anyone's (a token a leaver
// or a lost laptop holds must be stoppable without that user). Other roles
// only look at their own tokens, so someone else's id and an id that does
// not exist get the same 404, and ids cannot be probed.
func (s *Server) deleteToken(c *httpx.Context) {
	u, _ := CurrentUser(c)
	v := s.View(c, "API tokens")
	id, err := strconv.ParseInt(c.PostForm("id"), 10, 64)
	if err != nil || id < 1 {
		v.Error = "Choose a token to revoke from the list."
		s.renderTokens(c, http.StatusBadRequest, v, tokensData{})
		return
	}
	var name, owner string
	if u.Role == RoleNetwork {
		all, err := s.store.AllAPITokens(c.Request.Context())
		if err != nil {
			s.dbError(c, "list api tokens", err)
			return
		}
		if i := slices.IndexFunc(all, func(t store.OwnedAPIToken) bool { return t.ID == id }); i >= 0 {
			name, owner = all[i].Name, all[i].UserName
		}
	} else {
		own, err := s.store.APITokensByUser(c.Request.Context(), u.ID)
		if err != nil {
			s.dbError(c, "list api tokens", err)
			return
		}
		if i := slices.IndexFunc(own, func(t store.APIToken) bool { return t.ID == id }); i >= 0 {
			name, owner = own[i].Name, u.Name
		}
	}
	if owner == "" {
		err = store.ErrNotFound
	} else {
		// Tokens never change owner, so the check above still holds here.
		err = s.store.DeleteAPIToken(c.Request.Context(), Actor(c), id)
	}
	if errors.Is(err, store.ErrNotFound) {
		v.Error = "That is not a token you can revoke."
		s.renderTokens(c, http.StatusNotFound, v, tokensData{})
		return
	}
	if err != nil {
		s.dbError(c, "revoke api token", err)
		return
	}
	s.log.Info("web: api token revoked", logUser(c), "token_name", name, "owner", owner)
	c.Redirect(http.StatusSeeOther, "/tokens?done=token-revoked")
}

type accountData struct {
	MinLength int
}

func (s *Server) accountPage(c *httpx.Context) {
	v := s.View(c, "Account")
	v.Notice = notice(c)
	v.Data = accountData{MinLength: MinPasswordLength}
	s.renderPage(c, http.StatusOK, "account", v)
}

// changePassword changes the user's own password; it asks for the current
// one so an unattended logged-in browser cannot be used to take the account.
func (s *Server) changePassword(c *httpx.Context) {
	u, _ := CurrentUser(c)
	v := s.View(c, "Account")
	v.Data = accountData{MinLength: MinPasswordLength}
	fail := func(status int, msg string) {
		v.Error = msg
		s.renderPage(c, status, "account", v)
	}
	sess, ok := currentSession(c)
	if !ok { // requireSession guards this route; without a session there is nothing to keep
		s.log.Error("web: change password: no session on the request", logUser(c))
		fail(http.StatusInternalServerError, "Internal error.")
		return
	}
	current := c.PostForm("current")
	pw := c.PostForm("password")
	if msg := checkNewPassword(pw, c.PostForm("confirm")); msg != "" {
		fail(http.StatusBadRequest, msg)
		return
	}
	// Wrong current passwords count towards the same lock as logins, or an
	// unattended browser would allow unlimited guessing.
	now := s.now()
	ok, err := s.verifyPassword(c.Request.Context(), u.PasswordHash, current)
	if err != nil || !ok || now.Before(u.LockedUntil) {
		if !now.Before(u.LockedUntil) {
			if _, err := s.store.RecordLoginFailure(c.Request.Context(), u.Name, now, MaxLoginFailures, LockDuration); err != nil {
				s.log.Error("web: change password: record failure", logUser(c), "err", err)
			}
		}
		fail(http.StatusForbidden, "The current password is wrong, or there were too many wrong attempts; wait 15 minutes.")
		return
	}
	hash, err := s.hashPassword(c.Request.Context(), pw)
	if err != nil {
		s.log.Error("web: change password: hash", logUser(c), "err", err)
		fail(http.StatusInternalServerError, "The password could not be hashed.")
		return
	}
	if err := s.store.SetUserPassword(c.Request.Context(), Actor(c), u.Name, hash); err != nil {
		s.log.Error("web: change password", logUser(c), "err", err)
		fail(http.StatusInternalServerError, "The password could not be saved.")
		return
	}
	// Whoever knew the old password may be signed in somewhere else; the
	// change is only worth something if that session ends too. This browser
	// just proved it knows the password, so it stays signed in.
	ended, err := s.store.DeleteUserSessions(c.Request.Context(), u.ID, sess.TokenHash)
	if err != nil {
		s.log.Error("web: change password: end other sessions", logUser(c), "err", err)
		fail(http.StatusInternalServerError, "The password was changed, but your other sessions could not be ended. Change it again, or ask a network manager to check the daemon's log.")
		return
	}
	// The store ended the user's API tokens with the password.
	s.log.Info("web: password changed", logUser(c), "other_sessions_ended", ended)
	c.Redirect(http.StatusSeeOther, "/account?done=password-changed")
}

func (s *Server) verifyPassword(ctx context.Context, hash, pw string) (bool, error) {
	if pw == "" || len(pw) > password.MaxLength {
		return false, nil
	}
	select {
	case s.verifySem <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-s.verifySem }()
	return password.Verify(hash, pw)
}

// healthz answers load balancers and the watchdog: the process serves, the
// database answers a query, and its writes are being stored.
func (s *Server) healthz(c *httpx.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	if _, err := s.store.SchemaVersion(ctx); err != nil {
		s.log.Error("web: healthz: database", "err", err)
		c.JSON(http.StatusServiceUnavailable, httpx.H{"status": "error", "db": "error"})
		return
	}
	// Reads working is not enough: with the disk full the DHCP server
	// (rightly) sends no ACK, as a lease it cannot store must not be
	// given, so no new device gets an address. That is an outage, and
	// the health check must say so.
	if w := s.store.WriteHealth(); w.Failing {
		s.log.Error("web: healthz: the database is not storing writes", "since", w.LastFail, "failures", w.Failures, "err", w.LastErr)
		c.JSON(http.StatusServiceUnavailable, httpx.H{"status": "degraded", "db": "ok", "writes": "failing", "since": w.LastFail})
		return
	}
	c.JSON(http.StatusOK, httpx.H{"status": "ok", "db": "ok", "writes": "ok"})
}
