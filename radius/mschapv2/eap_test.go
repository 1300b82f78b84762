package mschapv2

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// users is a lookup over a fixed table of passwords.
func users(m map[string]string) Lookup {
	return func(_ context.Context, name string) ([16]byte, bool, error) {
		pw, ok := m[name]
		if !ok {
			return [16]byte{}, false, nil
		}
		return NTPasswordHash(pw), true, nil
	}
}

// peerResponse is what a supplicant sends to a Challenge: the RFC 2759
// peer side, written from the draft's packet layout.
func peerResponse(t testing.TB, challenge []byte, name, password string, peerChallenge [16]byte) []byte {
	t.Helper()
	if challenge[0] != OpChallenge || challenge[4] != 16 {
		t.Fatalf("not a challenge: %x", challenge)
	}
	var auth [16]byte
	copy(auth[:], challenge[5:21])
	nt := GenerateNTResponse(auth, peerChallenge, StripDomain(name), NTPasswordHash(password))
	return responsePacket(challenge[1], peerChallenge, nt, name)
}

func responsePacket(id byte, peer [16]byte, nt [24]byte, name string) []byte {
	p := []byte{OpResponse, id, 0, 0, responseValueSize}
	p = append(p, peer[:]...)
	p = append(p, make([]byte, 8)...)
	p = append(p, nt[:]...)
	p = append(p, 0)
	p = append(p, name...)
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	return p
}

