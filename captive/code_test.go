package captive

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestNewCodeShapeAndEntropy(t *testing.T) {
	if CodeBits < 48 {
		t.Fatalf("a code carries %.2f bits, want at least 48", CodeBits)
	}
	for _, bad := range "01OILU" {
		if strings.ContainsRune(CodeAlphabet, bad) {
			t.Errorf("alphabet contains ambiguous %q", bad)
		}
	}
	if len(CodeAlphabet) != 30 {
		t.Fatalf("alphabet has %d symbols", len(CodeAlphabet))
	}
	seen := map[string]bool{}
	counts := map[rune]int{}
	for range 2000 {
		c, err := NewCode(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(c) != CodeLength {
			t.Fatalf("code %q has length %d", c, len(c))
		}
		if n, err := NormaliseCode(c); err != nil || n != c {
			t.Fatalf("new code %q does not normalise to itself: %q %v", c, n, err)
		}
		if seen[c] {
			t.Fatalf("duplicate code %q in 2000", c)
		}
		seen[c] = true
		for _, r := range c {
			counts[r]++
		}
	}
	// 20,000 symbols over 30: each expected ~667; a symbol never drawn, or
	// drawn twice as often as expected, means a broken mapping.
	for _, r := range CodeAlphabet {
		if counts[r] < 400 || counts[r] > 1000 {
			t.Errorf("symbol %q drawn %d times in 20000", r, counts[r])
		}
	}
}

func TestNewCodeRejectsBiasedBytes(t *testing.T) {
	// 240..255 must be skipped: a source of only those never yields a code.
	src := bytes.NewReader(bytes.Repeat([]byte{250}, 16*70))
	if _, err := NewCode(src); err == nil {
		t.Fatal("code made from rejected bytes")
	}
	// Byte 0 maps to the first symbol, 239 to the last.
	c, err := NewCode(bytes.NewReader(append(bytes.Repeat([]byte{0}, 9), append([]byte{239}, make([]byte, 6)...)...)))
	if err != nil || c != "222222222Z" {
		t.Fatalf("code = %q, %v", c, err)
	}
	if _, err := NewCode(bytes.NewReader(nil)); err == nil {
		t.Fatal("code from an empty source")
	}
}

func TestNormaliseCode(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      bool
	}{
		{"ABCDE23456", "ABCDE23456", false},
		{"abcde-23456", "ABCDE23456", false},
		{" abCde 234 56 ", "ABCDE23456", false},
		{"ABCDE–23456", "ABCDE23456", false}, // en dash from autocorrect
		{"a.b.c.d.e_2_3_4_5_6", "ABCDE23456", false},
		{"ABCDE2345", "", true},   // short
		{"ABCDE234567", "", true}, // long
		{"ABCDE0O1IL", "", true},  // ambiguous symbols are never in a code
		{"ABCDE2345U", "", true},  // U is not in the alphabet
		{"ABCDÉ23456", "", true},  // non-ASCII
		{"ABCDE/23456", "", true}, // other punctuation
		{"", "", true},
		{strings.Repeat("-", 100) + "ABCDE23456", "", true},
	} {
		got, err := NormaliseCode(tc.in)
		if tc.err {
			if !errors.Is(err, ErrMalformedCode) {
				t.Errorf("NormaliseCode(%q) = %q, %v; want ErrMalformedCode", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("NormaliseCode(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestFormatAndHashCode(t *testing.T) {
	if got := FormatCode("ABCDE23456"); got != "ABCDE-23456" {
		t.Fatalf("FormatCode = %q", got)
	}
	n, _ := NormaliseCode(FormatCode("ABCDE23456"))
	if n != "ABCDE23456" {
		t.Fatalf("formatted code does not normalise back: %q", n)
	}
	k1, k2 := []byte("key-one-key-one-key-one-key-one!"), []byte("key-two-key-two-key-two-key-two!")
	h := HashCode(k1, "ABCDE23456")
	if len(h) != 64 || h != HashCode(k1, "ABCDE23456") {
		t.Fatalf("hash %q not stable hex", h)
	}
	if h == HashCode(k2, "ABCDE23456") || h == HashCode(k1, "ABCDE23457") {
		t.Fatal("hash ignores the key or the code")
	}
	if strings.Contains(h, "ABCDE") {
		t.Fatal("hash contains the code")
	}
}

// FuzzNormaliseCode: whatever is typed, NormaliseCode either refuses it or
// returns 10 alphabet symbols that normalise to themselves.
func FuzzNormaliseCode(f *testing.F) {
	for _, s := range []string{"ABCDE-23456", "abcde 23456", "", "0O1IL", "ÀBCDE23456", strings.Repeat("A", 70)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := NormaliseCode(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedCode) {
				t.Fatalf("NormaliseCode(%q) error %v", s, err)
			}
			return
		}
		if len(got) != CodeLength {
			t.Fatalf("NormaliseCode(%q) = %q", s, got)
		}
		for _, r := range got {
			if !strings.ContainsRune(CodeAlphabet, r) {
				t.Fatalf("NormaliseCode(%q) = %q has %q", s, got, r)
			}
		}
		if again, err := NormaliseCode(got); err != nil || again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q %v", s, got, again, err)
		}
	})
}
