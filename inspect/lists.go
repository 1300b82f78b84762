package inspect

import (
	"net/netip"
	"strings"
)

// The name tables map a DNS suffix (matched at a label boundary) to the
// detail reported. They name services whose only purpose is the bypass, so
// reaching them is evidence; general sites of the same companies (mail,
// shops) are deliberately absent.

// dohNames are DNS-over-HTTPS (and DoT/DoQ) resolver endpoints.
var dohNames = map[string]string{
	"cloudflare-dns.com":               "cloudflare", // mozilla., chrome., security., family. too
	"one.one.one.one":                  "cloudflare",
	"1dot1dot1dot1.cloudflare-dns.com": "cloudflare",
	"dns.google":                       "google",
	"dns.google.com":                   "google",
	"dns64.dns.google":                 "google",
	"dns.quad9.net":                    "quad9",
	"dns9.quad9.net":                   "quad9",
	"dns10.quad9.net":                  "quad9",
	"dns11.quad9.net":                  "quad9",
	"doh.opendns.com":                  "opendns",
	"doh.familyshield.opendns.com":     "opendns",
	"dns.nextdns.io":                   "nextdns",
	"dns.adguard.com":                  "adguard",
	"dns.adguard-dns.com":              "adguard",
	"dns-family.adguard.com":           "adguard",
	"unfiltered.adguard-dns.com":       "adguard",
	"family.adguard-dns.com":           "adguard",
	"d.adguard-dns.com":                "adguard",
	"doh.cleanbrowsing.org":            "cleanbrowsing",
	"dns.controld.com":                 "controld",
	"freedns.controld.com":             "controld",
	"doh.mullvad.net":                  "mullvad",
	"dns.mullvad.net":                  "mullvad",
	"adblock.dns.mullvad.net":          "mullvad",
	"base.dns.mullvad.net":             "mullvad",
	"doh.dns.sb":                       "dns.sb",
	"dns0.eu":                          "dns0",
	"doh.libredns.gr":                  "libredns",
	"doh.applied-privacy.net":          "applied-privacy",
	"dns.digitale-gesellschaft.ch":     "digitale-gesellschaft",
	"dns.switch.ch":                    "switch",
	"doh.ffmuc.net":                    "ffmuc",
	"dns.njal.la":                      "njalla",
	"ordns.he.net":                     "hurricane-electric",
	"doh.xfinity.com":                  "xfinity",
	"doh.pub":                          "dnspod",
	"dns.alidns.com":                   "alidns",
	"doh.360.cn":                       "360",
	"dns.twnic.tw":                     "twnic",
	"odvr.nic.cz":                      "cz.nic",
	"doh.powerdns.org":                 "powerdns",
	"doh.crypto.sx":                    "crypto.sx",
	"dnsforge.de":                      "dnsforge",
	"doh.tiar.app":                     "tiarap",
	"doh.tiarap.org":                   "tiarap",
	"jp.tiar.app":                      "tiarap",
	"doh.centraleu.pi-dns.com":         "pi-dns",
	"dns.aa.net.uk":                    "aaisp",
	"doh.dnslify.com":                  "dnslify",
	"dns.rubyfish.cn":                  "rubyfish",
	"doh.securedns.eu":                 "securedns",
	"dns.decloudus.com":                "decloudus",
	"resolver-eu.lelux.fi":             "lelux",
	"doh.nl.ahadns.net":                "ahadns",
	"doh.la.ahadns.net":                "ahadns",
	"dns.brahma.world":                 "brahma",
	"doh.seby.io":                      "seby",
	"dnscrypt.ca":                      "dnscrypt.ca",
	"doh.bortzmeyer.fr":                "bortzmeyer",
	"dns.flatuslifir.is":               "flatuslifir",
	"dns.oszx.co":                      "oszx",
	"doh.appliedprivacy.net":           "applied-privacy",
	"dns.therifleman.name":             "rifleman",
	"doh.ffmuc.de":                     "ffmuc",
	"dns1.dnscrypt.ca":                 "dnscrypt.ca",
	"dns2.dnscrypt.ca":                 "dnscrypt.ca",
	// Sites of DNSCrypt/DoH client software: reached when it is set up
	// and when it fetches its resolver lists.
	"simplednscrypt.org": "dnscrypt",
	"dnscrypt.info":      "dnscrypt",
}

