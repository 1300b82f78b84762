package eap

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Method names, as the configuration spells them.
const (
	MethodPEAP = "peap" // PEAPv0 with EAP-MSCHAPv2 inside
	MethodTTLS = "ttls" // EAP-TTLS with PAP or MSCHAPv2 inside
	MethodTLS  = "tls"  // EAP-TLS: a client certificate
)

// Options configure an Engine.
type Options struct {
	// TLS holds the server certificate (with its chain) and, for EAP-TLS,
	// the CAs client certificates must chain to (ClientCAs). Required.
	TLS *tls.Config
	// Methods are the methods offered, the first one first; a client may
	// NAK to any other. nil: every method the callbacks allow.
	Methods []string
	// MinVersion is the lowest TLS version accepted; 0: TLS 1.2.
	MinVersion uint16
	// FragmentSize bounds the TLS data in one EAP request; Framed-MTU
	// lowers it. 0: the NAS's Framed-MTU decides (up to maxAutoFragment),
	// and 1000 for a NAS that does not say.
	FragmentSize int
	// MaxSessions bounds logins in progress; beyond it new logins get no
	// answer (the NAS retries). 0: 1024.
	MaxSessions int
	// MaxPerClient bounds logins in progress from one client (NAS and
	// Calling-Station-Id); a new one beyond it ends that client's oldest.
	// 0: 4.
	MaxPerClient int
	// Timeout ends a login whose client went quiet. 0: 30 s.
	Timeout time.Duration
	// ResumeLifetime is how long a PEAP or TTLS login may be resumed
	// without its inner login (resume.go); the caller still checks the
	// person at every Accept. 0: 8 hours, a school day; negative: never.
	ResumeLifetime time.Duration
	// MaxResumable bounds the logins remembered for resumption; beyond
	// it some are forgotten (and log in in full). 0: 8 * MaxSessions.
	MaxResumable int
	// CredentialVersion names the password a person has now: anything
	// that changes whenever their password is set, changed or reset
	// (package radius gives a keyed digest of the stored hash, the notion
	// its PAP credential cache uses). It is taken before the inner login
	// checks the password, kept with the resumable login, and asked again
	// at resumption: a different answer (or an error) runs the inner
	// login in full, so a reset password cannot be skipped by resuming.
	// It must not return the hash itself. nil: PEAP and TTLS are never
	// resumed.
	CredentialVersion func(ctx context.Context, user string) (string, error)

	// CheckPassword checks a person's password (EAP-TTLS with PAP). It
	// returns nil for the right password of a person who may log in, and
	// otherwise an error that says why (logged; never the password).
	CheckPassword func(ctx context.Context, user, password string) error
	// NTHash gives the NT password hash (RFC 2759 8.3) of a person who
	// may log in, for MSCHAPv2 inside PEAP and EAP-TTLS; an error says why
	// not (logged). nil: those inner methods are off.
	// found is false for nobody of that name and for a person who may not
	// log in; err is for a lookup that could not be made. (It is package
	// radius/mschapv2's Lookup.)
	NTHash func(ctx context.Context, user string) (ntHash [16]byte, found bool, err error)
	// VerifyClient decides on an EAP-TLS client certificate that already
	// chains to TLS.ClientCAs (the place for revocation by serial). It
	// returns the login name the certificate stands for ("" means
	// CertIdentity's). nil: EAP-TLS accepts every chained certificate.
	VerifyClient func(ctx context.Context, cert *x509.Certificate) (identity string, err error)

	Logger *slog.Logger
	Now    func() time.Time
}

// Outcome is what a round decided.
type Outcome int

const (
	Challenge Outcome = iota // send Message in an Access-Challenge with State
	Accept                   // the login succeeded: Access-Accept with Message (EAP-Success)
	Reject                   // the login failed: Access-Reject with Message (EAP-Failure)
)

func (o Outcome) String() string {
	switch o {
	case Challenge:
		return "challenge"
	case Accept:
		return "accept"
	}
	return "reject"
}

// Request is one Access-Request's EAP part.
type Request struct {
	// Client names who is logging in from where: the NAS's name and the
	// Calling-Station-Id. The per-client bound counts by it; "" (a NAS
	// that does not say) is bound by MaxSessions only.
	Client string
	State  []byte // the State attribute; nil on a login's first round
	// Message is the EAP-Message attributes joined. Handle reads it
	// only during the call (it copies what it keeps): the caller may
	// reuse its octets once Handle returns.
	Message []byte
	MTU     int // Framed-MTU; 0: not given
}

