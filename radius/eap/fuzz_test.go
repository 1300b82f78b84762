package eap

import (
	"bytes"
	"context"
	"testing"
)

func FuzzParse(f *testing.F) {
	for _, b := range captured(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		if !bytes.Equal(p.Marshal(), b) {
			t.Fatalf("% x re-encodes as % x", b, p.Marshal())
		}
	})
}

// FuzzTLSReassembly feeds fragments (cut from captured EAP-TLS/TTLS data)
// to the reassembler: it never panics, never holds more than the bound and
// never returns more than it was given.
func FuzzTLSReassembly(f *testing.F) {
	for _, b := range captured(f) {
		if p, err := Parse(b); err == nil && len(p.Data) > 0 {
			f.Add(p.Data, 3)
		}
	}
	f.Fuzz(func(t *testing.T, d []byte, cuts int) {
		var r reassembler
		total := 0
		for i := 0; i <= cuts%8; i++ {
			fr, err := parseTLSFrame(d)
			if err != nil {
				return
			}
			total += len(fr.data)
			msg, complete, err := r.add(fr)
			if err != nil {
				return
			}
			if len(r.buf) > maxTLSMessage || len(msg) > total {
				t.Fatal("reassembly grew beyond its input or bound")
			}
			if complete {
				return
			}
		}
	})
}

func FuzzAVPs(f *testing.F) {
	var pap []byte
	pap = appendAVP(pap, avpUserName, 0, []byte("amy"))
	pap = appendAVP(pap, avpUserPassword, 0, []byte("correct horse battery\x00\x00\x00"))
	f.Add(pap)
	var ms []byte
	ms = appendAVP(ms, avpUserName, 0, []byte("amy"))
	ms = appendAVP(ms, avpMSCHAPChal, vendorMicrosoft, bytes.Repeat([]byte{1}, 16))
	ms = appendAVP(ms, avpMSCHAP2Resp, vendorMicrosoft, bytes.Repeat([]byte{2}, 50))
	f.Add(ms)
	f.Fuzz(func(t *testing.T, b []byte) {
		avps, err := parseAVPs(b)
		if err != nil {
			return
		}
		var re []byte
		for _, a := range avps {
			re = appendAVP(re, a.code, a.vendor, a.data)
		}
		again, err := parseAVPs(re)
		if err != nil || len(again) != len(avps) {
			t.Fatalf("re-encoded AVPs do not parse alike: %v", err)
		}
	})
}

// FuzzHandle runs whole rounds of made-up responses through an engine:
// whatever comes, it answers or drops, and never panics.
func FuzzHandle(f *testing.F) {
	for _, b := range captured(f) {
		f.Add(b, b)
	}
	e, _ := newTestEngine(f, nil)
	f.Fuzz(func(t *testing.T, first, second []byte) {
		r, err := e.Handle(context.Background(), Request{Client: "fuzz", Message: first})
		if err != nil || r.Outcome != Challenge {
			return
		}
		_, _ = e.Handle(context.Background(), Request{Client: "fuzz", State: r.State, Message: second})
	})
}

// FuzzTLVs parses PEAP Extensions data, seeded with a result and a crypto
// binding TLV as wpa_supplicant sends them; a binding that parses never
// verifies against a binding it was not made for.
func FuzzTLVs(f *testing.F) {
	cb, err := newCryptoBinding(make([]byte, 40), make([]byte, 32))
	if err != nil {
		f.Fatal(err)
	}
	resp := cb.tlv(1)
	f.Add(append(appendTLV(nil, tlvResult, true, []byte{0, 1}), resp...))
	f.Add(appendTLV(nil, tlvResult, true, []byte{0, 2}))
	f.Fuzz(func(t *testing.T, b []byte) {
		tlvs, err := parseTLVs(b)
		if err != nil {
			return
		}
		for i, x := range tlvs {
			raw := tlvBytes(b, i)
			if len(raw) != 4+len(x.value) {
				t.Fatalf("TLV %d is %d octets with its header, value %d", i, len(raw), len(x.value))
			}
			if x.typ == tlvCryptoBinding && !bytes.Equal(raw, resp) && cb.verifyResponse(raw) {
				t.Fatal("a made-up crypto binding verified")
			}
		}
	})
}

func TestCryptoBindingRoundTrip(t *testing.T) {
	cb, err := newCryptoBinding(bytes.Repeat([]byte{1}, 40), bytes.Repeat([]byte{2}, 32))
	if err != nil {
		t.Fatal(err)
	}
	if !cb.verifyResponse(cb.tlv(1)) {
		t.Fatal("our own response does not verify")
	}
	bad := cb.tlv(1)
	bad[20] ^= 1 // the nonce
	if cb.verifyResponse(bad) || cb.verifyResponse(cb.tlv(0)) {
		t.Fatal("a changed nonce or the request subtype verified")
	}
}
