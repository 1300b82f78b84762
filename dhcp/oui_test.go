package dhcp

import (
	"net"
	"os"
	"strings"
	"testing"
)

func TestParseOUIFindsEveryPrefix(t *testing.T) {
	const registry = `OUI/MA-L                                                    Organization
company_id                                                  Organization
                                                            Address

28-6F-B9   (hex)		Nokia Shanghai Bell Co., Ltd.
286FB9     (base 16)		Nokia Shanghai Bell Co., Ltd.
				No.388 Ning Qiao Road

00-22-72   (hex)		American Micro-Fuel Device Corp.
002272     (base 16)		American Micro-Fuel Device Corp.

08-61-95   (hex)		Rockwell Automation
086195     (base 16)		Rockwell Automation
F0-1F-AF   (base 16)		Dell Inc.
F01FAF     (base 16)		Dell Inc.
00D0EF     (base 16)		IGT
14B31F     (base 16)		Dell Inc.
`
	o, err := ParseOUI(strings.NewReader(registry))
	if err != nil {
		t.Fatal(err)
	}
	if o.Len() != 6 {
		t.Errorf("Len = %d, want 6", o.Len())
	}
	for mac, want := range map[string]string{
		"28:6f:b9:00:00:01": "Nokia Shanghai Bell Co., Ltd.",
		"00:22:72:aa:bb:cc": "American Micro-Fuel Device Corp.",
		"08:61:95:00:00:00": "Rockwell Automation",
		"f0:1f:af:01:02:03": "Dell Inc.",
		"14:b3:1f:01:02:03": "Dell Inc.",
		"00:d0:ef:ff:ff:ff": "IGT",
		"00:d0:f0:00:00:00": "",
		"00:00:00:00:00:00": "",
		"fc:ff:ff:00:00:00": "",
		"2a:6f:b9:00:00:01": "", // locally administered: randomised
	} {
		m, _ := net.ParseMAC(mac)
		if got := o.Manufacturer(m); got != want {
			t.Errorf("Manufacturer(%s) = %q, want %q", mac, got, want)
		}
	}
}

// The Debian registry, when installed, parses whole.
func TestParseOUIReadsTheDebianRegistry(t *testing.T) {
	if _, err := os.Stat(DebianOUIPath); err != nil {
		t.Skipf("%s: %v", DebianOUIPath, err)
	}
	o, err := LoadOUI(DebianOUIPath)
	if err != nil {
		t.Fatal(err)
	}
	if o.Len() < 10000 {
		t.Errorf("%d prefixes, want tens of thousands", o.Len())
	}
	if got := o.Manufacturer(net.HardwareAddr{0x00, 0x22, 0x72, 1, 2, 3}); got != "American Micro-Fuel Device Corp." {
		t.Errorf("00:22:72 = %q", got)
	}
}
