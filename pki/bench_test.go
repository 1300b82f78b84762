package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"
)

// BenchmarkHandshakeSignature measures the private-key operation the
// server makes in every full TLS handshake, for the key type chosen
// (ECDSA P-256) and the alternative (RSA-3072): the reason for the choice.
//
//	go test -run '^$' -bench HandshakeSignature -benchtime 200x ./pki
func BenchmarkHandshakeSignature(b *testing.B) {
	digest := sha256.Sum256([]byte("transcript"))
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		b.Fatal(err)
	}
	for _, k := range []struct {
		name string
		key  crypto.Signer
		opts crypto.SignerOpts
	}{{"ECDSA-P256", ec, crypto.SHA256}, {"RSA-3072-PSS", rk, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}}} {
		b.Run(k.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := k.key.Sign(rand.Reader, digest[:], k.opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
