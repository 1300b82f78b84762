package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/internal/shared"
)

func TestExampleParsesWithExpectedValues(t *testing.T) {
	c, err := Load("testdata/example.yaml")
	if err != nil {
		t.Fatalf("Load example: %v", err)
	}
	if c.Path != "testdata/example.yaml" {
		t.Errorf("Path = %q", c.Path)
	}
	if c.Site.Name != "Example Primary School" || c.Site.Timezone != "Europe/London" || c.Site.Location == nil || c.Site.Location.String() != "Europe/London" {
		t.Errorf("Site = %+v", c.Site)
	}
	if c.Database != "/var/lib/gatehouse/gatehouse.db" {
		t.Errorf("Database = %q", c.Database)
	}
	wantAdmin := Admin{Listen: "10.99.0.1:8443", TLS: "auto", CertFile: "/var/lib/gatehouse/admin-cert.pem", KeyFile: "/var/lib/gatehouse/admin-key.pem"}
	if !reflect.DeepEqual(c.Admin, wantAdmin) {
		t.Errorf("Admin = %+v, want %+v", c.Admin, wantAdmin)
	}
	if c.Uplink.Interface != "wan0" {
		t.Errorf("Uplink = %+v", c.Uplink)
	}
	seg := func(name string, vlan int, iface, subnet, gw, start, end string, lease time.Duration, portal bool) Segment {
		return Segment{Name: name, VLAN: vlan, Interface: iface, Subnet: netip.MustParsePrefix(subnet), Gateway: netip.MustParseAddr(gw),
			DHCP: DHCP{RangeStart: netip.MustParseAddr(start), RangeEnd: netip.MustParseAddr(end), Lease: lease}, Portal: portal, MACIPBinding: true}
	}
	wantSegs := []Segment{
		seg("staff", 10, "lan.10", "10.10.0.0/22", "10.10.0.1", "10.10.0.50", "10.10.3.250", 8*time.Hour, false),
		seg("pupil", 20, "lan.20", "10.20.0.0/21", "10.20.0.1", "10.20.0.50", "10.20.7.250", 8*time.Hour, false),
		seg("byod", 30, "lan.30", "10.30.0.0/22", "10.30.0.1", "10.30.0.50", "10.30.3.250", 4*time.Hour, false),
		seg("visitor", 40, "lan.40", "10.40.0.0/23", "10.40.0.1", "10.40.0.50", "10.40.1.250", time.Hour, true),
	}
	if !reflect.DeepEqual(c.Segments, wantSegs) {
		t.Errorf("Segments =\n%+v\nwant\n%+v", c.Segments, wantSegs)
	}
	if v, ok := c.Segment("visitor"); !ok || !v.Portal || !v.DHCP.Enabled() {
		t.Errorf("Segment(visitor) = %+v, %v", v, ok)
	}
	if _, ok := c.Segment("governors"); ok {
		t.Error("Segment(governors) found a segment the file does not have")
	}
	if want := map[string]netip.Prefix{"mis": netip.MustParsePrefix("10.5.0.0/24")}; !reflect.DeepEqual(c.Servers, want) {
		t.Errorf("Servers = %v", c.Servers)
	}
	if want := (DNS{Upstream: []netip.AddrPort{netip.MustParseAddrPort("203.0.113.53:53")}, SafeSearch: true, LogRetention: DefaultDNSLogRetention}); !reflect.DeepEqual(c.DNS, want) {
		t.Errorf("DNS = %+v", c.DNS)
	}
	wantRadius := RADIUS{Auth: ":1812", Accounting: ":1813", Clients: []RADIUSClient{{
		Name: "aps", Address: netip.MustParsePrefix("10.99.0.0/24"), SecretFile: "/etc/gatehouse/radius-aps.secret", CoAPort: 3799,
		RequireMessageAuthenticator: true}}, InterimInterval: DefaultInterimInterval}
	if !reflect.DeepEqual(c.RADIUS, wantRadius) {
		t.Errorf("RADIUS = %+v", c.RADIUS)
	}
	if want := []string{"lan.10", "lan.20", "lan.30", "lan.40"}; !reflect.DeepEqual(c.Inspect.Interfaces, want) {
		t.Errorf("Inspect = %+v", c.Inspect)
	}
	wantAlerts := Alerts{SMTP: SMTP{Server: "127.0.0.1:25", From: "gatehouse@school.example"}, DSL: []string{"dsl@school.example"}}
	if !reflect.DeepEqual(c.Alerts, wantAlerts) {
		t.Errorf("Alerts = %+v", c.Alerts)
	}
	if got := c.Line("segments[3].portal"); got != 42 {
		t.Errorf("Line(segments[3].portal) = %d, want 42", got)
	}
}

