package mschapv2

import (
	"crypto/des"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"strings"
	"unicode/utf16"
)

// NTPasswordHash is RFC 2759 §8.3's NtPasswordHash: MD4 of the password in
// UTF-16 little endian. It is what a server must keep to verify MSCHAPv2
// (package people stores it sealed, never in clear).
func NTPasswordHash(password string) [16]byte {
	u := utf16.Encode([]rune(password))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		b[2*i] = byte(c)
		b[2*i+1] = byte(c >> 8)
	}
	return md4Sum(b)
}

// HashNTPasswordHash is RFC 2759 §8.4: MD4 of the NT hash.
func HashNTPasswordHash(ntHash [16]byte) [16]byte { return md4Sum(ntHash[:]) }

// ChallengeHash is RFC 2759 §8.2: the first 8 bytes of
// SHA1(PeerChallenge | AuthenticatorChallenge | UserName). username is the
// name without any "DOMAIN\" prefix (see StripDomain).
func ChallengeHash(peerChallenge, authChallenge [16]byte, username string) [8]byte {
	h := sha1.New()
	h.Write(peerChallenge[:])
	h.Write(authChallenge[:])
	h.Write([]byte(username))
	var out [8]byte
	copy(out[:], h.Sum(nil))
	return out
}

// ChallengeResponse is RFC 2759 §8.5: the 8-byte challenge DES-encrypted
// under three keys cut from the zero-padded 21-byte NT hash.
func ChallengeResponse(challenge [8]byte, ntHash [16]byte) [24]byte {
	var z [21]byte
	copy(z[:], ntHash[:])
	var out [24]byte
	for i := range 3 {
		desEncrypt(z[7*i:7*i+7], challenge[:], out[8*i:8*i+8])
	}
	return out
}

// desEncrypt is RFC 2759 §8.6: DES-ECB of one block under a 56-bit key
// spread over 8 bytes (crypto/des ignores the parity bits).
func desEncrypt(key7, clear, dst []byte) {
	var k [8]byte
	k[0] = key7[0]
	k[1] = key7[0]<<7 | key7[1]>>1
	k[2] = key7[1]<<6 | key7[2]>>2
	k[3] = key7[2]<<5 | key7[3]>>3
	k[4] = key7[3]<<4 | key7[4]>>4
	k[5] = key7[4]<<3 | key7[5]>>5
	k[6] = key7[5]<<2 | key7[6]>>6
	k[7] = key7[6] << 1
	c, err := des.NewCipher(k[:])
	if err != nil {
		panic("mschapv2: des.NewCipher with an 8-byte key: " + err.Error()) // cannot happen
	}
	c.Encrypt(dst, clear)
}

// GenerateNTResponse is RFC 2759 §8.1: what the peer sends, and what the
// server recomputes from the stored NT hash to check it.
func GenerateNTResponse(authChallenge, peerChallenge [16]byte, username string, ntHash [16]byte) [24]byte {
	return ChallengeResponse(ChallengeHash(peerChallenge, authChallenge, username), ntHash)
}

var (
	authMagic1 = []byte("Magic server to client signing constant")
	authMagic2 = []byte("Pad to make it do more than one iteration")
)

// GenerateAuthenticatorResponse is RFC 2759 §8.7: the "S=" followed by 40
// upper-case hex digits that proves to the peer the server knew its
// password hash.
func GenerateAuthenticatorResponse(ntHash [16]byte, ntResponse [24]byte, peerChallenge, authChallenge [16]byte, username string) string {
	hh := HashNTPasswordHash(ntHash)
	h := sha1.New()
	h.Write(hh[:])
	h.Write(ntResponse[:])
	h.Write(authMagic1)
	digest := h.Sum(nil)
	ch := ChallengeHash(peerChallenge, authChallenge, username)
	h.Reset()
	h.Write(digest)
	h.Write(ch[:])
	h.Write(authMagic2)
	return "S=" + strings.ToUpper(hex.EncodeToString(h.Sum(nil)))
}

