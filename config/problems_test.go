package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// second is a valid second segment appended after minimal (lines 11-15).
const second = `  - name: pupil
    vlan: 20
    interface: lan20
    subnet: 10.20.0.0/24
    gateway: 10.20.0.1
`

// rep replaces one line-preserving fragment of minimal.
func rep(old, new string) string {
	if !strings.Contains(minimal, old) {
		panic("test fixture: " + old + " not in minimal")
	}
	return strings.Replace(minimal, old, new, 1)
}

func TestParseReportsProblemsWithFileLineAndField(t *testing.T) {
	for _, tc := range []struct {
		name  string
		data  string
		line  int
		field string
		msg   string // substring saying why
	}{
		// Unknown keys, with suggestions.
		{"unknown segment key suggests nearest", rep("subnet:", "subnett:"), 8, "segments[0].subnett", `unknown key; did you mean "subnet"?`},
		{"unknown top-level key suggests nearest", minimal + "dsn:\n  safesearch: true\n", 11, "dsn", `did you mean "dns"?`},
		{"unknown key in flow mapping", rep("lease: 8h", "leese: 8h"), 10, "segments[0].dhcp.leese", `did you mean "lease"?`},
		{"unknown key far from all lists valid keys", minimal + "colour: blue\n", 11, "colour", "expected one of admin, alerts, database"},
		{"unknown key in nested smtp", minimal + "alerts:\n  smtp: {server: 127.0.0.1:25, form: a@b.example}\n", 12, "alerts.smtp.form", `did you mean "from"?`},
		{"duplicate key", rep("    vlan: 10\n", "    vlan: 10\n    vlan: 11\n"), 7, "segments[0].vlan", "duplicate key; already set on line 6"},

		// Site.
		{"unknown time zone", rep("  name: Test School\n", "  name: Test School\n  timezone: Mars/Olympus_Mons\n"), 3, "site.timezone", `unknown time zone "Mars/Olympus_Mons"`},
		{"site name empty", rep("name: Test School", `name: ""`), 2, "site.name", "required"},
		{"site missing altogether", strings.Replace(minimal, "site:\n  name: Test School\n", "", 1), 1, "site.name", "required: the school's name"},

		// Required fields.
		{"database missing", rep("database: /var/lib/gh/gatehouse.db", "database: "), 3, "database", "required: the path of the SQLite database"},
		{"segments empty", "site: {name: S}\ndatabase: /x/db\nsegments: []\n", 3, "segments", "required: at least one segment"},
		{"segments absent", "site: {name: S}\ndatabase: /x/db\n", 1, "segments", "required: at least one segment"},
		{"segments not a list", "site: {name: S}\ndatabase: /x/db\nsegments: staff\n", 3, "segments", `must be a list, not "staff"`},
		{"segment interface missing", rep("    interface: lan10\n", "    portal: false\n"), 5, "segments[0].interface", "required"},
		{"segment name missing", rep("  - name: staff\n", "  - name:\n"), 5, "segments[0].name", "required"},
		{"segment gateway missing", rep("    gateway: 10.10.0.1\n", "    portal: true\n"), 5, "segments[0].gateway", "required"},
		{"segment subnet missing", rep("    subnet: 10.10.0.0/24\n", "    portal: true\n"), 5, "segments[0].subnet", "required"},
		{"dhcp range missing", rep("range: 10.10.0.50-10.10.0.250, ", ""), 10, "segments[0].dhcp.range", "required: the pool of addresses"},

		// Addresses and numbers.
		{"subnet not CIDR", rep("10.10.0.0/24", "10.10.0.0/33"), 8, "segments[0].subnet", "not a subnet in CIDR form"},
		{"subnet with host bits", rep("10.10.0.0/24", "10.10.0.1/24"), 8, "segments[0].subnet", "host bits set; did you mean 10.10.0.0/24?"},
		{"subnet IPv6", rep("10.10.0.0/24", "2001:db8::/64"), 8, "segments[0].subnet", "not an IPv4 subnet"},
		{"subnet too small", rep("10.10.0.0/24", "10.10.0.0/31"), 8, "segments[0].subnet", "too small"},
		{"gateway not an IP", rep("gateway: 10.10.0.1", "gateway: 10.10.0.300"), 9, "segments[0].gateway", `"10.10.0.300" is not an IP address`},
		{"vlan zero", rep("vlan: 10", "vlan: 0"), 6, "segments[0].vlan", "VLAN id 0 is out of range 1..4094"},
		{"vlan too big", rep("vlan: 10", "vlan: 4095"), 6, "segments[0].vlan", "out of range 1..4094"},
		{"vlan not a number", rep("vlan: 10", "vlan: ten"), 6, "segments[0].vlan", `must be a whole number, not "ten"`},
		{"portal not a bool", rep("    vlan: 10\n", "    portal: yes\n"), 6, "segments[0].portal", "must be true or false"},
		{"server not CIDR", minimal + "servers:\n  mis: 10.5.0/24\n", 12, "servers.mis", "not a subnet in CIDR form"},
		{"server name not a word", minimal + "servers:\n  \"m i s\": 10.5.0.0/24\n", 12, `servers.m i s`, "must be one word"},

		// Overlaps and duplicates.
		{"overlapping segment subnets", minimal + strings.Replace(second, "10.20.0.0/24", "10.10.0.128/25", 1), 14, "segments[1].subnet", "10.10.0.128/25 overlaps segments[0].subnet 10.10.0.0/24 (staff)"},
		{"server overlaps a segment", minimal + "servers:\n  mis: 10.10.0.0/16\n", 12, "servers.mis", "overlaps segments[0].subnet 10.10.0.0/24 (staff)"},
		{"server named like a segment", minimal + "servers:\n  staff: 10.5.0.0/24\n", 12, "servers.staff", "also a segment's name"},
		{"duplicate vlan", minimal + strings.Replace(second, "vlan: 20", "vlan: 10", 1), 12, "segments[1].vlan", "VLAN 10 is already used by segments[0] (staff)"},
		{"duplicate segment name", minimal + strings.Replace(second, "name: pupil", "name: staff", 1), 11, "segments[1].name", `segment name "staff" is already used by segments[0]`},
		{"duplicate interface", minimal + strings.Replace(second, "lan20", "lan10", 1), 13, "segments[1].interface", `interface "lan10" is already used by segments[0].interface`},
		{"uplink is a segment interface", minimal + "uplink: {interface: lan10}\n", 7, "segments[0].interface", `interface "lan10" is already used by uplink.interface`},
		{"interface name too long", rep("lan10", "a-very-long-interface-name"), 7, "segments[0].interface", "longer than 15 bytes"},

		// Gateway and DHCP range against the subnet.
		{"gateway outside subnet", rep("gateway: 10.10.0.1", "gateway: 10.11.0.1"), 9, "segments[0].gateway", "10.11.0.1 is outside the segment's subnet 10.10.0.0/24"},
		{"gateway is network address", rep("gateway: 10.10.0.1", "gateway: 10.10.0.0"), 9, "segments[0].gateway", "network address"},
		{"gateway is broadcast address", rep("gateway: 10.10.0.1", "gateway: 10.10.0.255"), 9, "segments[0].gateway", "broadcast address"},
		{"range outside subnet", rep("10.10.0.250", "10.10.1.250"), 10, "segments[0].dhcp.range", "range end 10.10.1.250 is outside the segment's subnet 10.10.0.0/24"},
		{"range start after end", rep("10.10.0.50-10.10.0.250", "10.10.0.250-10.10.0.50"), 10, "segments[0].dhcp.range", "range start 10.10.0.250 is after its end 10.10.0.50"},
		{"range contains gateway", rep("10.10.0.50-", "10.10.0.1-"), 10, "segments[0].dhcp.range", "contains the gateway 10.10.0.1"},
		{"range includes broadcast", rep("-10.10.0.250", "-10.10.0.255"), 10, "segments[0].dhcp.range", "range end 10.10.0.255 is the subnet's broadcast address"},
		{"range not a range", rep("10.10.0.50-10.10.0.250", "10.10.0.50"), 10, "segments[0].dhcp.range", "must be a range start-end"},
		{"range with a bad address", rep("10.10.0.50-", "10.10.0.x-"), 10, "segments[0].dhcp.range", `"10.10.0.x" is not an IP address`},
		{"lease not a duration", rep("lease: 8h", "lease: 8 hours"), 10, "segments[0].dhcp.lease", `"8 hours" is not a duration`},
		{"lease a bare number", rep("lease: 8h", "lease: 3600"), 10, "segments[0].dhcp.lease", "is not a duration"},
		{"lease too short", rep("lease: 8h", "lease: 30s"), 10, "segments[0].dhcp.lease", "shorter than the minimum of 1m0s"},

		// Admin.
		{"tls neither auto nor files", minimal + "admin:\n  tls: manual\n", 12, "admin.tls", `must be "auto"`},
		{"tls files without cert", minimal + "admin:\n  tls: files\n  key_file: /k.pem\n", 11, "admin.cert_file", `required: the certificate file, because admin.tls is "files"`},
		{"tls files without key", minimal + "admin:\n  tls: files\n  cert_file: /c.pem\n", 11, "admin.key_file", "required: the private key file"},
		{"listen without port", minimal + "admin:\n  listen: 10.99.0.1\n", 12, "admin.listen", "must be host:port"},
		{"listen port out of range", minimal + "admin:\n  listen: 10.99.0.1:99999\n", 12, "admin.listen", "must be a number 1..65535"},

		// DNS, RADIUS, inspect.
		{"upstream a name", minimal + "dns:\n  upstream: [dns.example]\n", 12, "dns.upstream[0]", "not an IP address (or ip:port)"},
		{"upstream port zero", minimal + "dns:\n  upstream:\n    - 192.0.2.53\n    - 192.0.2.54:0\n", 14, "dns.upstream[1]", "port 0"},
		{"safesearch not a bool", minimal + "dns:\n  safesearch: on\n", 12, "dns.safesearch", "must be true or false"},
		{"radius listen bad", minimal + "radius:\n  auth: \"1812\"\n", 12, "radius.auth", "must be host:port"},
		{"radius client address bad", minimal + "radius:\n  clients:\n    - name: aps\n      address: 10.99.0.0/33\n      secret_file: /s\n", 14, "radius.clients[0].address", "not a subnet in CIDR form"},
		{"radius client coa port", minimal + "radius:\n  clients:\n    - {name: aps, address: 10.99.0.0/24, secret_file: /s, coa_port: 70000}\n", 13, "radius.clients[0].coa_port", "port 70000 is out of range 1..65535"},
		{"radius interim too short", minimal + "radius:\n  interim_interval: 30s\n", 12, "radius.interim_interval", "shorter than the minimum of 1m0s"},
		{"radius require MA not a bool", minimal + "radius:\n  clients:\n    - {name: aps, address: 10.99.0.0/24, secret_file: /s, require_message_authenticator: maybe}\n", 13, "radius.clients[0].require_message_authenticator", "must be true or false"},
		{"ssid too long", rep("    vlan: 10\n", "    ssids: [abcdefghijabcdefghijabcdefghijabc]\n"), 6, "segments[0].ssids[0]", "must be 1 to 32 bytes long"},
		{"ssid not unique across segments", rep("    vlan: 10\n", "    ssids: [School]\n") + strings.Replace(second, "vlan: 20", "ssids: [School]", 1), 12, "segments[1].ssids", `SSID "School" is already served by segments[0] (staff)`},
		{"radius client secret missing", minimal + "radius:\n  clients:\n    - {name: aps, address: 10.99.0.0/24}\n", 13, "radius.clients[0].secret_file", "required"},
		{"radius clients overlap", minimal + "radius:\n  clients:\n    - {name: a, address: 10.99.0.0/24, secret_file: /s}\n    - {name: b, address: 10.99.0.7, secret_file: /t}\n", 14, "radius.clients[1].address", "overlaps radius.clients[0].address"},
		{"radius auth on the guard's port", minimal + "radius:\n  auth: \":53\"\n", 12, "radius.auth", "port 53 is the DNS guard's (every segment's DNS); choose another, such as :1812"},
		{"radius accounting on the guard's redirect port", minimal + "radius:\n  accounting: 10.99.0.1:5392\n", 12, "radius.accounting", "port 5392 is the DNS guard's (queries redirected from other resolvers)"},
		{"radius auth on the DHCP port", minimal + "radius:\n  auth: \":67\"\n", 12, "radius.auth", "port 67 is the DHCP server's"},
		{"radius auth and accounting share a port", minimal + "radius:\n  auth: \":1812\"\n  accounting: 10.99.0.1:1812\n", 13, "radius.accounting", "10.99.0.1:1812 is also radius.auth (:1812)"},
		{"admin on the portal's port", minimal + "admin:\n  listen: 127.0.0.1:8080\n", 12, "admin.listen", "port 8080 is the captive portal's"},
		{"radius client names repeat", minimal + "radius:\n  clients:\n    - {name: a, address: 10.98.0.0/24, secret_file: /s}\n    - {name: a, address: 10.99.0.7, secret_file: /t}\n", 14, "radius.clients[1].name", `client name "a" is already used`},
		{"inspect empty interface", minimal + "inspect:\n  interfaces: [lan10, \"\"]\n", 12, "inspect.interfaces[1]", "interface name is empty"},
		{"inspect repeated interface", minimal + "inspect:\n  interfaces:\n    - lan10\n    - lan10\n", 14, "inspect.interfaces[1]", "already listed at inspect.interfaces[0]"},

		// Alerts.
		{"dsl not an email", minimal + "alerts:\n  smtp: {server: 127.0.0.1:25, from: g@school.example}\n  dsl: [dsl.school.example]\n", 13, "alerts.dsl[0]", `"dsl.school.example" is not an email address`},
		{"dsl with display name", minimal + "alerts:\n  smtp: {server: 127.0.0.1:25, from: g@school.example}\n  dsl: [\"Jane <jane@school.example>\"]\n", 13, "alerts.dsl[0]", "must be a bare email address"},
		{"dsl without smtp", minimal + "alerts:\n  dsl: [dsl@school.example]\n", 11, "alerts.smtp.server", "required: a mail relay"},
		{"smtp without from", minimal + "alerts:\n  smtp:\n    server: 127.0.0.1:25\n", 12, "alerts.smtp.from", "required: the sender address"},
		{"smtp from not an email", minimal + "alerts:\n  smtp: {server: 127.0.0.1:25, from: gatehouse}\n", 12, "alerts.smtp.from", "not an email address"},
		{"webhook not http", minimal + "alerts:\n  webhook: ftp://example.com/x\n", 12, "alerts.webhook", "must be an http:// or https:// URL"},

		// Shape of the file.
		{"syntax error", rep("    vlan: 10\n", "    vlan: 10: 11\n"), 6, "", "not valid YAML: mapping values are not allowed"},
		{"two documents", minimal + "---\nsite: {name: X}\n", 11, "", "more than one YAML document"},
		{"top level is a list", "- site\n- database\n", 1, "", "must be a mapping of sections"},
		{"section is a scalar", minimal + "admin: yes\n", 11, "admin", `must be a mapping of keys to values, not "yes"`},
		{"anchored unknown key", minimal + "x: &s 1\n", 11, "x", "unknown key; expected one of"},
		{"bad merge source", rep("    vlan: 10\n", "    <<: 5\n"), 6, "segments[0]", "merge key (<<) must refer to a mapping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.data))
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Parse error = %v (%T), want *Error", err, err)
			}
			for _, p := range pe.Problems {
				if p.File == "t.yaml" && p.Line == tc.line && p.Field == tc.field && strings.Contains(p.Msg, tc.msg) {
					prefix := fmt.Sprintf("t.yaml:%d: ", tc.line)
					if tc.field != "" {
						prefix += tc.field + ": "
					}
					if !strings.Contains(err.Error(), prefix+p.Msg) {
						t.Errorf("Error() lacks %q:\n%v", prefix+p.Msg, err)
					}
					return
				}
			}
			t.Errorf("no problem at line %d, field %q, saying %q; got:\n%v", tc.line, tc.field, tc.msg, err)
		})
	}
}

