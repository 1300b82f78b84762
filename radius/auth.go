package radius

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/gatehouse-net/gatehouse/alert/finding"
	"github.com/gatehouse-net/gatehouse/password"
	"github.com/gatehouse-net/gatehouse/policy"
)

// Attribute numbers and values used in replies.
const (
	tunnelTypeVLAN       = 13 // RFC 3580
	tunnelMediumIEEE802  = 6
	terminationRADIUSReq = 1 // Termination-Action: re-authenticate at Session-Timeout
	vendorCisco          = 9
	ciscoAVPair          = 1
	vendorAruba          = 14823
	arubaMPSKPassphrase  = 44 // salt-encrypted like Tunnel-Password
)

// request is the part of an Access-Request the decisions use.
type request struct {
	client  *Client
	pkt     *radius.Packet
	user    string
	calling net.HardwareAddr // Calling-Station-Id as a MAC
	ap      net.HardwareAddr
	ssid    string
	asks    *Segment // the SSID's segment; nil when unknown
	// inline: the read loop is deciding (inline.go), which must not wait
	// for argon2id: pap hands the request back instead.
	inline bool
}

func (s *Server) access(ctx context.Context, c *Client, p *radius.Packet, inline bool) outcome {
	r := request{client: c, pkt: p, user: rfc2865.UserName_GetString(p), inline: inline}
	// Read from the attributes' octets: the strings GetString makes were
	// two allocations per request, and the MACs share one.
	calling, hasCalling := parseMAC6Bytes(attrValue(p, rfc2865.CallingStationID_Type))
	ap, hasAP, ssid := splitCalledStationBytes(attrValue(p, rfc2865.CalledStationID_Type))
	if hasCalling || hasAP {
		macs := make(net.HardwareAddr, 12)
		if hasCalling {
			r.calling = macs[0:6:6]
			copy(r.calling, calling[:])
		}
		if hasAP {
			r.ap = macs[6:12:12]
			copy(r.ap, ap[:])
		}
	}
	r.asks = s.ssid[string(ssid)] // no string is made for a map index
	r.ssid = ssidName(r.asks, ssid)
	if r.asks == nil && r.ssid == "" && c.Segment != "" {
		// A switch port has no SSID: the client's own segment stands in.
		r.asks = s.segs[c.Segment]
	}
	if _, ok := p.Lookup(typeEAPMessage); ok {
		return s.eapAccess(ctx, &r)
	}
	if mac, ok := s.isMAB(&r); ok {
		return s.mab(ctx, &r, mac)
	}
	return s.pap(ctx, &r)
}

// attrValue is the first value of attribute t in p, nil when none
// (Packet.Lookup without its second result).
func attrValue(p *radius.Packet, t radius.Type) []byte {
	a, _ := p.Lookup(t)
	return a
}

// ssidName is ssid as a string: the configured name seg serves when it
// is one of them (no allocation), else a copy.
func ssidName(seg *Segment, ssid []byte) string {
	if len(ssid) == 0 {
		return ""
	}
	if seg != nil {
		for _, name := range seg.SSIDs {
			if name == string(ssid) {
				return name
			}
		}
	}
	return string(ssid)
}

// isMAB recognises MAC authentication: the User-Name is a MAC (in any
// vendor's form), the same as Calling-Station-Id when that is given, and the
// password, if any, is the MAC again (as hostapd and most switches send it).
func (s *Server) isMAB(r *request) (net.HardwareAddr, bool) {
	key, ok := parseMAC6(r.user)
	if !ok {
		return nil, false
	}
	var mac net.HardwareAddr
	if r.calling != nil {
		if !bytes.Equal(r.calling, key[:]) {
			return nil, false
		}
		mac = r.calling // the same MAC: no second copy
	} else {
		mac = net.HardwareAddr(key[:]) // escapes: its own allocation
	}
	if a, has := r.pkt.Lookup(rfc2865.UserPassword_Type); has {
		// Decrypted into the stack, not through UserPassword_LookupString
		// (three allocations, on every MAB request).
		var buf [maxUserPassword]byte
		n, ok := decryptUserPassword(&buf, a, r.pkt.Secret, r.pkt.Authenticator[:])
		if !ok {
			return nil, false
		}
		pm, isMAC := parseMAC6(string(buf[:n]))
		clear(buf[:])
		if n > 0 && (!isMAC || !bytes.Equal(pm[:], mac)) {
			return nil, false
		}
	}
	return mac, true
}

