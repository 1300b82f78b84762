// Package inspect watches the segments' traffic and raises findings for
// attempts to get round the school's filtering: VPNs, Tor, proxies, encrypted
// DNS, real ECH, SSH and remote-access tools, tunnels, tethering, unapproved
// devices and rogue DHCP servers.
//
// It owns packet decoding (gopacket's DecodingLayerParser with preallocated
// layers), a bounded flow table with idle expiry, the classifiers, pcap and
// pcapng replay and AF_PACKET capture, and Resolutions: which names each
// client looked up and which addresses it was given, fed by the DNS guard
// (through NoteAnswer, wired by the daemon) and by the DNS answers on the
// wire. The DNS guard also hands over every UDP query it read, parsed
// (Site.NoteQuery, guardquery.go): the capture leaves those datagrams out
// and the engine judges the handed-over query as it would the captured
// one. Classifiers decide on evidence in the traffic (handshake structure,
// names in TLS/QUIC/DNS, the name behind an address or the lack of one,
// addresses of single-purpose services), never on a port number alone. A flow is no longer
// inspected once it is classified or after a bounded number of packets and
// bytes; packets of such established flows are counted without allocating.
//
// Every finding carries a Confidence: Certain when a protocol handshake
// was parsed, Likely for a fingerprint or heuristic (listed names and
// addresses, JA4, fully-encrypted-traffic statistics, record-size shapes),
// Attempt when only the client's side was seen: recognitions from the
// client's first packets wait for the server (attempt.go), and a server
// that never answers makes them attempts, so a pupil retrying a blocked
// VPN is still found. Options.MinConfidence drops weaker findings per
// class. Signatures (signatures.go, the shipped signatures.txt) add JA4,
// name, address and port rules from a data file without a release.
//
// testdata/recorded holds captures of real tools recorded in the testbed
// by inspect/e2e (make record-corpus), with a manifest; TestRecordedCorpus
// replays them and prints a table per tool.
//
// Site runs one engine per capture interface for the daemon, all sharing
// one Resolutions that the DNS guard feeds through Site.NoteAnswer; since
// the guard tells it every answer, the capture's kernel filter leaves the
// guard's own replies out (CaptureConfig.OwnDNS, capfilter.go).
//
// It does not store findings, attribute them to people, alert anyone or
// enforce anything: findings leave through a Sink, and the alert, store and
// policy packages take it from there. The daemon's Sink is
// alert/findingstore, which converts each Finding into the finding type
// every source shares (alert/finding), so this package still imports
// nothing of Gatehouse.
package inspect
