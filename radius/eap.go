package radius

// WPA-Enterprise: the EAP conversation (package radius/eap) carried in
// Access-Request/Challenge, and what a successful login may do, decided
// here as for PAP: the person must be active and allowed on the SSID's
// segment, and the Accept carries that segment's VLAN and the MPPE keys.

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/gatehouse-net/gatehouse/radius/eap"
)

const (
	typeEAPMessage = 79
	vendorMS       = 311
	msMPPESendKey  = 16
	msMPPERecvKey  = 17
	dropEAP        = "eap"
	dropEAPOver    = "eap_overload"
)

// newEAP builds the EAP engine from o, with this server's people behind
// the password checks the caller left unset.
func (s *Server) newEAP(o eap.Options) (*eap.Engine, error) {
	if o.CheckPassword == nil && s.o.Identities != nil {
		o.CheckPassword = s.checkPassword
	}
	if o.CredentialVersion == nil && s.o.Identities != nil {
		v, err := s.credentialVersions()
		if err != nil {
			return nil, err
		}
		o.CredentialVersion = v
	}
	if o.NTHash != nil && s.nt != nil && s.o.Identities != nil {
		// MSCHAPv2 is on (the caller gave a lookup) and the people can
		// open the sealed NT hashes their identities carry: answer from
		// the identity cache, which the people change log keeps current
		// (migration 0095 logs every NT hash written or removed), instead
		// of the caller's read of the store per login.
		o.NTHash = s.ntHash
	}
	if o.Logger == nil {
		o.Logger = s.log
	}
	if o.Now == nil {
		o.Now = s.now
	}
	return eap.New(o)
}

// ntHash is the EAP engine's NT hash lookup (Options.NTHash) through the
// identity cache: the sealed hash comes from memory (or the store, on a
// miss) and is opened for this login only; the opened hash is never kept.
// An unknown name is "not found", as the store-reading lookup answers it.
func (s *Server) ntHash(ctx context.Context, user string) (nt [16]byte, found bool, err error) {
	if user == "" {
		return nt, false, nil
	}
	s.mayReadPerson(user) // inline.go
	id, err := s.o.Identities.Lookup(ctx, user)
	if errors.Is(err, ErrNoIdentity) {
		return nt, false, nil
	}
	if err != nil {
		return nt, false, err
	}
	return s.nt.OpenNTHash(id)
}

// checkPassword is TTLS-PAP's check: the person must be active and have a
// Wi-Fi password, and the password must match its argon2id hash.
func (s *Server) checkPassword(ctx context.Context, user, pw string) error {
	s.mayReadPerson(user) // inline.go
	id, err := s.o.Identities.Lookup(ctx, user)
	if err != nil {
		return fmt.Errorf("unknown user or lookup failed: %w", err)
	}
	if !id.Active {
		return errors.New("the person is not active (left, revoked or suspended)")
	}
	if id.PasswordHash == "" {
		return errors.New("no Wi-Fi password set")
	}
	if s.passwordCached(user, id, pw) {
		// Verified within the credential cache's ttl: decided here, where
		// asking first and then verifyPassword computed the cache's keyed
		// digest of pw twice.
		return nil
	}
	// argon2id (or a wait for another login's): this round may be
	// running in a read loop (inline.go); let another read meanwhile.
	s.mayBlock()
	ok, err := s.verifyPassword(ctx, user, id, pw)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("wrong password")
	}
	return nil
}

// credentialVersions returns the EAP engine's Options.CredentialVersion:
// a keyed digest of the person's stored argon2id hash and sealed NT hash.
// Every password set, change or reset stores a new argon2id hash (a new
// salt) and a new NT hash, and removing the NT hashes changes the second,
// so a resumable login is refused exactly when its credentials changed.
// Keyed with a random per-process key so the value, kept in memory for
// hours with each resumable login, says nothing about either hash; a
// restart forgets every binding anyway.
func (s *Server) credentialVersions() (func(context.Context, string) (string, error), error) {
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return nil, fmt.Errorf("credential version key: %w", err)
	}
	return func(ctx context.Context, user string) (string, error) {
		s.mayReadPerson(user) // inline.go
		id, err := s.o.Identities.Lookup(ctx, user)
		if err != nil {
			return "", fmt.Errorf("looking up the person for their credential version: %w", err)
		}
		m := hmac.New(sha256.New, key[:])
		m.Write([]byte(id.PasswordHash))
		// The sealed NT hash too (when the source carries it): removing
		// the NT hashes (MSCHAPv2 turned off, ClearWiFiNTHashes) leaves
		// the argon2id hash as it was, and a PEAP login resumed past that
		// would skip the inner login that can no longer succeed.
		m.Write([]byte{0})
		m.Write(id.NTSealed)
		return string(m.Sum(nil)[:16]), nil
	}, nil
}

