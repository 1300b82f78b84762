package inspect

import (
	"math"
	"math/bits"
)

// fullyEncrypted applies the tests the Great Firewall was found to use for
// "fully encrypted" proxy traffic (Wu et al., USENIX Security 2023) to the
// first payload of a direction: it is exempt if it looks like text or a
// known protocol, and otherwise flagged when the bits set per byte are near
// 4, as for uniformly random bytes. The length floor keeps short binary
// protocol messages out.
func fullyEncrypted(b []byte) bool {
	if len(b) < 48 {
		return false
	}
	if len(b) > 2048 {
		b = b[:2048]
	}
	// Exemption: first six bytes printable.
	allPrint := true
	for _, c := range b[:6] {
		if c < 0x20 || c > 0x7e {
			allPrint = false
			break
		}
	}
	if allPrint {
		return false
	}
	printable, run, maxRun, ones := 0, 0, 0, 0
	for _, c := range b {
		ones += bits.OnesCount8(c)
		if c >= 0x20 && c <= 0x7e {
			printable++
			run++
			maxRun = max(maxRun, run)
		} else {
			run = 0
		}
	}
	if printable*2 > len(b) || maxRun > 20 {
		return false
	}
	avg := float64(ones) / float64(len(b))
	if avg <= 3.4 || avg >= 4.6 {
		return false
	}
	// Known framings that are not random at the start: TLS, SSH, HTTP,
	// and length-prefixed protocols whose first two bytes give the length.
	if b[0] >= 0x14 && b[0] <= 0x17 && b[1] == 0x03 {
		return false
	}
	if lengthFramed(b) {
		return false
	}
	return entropy(b) > 0.85*math.Log2(float64(min(len(b), 256)))
}

