package inspect

import (
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
			e.raiseAs(f, Likely, ClassECH, "ech:"+p, ev("ClientHello with ECH, outer SNI is the client-facing server"))
			return
		}
	}
	for _, a := range h.ALPN {
		if string(a) == "doq" || strings.HasPrefix(string(a), "doq-") {
			if isQUIC && f.pkts[dirS2C] == 0 {
				// The Initial is the client's alone: certain once the
				// server answers, an attempt if it never does.
				e.expectAnswer(f, Certain, 1, ClassDoQ, "doq", ev("ALPN offers DNS-over-QUIC"))
				return
			}
			e.raise(f, ClassDoQ, "doq", ev("ALPN offers DNS-over-QUIC"))
			return
		}
		if string(a) == "dot" {
			e.raise(f, ClassDoT, "dot", ev("ALPN offers DNS-over-TLS"))
			return
		}
	}
	if f.sport == 853 {
		if isQUIC && f.pkts[dirS2C] == 0 {
			e.expectAnswer(f, Certain, 1, ClassDoQ, "doq", ev("QUIC handshake to the DNS-over-QUIC port"))
		} else if isQUIC {
			e.raise(f, ClassDoQ, "doq", ev("QUIC handshake to the DNS-over-QUIC port"))
		} else {
			e.raise(f, ClassDoT, "dot", ev("TLS handshake to the DNS-over-TLS port"))
		}
		return
	}
	if sni != "" {
		f.sniSeen = true
		if p, ok := lookupSuffix(dohNames, sni); ok {
			e.raiseAs(f, Likely, ClassDoH, "doh:"+p, ev("handshake to a DNS-over-HTTPS resolver name"))
			return
		}
		if p, ok := lookupSuffix(vpnNames, sni); ok {
			e.raiseAs(f, Likely, ClassVPN, p, ev("handshake to a VPN service name"))
			return
		}
		if p, ok := lookupSuffix(remoteAccessNames, sni); ok {
			e.raiseAs(f, Likely, ClassRemoteAccess, p, ev("handshake to a remote-access service name"))
			return
		}
		if p, ok := lookupSuffix(proxyNames, sni); ok {
			e.raiseAs(f, Likely, ClassProxy, p, ev("handshake to a proxy service name"))
			return
		}
	} else if p, ok := resolverAddrs[f.server.Unmap()]; ok && (f.sport == 443 || isQUIC) {
		e.raiseAs(f, Likely, ClassDoH, "doh:"+p, ev("handshake without SNI to a public resolver address"))
		return
	} else if name, ok := e.res.nameOf(f.client, f.server, f.last); ok && e.judgeResolvedName(f, name, ev) {
		return
	}
	if e.opt.TorRelay != nil && e.opt.TorRelay(f.server) {
		e.raiseAs(f, Likely, ClassTor, "tor", ev("handshake to a listed Tor relay"))
		return
	}
	if e.judgeTorSNI(f, h, sni, isQUIC, ev) {
		return
	}
	if e.judgeSignatures(f, h, isQUIC, sni, ev) {
		return
	}
	if e.judgeLearned(f, sni, ev) {
		return
	}
	f.torName = torLikeSNI(sni)
	f.certCheck = !isQUIC
	f.tlsSNI = true
	if !isQUIC {
		e.armDoH(f, h, sni)
	}
}

// judgeResolvedName applies the name lists to the name a client looked up
// to find the server of a handshake that carries no SNI: apps that hide
// the name from the wire still have to ask for it.
func (e *Engine) judgeResolvedName(f *flow, name string, ev func(string) string) bool {
	what := ev("handshake without SNI to an address the client resolved from " + name)
	if p, ok := lookupSuffix(dohNames, name); ok {
		e.raiseAs(f, Likely, ClassDoH, "doh:"+p, what+", a DNS-over-HTTPS resolver name")
		return true
	}
	if p, ok := lookupSuffix(vpnNames, name); ok {
		e.raiseAs(f, Likely, ClassVPN, p, what+", a VPN service name")
		return true
	}
	if p, ok := lookupSuffix(remoteAccessNames, name); ok {
		e.raiseAs(f, Likely, ClassRemoteAccess, p, what+", a remote-access service name")
		return true
	}
	if p, ok := lookupSuffix(proxyNames, name); ok {
		e.raiseAs(f, Likely, ClassProxy, p, what+", a proxy service name")
		return true
	}
	return false
}