func (s *Server) reject(r *request, why string, kv ...any) outcome {
	s.log.Info("radius: Access-Reject", append([]any{"client", r.client.Name, "user", r.user, "ssid", r.ssid, "why", why}, kv...)...)
	return outcome{reply: r.pkt.Response(radius.CodeAccessReject), delay: true}
}

func (s *Server) mab(ctx context.Context, r *request, mac net.HardwareAddr) outcome {
	info, err := s.o.Devices.Lookup(ctx, mac)
	if err != nil {
		// A lookup failure is neither an approval nor a stranger: fail
		// closed and raise nothing.
		return s.reject(r, "device lookup failed", "err", err)
	}
	if info.Blocked {
		return s.reject(r, "device blocked")
	}
	now := s.now()
	if info.Approved {
		seg := r.asks
		if info.Segment != "" {
			seg = s.segs[info.Segment]
		}
		if seg == nil {
			return s.reject(r, "approved device, but neither it nor its SSID names a segment")
		}
		var keys []string
		switch {
		case s.o.Keys == nil:
		case info.SealedKeyRead && info.SealedKey == nil && len(info.SealedOldKeys) == 0:
		case info.SealedKeyRead:
			// Several valid keys (an overlap after a rotation) go out
			// as several Tunnel-Password attributes (RFC 2868 3.5).
			if keys, err = s.o.Keys.OpenAll(mac, info.SealedKey, info.SealedOldKeys, now); err != nil {
				return s.reject(r, "opening its personal keys failed", "err", err)
			}
		default:
			if keys, err = s.o.Keys.Keys(ctx, mac); err != nil {
				return s.reject(r, "reading its personal key failed", "err", err)
			}
		}
		return s.accept(r, seg, info.Until, keys, now)
	}
	if o, done := s.handshakeKey(ctx, r, mac, now); done {
		return o
	}
	seg := r.asks
	if seg == nil {
		return s.reject(r, "unknown device on an SSID no segment serves")
	}
	mode := seg.Unknown
	if !mode.Welcomes() && s.alerted.allow(seg.Name+"|"+mac.String(), now) {
		apText := ""
		if r.ap != nil {
			apText = r.ap.String()
		}
		s.o.Findings.Offer(finding.Finding{Time: now, Source: finding.SourceRADIUS, Class: finding.ClassUnapprovedDevice,
			Segment: seg.Name, SrcMAC: append(net.HardwareAddr(nil), mac...), Proto: "radius", Detail: finding.DetailNotApproved,
			Evidence: fmt.Sprintf("RADIUS MAC authentication: device %s asked %s (access point %s, SSID %q) to join %s; nobody has approved it, and the segment's unknown_devices is %s",
				mac, r.client.Name, apText, r.ssid, seg.Name, mode)})
	}
	switch mode {
	case "", policy.UnknownAllow, policy.UnknownAlert:
		return s.accept(r, seg, time.Time{}, nil, now)
	case policy.UnknownQuarantine:
		if s.portal == nil {
			return s.reject(r, "quarantine asked for, but no segment has the portal")
		}
		return s.accept(r, s.portal, time.Time{}, nil, now)
	}
	return s.reject(r, "unknown device on a segment that denies strangers", "segment", seg.Name)
}

