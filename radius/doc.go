// Package radius is Gatehouse's RADIUS server for the school's access points
// and switches: who may join, on which VLAN, with which personal key, and who
// is on now.
//
// It owns the RADIUS conversation (RFC 2865/2866 over UDP, with the wire
// format from layeh.com/radius): which NAS may talk to it (address prefix and
// shared secret per client), BlastRADIUS-safe Message-Authenticator handling
// (CVE-2024-3596: required and verified on every Access-Request, first in
// every Access-Accept/Reject/Challenge we send), a proxied request's
// Proxy-State copied in order into its reply (RFC 2865 5.33), the
// duplicate cache, the bound on requests in flight, the delayed
// Access-Reject, Status-Server
// (RFC 5997), MAC authentication (MAB), PAP and EAP (WPA-Enterprise; the
// EAP methods themselves are package radius/eap's) decisions, VLAN assignment
// from the SSID's segment, personal Wi-Fi keys (sealed with the site key),
// accounting into sessions, and Disconnect/CoA (RFC 5176) towards the NAS.
// It also owns the credential cache of PAP and TTLS-PAP: a person whose
// password verified against their argon2id hash a few minutes ago is let in
// on a keyed hash of it (never the password itself) instead of another
// argon2id verification, so re-authentications while roaming stay cheap; a
// changed password or a revoked person is never let in from it.
// It owns finding a stranger's personal key from the 4-way handshake hostapd
// sends with wpa_psk_radius=3 (EAPOL-Key message 2/4 and ANonce in
// FreeRADIUS vendor attributes): the Keyring derives a key's PMK on every
// SSID when it sets the key (PBKDF2 then only, never per request nor at
// start), the store keeps them sealed beside the key, and the PMK table
// holds every key valid now (an overlap's old keys too) per SSID, reloaded
// when this process sets a key and when the store's device change log names
// a device holding a key (checked every 3 s).
// Moving a device to another segment is a CoA-Request with the new VLAN
// (MACReauthorizer, for package people), a Disconnect-Request where the
// NAS refuses it. Ending a device's access is a Disconnect-Request: for
// package people (MACDisconnector: a block, a withdrawn approval, a
// leaver) and for the captive portal's revoked visitor codes, which
// FollowVisitorCodes hears as the portal's events.SessionEnded.
//
// It does not own devices, people or their approval: it asks through the
// small Devices and Identities interfaces, which their owners implement
// (radius.StoreDevices over the store's devices table, people.RADIUSIdentities
// for people; StoreDevices.Ends, people.RADIUSDeviceEnds, gives a device its
// owner's departure as its end, so a MAB Session-Timeout ends with the
// owner's access). It holds the devices StoreDevices reads in memory
// (devcache.go), bounded, and learns of every change, from any process,
// through the store's device change log; a MAC authentication of a known
// device is then answered by the read loop without a worker, and so is each
// EAP round, unless it is about to wait (argon2id, a store read), when a
// spare read loop takes the socket meanwhile (inline.go). It holds people's
// login identities the same way (identities.go) when the Identities also
// offers the store's people change log (people.RADIUSIdentities does): a
// PAP or TTLS-PAP re-authentication reads no SQL, and a revocation, a
// leaver or a password change is seen by the next request after it
// commits in this process, within 5 ms from another. The identities carry
// the person's NT hash sealed (Identity.NTSealed); when the Identities can
// open it (NTHashOpener), PEAP's and TTLS-MSCHAPv2's NT hash lookup is
// answered from that cache and opened per login, never kept open. It does not touch
// the kernel: cutting a device off is the owner's job; this package asks the
// NAS to end the session. Only package store speaks SQL; this package keeps
// sessions and keys through the SessionStore and KeyStore interfaces.
package radius
