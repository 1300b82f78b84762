package eap

// PEAPv0 ([MS-PEAP], draft-kamath-pppext-peapv0) with EAP-MSCHAPv2 inside.
// Inner EAP packets travel without their four-octet header (PEAPv0's
// compression), except the Extensions (TLV) packets that carry the result.

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/gatehouse-net/gatehouse/radius/mschapv2"
)

// PEAP TLVs (type 33 packets).
const (
	tlvResult        = 3
	tlvCryptoBinding = 12
	tlvMandatory     = 0x8000
	resultSuccess    = 1
	resultFailure    = 2
	maxInnerRounds   = 8
)

// tlv is one PEAP TLV.
type tlv struct {
	typ       uint16 // without the mandatory bit
	mandatory bool
	value     []byte
}

var errTLV = errors.New("eap: malformed PEAP TLV")

// parseTLVs parses the TLVs of an Extensions packet's data.
func parseTLVs(b []byte) ([]tlv, error) {
	var out []tlv
	for len(b) > 0 {
		if len(b) < 4 || len(out) >= 16 {
			return nil, errTLV
		}
		t := binary.BigEndian.Uint16(b[0:2])
		n := int(binary.BigEndian.Uint16(b[2:4]))
		if 4+n > len(b) {
			return nil, errTLV
		}
		out = append(out, tlv{typ: t & 0x3fff, mandatory: t&tlvMandatory != 0, value: b[4 : 4+n]})
		b = b[4+n:]
	}
	return out, nil
}

func appendTLV(b []byte, typ uint16, mandatory bool, v []byte) []byte {
	if mandatory {
		typ |= tlvMandatory
	}
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}

// tunnelBufs are the buffers inner messages are read into: one TLS
// record's worth (16 KiB), which a login reads into several times; from a
// pool, since a fresh one per read was the largest allocation of a PEAP
// login (and its zeroing, and the collections it set off).
var tunnelBufs = sync.Pool{New: func() any { return new([16 << 10]byte) }}

// tunnel reads the inner messages of one login; what read returns is valid
// until the next read. release gives the buffer back.
type tunnel struct {
	tc  *tls.Conn
	buf *[16 << 10]byte
}

func newTunnel(tc *tls.Conn) *tunnel {
	return &tunnel{tc: tc, buf: tunnelBufs.Get().(*[16 << 10]byte)}
}

func (t *tunnel) release() {
	tunnelBufs.Put(t.buf)
	t.buf = nil
}

// read reads one message from inside the tunnel.
func (t *tunnel) read() ([]byte, error) {
	n, err := t.tc.Read(t.buf[:])
	if err != nil {
		return nil, fmt.Errorf("reading inside the tunnel: %w", err)
	}
	return t.buf[:n], nil
}