// Reply is what to answer.
type Reply struct {
	Outcome  Outcome
	Message  []byte // the EAP packet for EAP-Message
	State    []byte // Challenge: the State attribute
	Outer    string // the outer (possibly anonymous) identity
	Identity string // Accept: the inner identity, the person's login name
	Method   string // for the log: "EAP-TLS", "TTLS-PAP", ...
	Version  string // the TLS version, for the log
	Resumed  bool   // Accept: a resumed tunnel, whose inner login was skipped
	MSK      []byte // Accept: the master session key (64 octets)
	EMSK     []byte
	Reason   string // Reject: why, for the log
}

// Errors that mean "drop the request, answer nothing".
var (
	ErrOverload = errors.New("eap: too many logins in progress")
	ErrStale    = errors.New("eap: response to a request that is not the current one")
	ErrNotEAP   = errors.New("eap: not an EAP response")
)

// replayWindow is how long a finished login stays to answer a
// retransmission of its last round (the RADIUS duplicate cache's window).
const replayWindow = 5 * time.Second

// Engine runs the EAP logins. It is safe for concurrent use.
type Engine struct {
	o         Options
	fragLimit int // the most a Framed-MTU may raise the fragment size to
	log       *slog.Logger
	now       func() time.Time
	base      *tls.Config
	methods   []byte // EAP types in the order offered
	ctx       context.Context
	cancel    context.CancelFunc

	mu        sync.Mutex
	sessions  map[[16]byte]*session
	perClient map[string][]*session
	lastSweep time.Time

	tmu   sync.Mutex
	bound map[[16]byte]binding // ticket reference -> the login it resumes (resume.go)

	rmu  sync.Mutex
	idle []*runner // method coroutines waiting for a login (conn.go)
}

// New checks o and returns an engine. Close ends its logins in progress.
func New(o Options) (*Engine, error) {
	if o.TLS == nil || (len(o.TLS.Certificates) == 0 && o.TLS.GetCertificate == nil) {
		return nil, errors.New("eap: Options.TLS needs the server certificate")
	}
	if o.MinVersion == 0 {
		o.MinVersion = tls.VersionTLS12
	}
	if o.MinVersion < tls.VersionTLS12 || o.MinVersion > tls.VersionTLS13 {
		return nil, fmt.Errorf("eap: TLS minimum version %#x: only TLS 1.2 and 1.3 are offered", o.MinVersion)
	}
	fragLimit := o.FragmentSize
	if o.FragmentSize <= 0 {
		o.FragmentSize = 1000
		fragLimit = maxAutoFragment
	}
	o.FragmentSize = max(o.FragmentSize, 64)
	if o.MaxSessions <= 0 {
		o.MaxSessions = 1024
	}
	if o.MaxPerClient <= 0 {
		o.MaxPerClient = 4
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.ResumeLifetime == 0 {
		o.ResumeLifetime = 8 * time.Hour
	}
	if o.MaxResumable <= 0 {
		o.MaxResumable = 8 * o.MaxSessions
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	e := &Engine{o: o, fragLimit: max(fragLimit, 64), log: o.Logger, now: o.Now, sessions: map[[16]byte]*session{}, perClient: map[string][]*session{}, bound: map[[16]byte]binding{}}
	names := o.Methods
	if names == nil {
		names = []string{MethodPEAP, MethodTTLS, MethodTLS}
	}
	seen := map[byte]bool{}
	for _, m := range names {
		var t byte
		switch m {
		case MethodPEAP:
			if o.NTHash == nil {
				if o.Methods == nil {
					continue
				}
				return nil, errors.New("eap: PEAP needs Options.NTHash")
			}
			t = TypePEAP
		case MethodTTLS:
			if o.CheckPassword == nil && o.NTHash == nil {
				if o.Methods == nil {
					continue
				}
				return nil, errors.New("eap: TTLS needs Options.CheckPassword or Options.NTHash")
			}
			t = TypeTTLS
		case MethodTLS:
			if o.TLS.ClientCAs == nil {
				if o.Methods == nil {
					continue
				}
				return nil, errors.New("eap: EAP-TLS needs Options.TLS.ClientCAs")
			}
			t = TypeTLS
		default:
			return nil, fmt.Errorf("eap: unknown method %q (peap, ttls or tls)", m)
		}
		if !seen[t] {
			seen[t] = true
			e.methods = append(e.methods, t)
		}
	}
	if len(e.methods) == 0 {
		return nil, errors.New("eap: no method is enabled")
	}
	// One ticket key for every login, so a TLS session resumes across
	// logins; a fresh one at each start.
	e.base = o.TLS.Clone()
	var tk [32]byte
	if _, err := rand.Read(tk[:]); err != nil {
		return nil, err
	}
	e.base.SetSessionTicketKeys([][32]byte{tk})
	e.base.MinVersion, e.base.MaxVersion = o.MinVersion, tls.VersionTLS13
	e.ctx, e.cancel = context.WithCancel(context.Background())
	return e, nil
}

// Methods reports the enabled methods' EAP types, in the order offered.
func (e *Engine) Methods() []byte { return append([]byte(nil), e.methods...) }

// Close ends every login in progress and its goroutine.
func (e *Engine) Close() {
	e.cancel()
	e.mu.Lock()
	defer e.mu.Unlock()
	for k, s := range e.sessions {
		s.stop()
		delete(e.sessions, k)
	}
	clear(e.perClient)
	e.closeRunners()
}

// InProgress reports the logins in the table.
func (e *Engine) InProgress() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.sessions)
}

