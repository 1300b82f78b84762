package mschapv2

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// EAPType is the EAP method type of EAP-MSCHAPv2.
const EAPType = 26

// The EAP-MSCHAPv2 opcodes (draft-kamath-pppext-eap-mschapv2 §2).
const (
	OpChallenge      = 1
	OpResponse       = 2
	OpSuccess        = 3
	OpFailure        = 4
	OpChangePassword = 7
)

// Sizes on the wire.
const (
	challengeValueSize = 16
	responseValueSize  = 49 // PeerChallenge 16 | Reserved 8 | NT-Response 24 | Flags 1
	headerLen          = 4  // OpCode, MS-CHAPv2-ID, MS-Length
	// MaxNameLen bounds the Name of a Response: RFC 2759 allows 256
	// characters of user name, and nothing longer is looked up.
	MaxNameLen = 256
)

// ErrMalformed is wrapped by Handle's error for type-data that is not a
// well-formed packet of the kind expected now. The method's state is left
// unchanged: the caller may resend its last request or end the
// conversation with EAP-Failure (hostapd ignores such packets).
var ErrMalformed = errors.New("mschapv2: malformed packet")

// Lookup finds the NT password hash of username (the name the peer sent,
// with any "DOMAIN\" prefix removed). found is false for nobody of that
// name, and also for a person who has left, is revoked or has no Wi-Fi
// password: all of those fail the same way. err is for a lookup that could
// not be made (a database error); the authentication then fails too.
type Lookup func(ctx context.Context, username string) (ntHash [16]byte, found bool, err error)

// Config is what a Server needs.
type Config struct {
	// Lookup is required.
	Lookup Lookup
	// ServerName is the Name of the Challenge (shown by some peers);
	// default "gatehouse".
	ServerName string
	// Identity, when set, is the EAP identity the peer gave inside the
	// tunnel; the Response's name must then be the same (both compared
	// without a "DOMAIN\" prefix, as hostapd does), so a peer cannot
	// authenticate one name and be logged as another.
	Identity string
	// Retries is how many further attempts a peer gets after a wrong
	// password (the Failure then says R=1 and carries a fresh challenge).
	// Default 0: "E=691 R=0", which is what hostapd sends and what stops
	// Windows re-prompting in a loop.
	Retries int
	// Rand is the source of challenges; default crypto/rand.Reader.
	Rand io.Reader
}

// Result is a finished conversation.
type Result struct {
	// Success is true only after the peer acknowledged our Success
	// request, i.e. it checked our authenticator response.
	Success bool
	// Username is the name the peer authenticated as, without any
	// "DOMAIN\" prefix: what Lookup was asked for.
	Username string
	// Keys are the MPPE keys (valid only when Success); Keys.MSK() is the
	// method's exported MSK, PEAP's inner session key.
	Keys Keys
	// Reason says why it failed, for the log; it never holds a password
	// or hash. Empty on success.
	Reason string
}

// Step is what Handle returns: either a Reply to send (type-data of an
// EAP-Request of type 26) or, when Done, the Result (then the caller
// sends EAP-Success or EAP-Failure, or the PEAP result TLV).
type Step struct {
	Reply  []byte
	Done   bool
	Result Result
}

type state int

const (
	stateNew state = iota
	stateChallengeSent
	stateSuccessSent
	stateFailureSent
	stateDone
)

// Server is one EAP-MSCHAPv2 conversation, server side. It is not safe for
// concurrent use; the EAP session that owns it serialises the rounds.
type Server struct {
	cfg           Config
	state         state
	id            byte
	authChallenge [16]byte
	retriesLeft   int
	// Filled when the NT-Response checked out, reported after the peer's
	// success acknowledgement.
	username string
	keys     Keys
	reason   string
}

// NewServer starts a conversation.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Lookup == nil {
		return nil, errors.New("mschapv2: Config.Lookup is required")
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "gatehouse"
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Retries < 0 {
		cfg.Retries = 0
	}
	return &Server{cfg: cfg, retriesLeft: cfg.Retries}, nil
}