// The shared example is the contract with the rest of the project; the copy
// in testdata must not drift from it.
func TestSharedExampleStillParses(t *testing.T) {
	example := shared.Path(t, "gatehouse.example.yaml")
	data, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(example, data); err != nil {
		t.Fatalf("shared example rejected:\n%v", err)
	}
	copy, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(copy) != string(data) {
		t.Errorf("testdata/example.yaml has drifted from %s; copy the shared one over it", example)
	}
}

const minimal = `site:
  name: Test School
database: /var/lib/gh/gatehouse.db
segments:
  - name: staff
    vlan: 10
    interface: lan10
    subnet: 10.10.0.0/24
    gateway: 10.10.0.1
    dhcp: {range: 10.10.0.50-10.10.0.250, lease: 8h}
`

func TestMinimalFileGetsDefaults(t *testing.T) {
	c, err := Parse("/etc/gatehouse/gatehouse.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Admin, Admin{Listen: "127.0.0.1:8443", TLS: "auto", CertFile: "/var/lib/gh/admin-cert.pem", KeyFile: "/var/lib/gh/admin-key.pem"}) {
		t.Errorf("Admin = %+v", c.Admin)
	}
	if c.Site.Timezone != "Local" || c.Site.Location != time.Local {
		t.Errorf("Site = %+v", c.Site)
	}
	if !c.DNS.SafeSearch || len(c.DNS.Upstream) != 0 {
		t.Errorf("DNS = %+v", c.DNS)
	}
	if c.RADIUS.Auth != ":1812" || c.RADIUS.Accounting != ":1813" {
		t.Errorf("RADIUS = %+v", c.RADIUS)
	}
	if c.Servers == nil || len(c.Servers) != 0 {
		t.Errorf("Servers = %#v, want empty non-nil map", c.Servers)
	}
	if c.Uplink.Interface != "" || c.Segments[0].Portal {
		t.Errorf("Uplink = %+v, Portal = %v", c.Uplink, c.Segments[0].Portal)
	}
}