// session is one login: from the identity response to Success or Failure.
type session struct {
	e      *Engine
	state  [16]byte
	client string

	// ctx ends the login's method goroutine; cancel may be called
	// without mu (the sweep does).
	ctx     context.Context
	cancel  context.CancelFunc
	touched atomic.Int64 // unix nanoseconds of the last round; read without mu
	over    atomic.Bool  // answered with Success or Failure; kept only for replays

	mu       sync.Mutex
	finished bool
	outer    string
	id       byte // the identifier of the request awaiting its response
	method   byte
	tried    [256 / 64]uint64 // the EAP types started, a bit each (a map was an allocation per login)
	flight   *flight
	in       reassembler
	frag     fragmenter
	fragSize int
	final    *methodResult
	lastResp []byte
	last     Reply
}

// stop ends the login: its context, and its method coroutine. The
// coroutine may be stopped only by whoever holds the session's mutex
// (iter.Pull's next and stop must not run concurrently), and the lock
// order is session, then engine: so under the engine's mutex the session
// is stopped at once only when its mutex is free, else by a goroutine
// that waits for the round in progress to end.
func (s *session) stop() {
	s.cancel()
	if s.mu.TryLock() {
		s.stopFlight()
		s.mu.Unlock()
		return
	}
	go func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.stopFlight()
	}()
}

// stopFlight ends the method coroutine, if any. Called with s.mu held.
func (s *session) stopFlight() {
	if s.flight != nil {
		s.flight.stop()
		s.flight = nil
	}
}

// sweep ends logins gone quiet. Called with e.mu held; it never takes a
// session's mu (the lock order is session, then engine).
func (e *Engine) sweep(now time.Time) {
	if now.Sub(e.lastSweep) < time.Second {
		return
	}
	e.lastSweep = now
	for _, s := range e.sessions {
		keep := e.o.Timeout
		if s.over.Load() {
			keep = min(keep, replayWindow)
		}
		if now.Sub(time.Unix(0, s.touched.Load())) > keep {
			e.removeLocked(s)
		}
	}
}

func (e *Engine) removeLocked(s *session) {
	if e.sessions[s.state] != s {
		return
	}
	delete(e.sessions, s.state)
	l := e.perClient[s.client]
	for i, x := range l {
		if x == s {
			l = append(l[:i], l[i+1:]...)
			break
		}
	}
	if len(l) == 0 {
		delete(e.perClient, s.client)
	} else {
		e.perClient[s.client] = l
	}
	s.stop()
}

func (e *Engine) newSession(client string, now time.Time) (*session, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sweep(now)
	if l := e.perClient[client]; client != "" && len(l) >= e.o.MaxPerClient {
		// The same device starting over: its oldest login is abandoned.
		e.removeLocked(l[0])
	}
	if len(e.sessions) >= e.o.MaxSessions {
		return nil, ErrOverload
	}
	s := &session{e: e, client: client, fragSize: e.o.FragmentSize}
	s.touched.Store(now.UnixNano())
	s.ctx, s.cancel = context.WithCancel(e.ctx)
	for {
		if _, err := rand.Read(s.state[:]); err != nil {
			return nil, err
		}
		if _, dup := e.sessions[s.state]; !dup {
			break
		}
	}
	e.sessions[s.state] = s
	e.perClient[client] = append(e.perClient[client], s)
	return s, nil
}

