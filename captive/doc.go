// Package captive owns the visitor side of Gatehouse: visitor codes
// (vouchers: generation, normalisation, hashing, issue, revoke, extend), the
// captive portal's HTTP server (OS connectivity probes, the RFC 8908 Captive
// Portal API, the sign-in, status and log-out pages in English and Welsh),
// the brute-force limits on code guessing, guest sessions (re-admission of a
// returning device, rebuilding admissions after a restart with Restore,
// reporting each device's end when its code runs out with ReportExpiries),
// the daily purge of guests' records past the school's retention
// (PurgeDaily), and the
// reception pages it adds to the admin shell (issue, list a page at a time
// with a search, revoke one or several after a confirmation, extend, print
// slips; the AUP editor, the school's logo and colour for the portal and
// slips, and the acceptance export for network managers) with the code actions also as JSON under /api/v1/vouchers for
// scripts and a reception kiosk.
//
// It does not own the kernel: admitting and evicting a device goes through
// the Admitter interface, which *policy.Enforcer satisfies; the nftables
// rule that sends a non-admitted visitor's port 80 to this server belongs to
// package policy. It does not own SQL (package store), sessions, roles and
// CSRF of the admin shell (package web), DHCP option 114 (package dhcp, which
// serves the API URL this package exposes with APIURL) or leases: it hears
// of them as events.LeaseGranted on the hub (FollowLeases).
//
// Codes are 10 characters from a 30-symbol alphabet with no 0/O, 1/I/L or U
// (about 49 bits from crypto/rand), printed like ABCDE-FGHJK, typed in any case
// with or without spaces and dashes. The database keeps only an
// HMAC-SHA256 of a code under a per-site key, so a code is shown in clear
// once: in the response that issued it.
//
// At a rush, concurrent sign-ins share one database transaction (each
// acceptance and code attempt is durable before its visitor's answer, but
// one fsync serves many: commit.go), and their admissions share nftables
// transactions (package policy).
//
// The portal identifies a visitor by the TCP peer address and the MAC the
// Neighbours lookup returns for it; it uses no cookies and no JavaScript,
// because the phones' captive-portal sheets keep neither. Pages carry their
// CSS inline and stay well under 50 KB.
//
// HTTPS: Options.TLSListen with a certificate serves the same pages and the
// API over TLS. Phones only trust a captive portal API or page over HTTPS
// with a publicly trusted certificate for Options.PortalURL's host name (a
// self-signed one makes the sheet show a certificate error), so a school
// that wants an https:// option 114 URL needs a real host name and a
// certificate from a public CA; otherwise use plain http:// on the visitor
// segment's gateway address.
//
// A code's rate limits and data quota go to the kernel with each admission
// (policy.AdmitWith): the rate rounds down to one of policy's tiers, and the
// quota counts both directions in an nftables quota object. The kernel
// holds the count, so after a reboot a device's budget starts again.
package captive
