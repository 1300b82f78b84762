package captive

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
)

// CodeAlphabet is the 30 symbols a code is made of: the digits 2-9 and the
// letters without I, L, O (confused with 1 and 0) and U (avoids accidental
// words). 0 and 1 are left out too, so nothing printed can be misread.
const CodeAlphabet = "23456789ABCDEFGHJKMNPQRSTVWXYZ"

// CodeLength is the number of symbols in a code.
const CodeLength = 10

// CodeBits is the entropy of a code: 10·log2(30) ≈ 49.07 bits.
var CodeBits = CodeLength * math.Log2(float64(len(CodeAlphabet)))

// ErrMalformedCode is returned by NormaliseCode for input that cannot be a
// code (wrong length or symbols outside the alphabet).
var ErrMalformedCode = errors.New("captive: not a code: 10 letters and digits expected")

// NewCode returns a random code from r (crypto/rand.Reader when nil), in
// normalised form (10 upper-case symbols, no separator). Each symbol is
// drawn uniformly: bytes >= 240 are rejected so that the modulo has no bias.
func NewCode(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	const limit = 256 - 256%len(CodeAlphabet)
	out := make([]byte, 0, CodeLength)
	buf := make([]byte, 16)
	for tries := 0; len(out) < CodeLength; tries++ {
		if tries > 64 {
			return "", errors.New("captive: new code: random source keeps returning rejected bytes")
		}
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", fmt.Errorf("captive: new code: %w", err)
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < CodeLength {
				out = append(out, CodeAlphabet[int(b)%len(CodeAlphabet)])
			}
		}
	}
	return string(out), nil
}

// NormaliseCode turns what a visitor typed into the normalised code:
// letters in either case, with spaces, dashes, dots and underscores
// anywhere ignored. Anything else is ErrMalformedCode.
func NormaliseCode(s string) (string, error) {
	if len(s) > 64 {
		return "", ErrMalformedCode
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == ' ' || r == '-' || r == '\t' || r == '.' || r == '_' || r == '\u00a0' || r == '\u2010' || r == '\u2011' || r == '\u2013':
			continue
		case r >= 'a' && r <= 'z':
			r -= 'a' - 'A'
		}
		if r > 0x7f || !strings.ContainsRune(CodeAlphabet, r) {
			return "", ErrMalformedCode
		}
		b.WriteRune(r)
	}
	if b.Len() != CodeLength {
		return "", ErrMalformedCode
	}
	return b.String(), nil
}

// FormatCode prints a normalised code as two groups of five, like ABCDE-FGHJK.
func FormatCode(code string) string {
	if len(code) != CodeLength {
		return code
	}
	return code[:5] + "-" + code[5:]
}

// HashCode is what the database keeps of a normalised code: hex
// HMAC-SHA256 under the site key. A keyed hash (not a plain one) means a
// stolen database alone does not allow an offline search of the ~2^49 codes.
func HashCode(key []byte, code string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("gatehouse-voucher-v1\x00"))
	m.Write([]byte(code))
	return hex.EncodeToString(m.Sum(nil))
}
