package web

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// autoCertLifetime is how long a self-signed certificate is valid. Browsers
// do not cap self-signed certificates a user has accepted, and a school
// should not have to re-accept one every year.
const autoCertLifetime = 5 * 365 * 24 * time.Hour

// loadOrCreateCert loads the PEM pair at certFile and keyFile. With auto,
// a pair that does not exist yet (or has expired) is created first: a
// self-signed ECDSA P-256 certificate for the listen host, "localhost",
// 127.0.0.1 and ::1. The pair is kept on disk so later starts present the
// same certificate. It returns the pair and the certificate's PEM.
func loadOrCreateCert(certFile, keyFile string, auto bool, listen, site string, now time.Time, log *slog.Logger) (tls.Certificate, []byte, error) {
	if certFile == "" || keyFile == "" {
		return tls.Certificate{}, nil, errors.New("web: tls: CertFile and KeyFile are required")
	}
	certExists, err := exists(certFile)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	keyExists, err := exists(keyFile)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	switch {
	case certExists && keyExists:
		cert, certPEM, err := loadPair(certFile, keyFile)
		if err != nil {
			return tls.Certificate{}, nil, err
		}
		if !auto || now.Before(cert.Leaf.NotAfter) {
			return cert, certPEM, nil
		}
		log.Warn("web: tls: self-signed certificate expired, creating a new one", "cert", certFile, "not_after", cert.Leaf.NotAfter)
	case !auto:
		return tls.Certificate{}, nil, fmt.Errorf("web: tls: certificate %s or key %s missing and auto certificate is off", certFile, keyFile)
	case certExists != keyExists:
		// Half a pair is somebody's mistake or a crash mid-write; overwriting
		// it could destroy a real key.
		return tls.Certificate{}, nil, fmt.Errorf("web: tls: only one of %s and %s exists; remove it or supply both", certFile, keyFile)
	}
	if err := createSelfSigned(certFile, keyFile, listen, site, now); err != nil {
		return tls.Certificate{}, nil, err
	}
	log.Info("web: tls: created self-signed certificate", "cert", certFile, "key", keyFile)
	return loadPair(certFile, keyFile)
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("web: tls: stat %s: %w", path, err)
	}
	return true, nil
}

func loadPair(certFile, keyFile string) (tls.Certificate, []byte, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("web: tls: read %s: %w", certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("web: tls: read %s: %w", keyFile, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("web: tls: load %s and %s: %w", certFile, keyFile, err)
	}
	return cert, certPEM, nil
}

// certHosts lists the names a self-signed certificate covers: the listen
// host (unless it is a wildcard address, which no client dials), and the
// loopback names.
func certHosts(listen string) (dns []string, ips []net.IP) {
	dns = []string{"localhost"}
	ips = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		host = listen
	}
	if host == "" || host == "localhost" {
		return dns, ips
	}
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsUnspecified() && !ip.IsLoopback() {
			ips = append(ips, ip)
		}
		return dns, ips
	}
	return append(dns, host), ips
}

func createSelfSigned(certFile, keyFile, listen, site string, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("web: tls: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return fmt.Errorf("web: tls: serial number: %w", err)
	}
	dns, ips := certHosts(listen)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: dns[len(dns)-1], Organization: []string{site}},
		NotBefore:             now.Add(-time.Hour), // tolerate a client clock slightly behind
		NotAfter:              now.Add(autoCertLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              dns,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("web: tls: create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("web: tls: marshal key: %w", err)
	}
	// Each file is replaced atomically. A crash between the two writes
	// leaves half a pair, which the next start reports instead of guessing.
	if err := writeFileAtomic(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	if err := writeFileAtomic(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return nil
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory, so a crash leaves either the old file or the new one.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("web: tls: create directory %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("web: tls: write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("web: tls: chmod %s: %w", tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("web: tls: write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("web: tls: sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("web: tls: close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("web: tls: rename %s: %w", tmp, err)
	}
	return nil
}
