package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"testing"
)

// FuzzParsePEM feeds the readers of the school's own certificate and key
// files: whatever the file holds, they return an error or a usable value,
// never panic, and a key error never quotes the file.
func FuzzParsePEM(f *testing.F) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 1024)
	der, _ := x509.MarshalECPrivateKey(ec)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)}))
	p8, _ := keyPEM(ec)
	f.Add(p8)
	f.Add([]byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"))
	f.Add([]byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("not pem"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if k, err := parseKey(data, "k.pem"); err == nil && k == nil {
			t.Fatal("nil key without an error")
		}
		if cs, err := parseCerts(data, "c.pem"); err == nil && len(cs) == 0 {
			t.Fatal("no certificates without an error")
		}
		_ = checkDNSName(string(data))
		_ = checkSSID(string(data))
	})
}