// eapAccess runs one EAP round of an Access-Request.
func (s *Server) eapAccess(ctx context.Context, r *request) outcome {
	if s.eap == nil {
		return s.reject(r, "EAP asked for, but no EAP method is configured")
	}
	// The EAP-Message attributes joined. A message in one attribute (most
	// rounds: the ClientHello, the key exchange, the inner messages) is
	// used as it is, without a copy: the engine keeps nothing of it
	// beyond the call (it copies what it keeps: the reassembled TLS data,
	// the outer identity, the last response for retransmissions).
	var msg []byte
	parts := 0
	for _, a := range r.pkt.Attributes {
		if a.Type == typeEAPMessage {
			if parts++; parts == 1 {
				msg = a.Attribute
			} else {
				if parts == 2 {
					msg = append([]byte(nil), msg...)
				}
				msg = append(msg, a.Attribute...)
			}
		}
	}
	mtu, _ := rfc2865.FramedMTU_Lookup(r.pkt)
	// The State as it is in the request (the engine only compares it),
	// not State_Get's copy.
	state := attrValue(r.pkt, rfc2865.State_Type)
	client := ""
	if len(state) == 0 {
		// The engine reads Client only on a login's first round (its
		// per-client bound): the later rounds make no string for it.
		if cs := attrValue(r.pkt, rfc2865.CallingStationID_Type); len(cs) != 0 {
			client = r.client.Name + "|" + string(cs)
		}
	}
	rep, err := s.eap.Handle(ctx, eap.Request{Client: client, State: state, Message: msg, MTU: int(mtu)})
	if err != nil {
		if errors.Is(err, eap.ErrOverload) {
			return outcome{reason: dropEAPOver}
		}
		s.log.Debug("radius: EAP round dropped", "client", r.client.Name, "user", r.user, "err", err)
		return outcome{reason: dropEAP}
	}
	switch rep.Outcome {
	case eap.Challenge:
		// Encoded by work (encodeChallenge): the same packet as a
		// Response with the EAP-Message attributes and State added.
		return outcome{challenge: true, eapMsg: rep.Message, eapState: rep.State}
	case eap.Reject:
		o := s.reject(r, "EAP: "+rep.Reason, "outer", rep.Outer, "identity", rep.Identity, "method", rep.Method, "tls", rep.Version)
		addEAP(o.reply, rep.Message)
		return o
	}
	// The login succeeded; whether this person may be on now is ours.
	fail := func(why string, kv ...any) outcome {
		o := s.reject(r, "EAP: "+why, append([]any{"outer", rep.Outer, "identity", rep.Identity, "method", rep.Method}, kv...)...)
		addEAP(o.reply, []byte{eap.CodeFailure, rep.Message[1], 0, 4})
		return o
	}
	if s.o.Identities == nil {
		return fail("no directory of people to check against")
	}
	s.mayReadPerson(rep.Identity) // inline.go
	id, err := s.o.Identities.Lookup(ctx, rep.Identity)
	if errors.Is(err, ErrNoIdentity) && rep.Method == eapTLSMethod {
		return s.eapDevice(ctx, r, rep, fail)
	}
	if err != nil {
		return fail("unknown person or lookup failed", "err", err)
	}
	if !id.Active {
		return fail("the person is not active (left, revoked or suspended)")
	}
	seg := r.asks
	if id.Segment != "" {
		if r.asks != nil && r.asks.Name != id.Segment {
			return fail("not allowed on this SSID's segment", "segment", r.asks.Name, "theirs", id.Segment)
		}
		seg = s.segs[id.Segment]
	}
	if seg == nil {
		return fail("no segment for this login")
	}
	return s.eapAccept(r, rep, seg, id.Until, id.Person, fail)
}

// eapTLSMethod is the method name the EAP engine reports for EAP-TLS.
const eapTLSMethod = "EAP-TLS"

