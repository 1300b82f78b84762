package radius

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

// The pooled HMAC-MD5 is RFC 2104's, whatever the secret's length (a
// secret longer than MD5's block is hashed first).
func TestMessageAuthenticatorIsHMACMD5(t *testing.T) {
	pkt := make([]byte, 300)
	_, _ = rand.Read(pkt)
	off := 40
	for _, n := range []int{1, 16, 63, 64, 65, 200} {
		secret := make([]byte, n)
		_, _ = rand.Read(secret)
		for _, auth := range [][]byte{nil, make([]byte, 16)} {
			h := hmac.New(md5.New, secret)
			h.Write(pkt[:4])
			if auth != nil {
				h.Write(auth)
			} else {
				h.Write(pkt[4:20])
			}
			h.Write(pkt[20:off])
			h.Write(make([]byte, 16))
			h.Write(pkt[off+16:])
			if want, got := h.Sum(nil), messageAuthenticator(pkt, off, secret, auth); !bytes.Equal(got, want) {
				t.Fatalf("secret of %d octets: %x, want %x", n, got, want)
			}
		}
	}
}

// encodeReply writes what layeh.com/radius would with the
// Message-Authenticator put first, signed, and the Response
// Authenticator over the result.
func TestEncodeReplyMatchesTheLibrarysEncoding(t *testing.T) {
	secret := []byte("a shared secret")
	req := radius.New(radius.CodeAccessRequest, secret)
	resp := req.Response(radius.CodeAccessAccept)
	_ = rfc2865.ReplyMessage_SetString(resp, "welcome")
	resp.Add(typeMsgAut, make(radius.Attribute, 16)) // replaced, not repeated
	resp.Add(64, radius.Attribute{0, 0, 0, 13})
	resp.Add(81, radius.Attribute("20"))
	b, err := encodeReply(resp, req.Authenticator, secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := radius.Packet{Code: resp.Code, Identifier: resp.Identifier, Authenticator: req.Authenticator,
		Attributes: radius.Attributes{{Type: typeMsgAut, Attribute: make(radius.Attribute, 16)}, resp.Attributes[0], resp.Attributes[2], resp.Attributes[3]}}
	wb, err := want.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	copy(wb[22:38], messageAuthenticator(wb, 22, secret, nil))
	sum := md5.Sum(append(append([]byte(nil), wb...), secret...))
	copy(wb[4:20], sum[:])
	if !bytes.Equal(b, wb) {
		t.Fatalf("encoded\n%x\nwant\n%x", b, wb)
	}
	reqb, err := req.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !radius.IsAuthenticResponse(b, reqb, secret) {
		t.Fatal("the Response Authenticator does not verify")
	}
	resp.Add(18, make(radius.Attribute, 254))
	if _, err := encodeReply(resp, req.Authenticator, secret, nil); err == nil {
		t.Fatal("an attribute of 254 octets was encoded")
	}
}

// encodeChallenge makes the very packet the Access-Challenge built as a
// radius.Packet (Response, EAP-Message attributes, State) and encoded by
// encodeReply made.
func TestEncodeChallengeAsPacket(t *testing.T) {
	secret := []byte("s3cret")
	auth := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	state := bytes.Repeat([]byte{0xab}, 16)
	// A proxied request's Proxy-State follows the State in both.
	proxied := radius.Attributes{{Type: typeProxyState, Attribute: []byte("p1")}, {Type: typeProxyState, Attribute: []byte{0, 1, 2}}}
	for _, proxy := range []radius.Attributes{nil, proxied} {
		for _, size := range []int{4, 6, 252, 253, 254, 506, 507, 1000, 1400, 1500} {
			msg := make([]byte, size)
			for i := range msg {
				msg[i] = byte(i * 7)
			}
			req := &radius.Packet{Code: radius.CodeAccessRequest, Identifier: 42, Authenticator: auth, Secret: secret}
			resp := req.Response(radius.CodeAccessChallenge)
			addEAP(resp, msg)
			if err := rfc2865.State_Set(resp, state); err != nil {
				t.Fatal(err)
			}
			want, err := encodeReply(resp, auth, secret, proxy)
			if err != nil {
				t.Fatal(err)
			}
			got, err := encodeChallenge(42, auth, msg, state, secret, proxy)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("message of %d octets, %d Proxy-State: encodeChallenge\n%x\nwant\n%x", size, len(proxy), got, want)
			}
		}
	}
	if _, err := encodeChallenge(1, auth, make([]byte, maxPacket), state, secret, nil); err == nil {
		t.Fatal("an oversize challenge was encoded")
	}
}
