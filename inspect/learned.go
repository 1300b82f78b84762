package inspect

// DoH resolvers on no list are found by the shape of their traffic
// (doh.go). Once a server name has shown that shape, it is a DoH resolver
// for the rest of the engine's life: later handshakes naming it, and
// handshakes without a name to an address a client was given for it (from
// the DNS answers the engine sees or the DNS guard feeds in), are DoH at
// once, without waiting for the shape again.

// maxLearnedDoH bounds the names learned; when full the set starts afresh
// (a rare event: each entry is a resolver that pupils actually used).
const maxLearnedDoH = 1024

// learnDoH remembers name as a DoH resolver.
func (e *Engine) learnDoH(name string) {
	if name == "" {
		return
	}
	if e.learnedDoH == nil || len(e.learnedDoH) >= maxLearnedDoH {
		e.learnedDoH = make(map[string]struct{})
	}
	e.learnedDoH[name] = struct{}{}
}

// judgeLearned raises DoH for a handshake naming a learned resolver, or
// without a name to an address resolved from one.
func (e *Engine) judgeLearned(f *flow, sni string, ev func(string) string) bool {
	if len(e.learnedDoH) == 0 {
		return false
	}
	name, how := sni, "handshake to "
	if name == "" {
		n, ok := e.res.nameOf(f.client, f.server, f.last)
		if !ok {
			return false
		}
		name, how = n, "handshake without SNI to an address resolved from "
	}
	if _, ok := e.learnedDoH[name]; !ok {
		return false
	}
	e.raiseAs(f, Likely, ClassDoH, "doh:learned", ev(how+name+", a name earlier traffic showed to be a DNS-over-HTTPS resolver"))
	return true
}
