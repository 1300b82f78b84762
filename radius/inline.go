package radius

import "layeh.com/radius"

// answersInline says whether the read loop should answer this request
// itself rather than hand it to a worker: a MAC authentication (User-Name
// a MAC, no EAP, no 4-way handshake to match) of a device held in memory
// as approved (devcache.go), so the answer is a map read, an HMAC and a
// send. A stranger goes to a worker: its finding may wait for a database
// write, and a flood of made-up MACs must not hold up everyone else's.
// Handing such a request to a worker cost more than answering it: a
// second thread woken per request, which on the daemon under radclient's
// load was a fifth of its CPU (bench/radius.sh, PERF). Anything that may
// wait (argon2id, EAP's TLS, the store) still goes to the workers.
//
// pkt has passed frame: every attribute's length is within the packet.
func (s *Server) answersInline(acct bool, pkt []byte) bool {
	if acct || radius.Code(pkt[0]) != radius.CodeAccessRequest {
		return false
	}
	cache, ok := s.o.Devices.(*deviceCache)
	if !ok {
		return false
	}
	var (
		mac   macKey
		isMAC bool
		named bool
	)
	for i := headerLen; i+2 <= len(pkt); {
		t, l := pkt[i], int(pkt[i+1])
		if l < 2 || i+l > len(pkt) {
			return false
		}
		switch t {
		case typeEAPMessage, typeLongExtended5:
			return false
		case 1: // User-Name: the first, as the decision reads it
			if !named {
				mac, isMAC = parseMAC6(string(pkt[i+2 : i+l]))
				named = true
			}
		}
		i += l
	}
	// The entry may be stale: this only picks the goroutine; the lookup
	// in work checks the change log as every lookup does.
	return isMAC && cache.approved(mac)
}
