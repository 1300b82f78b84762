package people

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/gatehouse-net/gatehouse/store"
)

// ntSealLabel names the site-key subkey that seals NT hashes; no other
// feature derives this one.
const ntSealLabel = "gatehouse people wifi nt-hash sealing v1"

// NTSealer seals NT password hashes (MSCHAPv2 needs them; an argon2id hash
// cannot give them) with AES-256-GCM under a key derived from the site key
// by HKDF-SHA256, bound to the person's id as additional data, so the
// database alone does not give them away and a sealed hash copied onto
// another person's row does not open.
type NTSealer struct{ aead cipher.AEAD }

// NewNTSealer derives the sealing key from siteKey (package sitekey).
func NewNTSealer(siteKey []byte) (*NTSealer, error) {
	if len(siteKey) < 32 {
		return nil, errors.New("people: the site key must be at least 32 bytes")
	}
	key, err := hkdf.Key(sha256.New, siteKey, nil, ntSealLabel, 32)
	if err != nil {
		return nil, fmt.Errorf("people: deriving the NT hash key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &NTSealer{aead: aead}, nil
}

func ntAD(personID int64) []byte {
	return binary.BigEndian.AppendUint64([]byte("person:"), uint64(personID))
}

// seal returns nonce | ciphertext.
func (n *NTSealer) seal(personID int64, nt [16]byte) ([]byte, error) {
	nonce := make([]byte, n.aead.NonceSize(), n.aead.NonceSize()+len(nt)+n.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("people: sealing an NT hash: %w", err)
	}
	return n.aead.Seal(nonce, nonce, nt[:], ntAD(personID)), nil
}

func (n *NTSealer) open(personID int64, sealed []byte) ([16]byte, error) {
	var nt [16]byte
	ns := n.aead.NonceSize()
	if len(sealed) != ns+len(nt)+n.aead.Overhead() {
		return nt, fmt.Errorf("people: the sealed NT hash of person %d is %d bytes", personID, len(sealed))
	}
	plain, err := n.aead.Open(nil, sealed[:ns], sealed[ns:], ntAD(personID))
	if err != nil {
		return nt, fmt.Errorf("people: the sealed NT hash of person %d does not open (another site key, or tampered): %w", personID, err)
	}
	copy(nt[:], plain)
	return nt, nil
}

// NTHash is the MSCHAPv2 lookup (radius/mschapv2.Lookup): the NT hash of
// the person whose username is username. found is false for nobody of that
// name, for a person who has left or is revoked, for one without a Wi-Fi
// password, and always when MSCHAPv2 is not enabled. err is for a store
// failure or a sealed hash that does not open.
func (s *Service) NTHash(ctx context.Context, username string) (nt [16]byte, found bool, err error) {
	if s.opts.NTHashes == nil || username == "" {
		return nt, false, nil
	}
	p, sealed, err := s.st.PersonNTLogin(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		return nt, false, nil
	}
	if err != nil {
		return nt, false, err
	}
	if (p.State != store.PersonActive && p.State != store.PersonLeaving) || len(sealed) == 0 {
		return nt, false, nil
	}
	nt, err = s.opts.NTHashes.open(p.ID, sealed)
	if err != nil {
		return [16]byte{}, false, err
	}
	return nt, true, nil
}

// ClearNTHashes removes every stored NT hash when MSCHAPv2 is not enabled
// (Options.NTHashes nil), so turning PEAP off leaves none behind; the
// daemon calls it at start. With MSCHAPv2 enabled it does nothing.
func (s *Service) ClearNTHashes(ctx context.Context) (int64, error) {
	if s.opts.NTHashes != nil {
		return 0, nil
	}
	n, err := s.st.ClearWiFiNTHashes(ctx, "system:people", s.now())
	if n > 0 {
		s.log.Info("removed the stored NT hashes: MSCHAPv2 is not enabled", "count", n)
	}
	return n, err
}

// WiFiPasswordState says whether p has a Wi-Fi password and whether it is
// also kept as a sealed NT hash, for the person page.
func (s *Service) WiFiPasswordState(ctx context.Context, p store.Person) (set, nt bool, err error) {
	if p.Username == "" {
		return false, false, nil
	}
	got, hash, err := s.st.PersonLogin(ctx, p.Username)
	if errors.Is(err, store.ErrNotFound) || (err == nil && got.ID != p.ID) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	_, sealed, err := s.st.PersonNTLogin(ctx, p.Username)
	if err != nil {
		return false, false, err
	}
	return hash != "", len(sealed) > 0, nil
}
