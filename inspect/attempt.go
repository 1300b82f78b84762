package inspect

import (
	"fmt"
	"time"

	"github.com/google/gopacket/layers"
)

// Attempts count, not only successes: a pupil whose VPN is blocked keeps
// retrying, and the DSL wants to know. Many protocols can be recognised
// from the client's first packets alone (an OpenVPN hard reset, a
// WireGuard initiation, an IKE_SA_INIT, a SOCKS greeting, a QUIC Initial
// offering DoQ). Such a recognition waits here for the server: when it
// answers, the protocol's own detector (or the answer itself) decides with
// its usual confidence; when it stays silent — the client retries, time
// passes, the connection is refused or closed, or the flow ends — the
// finding is raised with confidence Attempt.

// attemptWait is how long a recognised client waits for its server before
// silence counts: longer than any round trip, shorter than the retry
// intervals of the protocols (OpenVPN 2 s, IKE 2-4 s, WireGuard 5 s) so
// that the first retry already decides.
const attemptWait = 3 * time.Second

// maxPending bounds the recognitions waiting for an answer; beyond it new
// ones are not tracked (counted in Stats.Attempts only when raised).
const maxPending = 1024

// pendingAttempt is one recognition waiting for the server.
type pendingAttempt struct {
	class, detail, evidence string
	// onAnswer is the confidence to raise with when the server answers;
	// empty leaves the answer to the protocol's detector.
	onAnswer Confidence
	need     uint8 // client sightings before silence counts
	n        uint8 // client sightings so far
	first    time.Time
}

// expectAnswer records one client-side sighting of a protocol on f. need
// is how many sightings make silence count (2 for a weak single-packet
// shape that must be retried to be believed). A retry without an answer
// raises the attempt at once.
func (e *Engine) expectAnswer(f *flow, onAnswer Confidence, need int, class, detail, evidence string) {
	if f.done || f.class != "" {
		return
	}
	pa, ok := e.pending[f.key]
	if !ok {
		if len(e.pending) >= maxPending {
			return
		}
		pa = &pendingAttempt{class: class, detail: detail, evidence: evidence, onAnswer: onAnswer,
			need: uint8(max(need, 1)), first: f.last}
		e.pending[f.key] = pa
		f.attempt = true
	}
	if pa.n < 255 {
		pa.n++
	}
	if pa.n >= 2 && pa.n >= pa.need {
		e.raiseAttempt(f, pa)
	}
}

// attemptPacket looks at each packet of a flow with a recognition waiting:
// the server's answer settles it, silence long enough or a refusal makes
// it an attempt. It runs before the classifiers see the packet.
func (e *Engine) attemptPacket(f *flow, dir int, p *pkt) {
	pa, ok := e.pending[f.key]
	if !ok {
		f.attempt = false
		return
	}
	refused := p.tcp != nil && p.tcp.RST
	closed := p.tcp != nil && p.tcp.FIN
	answered := dir == dirS2C && !refused && (len(p.payload) > 0 || p.tcp != nil && p.tcp.SYN)
	switch {
	case answered:
		e.dropAttempt(f)
		if pa.onAnswer != "" {
			e.raiseAs(f, pa.onAnswer, pa.class, pa.detail, pa.evidence+"; the server answered")
		}
	case refused || closed:
		e.raiseAttempt(f, pa)
	case p.ts.Sub(pa.first) >= attemptWait && pa.n >= pa.need:
		e.raiseAttempt(f, pa)
	}
}

// raiseAttempt raises a waiting recognition as an attempt.
func (e *Engine) raiseAttempt(f *flow, pa *pendingAttempt) {
	ev := fmt.Sprintf("attempt: %s; %d from the client, no answer from the server", pa.evidence, pa.n)
	e.raiseAs(f, Attempt, pa.class, pa.detail, ev)
}

// flushAttempt raises f's waiting recognition, if it was seen often
// enough, because the flow ends (given up, evicted, end of a capture).
func (e *Engine) flushAttempt(f *flow) {
	pa, ok := e.pending[f.key]
	if !ok {
		f.attempt = false
		return
	}
	if pa.n >= pa.need {
		e.raiseAttempt(f, pa)
	}
	e.dropAttempt(f)
}

// flushAttempts ends every waiting recognition: the capture is over.
func (e *Engine) flushAttempts() {
	for k := range e.pending {
		if i, ok := e.flows.get(k); ok {
			e.flushAttempt(e.flows.at(i))
		} else {
			delete(e.pending, k)
		}
	}
}

// dropAttempt forgets f's waiting recognition.
func (e *Engine) dropAttempt(f *flow) {
	if f.attempt {
		delete(e.pending, f.key)
		f.attempt = false
	}
}

// synAttempt applies the signatures' port rules to a TCP SYN that has not
// been answered: a client knocking on the DNS-over-TLS port of a server
// that refuses or drops it shows nothing else. A port alone is weak, so
// a rule only ever makes an attempt, and only when the server never
// completes the handshake (an answered SYN lets the real detectors judge).
func (e *Engine) synAttempt(f *flow, dir int, p *pkt) {
	if dir != dirC2S || p.tcp == nil || !p.tcp.SYN || p.tcp.ACK || f.pkts[dirS2C] > 0 {
		return
	}
	r, ok := e.sigs.Load().portRule(layers.IPProtocolTCP, f.sport)
	if !ok {
		return
	}
	e.expectAnswer(f, "", 1, r.Class, r.Detail, fmt.Sprintf("TCP SYN to port %d (%s)", f.sport, r.Why))
}
