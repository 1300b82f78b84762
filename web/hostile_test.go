package web

import (
	"strings"
	"testing"
)

// The attacks of issue 13 on the admin shell: the checks' own tables. The
// same attacks against the real TLS server are in hostile_e2e_test.go.

func TestSafeNextAcceptsOnlyPlainPaths(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/vouchers", "/vouchers"},
		{"/devices?segment=pupil&seen=week", "/devices?segment=pupil&seen=week"},
		{"/a%09b", "/a%09b"},
		// Browsers strip TAB, CR and LF and read "\" as "/": each of these
		// would be followed as //evil.example.
		{"/\t/evil.example/x", "/"},
		{"/\n/evil.example", "/"},
		{"/\r/evil.example", "/"},
		{"/\\evil.example", "/"},
		{"/ /evil.example", "/"},
		{"/\u00a0/evil.example", "/"},
		{"/\u2028/evil.example", "/"},
		{"/\x00/evil.example", "/"},
		{"/\x7f/evil.example", "/"},
		{"//evil.example", "/"},
		{"https://evil.example/", "/"},
		{"javascript:alert(1)", "/"},
		{"evil.example", "/"},
		{"", "/"},
		{"/login?next=//evil.example", "/"},
		{"/" + strings.Repeat("a", 3000), "/"},
	} {
		if got := safeNext(tc.in); got != tc.want {
			t.Errorf("safeNext(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestHostCheckFromListenAndNames(t *testing.T) {
	for _, tc := range []struct {
		listen string
		names  []string
		host   string
		want   bool
	}{
		{"0.0.0.0:8443", nil, "10.99.0.1:8443", true},
		{":8443", nil, "10.99.0.1", true},
		{":8443", nil, "gatehouse.school.example", false},
		{":8443", []string{"Gatehouse.School.Example."}, "gatehouse.school.example:8443", true},
		{"10.99.0.1:8443", nil, "10.99.0.1:8443", true},
		{"10.99.0.1:8443", nil, "10.10.0.1:8443", false},
		{"admin.school.example:8443", nil, "admin.school.example", true},
		{":8443", nil, "", false},
	} {
		if got := newHostCheck(tc.listen, tc.names).allowed(tc.host); got != tc.want {
			t.Errorf("listen %s names %v: Host %q allowed = %v, want %v", tc.listen, tc.names, tc.host, got, tc.want)
		}
	}
}