// eapDevice decides an EAP-TLS login whose certificate names no person: a
// device certificate (pki's VerifyLogin gives its DNS name). The device is
// the one at Calling-Station-Id, and it must be approved under the
// certificate's name: a certificate copied to another machine, or a
// machine nobody approved, gets nothing. The device's approval decides its
// segment (and VLAN), as for MAC authentication.
func (s *Server) eapDevice(ctx context.Context, r *request, rep eap.Reply, fail func(string, ...any) outcome) outcome {
	if r.calling == nil {
		return fail("device certificate without a Calling-Station-Id MAC", "certificate", rep.Identity)
	}
	s.mayReadDevice(r.calling) // inline.go
	info, err := s.o.Devices.Lookup(ctx, r.calling)
	switch {
	case err != nil:
		return fail("device lookup failed", "err", err)
	case !info.Known:
		return fail("device certificate from an unknown device (neither a person nor an approved device by this name)", "certificate", rep.Identity, "mac", r.calling.String())
	case info.Blocked:
		return fail("device blocked", "mac", r.calling.String())
	case !info.Approved:
		return fail("device not approved", "mac", r.calling.String())
	case !strings.EqualFold(strings.TrimSuffix(info.Name, "."), rep.Identity):
		return fail("device certificate does not name the device at this MAC", "certificate", rep.Identity, "mac", r.calling.String(), "device", info.Name)
	}
	seg := r.asks
	if info.Segment != "" {
		seg = s.segs[info.Segment]
	}
	if seg == nil {
		return fail("approved device, but neither it nor its SSID names a segment", "mac", r.calling.String())
	}
	return s.eapAccept(r, rep, seg, info.Until, "device:"+r.calling.String(), fail)
}

// eapAccept answers a login that may go on: the Access-Accept with seg's
// VLAN, the EAP-Success, the inner identity as User-Name and the MPPE keys.
func (s *Server) eapAccept(r *request, rep eap.Reply, seg *Segment, until time.Time, who string, fail func(string, ...any) outcome) outcome {
	r.user = rep.Identity
	o := s.accept(r, seg, until, nil, s.now())
	if o.reply.Code != radius.CodeAccessAccept {
		addEAP(o.reply, []byte{eap.CodeFailure, rep.Message[1], 0, 4})
		return o
	}
	addEAP(o.reply, rep.Message)
	// The NAS accounts the session under this name, so the session names
	// the person even when the outer identity was anonymous.
	_ = rfc2865.UserName_SetString(o.reply, rep.Identity)
	if err := addMPPE(o.reply, r.pkt.Authenticator, r.client.Secret, rep.MSK); err != nil {
		return fail("encoding the MPPE keys failed", "err", err)
	}
	s.logLogin(r, rep, who, seg.Name)
	return o
}

// logLogin records a successful EAP login, one line each (every login is
// recorded), with typed attributes: no key/value pairs boxed into
// interfaces per login.
func (s *Server) logLogin(r *request, rep eap.Reply, who, segment string) {
	s.log.LogAttrs(context.Background(), slog.LevelInfo, "radius: EAP login",
		slog.String("client", r.client.Name), slog.String("outer", rep.Outer), slog.String("identity", rep.Identity),
		slog.String("person", who), slog.String("method", rep.Method), slog.String("tls", rep.Version),
		slog.Bool("resumed", rep.Resumed), slog.String("segment", segment))
}

// addEAP adds msg as EAP-Message attributes of at most 253 octets.
func addEAP(p *radius.Packet, msg []byte) {
	for part := range eap.SplitMessage(msg) {
		p.Add(typeEAPMessage, radius.Attribute(part))
	}
}

// addMPPE adds MS-MPPE-Recv-Key (the MSK's first half) and
// MS-MPPE-Send-Key (its second), each salt-encrypted as RFC 2548 2.4.2
// says, which is RFC 2868's Tunnel-Password encryption.
func addMPPE(p *radius.Packet, reqAuth [16]byte, secret, msk []byte) error {
	if len(msk) < 64 {
		return errors.New("MSK shorter than 64 octets")
	}
	for _, k := range []struct {
		typ byte
		key []byte
	}{{msMPPERecvKey, msk[:32]}, {msMPPESendKey, msk[32:64]}} {
		var salt [2]byte
		if _, err := rand.Read(salt[:]); err != nil {
			return err
		}
		salt[0] |= 0x80
		enc, err := radius.NewTunnelPassword(k.key, salt[:], secret, reqAuth[:])
		if err != nil {
			return err
		}
		inner := append([]byte{k.typ, byte(2 + len(enc))}, enc...)
		vsa, err := radius.NewVendorSpecific(vendorMS, inner)
		if err != nil {
			return err
		}
		p.Add(rfc2865.VendorSpecific_Type, vsa)
	}
	return nil
}
