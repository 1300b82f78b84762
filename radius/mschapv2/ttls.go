package mschapv2

import (
	"context"
	"crypto/subtle"
	"fmt"
)

// TTLS is the inner MSCHAPv2 of EAP-TTLS (RFC 5281 §11.2.4): the peer sends
// User-Name, MS-CHAP-Challenge and MS-CHAP2-Response AVPs (the Microsoft
// vendor attributes of RFC 2548) in one go, and the challenge is not sent
// by the server but derived from the TLS keys ("implicit challenge").
type TTLS struct {
	// UserName is the User-Name AVP's value.
	UserName string
	// Challenge is the MS-CHAP-Challenge AVP's value (16 bytes).
	Challenge []byte
	// Response is the MS-CHAP2-Response AVP's value (50 bytes):
	// Ident | Flags | Peer-Challenge (16) | Reserved (8) | Response (24).
	Response []byte
	// Implicit is the 17 bytes of TLS keying material with the label
	// "ttls challenge" (RFC 5281 §11.1): the first 16 must equal Challenge
	// and the 17th the Ident, or the peer did not derive them from this
	// tunnel and the attempt is refused.
	Implicit []byte
}

// TTLSResult is the verdict on one TTLS inner MSCHAPv2 attempt.
type TTLSResult struct {
	Success bool
	// Username is UserName without any "DOMAIN\" prefix.
	Username string
	// SuccessAVP is the MS-CHAP2-Success attribute's value to send back
	// on success (Ident | "S=<40 hex>"); the peer checks it and then sends
	// an empty response, after which the server accepts.
	SuccessAVP []byte
	// ErrorAVP is the MS-CHAP-Error attribute's value on a wrong password
	// (Ident | "E=691 R=0 C=... V=3 M=..."), sent before rejecting.
	ErrorAVP []byte
	// Keys are the MSCHAPv2 MPPE keys; TTLS takes its MSK from the TLS
	// tunnel, not from these, so they are informative only.
	Keys Keys
	// Reason says why it failed (never a password or hash).
	Reason string
}

// VerifyTTLS checks a TTLS inner MSCHAPv2 attempt. A malformed attempt
// (wrong attribute sizes, a challenge that is not the implicit one)
// returns an error wrapping ErrMalformed; a wrong password returns
// Success false with ErrorAVP and Reason.
func VerifyTTLS(ctx context.Context, lookup Lookup, in TTLS) (TTLSResult, error) {
	if lookup == nil {
		return TTLSResult{}, fmt.Errorf("mschapv2: VerifyTTLS without a lookup")
	}
	if len(in.Challenge) != 16 {
		return TTLSResult{}, fmt.Errorf("%w: MS-CHAP-Challenge of %d bytes", ErrMalformed, len(in.Challenge))
	}
	if len(in.Response) != 50 {
		return TTLSResult{}, fmt.Errorf("%w: MS-CHAP2-Response of %d bytes", ErrMalformed, len(in.Response))
	}
	if len(in.Implicit) != 17 {
		return TTLSResult{}, fmt.Errorf("%w: implicit challenge of %d bytes, want 17", ErrMalformed, len(in.Implicit))
	}
	if len(in.UserName) == 0 || len(in.UserName) > MaxNameLen {
		return TTLSResult{}, fmt.Errorf("%w: User-Name of %d bytes", ErrMalformed, len(in.UserName))
	}
	ident := in.Response[0]
	if subtle.ConstantTimeCompare(in.Challenge, in.Implicit[:16]) != 1 || ident != in.Implicit[16] {
		return TTLSResult{}, fmt.Errorf("%w: MS-CHAP-Challenge or Ident is not the tunnel's implicit challenge", ErrMalformed)
	}
	var auth [16]byte
	copy(auth[:], in.Challenge)
	r := Response{ID: ident, Flags: in.Response[1], Name: in.UserName}
	copy(r.PeerChallenge[:], in.Response[2:18])
	copy(r.NTResponse[:], in.Response[26:50])
	name := StripDomain(in.UserName)
	ok, keys, authResp, reason := check(ctx, lookup, name, auth, r)
	res := TTLSResult{Username: name, Reason: reason}
	if !ok {
		res.ErrorAVP = append([]byte{ident}, FailureMessage(false, auth)...)
		return res, nil
	}
	res.Success, res.Keys = true, keys
	res.SuccessAVP = append([]byte{ident}, authResp...)
	return res, nil
}