// CheckAuthenticatorResponse is RFC 2759 §8.8, the peer's side: whether
// received (the "S=..." text, case-insensitive hex, anything after the 42
// characters ignored) is the one the server should have sent.
func CheckAuthenticatorResponse(ntHash [16]byte, ntResponse [24]byte, peerChallenge, authChallenge [16]byte, username, received string) bool {
	if len(received) < 42 {
		return false
	}
	want := GenerateAuthenticatorResponse(ntHash, ntResponse, peerChallenge, authChallenge, username)
	return subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToUpper(received[:42]))) == 1
}

// StripDomain removes a Windows "DOMAIN\" prefix (up to the last
// backslash), as RFC 2759 §8.2 requires for the ChallengeHash and as
// Windows supplicants send the name.
func StripDomain(name string) string {
	if i := strings.LastIndexByte(name, '\\'); i >= 0 {
		return name[i+1:]
	}
	return name
}

var (
	mppeMagic1 = []byte("This is the MPPE Master Key")
	mppeMagic2 = []byte("On the client side, this is the send key; on the server side, it is the receive key.")
	mppeMagic3 = []byte("On the client side, this is the receive key; on the server side, it is the send key.")
	shaPad1    = make([]byte, 40)
	shaPad2    = []byte(strings.Repeat("\xf2", 40))
)

// GetMasterKey is RFC 3079 §3.4: the first 16 bytes of
// SHA1(PasswordHashHash | NTResponse | "This is the MPPE Master Key").
func GetMasterKey(passwordHashHash [16]byte, ntResponse [24]byte) [16]byte {
	h := sha1.New()
	h.Write(passwordHashHash[:])
	h.Write(ntResponse[:])
	h.Write(mppeMagic1)
	var out [16]byte
	copy(out[:], h.Sum(nil))
	return out
}

// GetAsymmetricStartKey is RFC 3079 §3.4: keyLen (at most 20; 16 for
// 128-bit keys) bytes of SHA1(MasterKey | SHSpad1 | magic | SHSpad2), with
// the magic chosen by direction and side: the server's send key is the
// peer's receive key and vice versa.
func GetAsymmetricStartKey(masterKey [16]byte, keyLen int, isSend, isServer bool) []byte {
	magic := mppeMagic2
	if isSend == isServer {
		magic = mppeMagic3
	}
	h := sha1.New()
	h.Write(masterKey[:])
	h.Write(shaPad1)
	h.Write(magic)
	h.Write(shaPad2)
	return h.Sum(nil)[:min(keyLen, sha1.Size)]
}

// Keys are the 128-bit MPPE start keys of one successful MSCHAPv2
// authentication, named from the server's side (RFC 3079 §3.4's
// MasterSendKey and MasterReceiveKey): the server sends MasterSendKey in
// MS-MPPE-Send-Key and MasterReceiveKey in MS-MPPE-Recv-Key.
type Keys struct {
	MasterSendKey    [16]byte
	MasterReceiveKey [16]byte
}

// ServerKeys derives the server-side MPPE keys from the NT hash and the
// peer's NT-Response (RFC 3079 §3.3 and §3.4 with 128-bit keys).
func ServerKeys(ntHash [16]byte, ntResponse [24]byte) Keys {
	mk := GetMasterKey(HashNTPasswordHash(ntHash), ntResponse)
	var k Keys
	copy(k.MasterSendKey[:], GetAsymmetricStartKey(mk, 16, true, true))
	copy(k.MasterReceiveKey[:], GetAsymmetricStartKey(mk, 16, false, true))
	return k
}

// MSK is the 32-byte key EAP-MSCHAPv2 exports (hostapd's
// eap_mschapv2_getKey, FreeRADIUS's rlm_eap_mschapv2 inside PEAP):
// MasterReceiveKey | MasterSendKey from the server's side, which is the
// peer's MasterSendKey | MasterReceiveKey. PEAP uses it as the inner
// session key (ISK) for its crypto binding, zero-padded as PEAP requires.
func (k Keys) MSK() []byte {
	out := make([]byte, 0, 32)
	out = append(out, k.MasterReceiveKey[:]...)
	return append(out, k.MasterSendKey[:]...)
}