func (s *Server) pap(ctx context.Context, r *request) outcome {
	// Decrypted into the stack, as isMAB does, and copied once into the
	// string the checks take (UserPassword_LookupString: two copies and
	// three allocations per re-authentication). The same checks: a value
	// of whole 16-octet blocks, plaintext up to its first zero octet.
	var buf [maxUserPassword]byte
	a, _ := r.pkt.Lookup(rfc2865.UserPassword_Type)
	n, ok := decryptUserPassword(&buf, a, r.pkt.Secret, r.pkt.Authenticator[:])
	pw := string(buf[:n])
	clear(buf[:])
	if !ok || pw == "" || r.user == "" {
		return s.reject(r, "neither MAB nor PAP")
	}
	if s.o.Identities == nil {
		return s.reject(r, "PAP: no directory of people to check against")
	}
	id, err := s.o.Identities.Lookup(ctx, r.user)
	if err != nil {
		return s.reject(r, "PAP: unknown user or lookup failed", "err", err)
	}
	if !id.Active || id.PasswordHash == "" {
		return s.reject(r, "PAP: inactive or no Wi-Fi password")
	}
	if r.inline {
		if !s.passwordCached(r.user, id, pw) {
			// Not the password verified a moment ago: argon2id, or
			// waiting for another login's, is a worker's job.
			return outcome{handoff: true}
		}
	} else if ok, err := s.verifyPassword(ctx, r.user, id, pw); err != nil {
		return outcome{reason: dropOverload}
	} else if !ok {
		return s.reject(r, "PAP: wrong password")
	}
	seg := r.asks
	if id.Segment != "" {
		if r.asks != nil && r.asks.Name != id.Segment {
			return s.reject(r, "PAP: not allowed on this SSID's segment", "segment", r.asks.Name, "theirs", id.Segment)
		}
		seg = s.segs[id.Segment]
	}
	if seg == nil {
		return s.reject(r, "PAP: no segment for this login")
	}
	return s.accept(r, seg, id.Until, nil, s.now())
}

// passwordCached is verifyPassword's first step alone: pw is the password
// verified against id's hash within the credential cache's ttl.
func (s *Server) passwordCached(user string, id Identity, pw string) bool {
	who := id.Person
	if who == "" {
		who = "user:" + user
	}
	if !s.creds.verified(who, id.PasswordHash, pw, s.now()) {
		return false
	}
	s.metrics.passwordCached()
	return true
}

// verifyPassword checks pw against id's argon2id hash, or against the
// credential cache when the same password verified against the same hash
// a moment ago. It fails only when ctx ends while waiting for a turn.
func (s *Server) verifyPassword(ctx context.Context, user string, id Identity, pw string) (bool, error) {
	who := id.Person
	if who == "" {
		who = "user:" + user
	}
	now := s.now()
	if s.creds.verified(who, id.PasswordHash, pw, now) {
		s.metrics.passwordCached()
		return true, nil
	}
	done, ok := s.creds.turn(ctx, who)
	if !ok {
		return false, ctx.Err()
	}
	defer done()
	if s.creds.verified(who, id.PasswordHash, pw, now) {
		// Verified by the login we waited for.
		s.metrics.passwordCached()
		return true, nil
	}
	// Each argon2id verification takes password.HashMemory and a core
	// for a moment: a few at a time, whatever the bound on requests in
	// flight.
	select {
	case s.hashSem <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	ok, err := password.Verify(id.PasswordHash, pw)
	<-s.hashSem
	s.metrics.passwords.WithLabelValues("argon2id").Inc()
	if err != nil || !ok {
		return false, nil
	}
	s.creds.remember(who, id.PasswordHash, pw, now)
	return true, nil
}

// accept builds the Access-Accept: the segment's VLAN (RFC 3580 3.31),
// the personal keys, Session-Timeout clamped to until, and the interim
// interval.
func (s *Server) accept(r *request, seg *Segment, until time.Time, keys []string, now time.Time) outcome {
	// The usual Accept (no personal keys) and room for its attributes in
	// one allocation: Message-Authenticator goes first when encoded, then
	// these; growing the list from nil was four allocations.
	var (
		resp   *radius.Packet
		pooled *acceptPacket
	)
	if len(keys) == 0 {
		a := acceptPackets.Get().(*acceptPacket)
		pooled = a
		a.p = radius.Packet{Code: radius.CodeAccessAccept, Identifier: r.pkt.Identifier, Authenticator: r.pkt.Authenticator, Secret: r.pkt.Secret}
		a.p.Attributes = a.attrs[:0]
		resp = &a.p
	} else {
		resp = r.pkt.Response(radius.CodeAccessAccept)
		resp.Attributes = make(radius.Attributes, 0, 8+5*len(keys))
	}
	if seg.VLAN > 0 {
		// Untagged (tag 0) forms, as FreeRADIUS sends them: every NAS
		// vendor reads these. The same attributes every time, made once
		// (replies are only read after this: encoded, or an attribute
		// replaced by another with Set).
		resp.Attributes = append(resp.Attributes, avpTunnelTypeVLAN, avpTunnelMedium802, s.vlanAVP(seg))
	}
	if !until.IsZero() {
		left := until.Sub(now)
		if left <= 0 {
			return s.reject(r, "access has ended", "until", until)
		}
		secs := uint32((left + time.Second - 1) / time.Second)
		_ = rfc2865.SessionTimeout_Set(resp, rfc2865.SessionTimeout(secs))
		_ = rfc2865.TerminationAction_Set(resp, terminationRADIUSReq)
	}
	resp.Attributes = append(resp.Attributes, s.interimAVP)
	for _, k := range keys {
		if err := addKey(resp, r.pkt.Authenticator, r.client.Secret, k); err != nil {
			s.log.Error("radius: adding a personal key", "client", r.client.Name, "err", err)
			return s.reject(r, "personal key could not be encoded")
		}
	}
	// Debug, not Info: an Accept is the common case, one per login per
	// device, and the daemon's Info log line per request cost more CPU than
	// the decision (bench/radius.sh); who is on is in the sessions table.
	// Asked first: the arguments alone (boxed into interfaces) were four
	// allocations per Accept with Debug off.
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("radius: Access-Accept", "client", r.client.Name, "user", r.user, "ssid", r.ssid, "segment", seg.Name, "vlan", seg.VLAN, "keys", len(keys))
	}
	return outcome{reply: resp, pooled: pooled}
}