func (e *Engine) runPEAP(ctx context.Context, c *flight) methodResult {
	res := methodResult{method: "PEAP-MSCHAPv2"}
	if e.o.NTHash == nil {
		res.reason = "MSCHAPv2 is not enabled"
		return res
	}
	tc, _, tk, err := e.handshake(ctx, c, false, TypePEAP)
	if err != nil {
		res.reason = err.Error()
		return res
	}
	tun := newTunnel(tc)
	defer tun.release()
	st := tc.ConnectionState()
	res.version = tlsVersion(st.Version)
	if res.msk, res.emsk, err = exportKeys(st, TypePEAP); err != nil {
		res.reason = err.Error()
		return res
	}
	fail := func(format string, a ...any) methodResult {
		res.ok, res.reason = false, fmt.Sprintf(format, a...)
		return res
	}
	var (
		result mschapv2.Result
		isk    []byte // the inner method's key, for the binding
		in     []byte
	)
	if tk.resumed != nil {
		// The resumed tunnel stands for the person its first login
		// authenticated ([MS-PEAP] 3.1.5.2 fast reconnect; RFC 9427 2.4):
		// straight to the result, its binding keyed from the tunnel alone.
		res.identity, res.resumed = tk.resumed.identity, true
		result.Success = true
	} else {
		var fr *methodResult
		if result, fr = e.peapInner(ctx, tc, tun, tk, &res); fr != nil {
			return *fr
		}
		if result.Success {
			isk = result.Keys.MSK()
		}
	}
	// The result, protected by the tunnel: the client must agree.
	status := uint16(resultFailure)
	if result.Success {
		status = resultSuccess
	}
	data := appendTLV(nil, tlvResult, true, binary.BigEndian.AppendUint16(nil, status))
	var cb *cryptoBinding
	if result.Success {
		// [MS-PEAP] 3.1.5.5: binds the inner method's keys to the tunnel,
		// so a man in the middle of the inner method gets nowhere; the
		// MSK then comes from the compound keys.
		if res.resumed {
			cb, err = resumedCryptoBinding(res.msk[:60])
		} else {
			cb, err = newCryptoBinding(res.msk[:40], isk)
		}
		if err != nil {
			return fail("crypto binding: %v", err)
		}
		data = append(data, cb.request()...)
	}
	msg := Packet{Code: CodeRequest, ID: 1, Type: TypeExtensions, Data: data}.Marshal()
	if _, err := tc.Write(msg); err != nil {
		return fail("writing the result: %v", err)
	}
	if in, err = tun.read(); err != nil {
		return fail("%v", err)
	}
	p, err := Parse(in)
	if err != nil || p.Code != CodeResponse || p.Type != TypeExtensions {
		return fail("the answer to the result is not an Extensions response")
	}
	tlvs, err := parseTLVs(p.Data)
	if err != nil {
		return fail("%v", err)
	}
	agreed, bound := false, false
	for i, t := range tlvs {
		switch t.typ {
		case tlvResult:
			agreed = len(t.value) == 2 && binary.BigEndian.Uint16(t.value) == resultSuccess
		case tlvCryptoBinding:
			if cb == nil {
				return fail("the client sent a crypto binding we did not ask for")
			}
			if !cb.verifyResponse(tlvBytes(p.Data, i)) {
				return fail("the client's crypto binding is wrong (a man in the middle?)")
			}
			bound = true
		}
	}
	if !result.Success {
		return fail("inner EAP-MSCHAPv2: %s", result.Reason)
	}
	if !agreed {
		return fail("the client did not confirm the success result")
	}
	if bound {
		// [MS-PEAP] 3.1.5.7: with the binding, the MSK is the compound
		// session key; there is no EMSK.
		res.msk, res.emsk = cb.msk(), nil
	}
	res.ok = true
	e.bind(tk, res.identity, TypePEAP)
	return res
}

