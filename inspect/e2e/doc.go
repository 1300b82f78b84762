// Package e2e holds the inspection engine's end-to-end tests: real bypass
// tools (OpenVPN, WireGuard, ssh -D, squid, a SOCKS server, dnsdist's DoH
// and DoT, a NAT namespace for tethering, dnsmasq as a rogue DHCP server)
// run from a pupil namespace of the testbed against servers in its fake
// internet, while an Engine captures live on the router's pupil interface.
//
// It has no code of its own beyond this comment: the tests need root, the
// testbed and the tools' Debian packages (listed in the test's toolPackages),
// and live apart from package inspect so that its unit tests need none of
// them.
package e2e
