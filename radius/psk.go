package radius

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
)

// keyAlphabet has no characters that read alike on a printed card (0/O/o,
// 1/l/I, 5/S, 2/Z, u/v): lower case only, so nobody hunts for shift.
const keyAlphabet = "346789abcdefghjkmnpqrtwxy"

// keyGroups of keyGroupLen characters joined by '-' make a key: 16 random
// characters of a 25-letter alphabet, about 74 bits, typed as four groups.
const (
	keyGroups   = 4
	keyGroupLen = 4
)

// GenerateKey returns a new personal Wi-Fi key, like "k7dm-3xqa-9wpe-fh4t".
func GenerateKey() (string, error) {
	var b strings.Builder
	max := big.NewInt(int64(len(keyAlphabet)))
	for g := range keyGroups {
		if g > 0 {
			b.WriteByte('-')
		}
		for range keyGroupLen {
			n, err := rand.Int(rand.Reader, max)
			if err != nil {
				return "", fmt.Errorf("radius: generating a key: %w", err)
			}
			b.WriteByte(keyAlphabet[n.Int64()])
		}
	}
	return b.String(), nil
}

// KeyStore keeps sealed keys and their sealed PMKs (package store).
type KeyStore interface {
	RADIUSDeviceAt(ctx context.Context, mac net.HardwareAddr, now time.Time) (store.RADIUSDevice, error)
	SetDeviceKeyWithPMKs(ctx context.Context, actor string, mac net.HardwareAddr, sealed []byte, pmks []store.SealedPMK, now, keepUntil time.Time) error
}

// Keyring seals personal keys with AES-256-GCM under a key derived from the
// site key, bound to the device's MAC (the additional data), so a sealed key
// copied onto another device's row does not open. It derives a new key's
// PMK on every SSID when it sets the key and stores them sealed the same
// way (bound to the MAC, the key and the SSID), so that neither a request
// nor a start pays PBKDF2.
type Keyring struct {
	aead    cipher.AEAD
	store   KeyStore
	ssids   []string
	now     func() time.Time
	changed chan struct{}
}

// NewKeyring derives the sealing key from siteKey (package sitekey). ssids
// are every SSID the segments serve: a key's PMKs are derived for each.
func NewKeyring(siteKey []byte, st KeyStore, ssids []string, now func() time.Time) (*Keyring, error) {
	if len(siteKey) < 32 {
		return nil, errors.New("radius: the site key must be at least 32 bytes")
	}
	m := hmac.New(sha256.New, siteKey)
	m.Write([]byte("gatehouse radius personal-key sealing v1"))
	block, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	var valid []string
	for _, ssid := range ssids {
		if ssid != "" && len(ssid) <= 32 && !slices.Contains(valid, ssid) {
			valid = append(valid, ssid)
		}
	}
	return &Keyring{aead: aead, store: st, ssids: valid, now: now, changed: make(chan struct{}, 1)}, nil
}

// Changed is signalled after this Keyring set a key: the server reloads
// its PMKs at once rather than at its next look at the store.
func (k *Keyring) Changed() <-chan struct{} { return k.changed }

// pmkAD binds a sealed PMK to its device, key and SSID; the prefix keeps it
// from ever opening as a key.
func pmkAD(mac net.HardwareAddr, ref, ssid string) []byte {
	return []byte("pmk\x00" + mac.String() + "\x00" + ref + "\x00" + ssid)
}

// derivePMK derives key's PMK on ssid (PBKDF2) and seals it for the store.
func (k *Keyring) derivePMK(mac net.HardwareAddr, ref, key, ssid string) ([]byte, store.SealedPMK, error) {
	pmk, err := PMK(key, ssid)
	if err != nil {
		return nil, store.SealedPMK{}, fmt.Errorf("radius: PMK of %s on %q: %w", mac, ssid, err)
	}
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(pmk)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, store.SealedPMK{}, err
	}
	sealed := k.aead.Seal(nonce, nonce, pmk, pmkAD(mac, ref, ssid))
	return pmk, store.SealedPMK{MAC: append(net.HardwareAddr(nil), mac...), KeyRef: ref, SSID: ssid, Sealed: sealed}, nil
}

// openPMK opens a PMK derivePMK sealed.
func (k *Keyring) openPMK(mac net.HardwareAddr, ref, ssid string, sealed []byte) ([]byte, error) {
	ns := k.aead.NonceSize()
	if len(sealed) < ns+k.aead.Overhead() {
		return nil, fmt.Errorf("radius: PMK of %s on %q: sealed PMK too short", mac, ssid)
	}
	pmk, err := k.aead.Open(nil, sealed[:ns], sealed[ns:], pmkAD(mac, ref, ssid))
	if err != nil || len(pmk) != pmkLen {
		return nil, fmt.Errorf("radius: PMK of %s on %q: does not open with this site key", mac, ssid)
	}
	return pmk, nil
}

func (k *Keyring) seal(mac net.HardwareAddr, key string) ([]byte, error) {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(key)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return k.aead.Seal(nonce, nonce, []byte(key), []byte(mac.String())), nil
}

