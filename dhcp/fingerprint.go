package dhcp

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Operating-system guesses. They are guesses: a fingerprint says which DHCP
// client a device runs, and a device can lie.
const (
	OSWindows  = "Windows"
	OSMacOS    = "macOS"
	OSIOS      = "iOS"
	OSAndroid  = "Android"
	OSChromeOS = "ChromeOS"
	OSLinux    = "Linux"
	OSPrinter  = "printer"
)

// knownPRLs maps parameter request lists of widespread DHCP clients (as
// collected by fingerbank and seen in captures) to the OS that sends them.
var knownPRLs = map[string]string{
	"1,3,6,15,31,33,43,44,46,47,119,121,249,252":         OSWindows, // Windows 8-11
	"1,15,3,6,44,46,47,31,33,121,249,43,252":             OSWindows, // Windows 7
	"1,15,3,6,44,46,47,31,33,121,249,43":                 OSWindows, // Windows 7
	"1,3,6,15,31,33,43,44,46,47,121,249,252":             OSWindows,
	"1,121,3,6,15,108,114,119,252,95,44,46":              OSMacOS, // macOS 12+
	"1,121,3,6,15,114,119,252,95,44,46":                  OSMacOS, // macOS 11
	"1,121,3,6,15,119,252,95,44,46":                      OSMacOS, // macOS 10.x
	"1,3,6,15,119,95,252,44,46,101":                      OSMacOS,
	"1,121,3,6,15,108,114,119,252":                       OSIOS, // iOS 14+
	"1,121,3,6,15,114,119,252":                           OSIOS,
	"1,121,3,6,15,119,252":                               OSIOS, // iOS 7-13
	"1,3,6,15,119,252":                                   OSIOS,
	"1,3,6,15,26,28,51,58,59,43,114,108":                 OSAndroid, // Android 11+
	"1,3,6,15,26,28,51,58,59,43,114":                     OSAndroid, // Android 10
	"1,3,6,15,26,28,51,58,59,43":                         OSAndroid, // Android 8-9
	"1,3,6,15,26,28,51,58,59":                            OSAndroid,
	"1,33,3,6,15,28,51,58,59":                            OSAndroid, // Android 4-5
	"1,121,33,3,6,12,15,26,28,51,54,58,59,119,252":       OSChromeOS,
	"1,28,2,3,15,6,119,12,44,47,26,121,42":               OSLinux, // ISC dhclient
	"1,2,6,12,15,26,28,121,3,33,40,41,42,119,249,252,17": OSLinux, // NetworkManager internal
	"1,3,6,12,15,28,42":                                  OSLinux, // udhcpc
	"1,3,6,12,15,28,40,41,42":                            OSLinux,
	"1,3,6,15,44,47":                                     OSPrinter,
	"1,3,44,6,7,12,15,22,54,58,59,69,18,144":             OSPrinter, // HP JetDirect
	"1,3,6,12,15,44,69,78,79,81":                         OSPrinter,
}

// printerVendors are vendor-class and host-name prefixes of network printers.
var printerVendors = []string{"hewlett-packard jetdirect", "hp printer", "npi", "brn", "epson", "canon", "lexmark", "xerox", "kyocera", "ricoh", "konica", "brother"}

