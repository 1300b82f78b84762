// Package mschapv2 is MS-CHAPv2 for Gatehouse's 802.1X: the RFC 2759
// arithmetic, the RFC 3079 MPPE keys, the EAP-MSCHAPv2 method
// (draft-kamath-pppext-eap-mschapv2) as a small server state machine over
// EAP type-data, and the inner MSCHAPv2 check of EAP-TTLS (RFC 5281
// §11.2.4). It is pure: no I/O, no imports from the rest of Gatehouse.
//
// It does not own EAP framing, TLS, PEAP or TTLS (package radius/eap wraps
// what this package produces), nor where NT hashes live (package people
// keeps them sealed with the site key and answers the Lookup).
//
// # Crypto (RFC 2759 §8, RFC 3079 §3)
//
//	NTPasswordHash(password) [16]byte        MD4 of UTF-16LE; what the server stores
//	HashNTPasswordHash(ntHash) [16]byte
//	ChallengeHash(peerCh, authCh, user) [8]byte
//	GenerateNTResponse(authCh, peerCh, user, ntHash) [24]byte
//	GenerateAuthenticatorResponse(ntHash, ntResp, peerCh, authCh, user) "S=<40 HEX>"
//	CheckAuthenticatorResponse(..., received) bool   (the peer's check; for tests and clients)
//	GetMasterKey(hashHash, ntResp), GetAsymmetricStartKey(mk, n, isSend, isServer)
//	ServerKeys(ntHash, ntResp) Keys{MasterSendKey, MasterReceiveKey}
//	Keys.MSK() []byte   32 bytes: MasterReceiveKey | MasterSendKey (server view)
//	StripDomain("SCHOOL\\jsmith") == "jsmith"
//
// User names in the hashes are always without a "DOMAIN\" prefix. MD4 is
// implemented here (md4.go, RFC 1320 test suite) instead of importing the
// deprecated golang.org/x/crypto/md4; it is used for nothing else.
//
// For RADIUS: the server puts Keys.MasterSendKey in MS-MPPE-Send-Key and
// MasterReceiveKey in MS-MPPE-Recv-Key when MSCHAPv2 is the outer method;
// inside PEAP the Access-Accept keys come from the TLS tunnel and MSK() is
// PEAP's inner session key (ISK) for the crypto binding (zero-pad to 32 if
// your formula wants more; it is exactly 32 here, as hostapd's).
//
// # EAP-MSCHAPv2 (EAP type 26), server side
//
// Work on type-data: the bytes after the EAP Type octet. The caller owns
// the EAP header, the EAP Identifier and (in PEAPv0) the header
// compression.
//
//	s, err := mschapv2.NewServer(mschapv2.Config{
//		Lookup:   func(ctx context.Context, user string) (ntHash [16]byte, found bool, err error) {...},
//		Identity: innerIdentity, // optional: the Response's name must match it
//	})
//	td, err := s.Start()             // send EAP-Request/26 with td (the Challenge)
//	step, err := s.Handle(ctx, peerTypeData)
//	// step.Reply != nil: send it as the next EAP-Request/26 (a Success
//	//   request "S=... M=OK", or a Failure "E=691 R=0 C=... V=3 M=...")
//	// step.Done: step.Result says Success, Username, Keys, Reason;
//	//   send EAP-Success (or PEAP's Result TLV) only if Result.Success.
//
// The conversation: Challenge → peer Response → Success request → the
// peer's one-byte Success acknowledgement → Done with Success; or Failure
// request → the peer's one-byte Failure acknowledgement → Done without.
// Result.Success is only ever true after the peer acknowledged our
// authenticator response. A wrong password, an unknown name, a leaver
// (Lookup says found=false) or a Lookup error all produce the same Failure
// on the wire; Result.Reason tells them apart for the log and never holds
// a secret. With Config.Retries > 0 the Failure says R=1 with a fresh
// challenge and one further Response is accepted (RFC 2759 §6); the
// default is R=0, as hostapd sends. Change-Password (opcode 7) is not
// offered and ends the conversation as a failure.
//
// Handle returns an error wrapping ErrMalformed for bytes that are not the
// packet expected now (bad MS-Length, wrong MS-CHAPv2-ID, name longer than
// MaxNameLen...); the state does not change, so the caller may resend its
// last request or fail the session. Start is idempotent until the first
// Response (a retransmission gets the same Challenge). A Server is not
// safe for concurrent use; one per EAP session.
//
// # EAP-TTLS inner MSCHAPv2 (RFC 5281 §11.2.4)
//
//	res, err := mschapv2.VerifyTTLS(ctx, lookup, mschapv2.TTLS{
//		UserName:  userNameAVP,
//		Challenge: msChapChallengeAVP, // 16 bytes (RFC 2548 vendor 311 type 11)
//		Response:  msChap2ResponseAVP, // 50 bytes (type 25)
//		Implicit:  ekm17,              // 17 bytes of "ttls challenge" keying material
//	})
//	// err (ErrMalformed): wrong sizes or the challenge/Ident are not the
//	//   tunnel's → reject.
//	// res.Success: send res.SuccessAVP as MS-CHAP2-Success (type 26), wait
//	//   for the peer's empty response, then accept as res.Username.
//	// otherwise: optionally send res.ErrorAVP as MS-CHAP-Error (type 2),
//	//   then reject; log res.Reason.
package mschapv2