func (e *Engine) lookup(state []byte, now time.Time) *session {
	if len(state) != 16 {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sweep(now)
	return e.sessions[[16]byte(state)]
}

func (e *Engine) end(s *session) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.removeLocked(s)
}

// Handle runs one round of a login. An error means: answer nothing.
func (e *Engine) Handle(ctx context.Context, req Request) (Reply, error) {
	p, err := Parse(req.Message)
	if err != nil {
		return Reply{}, err
	}
	if p.Code != CodeResponse {
		return Reply{}, ErrNotEAP
	}
	now := e.now()
	if len(req.State) == 0 {
		if p.Type != TypeIdentity {
			return Reply{Outcome: Reject, Message: Packet{Code: CodeFailure, ID: p.ID}.Marshal(), Reason: "a login must start with its identity"}, nil
		}
		s, err := e.newSession(req.Client, now)
		if err != nil {
			return Reply{}, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.outer = string(p.Data)
		s.id = p.ID
		s.setMTU(req.MTU)
		r := s.startMethod(e.methods[0])
		s.lastResp, s.last = append(s.lastResp[:0], req.Message...), r
		return r, nil
	}
	s := e.lookup(req.State, now)
	if s == nil {
		return Reply{Outcome: Reject, Message: Packet{Code: CodeFailure, ID: p.ID}.Marshal(), Reason: "unknown or expired State"}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil && !s.over.Load() {
		// Removed (expired, or its client's oldest) after the lookup.
		return Reply{Outcome: Reject, Message: Packet{Code: CodeFailure, ID: p.ID}.Marshal(), Reason: "unknown or expired State"}, nil
	}
	if bytes.Equal(req.Message, s.lastResp) {
		// A retransmitted round: the same answer, nothing advanced.
		return s.last, nil
	}
	if s.finished || p.ID != s.id {
		return Reply{}, ErrStale
	}
	s.touched.Store(now.UnixNano())
	s.setMTU(req.MTU)
	r, err := s.respond(ctx, p)
	if err != nil {
		// The request's context ended mid-round: the method's state is
		// unknown, so this login is over.
		s.finished = true
		s.stopFlight()
		e.end(s)
		return Reply{}, err
	}
	r.Outer = s.outer
	s.lastResp, s.last = append(s.lastResp[:0], req.Message...), r
	if r.Outcome != Challenge {
		s.finished = true
		s.over.Store(true)
		// We hold s.mu: end the method here (a Reject may come while it
		// waits for the client) rather than through stop's goroutine.
		s.cancel()
		s.stopFlight()
		// Kept until it expires, so a retransmission of this last round
		// gets the same answer; but no longer counted against the client.
		e.mu.Lock()
		l := e.perClient[s.client]
		for i, x := range l {
			if x == s {
				e.perClient[s.client] = append(l[:i:i], l[i+1:]...)
				break
			}
		}
		if len(e.perClient[s.client]) == 0 {
			delete(e.perClient, s.client)
		}
		e.mu.Unlock()
	}
	return r, nil
}

func (s *session) setMTU(mtu int) {
	if mtu <= 0 {
		return
	}
	// The EAP header (5), the flags and length (5) and RADIUS's own
	// overhead in the frame the NAS builds from it leave this much.
	s.fragSize = max(64, min(s.e.fragLimit, mtu-14))
}

// maxAutoFragment is the largest fragment a Framed-MTU alone gets: that
// of MTU 1400, which hostapd (and the access points built on it) sends,
// and whose Access-Challenge (the EAP packet, State and
// Message-Authenticator) still fits one 1,500-octet IP packet. RFC 3579
// 2.4: Framed-MTU is the largest EAP packet the NAS can send to the
// supplicant. At 1,000 octets a TLS 1.2 server flight with a two
// certificate chain (about 1,300 octets) took two requests, the second
// only to be acknowledged: one RADIUS round in eight of every PEAP login.
const maxAutoFragment = 1400 - 14

func (s *session) challenge(typ byte, data []byte) Reply {
	s.id++
	return Reply{Outcome: Challenge, Message: Packet{Code: CodeRequest, ID: s.id, Type: typ, Data: data}.Marshal(), State: s.state[:], Outer: s.outer}
}

// challengeFrame is challenge for a packet the fragmenter built, whose
// header it left blank.
func (s *session) challengeFrame(pkt []byte) Reply {
	s.id++
	pkt[0], pkt[1] = CodeRequest, s.id
	binary.BigEndian.PutUint16(pkt[2:4], uint16(len(pkt)))
	pkt[4] = s.method
	return Reply{Outcome: Challenge, Message: pkt, State: s.state[:], Outer: s.outer}
}

func (s *session) failure(id byte, why string) Reply {
	return Reply{Outcome: Reject, Message: Packet{Code: CodeFailure, ID: id}.Marshal(), Reason: why, Outer: s.outer, Method: methodName(s.method)}
}

func (s *session) startMethod(t byte) Reply {
	s.method = t
	s.tried[t/64] |= 1 << (t % 64)
	s.stopFlight()
	s.in.reset()
	s.frag = fragmenter{}
	s.final = nil
	return s.challenge(t, []byte{flagStart})
}

func (s *session) respond(ctx context.Context, p Packet) (Reply, error) {
	if p.Type == TypeNak {
		if s.flight != nil || s.frag.pending() {
			return s.failure(p.ID, "NAK in the middle of a method"), nil
		}
		for _, want := range p.Data {
			if s.tried[want/64]&(1<<(want%64)) != 0 {
				continue
			}
			for _, m := range s.e.methods {
				if m == want {
					return s.startMethod(m), nil
				}
			}
		}
		return s.failure(p.ID, fmt.Sprintf("the client wants none of the methods offered (it asked for %v)", p.Data)), nil
	}
	if p.Type != s.method {
		return s.failure(p.ID, fmt.Sprintf("response of type %d to a request of type %d", p.Type, s.method)), nil
	}
	return s.tlsRound(ctx, p)
}

func (s *session) tlsRound(ctx context.Context, p Packet) (Reply, error) {
	f, err := parseTLSFrame(p.Data)
	if err != nil {
		return s.failure(p.ID, err.Error()), nil
	}
	if s.frag.pending() {
		if len(f.data) != 0 || f.flags&flagMore != 0 {
			return s.failure(p.ID, "the client sent data while it should acknowledge a fragment"), nil
		}
		d, _ := s.frag.next()
		return s.challengeFrame(d), nil
	}
	if s.final != nil {
		return s.finalReply(p.ID), nil
	}
	msg, complete, err := s.in.add(f)
	if err != nil {
		return s.failure(p.ID, err.Error()), nil
	}
	if !complete {
		return s.challenge(s.method, []byte{0}), nil // acknowledge the fragment
	}
	var (
		out  []byte
		r    methodResult
		done bool
	)
	if s.flight == nil {
		s.flight = s.e.startFlight(s.ctx, msg, s.e.methodFunc(s.method))
		out, r, done, err = s.flight.step(ctx, nil, true)
	} else {
		out, r, done, err = s.flight.step(ctx, msg, false)
	}
	if err != nil {
		return Reply{}, err
	}
	if done {
		// The method returned: its coroutine is over.
		s.flight = nil
		s.final = &r
		if len(out) == 0 {
			return s.finalReply(p.ID), nil
		}
	}
	s.frag.startFramed(out, s.fragSize)
	d, _ := s.frag.next()
	return s.challengeFrame(d), nil
}

func (s *session) finalReply(id byte) Reply {
	r := s.final
	if !r.ok {
		rep := s.failure(id, r.reason)
		rep.Identity, rep.Method, rep.Version = r.identity, r.method, r.version
		return rep
	}
	return Reply{Outcome: Accept, Message: Packet{Code: CodeSuccess, ID: id}.Marshal(), Outer: s.outer,
		Identity: r.identity, Method: r.method, Version: r.version, Resumed: r.resumed, MSK: r.msk, EMSK: r.emsk}
}

func methodName(t byte) string {
	switch t {
	case TypeTLS:
		return "EAP-TLS"
	case TypeTTLS:
		return "EAP-TTLS"
	case TypePEAP:
		return "PEAP"
	}
	return fmt.Sprintf("EAP type %d", t)
}
