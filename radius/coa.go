package radius

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2869"
	"layeh.com/radius/rfc3576"

	"github.com/gatehouse-net/gatehouse/store"
)

// The outcomes of a Disconnect/CoA request.
const (
	CoAAck     = "ack"
	CoANak     = "nak"
	CoATimeout = "timeout"
	CoAError   = "error" // could not be sent (no such NAS, socket error)
)

// The kinds of dynamic-authorization request (CoAResult.Kind).
const (
	KindDisconnect = "disconnect" // Disconnect-Request (RFC 5176 code 40)
	KindCoA        = "coa"        // CoA-Request (code 43)
)

// CoAResult is what a NAS answered to one Disconnect-Request or CoA-Request.
type CoAResult struct {
	Kind       string // KindDisconnect or KindCoA
	NAS        string
	SessionID  int64 // our session row
	AcctID     string
	MAC        string
	At         time.Time
	Outcome    string
	ErrorCause uint32 // the NAK's Error-Cause (RFC 5176 3.5); 0 when none
	Tries      int
	Err        string
}

// Disconnect asks the NAS of every open session of mac to end it. actor is
// who asked (audited); each session's result is returned and recorded.
// Revoking, blocking or expiring something calls this; whatever the NAS
// answers, the caller's own backstop (nftables) still cuts the device.
func (s *Server) Disconnect(ctx context.Context, actor string, mac net.HardwareAddr) ([]CoAResult, error) {
	return s.everyOpenSession(ctx, actor, mac, nil)
}

// everyOpenSession sends a Disconnect-Request (ch nil) or a CoA-Request
// for every open session of mac.
func (s *Server) everyOpenSession(ctx context.Context, actor string, mac net.HardwareAddr, ch *Change) ([]CoAResult, error) {
	what := "disconnect"
	if ch != nil {
		what = "change of authorization"
	}
	if s.o.Sessions == nil {
		return nil, fmt.Errorf("radius: %s: no session store", what)
	}
	open, err := s.o.Sessions.RADIUSSessions(ctx, store.SessionFilter{OpenOnly: true, MAC: mac})
	if err != nil {
		return nil, fmt.Errorf("radius: %s %s: %w", what, mac, err)
	}
	var out []CoAResult
	for _, sess := range open {
		out = append(out, s.dynamicAuth(ctx, actor, sess, ch))
	}
	return out, nil
}

// DisconnectSession asks the NAS holding session id to end it.
func (s *Server) DisconnectSession(ctx context.Context, actor string, id int64) (CoAResult, error) {
	if s.o.Sessions == nil {
		return CoAResult{}, errors.New("radius: disconnect: no session store")
	}
	sess, err := s.o.Sessions.RADIUSSession(ctx, id)
	if err != nil {
		return CoAResult{}, fmt.Errorf("radius: disconnect session %d: %w", id, err)
	}
	return s.disconnect(ctx, actor, sess), nil
}

func (s *Server) disconnect(ctx context.Context, actor string, sess store.RADIUSSession) CoAResult {
	return s.dynamicAuth(ctx, actor, sess, nil)
}

// Change is what a CoA-Request changes in a live session; a zero field
// is left as it is.
type Change struct {
	// SessionTimeout is the session's new time left, sent with
	// Termination-Action RADIUS-Request so the NAS asks again at its end.
	SessionTimeout time.Duration
	// VLAN moves the session to this VLAN (RFC 3580 tunnel attributes,
	// untagged as in our Access-Accept).
	VLAN int
}

func (c Change) empty() bool { return c.SessionTimeout <= 0 && c.VLAN <= 0 }

// ChangeAuthorization sends a CoA-Request (RFC 5176) to the NAS of every
// open session of mac, for an authorisation that changed without ending
// access (a shorter or longer time left, another VLAN after approval),
// identifying each session as Disconnect does. Each result is recorded per
// NAS and audited as "session.coa". A NAK leaves the session as the NAS
// had it: callers that must cut access disconnect instead.
func (s *Server) ChangeAuthorization(ctx context.Context, actor string, mac net.HardwareAddr, ch Change) ([]CoAResult, error) {
	if ch.empty() {
		return nil, errors.New("radius: change of authorization: nothing to change")
	}
	return s.everyOpenSession(ctx, actor, mac, &ch)
}

