package mschapv2

import (
	"bytes"
	"context"
	"testing"
)

// FuzzHandle feeds arbitrary type-data to a server at each state, seeded
// with the packets of a real exchange (the RFC 2759 sample's Response,
// the acknowledgements, a Windows-style DOMAIN\name, and wpa_supplicant's
// real Response from testdata/interop.txt). It must never panic
// and never report success for bytes that did not answer the challenge.
func FuzzHandle(f *testing.F) {
	auth := unhex(f, rfcAuthChallenge)
	var nt [24]byte
	copy(nt[:], unhex(f, rfcNTResponse))
	var peer [16]byte
	copy(peer[:], unhex(f, rfcPeerChallenge))
	f.Add(responsePacket(7, peer, nt, rfcUser), []byte{OpSuccess})
	f.Add(responsePacket(7, peer, nt, `SCHOOL\User`), []byte{OpFailure})
	f.Add([]byte{OpFailure}, []byte{OpResponse, 8, 0, 5, 0})
	f.Add([]byte{OpChangePassword, 7, 0, 4}, []byte{})
	// wpa_supplicant's real Response and acknowledgement (testdata/interop.txt).
	x := interop(f)
	f.Add(x["response"], x["ack"])
	f.Fuzz(func(t *testing.T, first, second []byte) {
		s, err := NewServer(Config{
			Lookup:  users(map[string]string{"User": rfcPassword}),
			Rand:    bytes.NewReader(append([]byte{7}, append(auth, auth...)...)),
			Retries: 1,
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Start(); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		var answered []byte // the packet our Success request answered
		for _, td := range [][]byte{first, second, {OpSuccess}} {
			step, err := s.Handle(ctx, td)
			if err != nil {
				continue
			}
			if len(step.Reply) > 0 && step.Reply[0] == OpSuccess {
				answered = td
			}
			if step.Done {
				if step.Result.Success {
					// Success needs the RFC's NT-Response from "User"
					// (with or without a domain prefix).
					if r, err := ParseResponse(answered); err != nil || StripDomain(r.Name) != rfcUser || r.NTResponse != nt || r.PeerChallenge != peer {
						t.Fatalf("success from %x then %x", first, second)
					}
				}
				return
			}
		}
	})
}

// FuzzVerifyTTLS feeds arbitrary AVP values to the TTLS check.
func FuzzVerifyTTLS(f *testing.F) {
	implicit := append(unhex(f, rfcAuthChallenge), 0x42)
	r := []byte{0x42, 0}
	r = append(r, unhex(f, rfcPeerChallenge)...)
	r = append(r, make([]byte, 8)...)
	r = append(r, unhex(f, rfcNTResponse)...)
	f.Add(rfcUser, implicit[:16], r)
	f.Add("", []byte{}, []byte{1})
	f.Fuzz(func(t *testing.T, user string, challenge, response []byte) {
		res, err := VerifyTTLS(context.Background(), users(map[string]string{"User": rfcPassword}), TTLS{UserName: user, Challenge: challenge, Response: response, Implicit: implicit})
		if err == nil && res.Success && (!bytes.Equal(response[26:], unhex(t, rfcNTResponse)) || StripDomain(user) != rfcUser) {
			t.Fatalf("success for %q %x", user, response)
		}
	})
}