// Start returns the first request's type-data: the Challenge. Calling it
// again before a Response returns the same Challenge (a retransmission).
func (s *Server) Start() ([]byte, error) {
	if s.state == stateChallengeSent {
		return s.challengePacket(), nil
	}
	if s.state != stateNew {
		return nil, errors.New("mschapv2: Start after the conversation began")
	}
	var b [1]byte
	if _, err := io.ReadFull(s.cfg.Rand, b[:]); err != nil {
		return nil, fmt.Errorf("mschapv2: making an identifier: %w", err)
	}
	s.id = b[0]
	if err := s.newChallenge(); err != nil {
		return nil, err
	}
	s.state = stateChallengeSent
	return s.challengePacket(), nil
}

func (s *Server) newChallenge() error {
	if _, err := io.ReadFull(s.cfg.Rand, s.authChallenge[:]); err != nil {
		return fmt.Errorf("mschapv2: making a challenge: %w", err)
	}
	return nil
}

func (s *Server) challengePacket() []byte {
	p := packet(OpChallenge, s.id, 1+challengeValueSize+len(s.cfg.ServerName))
	p = append(p, challengeValueSize)
	p = append(p, s.authChallenge[:]...)
	return append(p, s.cfg.ServerName...)
}

// packet starts type-data with the 4-byte header; bodyLen is what follows.
func packet(op, id byte, bodyLen int) []byte {
	p := make([]byte, headerLen, headerLen+bodyLen)
	p[0], p[1] = op, id
	binary.BigEndian.PutUint16(p[2:], uint16(headerLen+bodyLen))
	return p
}

// Response is a parsed EAP-MSCHAPv2 Response (or a TTLS MS-CHAP2-Response
// turned into the same shape).
type Response struct {
	ID            byte
	PeerChallenge [16]byte
	NTResponse    [24]byte
	Flags         byte
	Name          string
}

// ParseResponse parses the type-data of a Response (OpCode 2). MS-Length
// must equal the type-data's length (as hostapd checks) and the Name must
// be at most MaxNameLen bytes.
func ParseResponse(td []byte) (Response, error) {
	var r Response
	if len(td) < headerLen+1+responseValueSize {
		return r, fmt.Errorf("%w: Response of %d bytes", ErrMalformed, len(td))
	}
	if td[0] != OpResponse {
		return r, fmt.Errorf("%w: opcode %d, want Response", ErrMalformed, td[0])
	}
	if ms := int(binary.BigEndian.Uint16(td[2:])); ms != len(td) {
		return r, fmt.Errorf("%w: MS-Length %d in %d bytes", ErrMalformed, ms, len(td))
	}
	if td[4] != responseValueSize {
		return r, fmt.Errorf("%w: Value-Size %d, want %d", ErrMalformed, td[4], responseValueSize)
	}
	v := td[5 : 5+responseValueSize]
	r.ID = td[1]
	copy(r.PeerChallenge[:], v[0:16])
	copy(r.NTResponse[:], v[24:48])
	r.Flags = v[48]
	name := td[5+responseValueSize:]
	if len(name) > MaxNameLen {
		return r, fmt.Errorf("%w: name of %d bytes", ErrMalformed, len(name))
	}
	r.Name = string(name)
	return r, nil
}

// Handle takes the type-data of the peer's EAP-Response (type 26) and says
// what to do next. Errors wrap ErrMalformed (see there) or report a
// conversation already finished; a wrong password is not an error but a
// Failure request, then a Result with Success false.
func (s *Server) Handle(ctx context.Context, td []byte) (Step, error) {
	if len(td) == 0 {
		return Step{}, fmt.Errorf("%w: empty", ErrMalformed)
	}
	switch s.state {
	case stateChallengeSent:
		if td[0] == OpChangePassword {
			return s.finish("peer asked to change its password, which is not offered"), nil
		}
		r, err := ParseResponse(td)
		if err != nil {
			return Step{}, err
		}
		if r.ID != s.id {
			return Step{}, fmt.Errorf("%w: MS-CHAPv2-ID %d, want %d", ErrMalformed, r.ID, s.id)
		}
		return s.verify(ctx, r)
	case stateSuccessSent:
		// The peer acknowledges with the bare opcode (draft-kamath §2.3).
		if td[0] != OpSuccess {
			// A peer that refuses our authenticator response sends Failure.
			if td[0] == OpFailure {
				s.username = ""
				return s.finish("peer rejected the server's authenticator response"), nil
			}
			return Step{}, fmt.Errorf("%w: opcode %d after Success", ErrMalformed, td[0])
		}
		s.state = stateDone
		return Step{Done: true, Result: Result{Success: true, Username: s.username, Keys: s.keys}}, nil
	case stateFailureSent:
		switch td[0] {
		case OpFailure:
			return s.finish(s.reason), nil
		case OpResponse:
			// A retry (R=1): a new Response to the challenge the Failure
			// carried; RFC 2759 §6 has it one identifier on.
			if s.retriesLeft < 0 {
				return Step{}, fmt.Errorf("%w: Response after a final Failure", ErrMalformed)
			}
			r, err := ParseResponse(td)
			if err != nil {
				return Step{}, err
			}
			if r.ID != s.id && r.ID != s.id+1 {
				return Step{}, fmt.Errorf("%w: MS-CHAPv2-ID %d on retry, want %d", ErrMalformed, r.ID, s.id+1)
			}
			s.id = r.ID
			return s.verify(ctx, r)
		}
		return Step{}, fmt.Errorf("%w: opcode %d after Failure", ErrMalformed, td[0])
	case stateDone:
		return Step{}, errors.New("mschapv2: the conversation is over")
	}
	return Step{}, errors.New("mschapv2: Handle before Start")
}

