// Package web is the admin shell of Gatehouse: the HTTPS server (net/http
// routing through web/httpx, over TLS, with an optional self-signed certificate kept on disk), login with
// argon2id passwords, server-side sessions, CSRF protection, role checks on
// every route, the shared page layout and navigation, the audit log, user and
// API-token pages, the bearer-token JSON API under /api/v1, /healthz and
// /metrics.
//
// It owns who may see what: every route is declared once, with the roles
// allowed on it, in the server's route table. Feature packages (vouchers,
// devices, alerts, ...) add their own pages with AddPage and render them
// inside the shared layout with Render, and the matching JSON API routes
// with AddAPI; they never touch sessions, cookies or tokens.
//
// It does not own data: every read and write goes through package store
// (which also writes the audit entries for the changes it makes), and
// passwords are hashed by package password. It does not decide network
// policy; it calls the feature packages' exported APIs.
//
// Access, by route kind (see the route table in routes.go):
//   - pages: a __Host-gh_session cookie (random 32 bytes; the store keeps only its
//     SHA-256) naming a live session, the page's role, and on POST the
//     session's CSRF token; anonymous visitors are redirected to /login,
//     other roles get 403. Sessions end 8 hours after login, after 30
//     minutes without a request, at logout, or when their user changes the
//     password in another session.
//   - /api/v1: "Authorization: Bearer <token>" only (cookies are ignored, so
//     no CSRF token is needed), and the route's role; 401 or 403.
//   - /metrics: the network role, by bearer token or session, or a client
//     at one of the configured scrape addresses (Options.MetricsFrom);
//     loopback is not trusted for being local.
//   - every route: the Host header must be an address the shell listens on,
//     "localhost" or a configured name (Options.AllowedHosts), or 421.
//
// API tokens work for 90 days (APITokenLifetime) and end when their user's
// password changes; the network role can revoke anyone's. Banners after a
// change come from fixed message keys (?done=...), never from URL text.
//   - /login, /healthz and the stylesheet: public; so are the GET pages a
//     feature adds with AddPublicPage (Wi-Fi onboarding), which show
//     nothing secret.
//
// Login refuses, with one generic message, a wrong password, an unknown name,
// an account locked after 10 bad passwords (for 15 minutes, even with the
// right password) and an address that tried 10 unknown names (for 15
// minutes, all names).
//
// Pages work with JavaScript off: every action is a plain HTML form posted
// back to the server, answered with a redirect (post/redirect/get) or a
// re-rendered page. Lists that grow page with Pager, whose links keep the
// list's filters in the URL; counts before nouns go through Plural. A page's
// own feed (Page.Passive: the overview's server-sent events) needs the
// session but does not count as activity, so it never keeps an idle
// session alive.
package web
