package quic

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"testing"

	"github.com/gatehouse-net/gatehouse/inspect/internal/pcapseed"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The vectors of RFC 9001 appendix A.1 and RFC 9369 appendix A.1.
func TestClientKeysMatchRFCVectors(t *testing.T) {
	dcid := unhex(t, "8394c8f03e515708")
	for _, tc := range []struct {
		name        string
		version     uint32
		key, iv, hp string
	}{
		{"v1", Version1, "1f369613dd76d5467730efcbe3b1a22d", "fa044b2f42a3fd3b46fb255c", "9f50449e04a0e810283a1e9933adedd2"},
		{"v2", Version2, "8b1a0bc121284290a29e0971b5cd045d", "91f73e2351d8fa91660e909f", "45b95e15235d6f45a6b19cbcb0294ba9"},
	} {
		salt, prefix, ok := versionParams(tc.version)
		if !ok {
			t.Fatalf("%s: no parameters", tc.name)
		}
		key, iv, hp := clientKeys(salt, prefix, dcid)
		if hex.EncodeToString(key) != tc.key || hex.EncodeToString(iv) != tc.iv || hex.EncodeToString(hp) != tc.hp {
			t.Errorf("%s: key %x iv %x hp %x", tc.name, key, iv, hp)
		}
	}
}

// protect builds a client Initial the way a sender does (RFC 9001 section
// 5), so that Open can be checked end to end.
func protect(t testing.TB, version uint32, dcid, payload []byte) []byte {
	t.Helper()
	salt, prefix, _ := versionParams(version)
	key, iv, hpKey := clientKeys(salt, prefix, dcid)
	typ := byte(0)
	if version == Version2 {
		typ = 1
	}
	pn := []byte{0, 0, 0, 2}
	hdr := []byte{0xc0 | typ<<4 | 3, byte(version >> 24), byte(version >> 16), byte(version >> 8), byte(version)}
	hdr = append(hdr, byte(len(dcid)))
	hdr = append(hdr, dcid...)
	hdr = append(hdr, 0, 0) // empty SCID, empty token
	length := len(pn) + len(payload) + 16
	hdr = append(hdr, 0x40|byte(length>>8), byte(length))
	pnOff := len(hdr)
	hdr = append(hdr, pn...)
	block, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(block)
	nonce := append([]byte(nil), iv...)
	nonce[11] ^= 2
	pkt := aead.Seal(append([]byte(nil), hdr...), nonce, payload, hdr)
	hp, _ := aes.NewCipher(hpKey)
	var mask [16]byte
	hp.Encrypt(mask[:], pkt[pnOff+4:pnOff+20])
	pkt[0] ^= mask[0] & 0x0f
	for i := 0; i < 4; i++ {
		pkt[pnOff+i] ^= mask[1+i]
	}
	return pkt
}

func TestOpenRecoversCryptoFramesOfBothVersions(t *testing.T) {
	hello := bytes.Repeat([]byte("client hello bytes "), 20)
	// CRYPTO frames out of order, with PING and PADDING around them.
	var payload []byte
	payload = append(payload, 0x01, 0x06, 0x40, 100, 0x41, byte(len(hello)-100))
	payload = append(payload, hello[100:]...)
	payload = append(payload, 0x06, 0x00, 0x40, 100)
	payload = append(payload, hello[:100]...)
	payload = append(payload, make([]byte, 900)...)
	dcid := unhex(t, "8394c8f03e515708")
	for _, v := range []uint32{Version1, Version2, 0xff00001d} {
		pkt := protect(t, v, dcid, payload)
		h, err := ParseHeader(pkt)
		if err != nil || !h.Initial {
			t.Fatalf("%#x: header %+v err %v", v, h, err)
		}
		op, err := NewClientOpener(v, h.DCID)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := op.Open(nil, pkt, h)
		if err != nil {
			t.Fatalf("%#x: Open: %v", v, err)
		}
		var s CryptoStream
		if err := CryptoFrames(plain, s.Add); err != nil {
			t.Fatalf("%#x: frames: %v", v, err)
		}
		if !bytes.Equal(s.Prefix(), hello) {
			t.Errorf("%#x: crypto stream = %q", v, s.Prefix())
		}
		pkt[len(pkt)-1] ^= 1
		if _, err := op.Open(nil, pkt, h); err != ErrDecrypt {
			t.Errorf("%#x: tampered packet: err = %v, want ErrDecrypt", v, err)
		}
	}
}

func TestGoogleCHLOFindsSNI(t *testing.T) {
	msg := []byte("\x0d\x00\x00\x00\x00\x00\x00\x00\x01Q043\x01xxxxxxxxxxxx\xa0\x01\x04\x00")
	msg = append(msg, "CHLO"...)
	msg = append(msg, 2, 0, 0, 0)
	msg = append(msg, "PAD\x00"...)
	msg = append(msg, 3, 0, 0, 0)
	msg = append(msg, "SNI\x00"...)
	msg = append(msg, 3+14, 0, 0, 0)
	msg = append(msg, "---dns.google.com"...)
	sni, ok := GoogleCHLO(msg)
	if !ok || string(sni) != "dns.google.com" {
		t.Errorf("GoogleCHLO = %q, %v", sni, ok)
	}
	if _, ok := GoogleCHLO([]byte("no client hello here")); ok {
		t.Error("found a CHLO in plain text")
	}
}

// FuzzInitial runs header parsing, decryption and frame walking on
// arbitrary datagrams, seeded with the QUIC packets of the captures.
func FuzzInitial(f *testing.F) {
	f.Add(protect(f, Version1, []byte{1, 2, 3, 4, 5, 6, 7, 8}, append([]byte{6, 0, 4, 1, 0, 0, 0}, make([]byte, 40)...)))
	for _, p := range pcapseed.Read(pcapseed.Dir(f), 6) {
		if p.UDP && len(p.Payload) > 20 {
			f.Add(p.Payload)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		GoogleCHLO(b)
		h, err := ParseHeader(b)
		if err != nil || !h.Initial {
			return
		}
		op, err := NewClientOpener(h.Version, h.DCID)
		if err != nil {
			return
		}
		if plain, err := op.Open(nil, b, h); err == nil {
			var s CryptoStream
			CryptoFrames(plain, s.Add)
			HandshakeComplete(s.Prefix())
		}
		CryptoFrames(b, func(uint64, []byte) {})
	})
}