func TestParseReportsEveryProblemNotJustTheFirst(t *testing.T) {
	data := strings.NewReplacer("vlan: 10", "vlan: 5000", "gateway: 10.10.0.1", "gateway: 10.11.0.1", "lease: 8h", "lease: 1s").Replace(minimal) +
		"dns:\n  upstream: [resolver]\n"
	_, err := Parse("t.yaml", []byte(data))
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("Parse = %v", err)
	}
	var fields []string
	for _, p := range pe.Problems {
		fields = append(fields, p.Field)
	}
	want := []string{"segments[0].vlan", "segments[0].gateway", "segments[0].dhcp.lease", "dns.upstream[0]"}
	if strings.Join(fields, ",") != strings.Join(want, ",") {
		t.Errorf("problem fields = %v, want %v (in file order)\n%v", fields, want, err)
	}
}

func TestEmptyAndOversizedFilesAreRejected(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		msg  string
	}{
		{"empty", nil, "file is empty"},
		{"only a comment", []byte("# nothing yet\n"), "file is empty"},
		{"null document", []byte("~\n"), "required"},
		{"oversized", []byte(strings.Repeat("#", MaxFileSize+1)), "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", tc.data)
			var pe *Error
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Parse = %v, want *Error saying %q", err, tc.msg)
			}
		})
	}
}

