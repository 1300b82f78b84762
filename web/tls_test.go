package web

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"testing"

	"github.com/gatehouse-net/gatehouse/store"
)

func TestAutoCertificateIsCreatedOnceAndReused(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(context.Background(), dir+"/gh.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cert, key := dir+"/tls/cert.pem", dir+"/tls/key.pem"
	opts := Options{Store: st, Listen: "gatehouse.school.test:8443", CertFile: cert, KeyFile: key, Auto: true}

	s1, err := New(opts)
	if err != nil {
		t.Fatalf("first New: %v", err)
	}
	keyBefore := readFile(t, key)
	if mode := fileMode(t, key); mode != 0o600 {
		t.Errorf("key mode %o, want 600", mode)
	}
	leaf := parseCert(t, s1.CertPEM())
	if leaf.PublicKeyAlgorithm.String() != "ECDSA" {
		t.Errorf("key algorithm %v, want ECDSA", leaf.PublicKeyAlgorithm)
	}
	for _, name := range []string{"localhost", "gatehouse.school.test"} {
		if err := leaf.VerifyHostname(name); err != nil {
			t.Errorf("certificate does not cover %s: %v", name, err)
		}
	}
	if err := leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Errorf("certificate does not cover 127.0.0.1: %v", err)
	}

	s2, err := New(opts)
	if err != nil {
		t.Fatalf("second New: %v", err)
	}
	if string(s2.CertPEM()) != string(s1.CertPEM()) || string(readFile(t, key)) != string(keyBefore) {
		t.Error("second start made a new certificate instead of reusing the first")
	}

	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"missing files without auto", Options{Store: st, CertFile: dir + "/none/cert.pem", KeyFile: dir + "/none/key.pem"}},
		{"half a pair", Options{Store: st, CertFile: cert, KeyFile: dir + "/other-key.pem", Auto: true}},
		{"no paths", Options{Store: st, Auto: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.opts); err == nil {
				t.Error("New succeeded, want an error")
			}
		})
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func parseCert(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatal("no CERTIFICATE block")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
