package radius

import "layeh.com/radius"

// answersInline says whether the read loop should answer this request
// itself rather than hand it to a worker: a MAC authentication (User-Name
// a MAC, no EAP, no 4-way handshake to match) when devices are held in
// memory (devcache.go), so the answer is a map read, an HMAC and a send.
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
	if _, ok := s.o.Devices.(*deviceCache); !ok {
		return false
	}
	mab, named := false, false
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
				_, mab = ParseMAC(string(pkt[i+2 : i+l]))
				named = true
			}
		}
		i += l
	}
	return mab
}
