// Package pki is the school's certificate authority for WPA-Enterprise: the
// CA (its certificate and key), the RADIUS server's certificate that
// supplicants check before they send a password, the client certificates
// EAP-TLS logs in with, their revocation (a serial deny-list in the store),
// and the onboarding profiles that teach devices to trust all this (an Apple
// .mobileconfig, a Windows WLAN profile, the settings to type on Android and
// ChromeOS).
//
// Keys live in 0600 files in a 0700 directory beside the database (like the
// site key), never in the database and never in a log. The CA key is not
// sealed with the site key: both would sit in the same directory with the
// same protection, so sealing would add no defence against whoever can read
// it, and it would stop the school's own tools (openssl, a FreeRADIUS for
// comparison) from using the files.
//
// Keys are ECDSA P-256 with SHA-256 signatures. Every supplicant the school
// has (Windows 10/11, macOS and iOS, Android 11+, ChromeOS) accepts an ECDSA
// P-256 CA and server certificate for PEAP, TTLS and EAP-TLS, and signing
// with P-256 costs a small fraction of an RSA-3072 signature, which the
// server makes in every full TLS handshake. A school that needs RSA (an old
// printer's supplicant) can give its own files.
//
// The server certificate is either made here, signed by the school CA, with
// the configured server name as its DNS SAN and the serverAuth EKU (renewed
// at start when it is due, the name changed or the CA changed, and by Run
// when it comes due while the router runs; TLSConfig serves the current
// one at every handshake), or given by
// the school as files, which are checked at load (expired, not yet valid,
// name mismatch, key mismatch, not signed by the CA file) with an error that
// says which. Client certificates are always issued by Gatehouse's own CA,
// even when the server certificate is the school's: that CA's key is the
// only one Gatehouse holds.
//
// It does not speak EAP or TLS (package radius/eap takes the server
// certificate, the CA pool and VerifyClient through its Options), does not
// decide who may join (people and radius do), and does not speak SQL
// (package store keeps the certificate records).
package pki
