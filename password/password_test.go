package password

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// Published vectors from the Argon2 reference implementation (test.c), so the
// encoding and the KDF are checked against something other than this code.
var referenceVectors = []struct {
	name, pw, encoded string
}{
	{"m=65536 t=2 p=1", "password", "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"m=256 t=2 p=1", "password", "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
}

func TestVerifyAcceptsReferenceVectors(t *testing.T) {
	for _, v := range referenceVectors {
		t.Run(v.name, func(t *testing.T) {
			ok, err := Verify(v.encoded, v.pw)
			if err != nil || !ok {
				t.Fatalf("Verify(reference, right password) = %v, %v; want true, nil", ok, err)
			}
			ok, err = Verify(v.encoded, "passwore")
			if err != nil || ok {
				t.Fatalf("Verify(reference, wrong password) = %v, %v; want false, nil", ok, err)
			}
		})
	}
}

func TestHashProducesCurrentPHCStringThatVerifies(t *testing.T) {
	phc := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	h1, err := Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !phc.MatchString(h1) {
		t.Fatalf("Hash = %q, not the expected PHC form", h1)
	}
	if NeedsRehash(h1) {
		t.Errorf("NeedsRehash(fresh hash) = true")
	}
	h2, err := Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if h1 == h2 {
		t.Errorf("two hashes of the same password are equal; salt is not random")
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{
		{"correct horse battery staple", true},
		{"correct horse battery stapl", false},
		{"Correct horse battery staple", false},
		{"correct horse battery staple ", false},
	} {
		ok, err := Verify(h2, tc.pw)
		if err != nil || ok != tc.want {
			t.Errorf("Verify(h, %q) = %v, %v; want %v, nil", tc.pw, ok, err, tc.want)
		}
	}
}

func TestParametersAreReadFromTheEncodedString(t *testing.T) {
	// A hash made with cheaper, older parameters must still verify after the
	// defaults change, and be flagged for rehashing.
	old := params{memory: 256, time: 1, threads: 1}
	h, err := hashWith("hunter2!", old)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=256,t=1,p=1$") {
		t.Fatalf("hashWith(old) = %q", h)
	}
	ok, err := Verify(h, "hunter2!")
	if err != nil || !ok {
		t.Fatalf("Verify(old-params hash) = %v, %v; want true, nil", ok, err)
	}
	if !NeedsRehash(h) {
		t.Errorf("NeedsRehash(old-params hash) = false; want true")
	}
	if !NeedsRehash("garbage") {
		t.Errorf("NeedsRehash(garbage) = false; want true")
	}
}

func TestPasswordLengthLimits(t *testing.T) {
	const cheap = "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"
	for _, tc := range []struct {
		name    string
		pw      string
		wantErr error
	}{
		{"empty", "", ErrEmpty},
		{"one byte over", strings.Repeat("a", MaxLength+1), ErrTooLong},
		{"megabyte", strings.Repeat("a", 1<<20), ErrTooLong},
		{"exactly max", strings.Repeat("a", MaxLength), nil},
		{"one byte", "a", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := hashWith(tc.pw, params{memory: 64, time: 1, threads: 1})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("hash: err = %v; want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil && h != "" {
				t.Errorf("hash returned %q alongside an error", h)
			}
			ok, err := Verify(cheap, tc.pw)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Verify: err = %v; want %v", err, tc.wantErr)
			}
			if ok {
				t.Errorf("Verify(%d-byte password) = true", len(tc.pw))
			}
		})
	}
	if _, err := Hash(""); !errors.Is(err, ErrEmpty) {
		t.Errorf("Hash(\"\") err = %v; want ErrEmpty", err)
	}
}