// resolverAddrs are anycast addresses of public resolvers. A TLS or QUIC
// handshake to one of them on 443 is DoH even without an SNI (the
// "no SNI" DoH of some apps), because nothing else is served there.
var resolverAddrs = map[netip.Addr]string{
	netip.MustParseAddr("1.1.1.1"):              "cloudflare",
	netip.MustParseAddr("1.0.0.1"):              "cloudflare",
	netip.MustParseAddr("1.1.1.2"):              "cloudflare",
	netip.MustParseAddr("1.0.0.2"):              "cloudflare",
	netip.MustParseAddr("1.1.1.3"):              "cloudflare",
	netip.MustParseAddr("1.0.0.3"):              "cloudflare",
	netip.MustParseAddr("2606:4700:4700::1111"): "cloudflare",
	netip.MustParseAddr("2606:4700:4700::1001"): "cloudflare",
	netip.MustParseAddr("8.8.8.8"):              "google",
	netip.MustParseAddr("8.8.4.4"):              "google",
	netip.MustParseAddr("2001:4860:4860::8888"): "google",
	netip.MustParseAddr("2001:4860:4860::8844"): "google",
	netip.MustParseAddr("9.9.9.9"):              "quad9",
	netip.MustParseAddr("149.112.112.112"):      "quad9",
	netip.MustParseAddr("9.9.9.10"):             "quad9",
	netip.MustParseAddr("9.9.9.11"):             "quad9",
	netip.MustParseAddr("2620:fe::fe"):          "quad9",
	netip.MustParseAddr("2620:fe::9"):           "quad9",
	netip.MustParseAddr("208.67.222.222"):       "opendns",
	netip.MustParseAddr("208.67.220.220"):       "opendns",
	netip.MustParseAddr("94.140.14.14"):         "adguard",
	netip.MustParseAddr("94.140.15.15"):         "adguard",
	netip.MustParseAddr("94.140.14.15"):         "adguard",
	netip.MustParseAddr("94.140.15.16"):         "adguard",
	netip.MustParseAddr("185.228.168.168"):      "cleanbrowsing",
	netip.MustParseAddr("185.228.169.168"):      "cleanbrowsing",
	netip.MustParseAddr("194.242.2.2"):          "mullvad",
	netip.MustParseAddr("76.76.2.0"):            "controld",
	netip.MustParseAddr("76.76.10.0"):           "controld",
	netip.MustParseAddr("45.90.28.0"):           "nextdns",
	netip.MustParseAddr("45.90.30.0"):           "nextdns",
	netip.MustParseAddr("185.222.222.222"):      "dns.sb",
	netip.MustParseAddr("45.11.45.11"):          "dns.sb",
	netip.MustParseAddr("193.110.81.0"):         "dns0",
	netip.MustParseAddr("185.253.5.0"):          "dns0",
}