// A small file can name one large block thousands of times through aliases;
// the walk must stop rather than take time or memory in proportion.
func TestAliasBombIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("site: {name: S}\ndatabase: /x/db\nblock: &b\n")
	for i := range 300 {
		fmt.Fprintf(&b, "  k%d: v\n", i)
	}
	b.WriteString("segments:\n")
	for range 4000 {
		b.WriteString("  - *b\n")
	}
	_, err := Parse("t.yaml", []byte(b.String()))
	var pe *Error
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "stopped reading here") || len(pe.Problems) > maxProblems+1 {
		t.Fatalf("Parse = %.500v", err)
	}
}

// Merge keys can fan out exponentially through a few anchors without any
// entry being wrong; the visit budget stops the walk.
func TestMergeKeyBombIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("m0: &m0 {name: staff}\n")
	for lvl := 1; lvl <= 5; lvl++ {
		fmt.Fprintf(&b, "m%d: &m%d {<<: [", lvl, lvl)
		for i := range 50 {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*m%d", lvl-1)
		}
		b.WriteString("]}\n")
	}
	b.WriteString("segments: [{<<: *m5, interface: lan10, subnet: 10.10.0.0/24, gateway: 10.10.0.1}]\n")
	_, err := Parse("t.yaml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "too many entries") {
		t.Fatalf("Parse = %.800v", err)
	}
}

// A misspelt key or malformed section is reported once, not again as a
// missing field.
func TestMisspeltKeyIsNotAlsoReportedMissing(t *testing.T) {
	for _, tc := range []struct{ data, missing string }{
		{rep("subnet:", "subnett:"), "segments[0].subnet"},
		{strings.Replace(minimal, "database:", "databse:", 1), "database"},
		{strings.Replace(minimal, "site:", "stie:", 1), "site.name"},
		{rep("dhcp: {range: 10.10.0.50-10.10.0.250, lease: 8h}", "dhcp: 10.10.0.50-10.10.0.250"), "segments[0].dhcp.range"},
	} {
		_, err := Parse("t.yaml", []byte(tc.data))
		var pe *Error
		if !errors.As(err, &pe) {
			t.Fatalf("Parse = %v", err)
		}
		if len(pe.Problems) != 1 || pe.Problems[0].Field == tc.missing {
			t.Errorf("want only the typo or malformed section reported, not %s as missing; got:\n%v", tc.missing, err)
		}
	}
}