// acceptPacket is an Access-Accept without personal keys and room for its
// attributes (VLAN's three, Session-Timeout, Termination-Action, the
// interim interval): Packet.Response and the list were two allocations.
type acceptPacket struct {
	p     radius.Packet
	attrs [8]*radius.AVP
}

// acceptPackets are acceptPackets whose replies have been encoded
// (Server.work gives them back): nothing else keeps one.
var acceptPackets = sync.Pool{New: func() any { return new(acceptPacket) }}

// The Tunnel-Type and Tunnel-Medium-Type of every Accept with a VLAN.
var (
	avpTunnelTypeVLAN  = &radius.AVP{Type: 64, Attribute: radius.Attribute{0, 0, 0, tunnelTypeVLAN}}
	avpTunnelMedium802 = &radius.AVP{Type: 65, Attribute: radius.Attribute{0, 0, 0, tunnelMediumIEEE802}}
)

// vlanAVP is seg's Tunnel-Private-Group-ID: made in New for the
// configured segments.
func (s *Server) vlanAVP(seg *Segment) *radius.AVP {
	if a, ok := s.vlanAttrs[seg]; ok {
		return a
	}
	return &radius.AVP{Type: 81, Attribute: radius.Attribute(strconv.Itoa(seg.VLAN))}
}

// addKey adds one personal key in every documented form: Tunnel-Password
// (RFC 2868, salt-encrypted; hostapd, Ruckus, Meraki), Aruba-MPSK-Passphrase
// (the same encryption inside Aruba's vendor attribute) and Cisco's iPSK
// AV-pairs (which Cisco defines in clear text).
func addKey(resp *radius.Packet, reqAuth [16]byte, secret []byte, key string) error {
	salt := func() ([]byte, error) {
		var b [2]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		b[0] |= 0x80 // RFC 2868 3.5: the salt's high bit is set
		return b[:], nil
	}
	sl, err := salt()
	if err != nil {
		return err
	}
	tp, err := radius.NewTunnelPassword([]byte(key), sl, secret, reqAuth[:])
	if err != nil {
		return err
	}
	resp.Add(69, append(radius.Attribute{0}, tp...))
	if sl, err = salt(); err != nil {
		return err
	}
	ap, err := radius.NewTunnelPassword([]byte(key), sl, secret, reqAuth[:])
	if err != nil {
		return err
	}
	for _, v := range []struct {
		vendor uint32
		typ    byte
		val    []byte
	}{
		{vendorAruba, arubaMPSKPassphrase, ap},
		{vendorCisco, ciscoAVPair, []byte("psk-mode=ascii")},
		{vendorCisco, ciscoAVPair, []byte("psk=" + key)},
	} {
		inner := append([]byte{v.typ, byte(2 + len(v.val))}, v.val...)
		vsa, err := radius.NewVendorSpecific(v.vendor, inner)
		if err != nil {
			return err
		}
		resp.Add(rfc2865.VendorSpecific_Type, vsa)
	}
	return nil
}
