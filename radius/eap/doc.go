// Package eap is the EAP server (RFC 3748) inside Gatehouse's RADIUS server:
// WPA-Enterprise logins by EAP-TLS (RFC 5216, RFC 9190), EAP-TTLS (RFC 5281)
// with PAP or MSCHAPv2 inside, and PEAPv0 with EAP-MSCHAPv2 inside, over
// TLS 1.2 and TLS 1.3 (RFC 9427 for the tunnelled methods).
//
// It owns the EAP conversation carried in RADIUS (RFC 3579): the EAP packet
// framing, EAP-Message reassembly, the State that ties the rounds of one
// login together, EAP-TLS style fragmentation (the L, M and S flags), the
// session table (expiry, a cap on logins in progress, a per-client cap and a
// cache so that a retransmitted round gets the same answer), method
// negotiation (a NAK from any enabled method to any other), the TLS server
// (crypto/tls over an adapter that turns the EAP rounds into a net.Conn),
// session resumption by ticket (for PEAP and TTLS only when the ticket is
// bound to a person whose inner login succeeded, and who still has the
// password it proved: resume.go) and the keys
// each method and TLS version derive (MSK and EMSK).
//
// It does not own people, passwords, certificates or RADIUS: the caller
// gives the TLS server certificate, checks passwords and client
// certificates through callbacks in Options, decides what a successful
// login may do (VLAN, session time), and encodes the RADIUS packets,
// including the MPPE keys (MPPEKeys encrypts them). MSCHAPv2 itself
// (RFC 2759) is package radius/mschapv2's.
package eap
