package testbed

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// testConfig checks Config against a running school (called from
// TestSchoolIsWiredAsDesigned to share its setup).
func testConfig(t *testing.T, s *School) {
	dir := t.TempDir()
	files, err := s.Config(dir)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(files.Path)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("config is not YAML: %v\n%s", err, raw)
	}
	// Top-level keys in the example file's order.
	var keys []string
	for i := 0; i < len(doc.Content[0].Content); i += 2 {
		keys = append(keys, doc.Content[0].Content[i].Value)
	}
	if got, want := strings.Join(keys, " "), "site database admin uplink segments servers dns radius inspect alerts"; got != want {
		t.Errorf("top-level keys %q, want %q", got, want)
	}
	var c yamlConfig
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	if c.Database != filepath.Join(dir, "gatehouse.db") || files.Database != c.Database {
		t.Errorf("database %q (files %q)", c.Database, files.Database)
	}
	if c.Admin.Listen != "10.99.0.1:8443" || c.Uplink.Interface != "wan0" {
		t.Errorf("admin %+v uplink %+v", c.Admin, c.Uplink)
	}
	if len(c.DNS.Upstream) != 1 || c.DNS.Upstream[0] != "203.0.113.53" {
		t.Errorf("dns upstream %v", c.DNS.Upstream)
	}
	want := []yamlSegment{
		{Name: "staff", VLAN: 10, Interface: "gh-staff", Subnet: "10.10.0.0/22", Gateway: "10.10.0.1", DHCP: yamlDHCP{Range: "10.10.0.50-10.10.3.250", Lease: "8h"}},
		{Name: "pupil", VLAN: 20, Interface: "gh-pupil", Subnet: "10.20.0.0/21", Gateway: "10.20.0.1", DHCP: yamlDHCP{Range: "10.20.0.50-10.20.7.250", Lease: "8h"}},
		{Name: "byod", VLAN: 30, Interface: "gh-byod", Subnet: "10.30.0.0/22", Gateway: "10.30.0.1", DHCP: yamlDHCP{Range: "10.30.0.50-10.30.3.250", Lease: "4h"}},
		{Name: "visitor", VLAN: 40, Interface: "gh-visitor", Subnet: "10.40.0.0/23", Gateway: "10.40.0.1", DHCP: yamlDHCP{Range: "10.40.0.50-10.40.1.250", Lease: "1h"}, Portal: true},
	}
	if len(c.Segments) != len(want) {
		t.Fatalf("segments %+v", c.Segments)
	}
	for i := range want {
		if c.Segments[i] != want[i] {
			t.Errorf("segment %d = %+v, want %+v", i, c.Segments[i], want[i])
		}
	}
	if got := strings.Join(c.Inspect.Interfaces, ","); got != "gh-staff,gh-pupil,gh-byod,gh-visitor" {
		t.Errorf("inspect interfaces %s", got)
	}
	if len(c.Radius.Clients) != 1 || c.Radius.Clients[0].Address != MgmtNet || c.Radius.Clients[0].SecretFile != files.RadiusSecretFile {
		t.Fatalf("radius clients %+v", c.Radius.Clients)
	}
	st, err := os.Stat(files.RadiusSecretFile)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode %v", st.Mode())
	}
	secret, _ := os.ReadFile(files.RadiusSecretFile)
	if strings.TrimSpace(string(secret)) != files.RadiusSecret || len(files.RadiusSecret) < 16 {
		t.Errorf("secret file %q, reported %q", secret, files.RadiusSecret)
	}
	// Every interface the config names exists in the router namespace.
	out, err := s.Command(t.Context(), "router", "ip", "-o", "link").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range append([]string{c.Uplink.Interface}, c.Inspect.Interfaces...) {
		if !strings.Contains(string(out), " "+name+"@") {
			t.Errorf("router has no interface %s:\n%s", name, out)
		}
	}
}

func TestShortDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{8 * time.Hour, "8h"},
		{90 * time.Minute, "90m"},
		{45 * time.Second, "45s"},
		{1500 * time.Millisecond, "1.5s"},
	} {
		if got := shortDuration(tc.d); got != tc.want {
			t.Errorf("shortDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