// vpnNames are the API, login and tunnel endpoints of VPN services and
// apps (their own websites too: visiting them is how a pupil installs one).
var vpnNames = map[string]string{
	"mullvad.net":                     "mullvad",
	"nordvpn.com":                     "nordvpn",
	"nordvpn.net":                     "nordvpn",
	"nordcdn.com":                     "nordvpn",
	"expressvpn.com":                  "expressvpn",
	"expressapisv2.net":               "expressvpn",
	"surfshark.com":                   "surfshark",
	"protonvpn.com":                   "protonvpn",
	"protonvpn.ch":                    "protonvpn",
	"protonvpn.net":                   "protonvpn",
	"vpn-api.proton.me":               "protonvpn",
	"windscribe.com":                  "windscribe",
	"windscribe.net":                  "windscribe",
	"totallyacdn.com":                 "windscribe",
	"tunnelbear.com":                  "tunnelbear",
	"lazerpenguin.com":                "tunnelbear",
	"polargrizzly.com":                "tunnelbear",
	"hotspotshield.com":               "hotspotshield",
	"hsselite.com":                    "hotspotshield",
	"privateinternetaccess.com":       "pia",
	"piaproxy.net":                    "pia",
	"cyberghostvpn.com":               "cyberghost",
	"ipvanish.com":                    "ipvanish",
	"hide.me":                         "hide.me",
	"hidemyass.com":                   "hidemyass",
	"vyprvpn.com":                     "vyprvpn",
	"purevpn.com":                     "purevpn",
	"atlasvpn.com":                    "atlasvpn",
	"privadovpn.com":                  "privadovpn",
	"zenmate.com":                     "zenmate",
	"betternet.co":                    "betternet",
	"hola.org":                        "hola",
	"holavpn.net":                     "hola",
	"touchvpn.net":                    "touchvpn",
	"urban-vpn.com":                   "urbanvpn",
	"vpnbook.com":                     "vpnbook",
	"psiphon.ca":                      "psiphon",
	"psiphon3.com":                    "psiphon",
	"ultrasurf.us":                    "ultrasurf",
	"cloudflareclient.com":            "cloudflare-warp",
	"cloudflarewarp.com":              "cloudflare-warp",
	"warp.plus":                       "cloudflare-warp",
	"tailscale.com":                   "tailscale",
	"tailscale.io":                    "tailscale",
	"zerotier.com":                    "zerotier",
	"softether.net":                   "softether",
	"softether.org":                   "softether",
	"vpngate.net":                     "vpngate",
	"tinc-vpn.org":                    "tinc",
	"openvpn.net":                     "openvpn",
	"ivpn.net":                        "ivpn",
	"airvpn.org":                      "airvpn",
	"torguard.net":                    "torguard",
	"strongvpn.com":                   "strongvpn",
	"x-vpn.com":                       "x-vpn",
	"vpnunlimitedapp.com":             "vpn-unlimited",
	"kaspersky-secure-connection.com": "kaspersky-vpn",
	"speedify.com":                    "speedify",
	"connectify.me":                   "speedify",
	"getlantern.org":                  "lantern",
	"lantern.io":                      "lantern",
	"vpn.ac":                          "vpn.ac",
	"astrill.com":                     "astrill",
	"vpnsecure.me":                    "vpnsecure",
	"thunderbird-vpn.com":             "thundervpn",
	"hoxx.com":                        "hoxx",
	"browsec.com":                     "browsec",
	"setupvpn.com":                    "setupvpn",
	"sec-tunnel.com":                  "opera-vpn",
	"mask.icloud.com":                 "icloud-private-relay",
	"mask-h2.icloud.com":              "icloud-private-relay",
	"mask-api.icloud.com":             "icloud-private-relay",
}

// remoteAccessNames are the rendezvous and relay services of remote-desktop
// tools.
var remoteAccessNames = map[string]string{
	"teamviewer.com":                  "teamviewer",
	"anydesk.com":                     "anydesk",
	"net.anydesk.com":                 "anydesk",
	"rustdesk.com":                    "rustdesk",
	"splashtop.com":                   "splashtop",
	"remotedesktop.google.com":        "chrome-remote-desktop",
	"remotedesktop-pa.googleapis.com": "chrome-remote-desktop",
	"logmein.com":                     "logmein",
	"logme.in":                        "logmein",
	"parsecgaming.com":                "parsec",
	"parsec.app":                      "parsec",
	"ammyy.com":                       "ammyy",
	"supremocontrol.com":              "supremo",
	"remotepc.com":                    "remotepc",
	"getscreen.me":                    "getscreen",
	"realvnc.com":                     "vnc",
	"connect.realvnc.com":             "vnc",
	"radmin.com":                      "radmin",
	"nomachine.com":                   "nomachine",
}

// proxyNames are web proxies and anonymisers reached by name.
var proxyNames = map[string]string{
	"hide.me.proxy":  "hide.me",
	"hidester.com":   "hidester",
	"proxysite.com":  "proxysite",
	"croxyproxy.com": "croxyproxy",
	"kproxy.com":     "kproxy",
	"proxyium.com":   "proxyium",
	"4everproxy.com": "4everproxy",
	"torproject.org": "torproject",
}

// echPublicNames are client-facing servers of ECH deployments: an ECH
// extension with one of these as the outer SNI hides the real name.
var echPublicNames = map[string]string{
	"cloudflare-ech.com": "cloudflare",
	"ech.cloudflare.com": "cloudflare",
	"public.defo.ie":     "defo",
	"cover.defo.ie":      "defo",
	"encryptedsni.com":   "cloudflare",
}

// lookupSuffix finds name or its closest parent domain in table.
func lookupSuffix(table map[string]string, name string) (string, bool) {
	for name != "" {
		if v, ok := table[name]; ok {
			return v, true
		}
		i := strings.IndexByte(name, '.')
		if i < 0 {
			return "", false
		}
		name = name[i+1:]
	}
	return "", false
}