// dynamicAuth sends a Disconnect-Request (ch nil) or a CoA-Request for
// sess, and records, counts, logs and audits what the NAS answered.
func (s *Server) dynamicAuth(ctx context.Context, actor string, sess store.RADIUSSession, ch *Change) CoAResult {
	kind, what, action := KindDisconnect, "Disconnect-Request", "session.disconnect"
	if ch != nil {
		kind, what, action = KindCoA, "CoA-Request", "session.coa"
	}
	r := CoAResult{Kind: kind, NAS: sess.NAS, SessionID: sess.ID, AcctID: sess.AcctSessionID, At: s.now(), Outcome: CoAError}
	if sess.MAC != nil {
		r.MAC = sess.MAC.String()
	}
	c := s.byName[sess.NAS]
	switch {
	case c == nil:
		r.Err = "the NAS is no longer a configured client"
	case !sess.NASAddr.IsValid():
		r.Err = "the session has no NAS address"
	default:
		r = s.sendDAS(ctx, c, sess, r, ch)
	}
	s.nas.coa(r)
	s.metrics.coa.WithLabelValues(clientLabel(c), r.Outcome).Inc()
	s.log.Info("radius: "+what, "nas", r.NAS, "session", r.AcctID, "mac", r.MAC, "outcome", r.Outcome,
		"error_cause", r.ErrorCause, "tries", r.Tries, "err", r.Err)
	if s.o.Auditor != nil && actor != "" {
		after, _ := json.Marshal(r)
		if _, err := s.o.Auditor.Audit(ctx, store.AuditEntry{Actor: actor, Action: action,
			Object: "session:" + strconv.FormatInt(sess.ID, 10), After: string(after)}); err != nil {
			s.log.Error("radius: auditing a "+what, "err", err)
		}
	}
	return r
}

func clientLabel(c *Client) string {
	if c == nil {
		return unknownClient
	}
	return c.Name
}

// sendDAS sends the Disconnect-Request (ch nil) or the CoA-Request
// carrying ch, retransmitting the same packet after each of CoATimeouts
// (RFC 5176 2.3 keeps the identifier and authenticator across
// retransmissions).
func (s *Server) sendDAS(ctx context.Context, c *Client, sess store.RADIUSSession, r CoAResult, ch *Change) CoAResult {
	var id [1]byte
	if _, err := rand.Read(id[:]); err != nil {
		r.Err = err.Error()
		return r
	}
	code, ack, nak := radius.CodeDisconnectRequest, radius.CodeDisconnectACK, radius.CodeDisconnectNAK
	if ch != nil {
		code, ack, nak = radius.CodeCoARequest, radius.CodeCoAACK, radius.CodeCoANAK
	}
	p := &radius.Packet{Code: code, Identifier: id[0], Secret: c.Secret}
	if sess.AcctSessionID != "" {
		_ = rfc2866.AcctSessionID_SetString(p, sess.AcctSessionID)
	}
	if sess.MAC != nil {
		// The IEEE 802 form of RFC 3580 3.21, which hostapd compares.
		_ = rfc2865.CallingStationID_SetString(p, dashedMAC(sess.MAC))
	}
	// User-Name only when it names someone: a MAC there says nothing the
	// Calling-Station-Id does not, and hostapd compares User-Name with the
	// port's EAP identity, which a MAC-named accounting session lacks.
	if _, isMAC := ParseMAC(sess.Username); sess.Username != "" && !isMAC {
		_ = rfc2865.UserName_SetString(p, sess.Username)
	}
	_ = rfc2869.EventTimestamp_Set(p, s.now())
	if ch != nil {
		if ch.SessionTimeout > 0 {
			_ = rfc2865.SessionTimeout_Set(p, rfc2865.SessionTimeout((ch.SessionTimeout+time.Second-1)/time.Second))
			_ = rfc2865.TerminationAction_Set(p, terminationRADIUSReq)
		}
		if ch.VLAN > 0 {
			p.Add(64, radius.Attribute{0, 0, 0, tunnelTypeVLAN})
			p.Add(65, radius.Attribute{0, 0, 0, tunnelMediumIEEE802})
			p.Add(81, radius.Attribute(strconv.Itoa(ch.VLAN)))
		}
	}
	b, err := encodeCoARequest(p, c.Secret)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(sess.NASAddr, uint16(c.CoAPort)))
	conn, err := net.DialUDP("udp", nil, to)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	defer conn.Close()
	buf := make([]byte, maxPacket+1)
	for _, wait := range s.o.CoATimeouts {
		r.Tries++
		if _, err := conn.Write(b); err != nil {
			r.Err = err.Error()
			return r
		}
		deadline := time.Now().Add(wait)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		_ = conn.SetReadDeadline(deadline)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				// Timed out, or refused (ICMP): either way the NAS gets
				// the whole wait before the retransmission.
				if left := time.Until(deadline); left > 0 {
					select {
					case <-ctx.Done():
					case <-time.After(left):
					}
				}
				r.Err = err.Error()
				break
			}
			resp, maOff, ferr := frame(buf[:n])
			if ferr != nil || resp[1] != p.Identifier || !radius.IsAuthenticResponse(resp, b, c.Secret) {
				continue // not the answer to this request
			}
			if maOff >= 0 && !validMA(resp, maOff, c.Secret, b[4:20]) {
				continue
			}
			q, err := radius.Parse(resp, c.Secret)
			if err != nil {
				continue
			}
			r.Err = ""
			switch q.Code {
			case ack:
				r.Outcome, r.Err = CoAAck, ""
			case nak:
				r.Outcome, r.Err = CoANak, ""
				if v, err := rfc3576.ErrorCause_Lookup(q); err == nil {
					r.ErrorCause = uint32(v)
					r.Err = v.String()
				}
			default:
				continue
			}
			return r
		}
		if ctx.Err() != nil {
			break
		}
	}
	r.Outcome = CoATimeout
	return r
}