func newServer(t *testing.T, cfg Config) (*Server, []byte) {
	t.Helper()
	if cfg.Lookup == nil {
		cfg.Lookup = users(map[string]string{"jsmith": "correct horse battery", "User": rfcPassword})
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := s.Start()
	if err != nil {
		t.Fatal(err)
	}
	return s, ch
}

func TestEAPSuccess(t *testing.T) {
	ctx := context.Background()
	s, ch := newServer(t, Config{ServerName: "gh"})
	if int(binary.BigEndian.Uint16(ch[2:])) != len(ch) || string(ch[21:]) != "gh" {
		t.Fatalf("challenge %x", ch)
	}
	again, _ := s.Start()
	if !bytes.Equal(again, ch) {
		t.Fatal("a second Start gave a different challenge")
	}
	peer := [16]byte{1, 2, 3}
	step, err := s.Handle(ctx, peerResponse(t, ch, `SCHOOL\jsmith`, "correct horse battery", peer))
	if err != nil {
		t.Fatal(err)
	}
	if step.Done || step.Reply[0] != OpSuccess || step.Reply[1] != ch[1] {
		t.Fatalf("want a Success request, got %+v", step)
	}
	msg := string(step.Reply[4:])
	var auth [16]byte
	copy(auth[:], ch[5:21])
	nt := GenerateNTResponse(auth, peer, "jsmith", NTPasswordHash("correct horse battery"))
	if !CheckAuthenticatorResponse(NTPasswordHash("correct horse battery"), nt, peer, auth, "jsmith", msg) {
		t.Fatalf("the peer would refuse our authenticator response %q", msg)
	}
	step, err = s.Handle(ctx, []byte{OpSuccess})
	if err != nil {
		t.Fatal(err)
	}
	if !step.Done || !step.Result.Success || step.Result.Username != "jsmith" || step.Result.Reason != "" {
		t.Fatalf("result %+v", step.Result)
	}
	if step.Result.Keys != ServerKeys(NTPasswordHash("correct horse battery"), nt) || len(step.Result.Keys.MSK()) != 32 {
		t.Fatal("keys are not the RFC 3079 keys of this exchange")
	}
	if _, err := s.Handle(ctx, []byte{OpSuccess}); err == nil {
		t.Fatal("Handle after the end succeeded")
	}
}

// runFailure drives a conversation that must fail and returns its Failure
// message and result.
func runFailure(t *testing.T, cfg Config, name, password string) (string, Result) {
	t.Helper()
	ctx := context.Background()
	s, ch := newServer(t, cfg)
	step, err := s.Handle(ctx, peerResponse(t, ch, name, password, [16]byte{9}))
	if err != nil {
		t.Fatal(err)
	}
	if step.Done || step.Reply[0] != OpFailure {
		t.Fatalf("want a Failure request, got %+v", step)
	}
	msg := string(step.Reply[4:])
	step, err = s.Handle(ctx, []byte{OpFailure})
	if err != nil {
		t.Fatal(err)
	}
	if !step.Done || step.Result.Success {
		t.Fatalf("result %+v", step.Result)
	}
	return msg, step.Result
}

func TestEAPFailures(t *testing.T) {
	msg, res := runFailure(t, Config{}, "jsmith", "wrong password")
	if !strings.HasPrefix(msg, "E=691 R=0 C=") || !strings.Contains(msg, " V=3 M=") || len(strings.Fields(msg)[2]) != 2+32 {
		t.Fatalf("failure message %q", msg)
	}
	if res.Reason != `wrong password for "jsmith"` {
		t.Fatalf("reason %q", res.Reason)
	}
	if res.Username != "jsmith" {
		t.Fatalf("username %q", res.Username)
	}
	_, res = runFailure(t, Config{}, "nobody", "whatever1234")
	if !strings.Contains(res.Reason, "no Wi-Fi password") {
		t.Fatalf("reason %q", res.Reason)
	}
	_, res = runFailure(t, Config{Identity: "someone-else"}, "jsmith", "correct horse battery")
	if !strings.Contains(res.Reason, "not the identity") {
		t.Fatalf("reason %q", res.Reason)
	}
	boom := errors.New("database is locked")
	_, res = runFailure(t, Config{Lookup: func(context.Context, string) ([16]byte, bool, error) { return [16]byte{}, false, boom }}, "jsmith", "x")
	if !strings.Contains(res.Reason, "database is locked") {
		t.Fatalf("reason %q", res.Reason)
	}
	// The identity check ignores the domain on either side.
	s, ch := newServer(t, Config{Identity: `SCHOOL\jsmith`})
	step, err := s.Handle(context.Background(), peerResponse(t, ch, "jsmith", "correct horse battery", [16]byte{}))
	if err != nil || step.Reply[0] != OpSuccess {
		t.Fatalf("%v %+v", err, step)
	}
}

func TestEAPRetry(t *testing.T) {
	ctx := context.Background()
	s, ch := newServer(t, Config{Retries: 1})
	step, err := s.Handle(ctx, peerResponse(t, ch, "jsmith", "wrong password", [16]byte{}))
	if err != nil {
		t.Fatal(err)
	}
	msg := string(step.Reply[4:])
	if !strings.HasPrefix(msg, "E=691 R=1 C=") {
		t.Fatalf("failure %q", msg)
	}
	// The retry answers the challenge in C=, one identifier on.
	c := strings.TrimPrefix(strings.Fields(msg)[2], "C=")
	newCh := append([]byte{OpChallenge, step.Reply[1] + 1, 0, 0, 16}, unhex(t, c)...)
	if bytes.Equal(newCh[5:21], ch[5:21]) {
		t.Fatal("the retry challenge is the old one")
	}
	step, err = s.Handle(ctx, peerResponse(t, newCh, "jsmith", "correct horse battery", [16]byte{4}))
	if err != nil || step.Reply[0] != OpSuccess {
		t.Fatalf("%v %+v", err, step)
	}
	step, err = s.Handle(ctx, []byte{OpSuccess})
	if err != nil || !step.Result.Success {
		t.Fatalf("%v %+v", err, step)
	}

	// Without retries left, a second Response after the Failure is refused.
	s, ch = newServer(t, Config{})
	if _, err := s.Handle(ctx, peerResponse(t, ch, "jsmith", "wrong password", [16]byte{})); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Handle(ctx, peerResponse(t, ch, "jsmith", "correct horse battery", [16]byte{})); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a retry after R=0 gave %v", err)
	}
}

