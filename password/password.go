// Package password hashes and verifies administrator passwords with argon2id,
// encoded in the PHC string format:
//
//	$argon2id$v=19$m=65536,t=3,p=2$<salt>$<hash>
//
// The cost parameters are read back from each encoded string, so they can be
// raised for new hashes without invalidating old ones (see NeedsRehash).
//
// It owns only the hashing scheme. It does not store hashes (package store
// does), does not decide lockout policy (store and web do) and does not handle
// session or API tokens (those are random values hashed with SHA-256 by their
// owners; argon2 is for low-entropy human secrets).
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// MaxLength is the longest password accepted, in bytes. The bound stops a
// login form from being used to make the server hash megabytes per request.
const MaxLength = 1024

// Current cost parameters for new hashes: OWASP's first recommendation for
// argon2id (19 MiB, two passes, one lane). Memory is in KiB. Every login
// and every RADIUS password check takes this much memory while it runs, so
// it is bounded by the daemon's memory budget (64 MiB resident in all, issue
// 17), not only by what hurts a GPU; older hashes (64 MiB) still verify and
// NeedsRehash reports them.
const (
	memoryKiB = 19 * 1024
	timeCost  = 2
	threads   = 1
	saltLen   = 16
	keyLen    = 32
)

// HashMemory is how many bytes one hash or check of the current cost takes
// while it runs, for callers that budget memory (the daemon's soft limit).
const HashMemory = memoryKiB << 10

// Bounds on parameters read from an encoded string. A stored hash is trusted
// data only as far as the database is; these stop a corrupted or hostile row
// from panicking argon2 or exhausting the router's memory.
const (
	maxMemoryKiB = 1024 * 1024 // 1 GiB
	maxTime      = 64
	maxThreads   = 64
	minSaltLen   = 8
	maxSaltLen   = 64
	minKeyLen    = 16
	maxKeyLen    = 64
)

var (
	// ErrEmpty is returned for an empty password.
	ErrEmpty = errors.New("password: empty password")
	// ErrTooLong is returned for a password longer than MaxLength bytes.
	ErrTooLong = fmt.Errorf("password: longer than %d bytes", MaxLength)
	// ErrMalformed wraps every problem with an encoded hash string.
	ErrMalformed = errors.New("password: malformed hash")
)

// b64 is the PHC encoding: standard alphabet, no padding. Strict rejects
// non-zero trailing bits so each value has exactly one encoding.
var b64 = base64.RawStdEncoding.Strict()

// params are the argon2id cost parameters of one hash.
type params struct {
	memory  uint32 // KiB
	time    uint32
	threads uint8
}

var current = params{memory: memoryKiB, time: timeCost, threads: threads}

// Hash returns a PHC-encoded argon2id hash of pw with a fresh random salt.
func Hash(pw string) (string, error) {
	return hashWith(pw, current)
}

func hashWith(pw string, p params) (string, error) {
	if err := checkPassword(pw); err != nil {
		return "", err
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: read salt: %w", err)
	}
	key := idKey([]byte(pw), salt, p, keyLen)
	return encode(p, salt, key), nil
}

// Verify reports whether pw matches the encoded hash. A wrong password is
// (false, nil); an unusable hash string or an out-of-range password is an
// error, so callers can tell "wrong password" from "broken account record".
func Verify(encoded, pw string) (bool, error) {
	if err := checkPassword(pw); err != nil {
		return false, err
	}
	p, salt, want, err := decode(encoded)
	if err != nil {
		return false, err
	}
	got := idKey([]byte(pw), salt, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// NeedsRehash reports whether encoded was made with parameters other than the
// current ones (or cannot be parsed), so a caller that has just verified the
// plaintext can store a fresh hash.
func NeedsRehash(encoded string) bool {
	p, salt, key, err := decode(encoded)
	if err != nil {
		return true
	}
	return p != current || len(salt) != saltLen || len(key) != keyLen
}

func checkPassword(pw string) error {
	switch {
	case pw == "":
		return ErrEmpty
	case len(pw) > MaxLength:
		return ErrTooLong
	}
	return nil
}

func encode(p params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.memory, p.time, p.threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// decode parses the canonical form written by encode. Anything else (other
// variants, parameter orders, optional PHC fields, padding) is rejected
// rather than guessed at: only this package writes these strings.
func decode(encoded string) (params, []byte, []byte, error) {
	var p params
	fields := strings.Split(encoded, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(fields) != 6 || fields[0] != "" {
		return p, nil, nil, fmt.Errorf("%w: want 5 '$'-separated fields", ErrMalformed)
	}
	if fields[1] != "argon2id" {
		return p, nil, nil, fmt.Errorf("%w: algorithm %q is not argon2id", ErrMalformed, fields[1])
	}
	if fields[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, fmt.Errorf("%w: unsupported version %q", ErrMalformed, fields[2])
	}
	kv := strings.Split(fields[3], ",")
	if len(kv) != 3 {
		return p, nil, nil, fmt.Errorf("%w: want parameters m,t,p", ErrMalformed)
	}
	m, err := parseParam(kv[0], "m", 1, maxMemoryKiB)
	if err != nil {
		return p, nil, nil, err
	}
	t, err := parseParam(kv[1], "t", 1, maxTime)
	if err != nil {
		return p, nil, nil, err
	}
	th, err := parseParam(kv[2], "p", 1, maxThreads)
	if err != nil {
		return p, nil, nil, err
	}
	// RFC 9106 requires at least 8 KiB per lane; argon2 would silently raise
	// it, which would make the string lie about the cost actually paid.
	if m < 8*th {
		return p, nil, nil, fmt.Errorf("%w: m=%d is below 8*p", ErrMalformed, m)
	}
	p = params{memory: m, time: t, threads: uint8(th)}
	salt, err := b64.DecodeString(fields[4])
	if err != nil {
		return p, nil, nil, fmt.Errorf("%w: salt: %v", ErrMalformed, err)
	}
	if len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return p, nil, nil, fmt.Errorf("%w: salt is %d bytes, want %d..%d", ErrMalformed, len(salt), minSaltLen, maxSaltLen)
	}
	key, err := b64.DecodeString(fields[5])
	if err != nil {
		return p, nil, nil, fmt.Errorf("%w: hash: %v", ErrMalformed, err)
	}
	if len(key) < minKeyLen || len(key) > maxKeyLen {
		return p, nil, nil, fmt.Errorf("%w: hash is %d bytes, want %d..%d", ErrMalformed, len(key), minKeyLen, maxKeyLen)
	}
	return p, salt, key, nil
}

// parseParam parses "name=value" with value a canonical decimal (no sign, no
// leading zeros) in [lo, hi].
func parseParam(s, name string, lo, hi uint32) (uint32, error) {
	v, ok := strings.CutPrefix(s, name+"=")
	if !ok {
		return 0, fmt.Errorf("%w: want parameter %s= in %q", ErrMalformed, name, s)
	}
	if v == "" || v[0] < '1' || v[0] > '9' {
		return 0, fmt.Errorf("%w: parameter %s=%q is not a positive decimal", ErrMalformed, name, v)
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: parameter %s=%q: %v", ErrMalformed, name, v, err)
	}
	if uint32(n) < lo || uint32(n) > hi {
		return 0, fmt.Errorf("%w: parameter %s=%d out of range %d..%d", ErrMalformed, name, n, lo, hi)
	}
	return uint32(n), nil
}
