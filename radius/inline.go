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
// A PAP re-authentication is answered inline too when its person is held
// in memory (identities.go) and the credential cache holds a password
// verified for them (credcache.go): then the answer is a map read and an
// HMAC. That is a hint as well: if the password is not the cached one, the
// decision hands the request back to a worker rather than run argon2id
// here (request.inline, auth.go's pap).
//
// pkt has passed frame: every attribute's length is within the packet.
func (s *Server) answersInline(acct bool, pkt []byte) bool {
	if acct || radius.Code(pkt[0]) != radius.CodeAccessRequest {
		return false
	}
	var (
		mac      macKey
		isMAC    bool
		named    bool
		name     []byte
		password bool
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
				name = pkt[i+2 : i+l]
				mac, isMAC = parseMAC6(string(name))
				named = true
			}
		case 2: // User-Password
			password = true
		}
		i += l
	}
	if isMAC {
		// The entry may be stale: this only picks the goroutine; the
		// lookup in work checks the change log as every lookup does.
		cache, ok := s.o.Devices.(*deviceCache)
		return ok && cache.approved(mac)
	}
	if !password || len(name) == 0 || s.creds == nil {
		return false
	}
	ids, ok := s.o.Identities.(*identityCache)
	if !ok {
		return false
	}
	now := s.now()
	who, ok := ids.held(name, now)
	return ok && s.creds.holds(who, now)
}
