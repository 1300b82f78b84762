// Package people owns the school's people and what they may do on the
// network: staff and pupils as the MIS knows them, groups (year groups,
// registration groups, staff/pupils, and groups the network manager makes),
// the term calendar, imports from the MIS (CSV exports, OneRoster 1.1 CSV
// bundles, LDAP directories; Source reads each from where it lives) with a
// preview before anything is applied,
// devices and their approval, and leavers: the scheduler that ends a
// leaver's access at the end of their leaving day and the revocation that
// does it in the database and in the kernel together.
//
// It is the one place that says what "approve", "block" and "revoke" mean:
// each is a store change (with its audit row) followed by the enforcer's
// kernel change, and on start Restore puts the database's decisions back
// into the enforcer. It implements policy.Directory, so rules about a
// person or a group ("Year 9") resolve to that group's devices, and the
// rules about term time read its calendar.
//
// It owns people's Wi-Fi passwords: an argon2id hash for PAP and, only
// while MSCHAPv2 is enabled (Options.NTHashes), the NT hash MSCHAPv2 needs,
// sealed with AES-256-GCM under an HKDF subkey of the site key and bound
// to the person (ntkey.go). Both are written together and removed together
// (revocation, departure, purge); NTHash is the lookup PEAP and
// TTLS-MSCHAPv2 use, and RADIUSIdentities is who may log in, as RADIUS
// asks for it, with the store's people change log beside it so RADIUS may
// hold identities in memory and still see every change at once.
// RADIUSDeviceEnds gives a device linked to a person its owner's departure
// as its end, so a MAB login's Session-Timeout ends with the owner's
// access. ChangeOwnWiFiPassword is the self-service change,
// with its own limits on wrong attempts per person and per address.
//
// It does not own SQL (package store), the kernel's tables (package
// policy, reached through the Kernel interface), RADIUS sessions and
// personal keys (package radius, reached through Disconnector,
// Reauthorizer (a device moved to another segment) and
// Credentials), DHCP leases (reached through LeaseReleaser), or email
// (reached through Mailer). Each of those may be nil until it is wired.
package people