// dashedMAC is the "AA-BB-CC-DD-EE-FF" form.
func dashedMAC(m net.HardwareAddr) string {
	const hexd = "0123456789ABCDEF"
	b := make([]byte, 0, 17)
	for i, x := range m {
		if i > 0 {
			b = append(b, '-')
		}
		b = append(b, hexd[x>>4], hexd[x&15])
	}
	return string(b)
}

// MoveToSegment is what a device moved to another segment needs: a
// CoA-Request to the NAS of each of its open sessions carrying that
// segment's VLAN, so the device changes network without losing its
// association. A session the NAS did not move (CoA-NAK: many NAS, hostapd
// among them, refuse a VLAN in a CoA with Error-Cause 401; or no answer) is
// ended with a Disconnect-Request instead, so the device authenticates again
// and MAB gives it the new VLAN. A segment with no VLAN, or "" (the SSID
// decides), cannot be named in a CoA: those sessions are disconnected at
// once. Every request's result is returned, recorded per NAS and audited.
func (s *Server) MoveToSegment(ctx context.Context, actor string, mac net.HardwareAddr, segment string) ([]CoAResult, error) {
	vlan := 0
	if segment != "" {
		seg := s.segs[segment]
		if seg == nil {
			return nil, fmt.Errorf("radius: move %s: no segment %q", mac, segment)
		}
		vlan = seg.VLAN
	}
	if vlan <= 0 {
		return s.Disconnect(ctx, actor, mac)
	}
	res, err := s.ChangeAuthorization(ctx, actor, mac, Change{VLAN: vlan})
	if err != nil {
		return nil, err
	}
	out := res
	for _, r := range res {
		if r.Outcome == CoAAck {
			continue
		}
		d, err := s.DisconnectSession(ctx, actor, r.SessionID)
		if err != nil {
			return out, err
		}
		out = append(out, d)
	}
	return out, nil
}

// MACReauthorizer adapts the server to package people's Reauthorizer:
// a device moved to another segment is moved in its live sessions
// (MoveToSegment). The error names every session left where it was.
type MACReauthorizer struct {
	Server *Server
	Actor  string
}

// MoveSegment moves mac's live sessions to segment.
func (m MACReauthorizer) MoveSegment(ctx context.Context, mac net.HardwareAddr, segment string) error {
	res, err := m.Server.MoveToSegment(ctx, m.Actor, mac, segment)
	if err != nil {
		return err
	}
	// Per session, the last answer decides: a NAKed CoA followed by an
	// acknowledged Disconnect moved the device (by re-authentication).
	last := map[int64]CoAResult{}
	for _, r := range res {
		last[r.SessionID] = r
	}
	var errs []error
	for _, r := range last {
		if r.Outcome != CoAAck {
			errs = append(errs, fmt.Errorf("radius: %s neither moved nor ended session %s: %s %s", r.NAS, r.AcctID, r.Outcome, r.Err))
		}
	}
	return errors.Join(errs...)
}

// MACDisconnector adapts the server to callers that only need "end this
// device's sessions" (package people's Disconnector): each result is
// recorded per NAS and audited as Actor; the error names every session the
// NAS did not acknowledge.
type MACDisconnector struct {
	Server *Server
	Actor  string
}

// Disconnect ends mac's live sessions.
func (d MACDisconnector) Disconnect(ctx context.Context, mac net.HardwareAddr) error {
	res, err := d.Server.Disconnect(ctx, d.Actor, mac)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range res {
		if r.Outcome != CoAAck {
			errs = append(errs, fmt.Errorf("radius: %s did not acknowledge ending session %s: %s %s", r.NAS, r.AcctID, r.Outcome, r.Err))
		}
	}
	return errors.Join(errs...)
}
