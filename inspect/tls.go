package inspect

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/gatehouse-net/gatehouse/inspect/tlshello"
)

// judgeHello decides what a TLS or QUIC ClientHello says about its flow.
func (e *Engine) judgeHello(f *flow, h *tlshello.ClientHello, isQUIC bool) {
	sni := strings.ToLower(string(h.SNI))
	f.tlsVer = h.Version
	transport := "tls"
	if isQUIC {
		transport = "quic"
	}
	ev := func(what string) string {
		s := transport + " " + what
		if sni != "" {
			s += " sni=" + sni
		}
		if len(h.ALPN) > 0 {
			s += " alpn=" + string(h.ALPN[0])
		}
		return s + " ja4=" + h.JA4(isQUIC)
	}
	switch {
	case h.HasESNI:
		e.raise(f, ClassECH, "esni", ev("ClientHello with encrypted_server_name extension"))
		return
	case h.HasECH && h.ECHOuter && sni != "":
		if p, ok := lookupSuffix(echPublicNames, sni); ok {
			e.raise(f, ClassECH, "ech:"+p, ev("ClientHello with ECH, outer SNI is the client-facing server"))
			return
		}
	}
	for _, a := range h.ALPN {
		if string(a) == "doq" || strings.HasPrefix(string(a), "doq-") {
			e.raise(f, ClassDoQ, "doq", ev("ALPN offers DNS-over-QUIC"))
			return
		}
		if string(a) == "dot" {
			e.raise(f, ClassDoT, "dot", ev("ALPN offers DNS-over-TLS"))
			return
		}
	}
	if f.sport == 853 {
		if isQUIC {
			e.raise(f, ClassDoQ, "doq", ev("QUIC handshake to the DNS-over-QUIC port"))
		} else {
			e.raise(f, ClassDoT, "dot", ev("TLS handshake to the DNS-over-TLS port"))
		}
		return
	}
	if sni != "" {
		if p, ok := lookupSuffix(dohNames, sni); ok {
			e.raise(f, ClassDoH, "doh:"+p, ev("handshake to a DNS-over-HTTPS resolver name"))
			return
		}
		if p, ok := lookupSuffix(vpnNames, sni); ok {
			e.raise(f, ClassVPN, p, ev("handshake to a VPN service name"))
			return
		}
		if p, ok := lookupSuffix(remoteAccessNames, sni); ok {
			e.raise(f, ClassRemoteAccess, p, ev("handshake to a remote-access service name"))
			return
		}
		if p, ok := lookupSuffix(proxyNames, sni); ok {
			e.raise(f, ClassProxy, p, ev("handshake to a proxy service name"))
			return
		}
	} else if p, ok := resolverAddrs[f.server.Unmap()]; ok && (f.sport == 443 || isQUIC) {
		e.raise(f, ClassDoH, "doh:"+p, ev("handshake without SNI to a public resolver address"))
		return
	}
	if e.opt.TorRelay != nil && e.opt.TorRelay(f.server) {
		e.raise(f, ClassTor, "tor", ev("handshake to a listed Tor relay"))
		return
	}
	f.torName = torLikeSNI(sni)
	f.certCheck = !isQUIC
	f.tlsSNI = true
}

// torLikeSNI matches the SNI Tor clients send: "www." + 8 to 20 random
// base32 characters + ".com" or ".net".
func torLikeSNI(sni string) bool {
	rest, ok := strings.CutPrefix(sni, "www.")
	if !ok {
		return false
	}
	label, tld, ok := strings.Cut(rest, ".")
	if !ok || (tld != "com" && tld != "net") {
		return false
	}
	return randomBase32Label(label)
}

// randomBase32Label reports a label of 8..26 lowercase base32 characters
// with the look of random output: few vowels in a row break it up and the
// characters are varied.
func randomBase32Label(l string) bool {
	if len(l) < 8 || len(l) > 26 {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return !pronounceable(l)
}

// pronounceable is a crude test for words: random base32 strings of this
// length almost always contain a run of four or more consonants or digits.
func pronounceable(s string) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		if strings.IndexByte("aeiouy", s[i]) >= 0 {
			run = 0
			continue
		}
		run++
		if run >= 4 {
			return false
		}
	}
	return true
}