func (s *Server) finish(reason string) Step {
	s.state = stateDone
	return Step{Done: true, Result: Result{Username: s.username, Reason: reason}}
}

// verify checks a Response against the stored hash and answers Success or
// Failure.
func (s *Server) verify(ctx context.Context, r Response) (Step, error) {
	name := StripDomain(r.Name)
	s.username = name
	if s.cfg.Identity != "" && StripDomain(s.cfg.Identity) != name {
		return s.fail(fmt.Sprintf("name %q in the response is not the identity %q", name, StripDomain(s.cfg.Identity)))
	}
	ok, keys, authResp, reason := check(ctx, s.cfg.Lookup, name, s.authChallenge, r)
	if !ok {
		return s.fail(reason)
	}
	s.keys = keys
	s.state = stateSuccessSent
	msg := authResp + " M=OK"
	p := packet(OpSuccess, s.id, len(msg))
	return Step{Reply: append(p, msg...)}, nil
}

// check verifies one NT-Response. It computes a response even for an
// unknown name, so a wrong name and a wrong password take the same time.
func check(ctx context.Context, lookup Lookup, name string, authChallenge [16]byte, r Response) (ok bool, keys Keys, authResp, reason string) {
	if r.Flags != 0 {
		return false, Keys{}, "", fmt.Sprintf("flags %#x in the response, want 0", r.Flags)
	}
	nt, found, err := lookup(ctx, name)
	if err != nil {
		return false, Keys{}, "", fmt.Sprintf("looking up %q: %v", name, err)
	}
	want := GenerateNTResponse(authChallenge, r.PeerChallenge, name, nt)
	match := subtle.ConstantTimeCompare(want[:], r.NTResponse[:]) == 1
	switch {
	case !found:
		return false, Keys{}, "", fmt.Sprintf("no Wi-Fi password for %q (unknown, left, revoked or not set)", name)
	case !match:
		return false, Keys{}, "", fmt.Sprintf("wrong password for %q", name)
	}
	return true, ServerKeys(nt, r.NTResponse), GenerateAuthenticatorResponse(nt, r.NTResponse, r.PeerChallenge, authChallenge, name), ""
}

// fail sends a Failure request: E=691 (authentication failure), R=1 with a
// fresh challenge while retries are left, else R=0.
func (s *Server) fail(reason string) (Step, error) {
	s.reason = reason
	s.state = stateFailureSent
	retry := 0
	if s.retriesLeft > 0 {
		retry = 1
		if err := s.newChallenge(); err != nil {
			return Step{}, err
		}
	}
	s.retriesLeft--
	msg := FailureMessage(retry == 1, s.authChallenge)
	p := packet(OpFailure, s.id, len(msg))
	return Step{Reply: append(p, msg...)}, nil
}

// FailureMessage is the text of an MSCHAPv2 Failure (RFC 2759 §6):
// "E=691 R=0 C=<32 hex digits> V=3 M=...". C is the challenge a retry
// must answer; with retry false it is still sent, as Windows expects.
func FailureMessage(retry bool, challenge [16]byte) string {
	r := "0"
	if retry {
		r = "1"
	}
	return "E=691 R=" + r + " C=" + strings.ToUpper(hex.EncodeToString(challenge[:])) + " V=3 M=Authentication failed"
}
