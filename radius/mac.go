package radius

import (
	"net"
	"strings"
)

// ParseMAC reads a MAC address in any of the forms NAS vendors send in
// User-Name and Calling-Station-Id: aabbccddeeff, AA-BB-CC-DD-EE-FF,
// aa:bb:cc:dd:ee:ff, aabb.ccdd.eeff (Cisco), aabbcc-ddeeff (HPE/Aruba). The
// separators must be one kind, in one of those layouts.
func ParseMAC(s string) (net.HardwareAddr, bool) {
	var sep byte
	var groups []int
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '-' || c == ':' || c == '.' {
			if sep != 0 && c != sep {
				return nil, false
			}
			sep = c
			groups = append(groups, i)
		}
	}
	hex := s
	if sep != 0 {
		hex = strings.ReplaceAll(s, string(sep), "")
		if !validLayout(len(s), groups) {
			return nil, false
		}
	}
	if len(hex) != 12 {
		return nil, false
	}
	mac := make(net.HardwareAddr, 6)
	for i := range 6 {
		hi, ok1 := nibble(hex[2*i])
		lo, ok2 := nibble(hex[2*i+1])
		if !ok1 || !ok2 {
			return nil, false
		}
		mac[i] = hi<<4 | lo
	}
	return mac, true
}

// validLayout accepts separators every 2 (17 characters), every 4
// (14 characters) or once in the middle (13 characters).
func validLayout(n int, at []int) bool {
	switch {
	case n == 17 && len(at) == 5:
		for i, p := range at {
			if p != 2+3*i {
				return false
			}
		}
		return true
	case n == 14 && len(at) == 2:
		return at[0] == 4 && at[1] == 9
	case n == 13 && len(at) == 1:
		return at[0] == 6
	}
	return false
}

func nibble(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// splitCalledStation splits Called-Station-Id "AA-BB-CC-DD-EE-FF:SSID"
// (RFC 3580 3.20) into the access point's MAC and the SSID. A value that is
// only a MAC has no SSID; one that does not start with a MAC gives neither.
func splitCalledStation(s string) (ap net.HardwareAddr, ssid string) {
	if len(s) >= 17 {
		if mac, ok := ParseMAC(s[:17]); ok {
			if len(s) > 18 && s[17] == ':' {
				return mac, s[18:]
			}
			if len(s) == 17 || (len(s) == 18 && s[17] == ':') {
				return mac, ""
			}
		}
	}
	if mac, ok := ParseMAC(s); ok {
		return mac, ""
	}
	if i := strings.IndexByte(s, ':'); i >= 12 {
		if mac, ok := ParseMAC(s[:i]); ok {
			return mac, s[i+1:]
		}
	}
	return nil, ""
}