// peapInner is PEAP's phase 2: the inner identity, then EAP-MSCHAPv2 for
// it. A non-nil *methodResult is the login's failure.
func (e *Engine) peapInner(ctx context.Context, tc *tls.Conn, tun *tunnel, tk *tickets, res *methodResult) (mschapv2.Result, *methodResult) {
	fail := func(format string, a ...any) (mschapv2.Result, *methodResult) {
		r := *res
		r.ok, r.reason = false, fmt.Sprintf(format, a...)
		return mschapv2.Result{}, &r
	}
	// The identity
	// request goes with its header, as FreeRADIUS sends it: over TLS 1.2
	// it shares a message with our Finished, and wpa_supplicant takes
	// that early data as it is, without restoring a PEAPv0 header.
	if _, err := tc.Write(Packet{Code: CodeRequest, ID: 0, Type: TypeIdentity}.Marshal()); err != nil {
		return fail("writing the inner identity request: %v", err)
	}
	in, err := tun.read()
	if err != nil {
		return fail("%v", err)
	}
	if len(in) < 2 || in[0] != TypeIdentity {
		return fail("the inner response is not an identity")
	}
	identity := string(in[1:])
	res.identity = mschapv2.StripDomain(identity)
	// The credential version for the binding (resume.go) is taken just
	// before the NT hash is read, in the same round and for the name the
	// hash is read for. Taken in the identity round instead, one round
	// earlier, it cost a second read of the people change log per login:
	// the identity cache checks the log when its last check is over 5 ms
	// old, the rounds of a login are further apart than that, and each
	// check is a cgo call whose entersyscall woke the runtime's sysmon from
	// its idle sleep (about a quarter of the daemon's CPU under PEAP load
	// was sysmon polling after such wake-ups). Still before the check, so a
	// change made while the login is under way leaves the binding stale.
	lookup := func(ctx context.Context, user string) ([16]byte, bool, error) {
		e.noteCredential(ctx, tk, user)
		return e.o.NTHash(ctx, user)
	}
	ms, err := mschapv2.NewServer(mschapv2.Config{Lookup: lookup, Identity: identity})
	if err != nil {
		return fail("%v", err)
	}
	td, err := ms.Start()
	if err != nil {
		return fail("%v", err)
	}
	var result mschapv2.Result
	for round := 0; ; round++ {
		if round >= maxInnerRounds {
			return fail("the inner method took too many rounds")
		}
		if _, err := tc.Write(append([]byte{TypeMSCHAPv2}, td...)); err != nil {
			return fail("writing the inner request: %v", err)
		}
		if in, err = tun.read(); err != nil {
			return fail("%v", err)
		}
		if len(in) < 1 {
			return fail("empty inner response")
		}
		if in[0] == TypeNak {
			return fail("the client wants another inner method than EAP-MSCHAPv2 (it asked for %v)", in[1:])
		}
		if in[0] != TypeMSCHAPv2 {
			return fail("inner response of type %d", in[0])
		}
		step, err := ms.Handle(ctx, in[1:])
		if err != nil {
			return fail("inner EAP-MSCHAPv2: %v", err)
		}
		if step.Done {
			result = step.Result
			break
		}
		td = step.Reply
	}
	if result.Username != "" {
		res.identity = result.Username
	}
	return result, nil
}

// tlvBytes returns the i-th TLV of b with its header.
func tlvBytes(b []byte, i int) []byte {
	for ; len(b) >= 4; i-- {
		n := 4 + int(binary.BigEndian.Uint16(b[2:4]))
		if i == 0 {
			return b[:n]
		}
		b = b[n:]
	}
	return nil
}

// cryptoBinding is PEAPv0's crypto binding ([MS-PEAP] 3.1.5.5, as
// hostapd and wpa_supplicant implement it).
type cryptoBinding struct {
	ipmk  []byte // 40 octets
	cmk   []byte // 20 octets
	nonce [32]byte
}

// peapPRF is [MS-PEAP]'s PRF+ for PEAPv0: T(n) = HMAC-SHA1(K, T(n-1) |
// label | seed | n | 0x00 0x00).
func peapPRF(key []byte, label string, seed []byte, n int) []byte {
	// One HMAC, reset per block: hmac.New per block was most of what a
	// PEAP login's key derivation allocated.
	h := hmac.New(sha1.New, key)
	out := make([]byte, 0, n+sha1.Size)
	var t []byte
	for c := byte(1); len(out) < n; c++ {
		h.Reset()
		h.Write(t)
		h.Write([]byte(label))
		h.Write(seed)
		h.Write([]byte{c, 0, 0})
		out = h.Sum(out)
		t = out[len(out)-sha1.Size:]
	}
	return out[:n]
}

func newCryptoBinding(tempKey, isk []byte) (*cryptoBinding, error) {
	var k [32]byte // the ISK, zero-padded to 32 octets
	copy(k[:], isk)
	imck := peapPRF(tempKey, "Inner Methods Compound Keys", k[:], 60)
	cb := &cryptoBinding{ipmk: imck[:40], cmk: imck[40:60]}
	if _, err := rand.Read(cb.nonce[:]); err != nil {
		return nil, err
	}
	return cb, nil
}

