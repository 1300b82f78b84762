package mschapv2

import (
	"encoding/hex"
	"strings"
	"testing"
)

func h16(t *testing.T, s string) (out [16]byte) {
	t.Helper()
	b := unhex(t, s)
	if len(b) != 16 {
		t.Fatalf("%s is %d bytes", s, len(b))
	}
	copy(out[:], b)
	return out
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The sample data of RFC 2759 §9.2.
const (
	rfcUser          = "User"
	rfcPassword      = "clientPass"
	rfcAuthChallenge = "5B 5D 7C 7D 7B 3F 2F 3E 3C 2C 60 21 32 26 26 28"
	rfcPeerChallenge = "21 40 23 24 25 5E 26 2A 28 29 5F 2B 3A 33 7C 7E"
	rfcChallenge     = "D0 2E 43 86 BC E9 12 26"
	rfcNTHash        = "44 EB BA 8D 53 12 B8 D6 11 47 44 11 F5 69 89 AE"
	rfcNTResponse    = "82 30 9E CD 8D 70 8B 5E A0 8F AA 39 81 CD 83 54 42 33 11 4A 3D 85 D6 DF"
	rfcHashHash      = "41 C0 0C 58 4B D2 D9 1C 40 17 A2 A1 2F A5 9F 3F"
	rfcAuthResponse  = "S=407A5589115FD0D6209F510FE9C04566932CDA56"
	// RFC 3079 §3.5.3 (128-bit keys, same inputs).
	rfcMasterKey    = "FD EC E3 71 7A 8C 83 8C B3 88 E5 27 AE 3C DD 31"
	rfcSendStartKey = "8B 7C DC 14 9B 99 3A 1B A1 18 CB 15 3F 56 DC CB"
)

func TestRFC2759Vectors(t *testing.T) {
	auth, peer := h16(t, rfcAuthChallenge), h16(t, rfcPeerChallenge)
	nt := NTPasswordHash(rfcPassword)
	if nt != h16(t, rfcNTHash) {
		t.Fatalf("NtPasswordHash = %X", nt)
	}
	if hh := HashNTPasswordHash(nt); hh != h16(t, rfcHashHash) {
		t.Fatalf("HashNtPasswordHash = %X", hh)
	}
	if ch := ChallengeHash(peer, auth, rfcUser); hex.EncodeToString(ch[:]) != strings.ToLower(strings.ReplaceAll(rfcChallenge, " ", "")) {
		t.Fatalf("ChallengeHash = %X", ch)
	}
	resp := GenerateNTResponse(auth, peer, rfcUser, nt)
	var want [24]byte
	copy(want[:], unhex(t, rfcNTResponse))
	if resp != want {
		t.Fatalf("GenerateNTResponse = %X", resp)
	}
	if got := GenerateAuthenticatorResponse(nt, resp, peer, auth, rfcUser); got != rfcAuthResponse {
		t.Fatalf("GenerateAuthenticatorResponse = %s", got)
	}
	if !CheckAuthenticatorResponse(nt, resp, peer, auth, rfcUser, strings.ToLower(rfcAuthResponse)+" M=OK") {
		t.Fatal("CheckAuthenticatorResponse refuses the RFC's response")
	}
	if CheckAuthenticatorResponse(NTPasswordHash("clientPasS"), resp, peer, auth, rfcUser, rfcAuthResponse) {
		t.Fatal("CheckAuthenticatorResponse accepts a response made with another password")
	}
	if CheckAuthenticatorResponse(nt, resp, peer, auth, rfcUser, rfcAuthResponse[:41]) {
		t.Fatal("CheckAuthenticatorResponse accepts a short response")
	}
	// The domain prefix is not part of the hashed name.
	if StripDomain(`SCHOOL\User`) != rfcUser || StripDomain("User") != rfcUser || StripDomain(`a\b\User`) != rfcUser {
		t.Fatal("StripDomain")
	}
}

func TestRFC3079Vectors(t *testing.T) {
	var resp [24]byte
	copy(resp[:], unhex(t, rfcNTResponse))
	mk := GetMasterKey(h16(t, rfcHashHash), resp)
	if mk != h16(t, rfcMasterKey) {
		t.Fatalf("GetMasterKey = %X", mk)
	}
	// The RFC's SendStartKey128 is the server's send key, which is the
	// peer's receive key.
	if got := GetAsymmetricStartKey(mk, 16, true, true); hex.EncodeToString(got) != strings.ToLower(strings.ReplaceAll(rfcSendStartKey, " ", "")) {
		t.Fatalf("GetAsymmetricStartKey(send, server) = %X", got)
	}
	if string(GetAsymmetricStartKey(mk, 16, false, false)) != string(GetAsymmetricStartKey(mk, 16, true, true)) {
		t.Fatal("peer receive key differs from server send key")
	}
	if string(GetAsymmetricStartKey(mk, 16, true, false)) != string(GetAsymmetricStartKey(mk, 16, false, true)) {
		t.Fatal("peer send key differs from server receive key")
	}
	if len(GetAsymmetricStartKey(mk, 8, true, true)) != 8 || len(GetAsymmetricStartKey(mk, 99, true, true)) != 20 {
		t.Fatal("key length not honoured")
	}
	k := ServerKeys(NTPasswordHash(rfcPassword), resp)
	if k.MasterSendKey != h16(t, rfcSendStartKey) {
		t.Fatalf("ServerKeys send = %X", k.MasterSendKey)
	}
	msk := k.MSK()
	// hostapd: MSK = server MS-MPPE-Recv-Key | MS-MPPE-Send-Key, i.e. the
	// peer's send key first.
	if len(msk) != 32 || string(msk[:16]) != string(GetAsymmetricStartKey(mk, 16, true, false)) || string(msk[16:]) != string(k.MasterSendKey[:]) {
		t.Fatalf("MSK = %X", msk)
	}
	if k.MasterSendKey == k.MasterReceiveKey {
		t.Fatal("send and receive keys are equal")
	}
}

// Passwords beyond the Basic Multilingual Plane go through UTF-16
// surrogate pairs, as Windows hashes them.
func TestNTPasswordHashUnicode(t *testing.T) {
	a, b := NTPasswordHash("pässwörd😀"), NTPasswordHash("passwörd😀")
	if a == b {
		t.Fatal("different passwords, same hash")
	}
	// "😀" is D83D DE00 in UTF-16: 4 bytes, little endian.
	if NTPasswordHash("😀") != md4Sum([]byte{0x3d, 0xd8, 0x00, 0xde}) {
		t.Fatal("surrogate pair not encoded as UTF-16LE")
	}
}
