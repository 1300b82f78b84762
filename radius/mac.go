package radius

import "net"

// ParseMAC reads a MAC address in any of the forms NAS vendors send in
// User-Name and Calling-Station-Id: aabbccddeeff, AA-BB-CC-DD-EE-FF,
// aa:bb:cc:dd:ee:ff, aabb.ccdd.eeff (Cisco), aabbcc-ddeeff (HPE/Aruba). The
// separators must be one kind, in one of those layouts.
func ParseMAC(s string) (net.HardwareAddr, bool) {
	a, ok := parseMAC6(s)
	if !ok {
		return nil, false
	}
	return net.HardwareAddr(a[:]), true
}

// macKey is a MAC address as a comparable value: the device cache's key,
// so a lookup builds no string.
type macKey [6]byte

// parseMAC6 is ParseMAC without an allocation (every MAB request parses
// two or three MACs): the layout is fixed by the length, separators every
// 2 (17 characters), every 4 (14) or once in the middle (13), all one of
// '-', ':' or '.', and hex digits everywhere else.
func parseMAC6(s string) (mac macKey, ok bool) {
	var step int // hex digits between separators; 0: none
	switch len(s) {
	case 12:
	case 17:
		step = 2
	case 14:
		step = 4
	case 13:
		step = 6
	default:
		return mac, false
	}
	var sep byte
	if step > 0 {
		sep = s[step]
		if sep != '-' && sep != ':' && sep != '.' {
			return mac, false
		}
	}
	n := 0 // hex digits read
	for i := 0; i < len(s); i++ {
		c := s[i]
		if step > 0 && i%(step+1) == step {
			if c != sep {
				return mac, false
			}
			continue
		}
		v, ok := nibble(c)
		if !ok {
			return mac, false
		}
		if n%2 == 0 {
			mac[n/2] = v << 4
		} else {
			mac[n/2] |= v
		}
		n++
	}
	return mac, n == 12
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
	mac, ok, ssid := splitCalled(s)
	if !ok {
		return nil, ""
	}
	return net.HardwareAddr(mac[:]), ssid
}

// splitCalledStationBytes is splitCalledStation over an attribute's
// octets, without allocating: the SSID is a part of b.
func splitCalledStationBytes(b []byte) (ap macKey, ok bool, ssid []byte) {
	return splitCalled(b)
}

// parseMAC6Bytes is parseMAC6 over an attribute's octets.
func parseMAC6Bytes(b []byte) (macKey, bool) { return parseMAC6(string(b)) }

// splitCalled is splitCalledStation for text in either form (the
// conversions to string for parseMAC6 do not escape: no allocation).
func splitCalled[T string | []byte](s T) (ap macKey, ok bool, ssid T) {
	var none T
	if len(s) >= 17 {
		if mac, ok := parseMAC6(string(s[:17])); ok {
			if len(s) > 18 && s[17] == ':' {
				return mac, true, s[18:]
			}
			if len(s) == 17 || (len(s) == 18 && s[17] == ':') {
				return mac, true, none
			}
		}
	}
	if mac, ok := parseMAC6(string(s)); ok {
		return mac, true, none
	}
	for i := 0; i < len(s); i++ { // the first ':', as strings.IndexByte
		if s[i] == ':' {
			if i >= 12 {
				if mac, ok := parseMAC6(string(s[:i])); ok {
					return mac, true, s[i+1:]
				}
			}
			break
		}
	}
	return macKey{}, false, none
}