// tlv builds the binding TLV of subtype (0 request, 1 response) with the
// Compound MAC over it (MAC field zero) and the PEAP type.
func (cb *cryptoBinding) tlv(subtype byte) []byte {
	v := make([]byte, 56)
	v[1], v[2], v[3] = 0, 0, subtype // reserved, version 0, received version 0
	copy(v[4:36], cb.nonce[:])
	b := appendTLV(nil, tlvCryptoBinding, false, v)
	copy(b[4+36:], cb.mac(b))
	return b
}

func (cb *cryptoBinding) mac(t []byte) []byte {
	h := hmac.New(sha1.New, cb.cmk)
	z := append([]byte(nil), t...)
	clear(z[4+36 : 4+56])
	h.Write(z)
	h.Write([]byte{TypePEAP})
	return h.Sum(nil)
}

// resumedCryptoBinding is the binding of a resumed session, where no
// inner method ran: IPMK and CMK are the TLS keys' first 40 and next 20
// octets, as wpa_supplicant derives them on resumption ("IPMK from TK").
func resumedCryptoBinding(tk []byte) (*cryptoBinding, error) {
	cb := &cryptoBinding{ipmk: append([]byte(nil), tk[:40]...), cmk: append([]byte(nil), tk[40:60]...)}
	if _, err := rand.Read(cb.nonce[:]); err != nil {
		return nil, err
	}
	return cb, nil
}

func (cb *cryptoBinding) request() []byte { return cb.tlv(0) }

func (cb *cryptoBinding) verifyResponse(t []byte) bool {
	if len(t) != 60 || t[4+1] != 0 || t[4+3] != 1 || subtle.ConstantTimeCompare(t[8:40], cb.nonce[:]) != 1 {
		return false
	}
	return hmac.Equal(cb.mac(t), t[40:60])
}

func (cb *cryptoBinding) msk() []byte {
	return peapPRF(cb.ipmk, "Session Key Generating Function", []byte{0}, 64)
}

// ttlsMSCHAPv2 is MSCHAPv2 inside EAP-TTLS (RFC 5281 11.2.4): the
// challenge comes from the tunnel's keys, the client sends its response at
// once, we answer MS-CHAP2-Success and the client acknowledges it.
func (e *Engine) ttlsMSCHAPv2(ctx context.Context, c *flight, tc *tls.Conn, st tls.ConnectionState, avps []avp, res methodResult) methodResult {
	if e.o.NTHash == nil {
		res.reason = "MSCHAPv2 inside TTLS is not enabled"
		return res
	}
	implicit, err := st.ExportKeyingMaterial("ttls challenge", nil, 17)
	if err != nil {
		res.reason = "deriving the implicit challenge: " + err.Error()
		return res
	}
	r, err := mschapv2.VerifyTTLS(ctx, e.o.NTHash, mschapv2.TTLS{
		UserName:  string(findAVP(avps, avpUserName, 0)),
		Challenge: findAVP(avps, avpMSCHAPChal, vendorMicrosoft),
		Response:  findAVP(avps, avpMSCHAP2Resp, vendorMicrosoft),
		Implicit:  implicit,
	})
	if err != nil {
		res.reason = err.Error()
		return res
	}
	res.identity = r.Username
	if !r.Success {
		res.reason = "MSCHAPv2: " + r.Reason
		return res
	}
	if _, err := tc.Write(appendAVP(nil, avpMSCHAP2Success, vendorMicrosoft, r.SuccessAVP)); err != nil {
		res.reason = "writing MS-CHAP2-Success: " + err.Error()
		return res
	}
	in, err := c.exchange()
	if err != nil {
		res.reason = err.Error()
		return res
	}
	if len(in) != 0 {
		res.reason = "the client answered MS-CHAP2-Success with more than an acknowledgement"
		return res
	}
	res.ok = true
	return res
}