func (k *Keyring) open(mac net.HardwareAddr, sealed []byte) (string, error) {
	ns := k.aead.NonceSize()
	if len(sealed) < ns+k.aead.Overhead() {
		return "", errors.New("sealed key too short")
	}
	pt, err := k.aead.Open(nil, sealed[:ns], sealed[ns:], []byte(mac.String()))
	if err != nil {
		return "", errors.New("sealed key does not open with this site key")
	}
	return string(pt), nil
}

// Rotate gives a device a new personal key, replacing its old one at once,
// and returns it: the only time it is shown. The device must be known.
func (k *Keyring) Rotate(ctx context.Context, actor string, mac net.HardwareAddr) (string, error) {
	return k.RotateKeepingOld(ctx, actor, mac, 0)
}

// RotateKeepingOld is Rotate, except that the key it replaces stays valid
// for keepOld more (when keepOld > 0): every Access-Accept in that time
// carries both keys, so the people who share the device's key can move to
// the new one without being cut off. Old keys already expired are deleted.
func (k *Keyring) RotateKeepingOld(ctx context.Context, actor string, mac net.HardwareAddr, keepOld time.Duration) (string, error) {
	key, err := GenerateKey()
	if err != nil {
		return "", err
	}
	sealed, err := k.seal(mac, key)
	if err != nil {
		return "", fmt.Errorf("radius: sealing a key: %w", err)
	}
	now := k.now()
	var until time.Time
	if keepOld > 0 {
		until = now.Add(keepOld)
	}
	ref := store.KeyRef(sealed)
	pmks := make([]store.SealedPMK, 0, len(k.ssids))
	for _, ssid := range k.ssids {
		_, sp, err := k.derivePMK(mac, ref, key, ssid)
		if err != nil {
			return "", err
		}
		pmks = append(pmks, sp)
	}
	if err := k.store.SetDeviceKeyWithPMKs(ctx, actor, mac, sealed, pmks, now, until); err != nil {
		return "", fmt.Errorf("radius: storing the key of %s: %w", mac, err)
	}
	select {
	case k.changed <- struct{}{}:
	default: // a reload is already due
	}
	return key, nil
}

// MaxOverlap bounds how long a replaced key may stay valid.
const MaxOverlap = 366 * 24 * time.Hour

// ParseOverlap reads how long a replaced key stays valid: "" (not at all),
// a Go duration ("72h") or whole days ("7d", as overlaps are planned), at
// most MaxOverlap.
func ParseOverlap(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	bad := fmt.Errorf("radius: overlap %q: want a duration like 72h or whole days like 7d, at most 366d", v)
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || time.Duration(n)*24*time.Hour > MaxOverlap {
			return 0, bad
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > MaxOverlap {
		return 0, bad
	}
	return d, nil
}

// Keys returns the device's personal keys in clear, for an Access-Accept:
// the current one first, then the old ones still valid, oldest first.
func (k *Keyring) Keys(ctx context.Context, mac net.HardwareAddr) ([]string, error) {
	d, err := k.store.RADIUSDeviceAt(ctx, mac, k.now())
	if err != nil {
		return nil, err
	}
	return k.OpenAll(mac, d.PSKSealed, d.OldKeys, k.now())
}

// OpenAll opens a device's current sealed key (nil: none) and those of its
// old keys not expired at now, current first: one Tunnel-Password each.
func (k *Keyring) OpenAll(mac net.HardwareAddr, current []byte, old []store.OldKey, now time.Time) ([]string, error) {
	var keys []string
	if current != nil {
		key, err := k.Open(mac, current)
		if err != nil {
			return nil, err
		}
		keys = append(keys, key)
	}
	for _, o := range old {
		if !o.Expires.After(now) {
			continue
		}
		key, err := k.Open(mac, o.Sealed)
		if err != nil {
			return nil, err
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// Open returns the key sealed for mac, as the KeyStore keeps it.
func (k *Keyring) Open(mac net.HardwareAddr, sealed []byte) (string, error) {
	key, err := k.open(mac, sealed)
	if err != nil {
		return "", fmt.Errorf("radius: key of %s: %w", mac, err)
	}
	return key, nil
}

// WiFiQR is the payload of a Wi-Fi joining QR code (the WIFI:T:WPA;S:..;P:..;;
// form phones' cameras read), with ; , : \ and " escaped.
func WiFiQR(ssid, key string) string {
	esc := strings.NewReplacer(`\`, `\\`, `;`, `\;`, `,`, `\,`, `:`, `\:`, `"`, `\"`)
	return "WIFI:T:WPA;S:" + esc.Replace(ssid) + ";P:" + esc.Replace(key) + ";;"
}

// PersonKeys disables a person's personal keys: package people's
// Credentials (a leaver's or a revoked person's keys stop working; their
// devices' next Access-Accept carries none). Actor is who is recorded.
type PersonKeys struct {
	Store interface {
		DisablePersonKeys(ctx context.Context, actor string, personID int64, now time.Time) (int64, error)
	}
	Actor string
}

// DisablePerson removes the keys of every device the person owns.
func (p PersonKeys) DisablePerson(ctx context.Context, personID int64) error {
	_, err := p.Store.DisablePersonKeys(ctx, p.Actor, personID, time.Now())
	return err
}