func TestVerifyRejectsMalformedHashes(t *testing.T) {
	const salt, key = "c29tZXNhbHQ", "nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"
	for _, tc := range []struct{ name, encoded string }{
		{"empty", ""},
		{"no leading dollar", "argon2id$v=19$m=256,t=2,p=1$" + salt + "$" + key},
		{"argon2i", "$argon2i$v=19$m=256,t=2,p=1$" + salt + "$" + key},
		{"argon2d", "$argon2d$v=19$m=256,t=2,p=1$" + salt + "$" + key},
		{"bcrypt", "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"version 16", "$argon2id$v=16$m=256,t=2,p=1$" + salt + "$" + key},
		{"missing version", "$argon2id$m=256,t=2,p=1$" + salt + "$" + key},
		{"params reordered", "$argon2id$v=19$t=2,m=256,p=1$" + salt + "$" + key},
		{"extra param", "$argon2id$v=19$m=256,t=2,p=1,keyid=x$" + salt + "$" + key},
		{"zero time", "$argon2id$v=19$m=256,t=0,p=1$" + salt + "$" + key},
		{"zero threads", "$argon2id$v=19$m=256,t=2,p=0$" + salt + "$" + key},
		{"threads over 255", "$argon2id$v=19$m=4096,t=2,p=256$" + salt + "$" + key},
		{"memory below 8*p", "$argon2id$v=19$m=15,t=2,p=2$" + salt + "$" + key},
		{"memory over limit", "$argon2id$v=19$m=4294967295,t=2,p=1$" + salt + "$" + key},
		{"time over limit", "$argon2id$v=19$m=256,t=100000,p=1$" + salt + "$" + key},
		{"leading zero", "$argon2id$v=19$m=0256,t=2,p=1$" + salt + "$" + key},
		{"sign", "$argon2id$v=19$m=+256,t=2,p=1$" + salt + "$" + key},
		{"overflow", "$argon2id$v=19$m=99999999999999999999,t=2,p=1$" + salt + "$" + key},
		{"padded salt", "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ=$" + key},
		{"short salt", "$argon2id$v=19$m=256,t=2,p=1$c2FsdA$" + key},
		{"empty hash", "$argon2id$v=19$m=256,t=2,p=1$" + salt + "$"},
		{"short hash", "$argon2id$v=19$m=256,t=2,p=1$" + salt + "$c29tZXNhbHQ"},
		{"non-canonical base64 tail", "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHR$" + key},
		{"url alphabet", "$argon2id$v=19$m=256,t=2,p=1$" + salt + "$nf65EOgLrQMR_uIPnA4rEsF5h7TKyQwu9U1bMCHGi_4"},
		{"trailing field", "$argon2id$v=19$m=256,t=2,p=1$" + salt + "$" + key + "$"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := Verify(tc.encoded, "password")
			if ok || !errors.Is(err, ErrMalformed) {
				t.Fatalf("Verify(%q) = %v, %v; want false, ErrMalformed", tc.encoded, ok, err)
			}
		})
	}
}

// FuzzVerify feeds arbitrary strings to the parser. Whatever decode accepts
// must be safe to hand to argon2 and must re-encode to exactly the input (one
// canonical form); Verify must never panic. Hashing is only attempted for
// cheap parameters so the fuzzer spends its time on the parser.
func FuzzVerify(f *testing.F) {
	for _, v := range referenceVectors {
		f.Add(v.encoded, v.pw)
	}
	f.Add("$argon2id$v=19$m=65536,t=3,p=2$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "x")
	f.Add("$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ$c29tZXNhbHRzb21lc2FsdA", "")
	f.Add("$argon2id$v=19$m=,t=,p=$$", "password")
	f.Fuzz(func(t *testing.T, encoded, pw string) {
		p, salt, key, err := decode(encoded)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("decode error %v does not wrap ErrMalformed", err)
			}
			if ok, verr := Verify(encoded, pw); ok || verr == nil {
				t.Fatalf("Verify(%q) = %v, %v after decode failed", encoded, ok, verr)
			}
			return
		}
		if p.time < 1 || p.threads < 1 || p.memory < 8*uint32(p.threads) || p.memory > maxMemoryKiB {
			t.Fatalf("decode accepted unsafe params %+v", p)
		}
		if re := encode(p, salt, key); re != encoded {
			t.Fatalf("decode/encode not canonical: %q -> %q", encoded, re)
		}
		if p.memory <= 1024 && p.time <= 4 {
			ok, err := Verify(encoded, pw)
			if err != nil && !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrTooLong) {
				t.Fatalf("Verify(%q) unexpected error %v", encoded, err)
			}
			if err != nil && ok {
				t.Fatalf("Verify returned true with error %v", err)
			}
		}
	})
}