func TestEAPMalformed(t *testing.T) {
	ctx := context.Background()
	s, ch := newServer(t, Config{})
	good := peerResponse(t, ch, "jsmith", "correct horse battery", [16]byte{})
	bad := map[string][]byte{
		"empty":      {},
		"short":      good[:20],
		"ms-length":  append(append([]byte{}, good...), 'x'),
		"value-size": func() []byte { b := bytes.Clone(good); b[4] = 48; return b }(),
		"wrong id":   func() []byte { b := bytes.Clone(good); b[1]++; return b }(),
		"opcode":     func() []byte { b := bytes.Clone(good); b[0] = OpSuccess; return b }(),
		"long name":  peerResponse(t, ch, strings.Repeat("a", MaxNameLen+1), "x", [16]byte{}),
	}
	for name, td := range bad {
		if _, err := s.Handle(ctx, td); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The state is unchanged: the good response still works.
	step, err := s.Handle(ctx, good)
	if err != nil || step.Reply[0] != OpSuccess {
		t.Fatalf("%v %+v", err, step)
	}
	// A peer refusing our authenticator response ends in failure.
	step, err = s.Handle(ctx, []byte{OpFailure})
	if err != nil || !step.Done || step.Result.Success || step.Result.Reason == "" {
		t.Fatalf("%v %+v", err, step)
	}
	// Change-Password is not offered.
	s, _ = newServer(t, Config{})
	step, err = s.Handle(ctx, []byte{OpChangePassword, 0, 0, 4})
	if err != nil || !step.Done || step.Result.Success {
		t.Fatalf("%v %+v", err, step)
	}
	// Flags must be zero.
	s, ch = newServer(t, Config{})
	b := peerResponse(t, ch, "jsmith", "correct horse battery", [16]byte{})
	b[5+48] = 1
	if step, err := s.Handle(ctx, b); err != nil || step.Reply[0] != OpFailure {
		t.Fatalf("%v %+v", err, step)
	}
	if _, err := NewServer(Config{}); err == nil {
		t.Fatal("NewServer without a lookup")
	}
}

// The RFC 2759 sample as it travels: a Response from "User" to the RFC's
// challenge gets the RFC's authenticator response and RFC 3079's keys.
func TestEAPWithRFCVector(t *testing.T) {
	ctx := context.Background()
	s, ch := newServer(t, Config{Rand: bytes.NewReader(append([]byte{7}, unhex(t, rfcAuthChallenge)...))})
	if !bytes.Equal(ch[5:21], unhex(t, rfcAuthChallenge)) || ch[1] != 7 {
		t.Fatalf("challenge %x", ch)
	}
	var nt [24]byte
	copy(nt[:], unhex(t, rfcNTResponse))
	step, err := s.Handle(ctx, responsePacket(7, h16(t, rfcPeerChallenge), nt, rfcUser))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(step.Reply[4:]); got != rfcAuthResponse+" M=OK" {
		t.Fatalf("success message %q", got)
	}
	step, _ = s.Handle(ctx, []byte{OpSuccess})
	if step.Result.Keys.MasterSendKey != h16(t, rfcSendStartKey) {
		t.Fatalf("send key %X", step.Result.Keys.MasterSendKey)
	}
}

func TestTTLS(t *testing.T) {
	ctx := context.Background()
	lookup := users(map[string]string{"User": rfcPassword})
	implicit := append(unhex(t, rfcAuthChallenge), 0x42)
	resp := func(ident byte) []byte {
		r := []byte{ident, 0}
		r = append(r, unhex(t, rfcPeerChallenge)...)
		r = append(r, make([]byte, 8)...)
		return append(r, unhex(t, rfcNTResponse)...)
	}
	res, err := VerifyTTLS(ctx, lookup, TTLS{UserName: rfcUser, Challenge: implicit[:16], Response: resp(0x42), Implicit: implicit})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Success || string(res.SuccessAVP) != "\x42"+rfcAuthResponse || res.Username != rfcUser {
		t.Fatalf("%+v", res)
	}
	res, err = VerifyTTLS(ctx, users(map[string]string{"User": "otherPass"}), TTLS{UserName: `D\User`, Challenge: implicit[:16], Response: resp(0x42), Implicit: implicit})
	if err != nil || res.Success || res.SuccessAVP != nil || !strings.HasPrefix(string(res.ErrorAVP), "\x42E=691 R=0 C=") {
		t.Fatalf("%v %+v", err, res)
	}
	// A challenge or ident that is not the tunnel's is refused.
	if _, err := VerifyTTLS(ctx, lookup, TTLS{UserName: rfcUser, Challenge: implicit[:16], Response: resp(0x43), Implicit: implicit}); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
	other := bytes.Clone(implicit)
	other[0] ^= 1
	if _, err := VerifyTTLS(ctx, lookup, TTLS{UserName: rfcUser, Challenge: other[:16], Response: resp(0x42), Implicit: implicit}); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
	if _, err := VerifyTTLS(ctx, lookup, TTLS{UserName: rfcUser, Challenge: implicit[:16], Response: resp(0x42)[:49], Implicit: implicit}); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
}