// checkServerCert reads the server certificate of a TLS 1.2 (or older)
// flow that the ClientHello did not settle. Tor's link certificates have a
// telltale shape: issuer and subject are bare CNs of random
// www.<x>.net/.com names and nothing else. VPN gateways reached by address
// give themselves away by the names in their certificates.
func (e *Engine) checkServerCert(f *flow, ss []byte) {
	var err error
	e.scratch, err = e.server.ParseServerFlight(ss, e.scratch)
	if errors.Is(err, tlshello.ErrShort) && int(f.st[dirS2C].n) < streamBufSize && f.st[dirS2C].buf >= 0 {
		return
	}
	f.certCheck = false
	if err != nil || e.server.LeafCert == nil {
		return
	}
	cert, err := x509.ParseCertificate(e.server.LeafCert)
	if err != nil {
		e.stats.Malformed++
		return
	}
	if f.torName && torCertName(cert.Issuer.CommonName) && torCertName(cert.Subject.CommonName) &&
		len(cert.Issuer.Organization) == 0 && len(cert.Subject.Organization) == 0 &&
		len(cert.DNSNames) == 0 {
		e.raise(f, ClassTor, "tor", fmt.Sprintf("tls certificate issuer=%q subject=%q, SNI of the same random shape", cert.Issuer.CommonName, cert.Subject.CommonName))
		return
	}
	names := append([]string{cert.Subject.CommonName}, cert.DNSNames...)
	for _, n := range names {
		n = strings.ToLower(strings.TrimPrefix(n, "*."))
		if p, ok := lookupSuffix(vpnNames, n); ok {
			e.raise(f, ClassVPN, p, fmt.Sprintf("tls server certificate for %q, a VPN service name", n))
			return
		}
		if p, ok := lookupSuffix(remoteAccessNames, n); ok {
			e.raise(f, ClassRemoteAccess, p, fmt.Sprintf("tls server certificate for %q, a remote-access service name", n))
			return
		}
	}
	for _, m := range certMarkers {
		if strings.Contains(cert.Subject.String(), m.subject) || strings.Contains(cert.Issuer.String(), m.subject) {
			e.raise(f, m.class, m.detail, fmt.Sprintf("tls server certificate subject %q issuer %q", cert.Subject.String(), cert.Issuer.String()))
			return
		}
	}
}

// certMarkers are subject/issuer fragments that identify a product's
// server certificates.
var certMarkers = []struct{ subject, class, detail string }{
	{"ASA Temporary Self Signed Certificate", ClassVPN, "cisco-anyconnect"},
	{"AnyNet Relay", ClassRemoteAccess, "anydesk"},
	{"O=Windscribe", ClassVPN, "windscribe"},
	{"O=Private Internet Access", ClassVPN, "pia"},
	{"O=NordVPN", ClassVPN, "nordvpn"},
	{"O=ExpressVPN", ClassVPN, "expressvpn"},
	{"O=Surfshark", ClassVPN, "surfshark"},
	{"O=TunnelBear", ClassVPN, "tunnelbear"},
	{"O=Proton", ClassVPN, "protonvpn"},
	{"O=Mullvad", ClassVPN, "mullvad"},
	{"O=AnchorFree", ClassVPN, "hotspotshield"},
	{"O=Psiphon", ClassVPN, "psiphon"},
	{"O=SoftEther", ClassVPN, "softether"},
	{"OU=OpenVPN", ClassVPN, "openvpn"},
	{"CN=OpenVPN", ClassVPN, "openvpn"},
	{"O=TeamViewer", ClassRemoteAccess, "teamviewer"},
	{"O=philandro Software", ClassRemoteAccess, "anydesk"},
}

func torCertName(cn string) bool {
	rest, ok := strings.CutPrefix(cn, "www.")
	if !ok {
		return false
	}
	label, tld, ok := strings.Cut(rest, ".")
	return ok && (tld == "com" || tld == "net") && randomBase32Label(label)
}