func TestAdminHostnamesAndMetricsScrapers(t *testing.T) {
	data := strings.Replace(minimal, "database:", `admin:
  hostnames: [gatehouse.school.example]
  metrics_from: [10.99.0.5, 10.98.0.0/24]
database:`, 1)
	c, err := Parse("/etc/gatehouse/gatehouse.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Admin.Hostnames, []string{"gatehouse.school.example"}) {
		t.Errorf("Hostnames = %v", c.Admin.Hostnames)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.99.0.5/32"), netip.MustParsePrefix("10.98.0.0/24")}
	if !reflect.DeepEqual(c.Admin.MetricsFrom, want) {
		t.Errorf("MetricsFrom = %v, want %v", c.Admin.MetricsFrom, want)
	}
	bad := strings.Replace(data, "10.99.0.5,", "everyone,", 1)
	if _, err := Parse("/etc/gatehouse/gatehouse.yaml", []byte(bad)); err == nil || !strings.Contains(err.Error(), "metrics_from") {
		t.Errorf("a bad scrape address: %v, want a problem naming metrics_from", err)
	}
}

func TestDefaultsForOmittedValuesInsideSections(t *testing.T) {
	data := strings.Replace(minimal, "lease: 8h", "lease: ~", 1) + `radius:
  clients:
    - {name: ap1, address: 10.99.0.7, secret_file: secrets/ap1}
dns:
  upstream: ["2001:db8::53", "[2001:db8::54]:5353", 192.0.2.53:5300]
`
	c, err := Parse("/etc/gatehouse/gatehouse.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Segments[0].DHCP.Lease; got != DefaultLease {
		t.Errorf("lease = %v, want default %v", got, DefaultLease)
	}
	want := RADIUSClient{Name: "ap1", Address: netip.MustParsePrefix("10.99.0.7/32"), SecretFile: "/etc/gatehouse/secrets/ap1", CoAPort: 3799, RequireMessageAuthenticator: true}
	if c.RADIUS.Clients[0] != want {
		t.Errorf("client = %+v, want %+v", c.RADIUS.Clients[0], want)
	}
	if c.RADIUS.InterimInterval != DefaultInterimInterval {
		t.Errorf("interim interval = %v, want default %v", c.RADIUS.InterimInterval, DefaultInterimInterval)
	}
	wantUp := []netip.AddrPort{netip.MustParseAddrPort("[2001:db8::53]:53"), netip.MustParseAddrPort("[2001:db8::54]:5353"), netip.MustParseAddrPort("192.0.2.53:5300")}
	if !reflect.DeepEqual(c.DNS.Upstream, wantUp) {
		t.Errorf("upstream = %v", c.DNS.Upstream)
	}
}

func TestRelativePathsAreRelativeToTheFile(t *testing.T) {
	data := strings.Replace(minimal, "/var/lib/gh/gatehouse.db", "state/gatehouse.db", 1) +
		"admin: {tls: files, cert_file: tls/c.pem, key_file: /abs/k.pem}\n"
	c, err := Parse("/etc/gatehouse/gatehouse.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if c.Database != "/etc/gatehouse/state/gatehouse.db" || c.Admin.CertFile != "/etc/gatehouse/tls/c.pem" || c.Admin.KeyFile != "/abs/k.pem" {
		t.Errorf("Database = %q, Admin = %+v", c.Database, c.Admin)
	}
}

func TestMergeKeysShareSegmentSettings(t *testing.T) {
	data := minimal + `  - &lan
    name: pupil
    interface: lan20
    subnet: 10.20.0.0/24
    gateway: 10.20.0.1
    dhcp: &pool {range: 10.20.0.50-10.20.0.250, lease: 2h}
  - <<: *lan
    name: byod
    interface: lan30
    subnet: 10.30.0.0/24
    gateway: 10.30.0.1
    dhcp: {<<: *pool, range: 10.30.0.50-10.30.0.99}
`
	c, err := Parse("t.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.Segment("byod")
	if b.Interface != "lan30" || b.DHCP.Lease != 2*time.Hour || b.DHCP.RangeEnd != netip.MustParseAddr("10.30.0.99") {
		t.Errorf("byod = %+v", b)
	}
}

func TestProblemString(t *testing.T) {
	for _, tc := range []struct {
		p    Problem
		want string
	}{
		{Problem{"g.yaml", 7, "segments[1].dhcp.range", "bad"}, "g.yaml:7: segments[1].dhcp.range: bad"},
		{Problem{"g.yaml", 3, "", "not valid YAML: x"}, "g.yaml:3: not valid YAML: x"},
		{Problem{"g.yaml", 0, "", "file is empty"}, "g.yaml: file is empty"},
	} {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
	e := &Error{Problems: []Problem{{"a", 1, "x", "m1"}, {"a", 2, "y", "m2"}}}
	if got := e.Error(); got != "a:1: x: m1\na:2: y: m2" {
		t.Errorf("Error() = %q", got)
	}
}

func TestEditDistanceSuggestions(t *testing.T) {
	keys := []string{"name", "vlan", "interface", "subnet", "gateway", "dhcp", "portal"}
	for _, tc := range []struct {
		word, want string
		ok         bool
	}{
		{"subnett", "subnet", true},
		{"gatway", "gateway", true},
		{"Interface", "interface", true},
		{"vlna", "vlan", true},
		{"colour", "", false},
	} {
		got, ok := suggest(tc.word, keys)
		if got != tc.want || ok != tc.ok {
			t.Errorf("suggest(%q) = %q, %v; want %q, %v", tc.word, got, ok, tc.want, tc.ok)
		}
	}
}

func TestLoadReportsMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("Load missing file: %v", err)
	}
}

// The file's word is kept as written, and left empty when the file gives
// none: the segment's default is package policy's to decide.
func TestUnknownDevicesKeptAsWrittenAndUnknownModesRejected(t *testing.T) {
	cfg, err := Load("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range cfg.Segments {
		if s.UnknownDevices != "" {
			t.Errorf("segment %s: unknown_devices %q from a file that gives none, want empty", s.Name, s.UnknownDevices)
		}
	}
	data, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		mode, want string
	}{
		{"quarantine", ""},
		{"deny", ""},
		{"alert", ""},
		{"allow", ""},
		{"lockdown", `segments[1].unknown_devices: "lockdown" is not a mode; use alert, quarantine, deny or allow`},
	}
	for _, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			edited := strings.Replace(string(data), "    interface: lan.20\n", "    interface: lan.20\n    unknown_devices: "+tc.mode+"\n", 1)
			cfg, err := Parse("school.yaml", []byte(edited))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if s, _ := cfg.Segment("pupil"); string(s.UnknownDevices) != tc.mode {
					t.Errorf("pupil unknown_devices %q, want %q", s.UnknownDevices, tc.mode)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "school.yaml:") {
				t.Errorf("error %v, want it to contain %q with the file name", err, tc.want)
			}
		})
	}
}

func TestDHCPRelaySection(t *testing.T) {
	data, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, section, want string
		trusted             []netip.Prefix
	}{
		{"address and subnet", "dhcp:\n  relay_interfaces: [lan.99]\n  trusted_relays: [10.0.0.2, 10.1.0.0/30]\n", "",
			[]netip.Prefix{netip.MustParsePrefix("10.0.0.2/32"), netip.MustParsePrefix("10.1.0.0/30")}},
		{"bad relay", "dhcp:\n  trusted_relays: [10.0.0.300]\n", `dhcp.trusted_relays[0]: "10.0.0.300" is not a subnet`, nil},
		{"misspelt key", "dhcp:\n  trusted_relay: [10.0.0.2]\n", `dhcp.trusted_relay: unknown key; did you mean "trusted_relays"?`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("school.yaml", append(append([]byte{}, data...), tc.section...))
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.DHCPRelay.Trusted, tc.trusted) || !reflect.DeepEqual(cfg.DHCPRelay.Interfaces, []string{"lan.99"}) {
				t.Errorf("DHCPRelay = %+v", cfg.DHCPRelay)
			}
		})
	}
}

