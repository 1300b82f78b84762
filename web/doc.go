// Package web is the admin shell of Gatehouse: the HTTPS server (gin over
// TLS, with an optional self-signed certificate kept on disk), login with
// argon2id passwords, server-side sessions, CSRF protection, role checks on
// every route, the shared page layout and navigation, the audit log, user and
// API-token pages, the bearer-token JSON API under /api/v1, /healthz and
// /metrics.
//
// It owns who may see what: every route is declared once, with the roles
// allowed on it, in the server's route table. Feature packages (vouchers,
// devices, alerts, ...) add their own pages with AddPage and render them
// inside the shared layout with Render; they never touch sessions or cookies.
//
// It does not own data: every read and write goes through package store
// (which also writes the audit entries for the changes it makes), and
// passwords are hashed by package password. It does not decide network
// policy; it calls the feature packages' exported APIs.
//
// Pages work with JavaScript off: every action is a plain HTML form posted
// back to the server, answered with a redirect (post/redirect/get) or a
// re-rendered page.
package web