// GuessOS guesses the operating system from a DHCP exchange. vendor is
// option 60, prl option 55 as a comma list, host option 12.
func GuessOS(vendor, prl, host string) string {
	v := strings.ToLower(vendor)
	h := strings.ToLower(host)
	switch {
	case strings.HasPrefix(v, "msft"):
		return OSWindows
	case strings.HasPrefix(v, "android-dhcp"):
		return OSAndroid
	case strings.Contains(v, "cros") || strings.Contains(v, "chromeos") || strings.HasPrefix(h, "chromebook"):
		return OSChromeOS
	}
	for _, p := range printerVendors {
		if strings.HasPrefix(v, p) || (len(p) > 3 && strings.HasPrefix(h, p)) {
			return OSPrinter
		}
	}
	if os, ok := knownPRLs[prl]; ok {
		return os
	}
	switch {
	case strings.HasPrefix(v, "dhcpcd") && strings.Contains(v, "linux"):
		return OSLinux
	case strings.HasPrefix(v, "udhcp"):
		return OSLinux
	case strings.HasPrefix(h, "iphone") || strings.HasPrefix(h, "ipad"):
		return OSIOS
	case strings.HasPrefix(h, "macbook") || strings.HasPrefix(h, "imac"):
		return OSMacOS
	case strings.HasPrefix(h, "desktop-") || strings.HasPrefix(h, "laptop-"):
		return OSWindows
	}
	return ""
}

// Randomised reports whether mac is locally administered, as the private
// addresses of iOS, Android and Windows are.
func Randomised(mac net.HardwareAddr) bool {
	return len(mac) > 0 && mac[0]&0x02 != 0
}

// OUI maps the first three bytes of a MAC to the registered manufacturer.
type OUI struct {
	names map[uint32]string // the built-in table
	// A registry read from a file (about 38,000 prefixes) is kept as
	// sorted prefixes and their names, each distinct name once: a map of
	// it held 4 MB of the daemon's heap, this about 1.
	prefixes []uint32
	makers   []string
}

// BuiltinOUI is the compact table compiled into the binary.
func BuiltinOUI() *OUI { return &OUI{names: builtinOUI} }

// DebianOUIPath is where Debian's ieee-data package puts the registry.
const DebianOUIPath = "/usr/share/ieee-data/oui.txt"

// LoadOUI reads the IEEE registry in its oui.txt form from path; when the
// file does not exist it returns the built-in table.
func LoadOUI(path string) (*OUI, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return BuiltinOUI(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("dhcp: open OUI registry %s: %w", path, err)
	}
	defer f.Close()
	o, err := ParseOUI(f)
	if err != nil {
		return nil, fmt.Errorf("dhcp: read OUI registry %s: %w", path, err)
	}
	return o, nil
}

// ParseOUI reads the registry's "001A2B (base 16) Organisation" lines.
func ParseOUI(r io.Reader) (*OUI, error) {
	names := map[uint32]string{}
	distinct := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64<<10)
	for sc.Scan() {
		line := sc.Text()
		i := strings.Index(line, "(base 16)")
		if i < 6 {
			continue
		}
		hex := strings.TrimSpace(line[:i])
		if len(hex) != 6 {
			continue
		}
		v, err := strconv.ParseUint(hex, 16, 32)
		if err != nil {
			continue
		}
		if name := strings.TrimSpace(line[i+len("(base 16)"):]); name != "" {
			// A copy, so the line it came from is not kept alive.
			if d, ok := distinct[name]; ok {
				name = d
			} else {
				name = strings.Clone(name)
				distinct[name] = name
			}
			names[uint32(v)] = name
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no OUI entries found")
	}
	o := &OUI{prefixes: make([]uint32, 0, len(names)), makers: make([]string, 0, len(names))}
	for _, p := range slices.Sorted(maps.Keys(names)) {
		o.prefixes = append(o.prefixes, p)
		o.makers = append(o.makers, names[p])
	}
	return o, nil
}

// Len is how many prefixes the table knows.
func (o *OUI) Len() int { return len(o.names) + len(o.prefixes) }

// Manufacturer names the maker of mac; "" for randomised or unknown MACs.
func (o *OUI) Manufacturer(mac net.HardwareAddr) string {
	if o == nil || len(mac) < 3 || Randomised(mac) {
		return ""
	}
	p := uint32(mac[0])<<16 | uint32(mac[1])<<8 | uint32(mac[2])
	if o.names != nil {
		return o.names[p]
	}
	if i, ok := slices.BinarySearch(o.prefixes, p); ok {
		return o.makers[i]
	}
	return ""
}