// judgeTorSNI recognises a Tor client's TLS handshake without the relay's
// certificate, which TLS 1.3 encrypts. Tor sends no ALPN and a made-up SNI,
// "www." + 4 to 25 random base32 characters + ".com", that it never looks
// up. A long random label with TLS 1.3 is enough on its own; a shorter one
// (which may be a word) needs the DNS evidence that a client whose lookups
// the school sees never asked for the name.
func (e *Engine) judgeTorSNI(f *flow, h *tlshello.ClientHello, sni string, isQUIC bool, ev func(string) string) bool {
	if isQUIC || len(h.ALPN) > 0 {
		return false
	}
	label, ok := torSNILabel(sni)
	if !ok {
		return false
	}
	if _, ok := e.res.nameOf(f.client, f.server, f.last); ok || e.res.looked(f.client, sni, f.last) {
		return false // a real site the client looked up
	}
	strong := randomBase32Label(label)
	switch {
	case strong && h.Version == 0x0304:
		e.raiseAs(f, Likely, ClassTor, "tor", ev("TLS 1.3 ClientHello without ALPN, SNI of the random www.<base32>.com shape Tor makes up, and no lookup of it seen"))
	case (strong || weakRandomLabel(label)) && e.res.covered(f.client, f.last):
		e.raiseAs(f, Likely, ClassTor, "tor", ev("ClientHello without ALPN, SNI of the random www.<base32>.com shape Tor makes up, which the client never looked up through the school's resolver"))
	default:
		return false
	}
	return true
}

// torSNILabel returns the middle label of a "www.<label>.com" (or .net)
// name whose label is 4..25 characters of Tor's base32 alphabet.
func torSNILabel(sni string) (string, bool) {
	rest, ok := strings.CutPrefix(sni, "www.")
	if !ok {
		return "", false
	}
	label, tld, ok := strings.Cut(rest, ".")
	if !ok || (tld != "com" && tld != "net") || len(label) < 4 || len(label) > 25 {
		return "", false
	}
	for i := 0; i < len(label); i++ {
		c := label[i]
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return "", false
		}
	}
	return label, true
}

// weakRandomLabel accepts short labels that do not read as a word: a
// base32 digit among the letters, or a run of four consonants.
func weakRandomLabel(l string) bool {
	digits := 0
	for i := 0; i < len(l); i++ {
		if l[i] >= '2' && l[i] <= '7' {
			digits++
		}
	}
	if digits == len(l) {
		return false
	}
	return digits > 0 || !pronounceable(l)
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
	cert := &e.leaf
	if !cert.parse(e.server.LeafCert) {
		e.stats.Malformed++
		return
	}
	issuerCN, subjectCN := lastAttr(cert.issuer, "CN"), lastAttr(cert.subject, "CN")
	if f.torName && torCertName(issuerCN) && torCertName(subjectCN) &&
		countAttr(cert.issuer, "O") == 0 && countAttr(cert.subject, "O") == 0 &&
		len(cert.dnsNames) == 0 {
		e.raiseAs(f, Likely, ClassTor, "tor", fmt.Sprintf("tls certificate issuer=%q subject=%q, SNI of the same random shape", issuerCN, subjectCN))
		return
	}
	for i := -1; i < len(cert.dnsNames); i++ {
		n := subjectCN
		if i >= 0 {
			n = string(cert.dnsNames[i])
		}
		n = strings.ToLower(strings.TrimPrefix(n, "*."))
		if p, ok := lookupSuffix(vpnNames, n); ok {
			e.raiseAs(f, Likely, ClassVPN, p, fmt.Sprintf("tls server certificate for %q, a VPN service name", n))
			return
		}
		if p, ok := lookupSuffix(remoteAccessNames, n); ok {
			e.raiseAs(f, Likely, ClassRemoteAccess, p, fmt.Sprintf("tls server certificate for %q, a remote-access service name", n))
			return
		}
	}
	for _, m := range certMarkers {
		if nameHas(cert.subject, m.subject) || nameHas(cert.issuer, m.subject) {
			e.raiseAs(f, Likely, m.class, m.detail, fmt.Sprintf("tls server certificate subject %q issuer %q", nameString(cert.subject), nameString(cert.issuer)))
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