// entropy returns the Shannon entropy of b in bits per byte.
func entropy(b []byte) float64 {
	if len(b) == 0 {
		return 0
	}
	var counts [256]int
	for _, c := range b {
		counts[c]++
	}
	h := 0.0
	n := float64(len(b))
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

// checkTLSInTLS looks for a TLS handshake carried inside an established
// TLS connection, the mark of Trojan, VMess/VLESS-over-TLS and similar
// proxies: right after the outer handshake the client sends one record the
// size of an inner ClientHello, the server answers with records the size of
// an inner server flight, and the client then sends one small record the
// size of an inner Finished.
func (e *Engine) checkTLSInTLS(f *flow) {
	r := &f.tlsRecs
	if !f.tlsSNI || r.n < 8 {
		return
	}
	if e.checkWrappedSOCKS(f) {
		return
	}
	recs := r.recs[:r.n]
	// The client's ChangeCipherSpec is followed by its Finished; what
	// comes after is application data.
	i := 0
	for i < len(recs) && !(recs[i].dir == dirC2S && recs[i].typ == 20) {
		i++
	}
	i += 2
	// Server records before the client's first data are session tickets.
	for i < len(recs) && recs[i].dir == dirS2C {
		i++
	}
	if i >= len(recs) {
		return
	}
	c1 := recs[i]
	if c1.typ != 23 || c1.len < 540 || c1.len > 2200 {
		return
	}
	i++
	srv := 0
	for i < len(recs) && recs[i].dir == dirS2C {
		srv += int(recs[i].len)
		i++
	}
	if i >= len(recs) {
		return // still waiting for the client's next record
	}
	c2 := recs[i]
	if srv >= 1000 && c2.typ == 23 && c2.len >= 60 && c2.len <= 140 {
		e.raiseAs(f, Likely, ClassProxy, "tls-in-tls", "records after the TLS handshake match a tunnelled TLS handshake: client "+
			itoa(int(c1.len))+" bytes, server "+itoa(srv)+" bytes, client "+itoa(int(c2.len))+" bytes")
		return
	}
	f.tlsSNI = false // the shape did not match; stop looking
}

// fakeFinishedMin bounds an encrypted TLS 1.2 Finished from above: 16
// bytes of message, an explicit IV or nonce, a MAC or tag of at most 48
// bytes and block padding come to about 100 on the wire; TLS stacks pad to
// the block, not by hundreds of bytes.
const fakeFinishedMin = 160

// checkFakeResumption looks for a server that "resumes" a session
// (ServerHello, then ChangeCipherSpec straight away) and follows with an
// encrypted handshake record far bigger than a Finished: data riding in a
// made-up TLS 1.2 resumption, as simple-obfs's obfs=tls and
// ShadowsocksR's tls1.2_ticket_auth send. TLS 1.3 servers send their
// encrypted flight as application-data records, and a HelloRetryRequest
// waits for a second ClientHello, so neither matches.
func (e *Engine) checkFakeResumption(f *flow) bool {
	var srv [3]tlsRec
	n := 0
	for _, r := range f.tlsRecs.recs[:f.tlsRecs.n] {
		if r.dir == dirC2S {
			if n > 0 {
				// The client spoke within the server's flight: a
				// HelloRetryRequest (and its compatibility
				// ChangeCipherSpec) answered by a second ClientHello,
				// not a resumption.
				return false
			}
			continue
		}
		srv[n] = r
		if n++; n == len(srv) {
			break
		}
	}
	if n < len(srv) || srv[0].typ != 22 || srv[1].typ != 20 || srv[2].typ != 22 || srv[2].len < fakeFinishedMin {
		return false
	}
	e.raiseAs(f, Likely, ClassProxy, "fake-tls-resumption", "server resumed a TLS session (ServerHello, ChangeCipherSpec) and sent a "+
		itoa(int(srv[2].len))+"-byte encrypted handshake record where a Finished takes under 100: data disguised as a TLS resumption")
	return true
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// lengthFramed reports a message that starts (after at most a 2-byte tag)
// with a 16- or 32-bit big-endian length of itself, give or take a small
// header: a framed binary protocol, not random bytes.
func lengthFramed(b []byte) bool {
	n := len(b)
	near := func(v uint32) bool { return v > 0 && int(v) <= n && int(v) >= n-8 }
	for off := 0; off <= 2; off += 2 {
		if len(b) >= off+2 && near(uint32(b[off])<<8|uint32(b[off+1])) {
			return true
		}
		if len(b) >= off+4 && near(uint32(b[off])<<24|uint32(b[off+1])<<16|uint32(b[off+2])<<8|uint32(b[off+3])) {
			return true
		}
	}
	return false
}

// wrappedTiny bounds an encrypted record that carries a SOCKS greeting or
// method selection (2 to 4 bytes) under TLS 1.3 (17 bytes of overhead) or
// TLS 1.2 AES-GCM (24).
const wrappedTiny = 30

// checkWrappedSOCKS looks for a SOCKS handshake inside TLS (stunnel or
// similar wrapping a SOCKS proxy): the client's first application-data
// record holds a few bytes and the server answers with a few bytes, where
// every protocol spoken over TLS for the web opens with a request of tens
// or hundreds of bytes.
func (e *Engine) checkWrappedSOCKS(f *flow) bool {
	recs := f.tlsRecs.recs[:f.tlsRecs.n]
	i := 0
	for i < len(recs) && !(recs[i].dir == dirC2S && recs[i].typ == 20) {
		i++
	}
	i += 2
	for i < len(recs) && recs[i].dir == dirS2C {
		i++
	}
	if i >= len(recs) || recs[i].typ != 23 || recs[i].len > wrappedTiny {
		return false
	}
	c1 := recs[i]
	for i++; i < len(recs) && recs[i].dir == dirS2C; i++ {
		if recs[i].typ == 23 && recs[i].len <= wrappedTiny {
			e.raiseAs(f, Likely, ClassProxy, "tls-wrapped-socks", "records after the TLS handshake match a SOCKS handshake inside it: client "+
				itoa(int(c1.len))+" bytes answered by "+itoa(int(recs[i].len))+" bytes")
			return true
		}
	}
	return false
}