// TestDHCPPacketsPerSecond: dhcp.packets_per_second is optional (0 keeps
// the server's default) and bounded.
func TestDHCPPacketsPerSecond(t *testing.T) {
	data, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse("school.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DHCPRelay.PacketsPerSecond != 0 {
		t.Errorf("default packets_per_second %d, want 0", cfg.DHCPRelay.PacketsPerSecond)
	}
	cfg, err = Parse("school.yaml", append(append([]byte{}, data...), "dhcp:\n  packets_per_second: 5000\n"...))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DHCPRelay.PacketsPerSecond != 5000 {
		t.Errorf("packets_per_second %d, want 5000", cfg.DHCPRelay.PacketsPerSecond)
	}
	_, err = Parse("school.yaml", append(append([]byte{}, data...), "dhcp:\n  packets_per_second: 0\n"...))
	if err == nil || !strings.Contains(err.Error(), "dhcp.packets_per_second: must be from 1 to 10000000") {
		t.Errorf("packets_per_second 0: %v", err)
	}
}

func TestRetentionsAndPortalHTTPS(t *testing.T) {
	data, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	base, err := Parse("school.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if base.DNS.LogRetention != DefaultDNSLogRetention || base.Inspect.Retention != DefaultFindingRetention || base.Portal.Retention != DefaultGuestRetention {
		t.Errorf("default retentions %v %v %v", base.DNS.LogRetention, base.Inspect.Retention, base.Portal.Retention)
	}
	edit := func(old, new string) []byte {
		return []byte(strings.Replace(string(data), old, new, 1))
	}
	cases := []struct {
		name string
		file []byte
		want string
		ok   func(*Config) bool
	}{
		{"days", edit("  safesearch: true\n", "  safesearch: true\n  log_retention: 7d\n"), "",
			func(c *Config) bool { return c.DNS.LogRetention == 7*24*time.Hour }},
		{"hours", edit("inspect:\n", "inspect:\n  retention: 720h\n"), "",
			func(c *Config) bool { return c.Inspect.Retention == 30*24*time.Hour }},
		{"too short", edit("  safesearch: true\n", "  safesearch: true\n  log_retention: 2h\n"), "dns.log_retention: retention 2h is shorter than a day", nil},
		{"client qps", edit("  safesearch: true\n", "  safesearch: true\n  client_qps: 200000\n"), "",
			func(c *Config) bool { return c.DNS.ClientQPS == 200000 }},
		{"client qps zero", edit("  safesearch: true\n", "  safesearch: true\n  client_qps: 0\n"), "dns.client_qps: 0 queries a second per client", nil},
		{"not a period", edit("  safesearch: true\n", "  safesearch: true\n  log_retention: forever\n"), `dns.log_retention: "forever" is not a period`, nil},
		{"portal https", append(append([]byte{}, data...), "portal:\n  host: wifi.school.example\n  cert_file: portal.pem\n  key_file: portal.key\n  retention: 90d\n"...), "",
			func(c *Config) bool {
				return c.Portal.Host == "wifi.school.example" && c.Portal.CertFile == "portal.pem" && c.Portal.Retention == 90*24*time.Hour
			}},
		{"portal half set", append(append([]byte{}, data...), "portal:\n  host: wifi.school.example\n"...), "portal: HTTPS for the portal needs all of host, cert_file and key_file", nil},
		{"portal bad host", append(append([]byte{}, data...), "portal:\n  host: not a host\n  cert_file: a\n  key_file: b\n"...), `portal.host: "not a host" is not a host name`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("school.yaml", tc.file)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.ok(c) {
				t.Errorf("parsed %+v %+v %+v", c.DNS, c.Inspect, c.Portal)
			}
		})
	}
}

func TestDHCPDeviceRetention(t *testing.T) {
	data, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse("school.yaml", append(append([]byte{}, data...), "dhcp:\n  device_retention: 180d\n"...))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DHCPRelay.DeviceRetention != 180*24*time.Hour {
		t.Errorf("dhcp.device_retention = %v, want 180 days", cfg.DHCPRelay.DeviceRetention)
	}
	if _, err := Parse("school.yaml", append(append([]byte{}, data...), "dhcp:\n  device_retention: soon\n"...)); err == nil || !strings.Contains(err.Error(), "dhcp.device_retention") {
		t.Errorf("a bad retention: %v, want an error naming dhcp.device_retention", err)
	}
}
