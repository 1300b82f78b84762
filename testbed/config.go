package testbed

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
)

// ConfigFiles names what Config wrote.
type ConfigFiles struct {
	Path             string // the Gatehouse YAML configuration
	Database         string // database path written into it (not created)
	RadiusSecretFile string // shared secret of the "aps" RADIUS client
	RadiusSecret     string
}

// The shape of ../shared/gatehouse.example.yaml, in its key order.
type (
	yamlConfig struct {
		Site     yamlSite          `yaml:"site"`
		Database string            `yaml:"database"`
		Admin    yamlAdmin         `yaml:"admin"`
		Uplink   yamlUplink        `yaml:"uplink"`
		Segments []yamlSegment     `yaml:"segments"`
		Servers  map[string]string `yaml:"servers"`
		DNS      yamlDNS           `yaml:"dns"`
		Radius   yamlRadius        `yaml:"radius"`
		Inspect  yamlInspect       `yaml:"inspect"`
		Alerts   yamlAlerts        `yaml:"alerts"`
	}
	yamlSite struct {
		Name     string `yaml:"name"`
		Timezone string `yaml:"timezone"`
	}
	yamlAdmin struct {
		Listen string `yaml:"listen"`
		TLS    string `yaml:"tls"`
	}
	yamlUplink struct {
		Interface string `yaml:"interface"`
	}
	yamlSegment struct {
		Name      string   `yaml:"name"`
		VLAN      int      `yaml:"vlan"`
		Interface string   `yaml:"interface"`
		Subnet    string   `yaml:"subnet"`
		Gateway   string   `yaml:"gateway"`
		DHCP      yamlDHCP `yaml:"dhcp"`
		Portal    bool     `yaml:"portal,omitempty"`
		Unknown   string   `yaml:"unknown_devices,omitempty"`
	}
	yamlDHCP struct {
		Range string `yaml:"range"`
		Lease string `yaml:"lease"`
	}
	yamlDNS struct {
		Upstream   []string `yaml:"upstream"`
		SafeSearch bool     `yaml:"safesearch"`
	}
	yamlRadius struct {
		Auth       string             `yaml:"auth"`
		Accounting string             `yaml:"accounting"`
		Clients    []yamlRadiusClient `yaml:"clients"`
	}
	yamlRadiusClient struct {
		Name       string `yaml:"name"`
		Address    string `yaml:"address"`
		SecretFile string `yaml:"secret_file"`
		CoAPort    int    `yaml:"coa_port"`
	}
	yamlInspect struct {
		Interfaces []string `yaml:"interfaces"`
	}
	yamlAlerts struct {
		SMTP    yamlSMTP `yaml:"smtp"`
		DSL     []string `yaml:"dsl"`
		Webhook string   `yaml:"webhook"`
	}
	yamlSMTP struct {
		Server string `yaml:"server"`
		From   string `yaml:"from"`
	}
)

// Config writes a Gatehouse configuration for this school into dir:
// gatehouse.yaml (the example configuration's shape, with this school's
// interfaces and segments, the database at dir/gatehouse.db, the admin
// page on the router's management address 10.99.0.1:8443, the fake
// resolver as upstream) and radius-aps.secret (mode 0600, a fresh random
// secret) for the access points on 10.99.0.0/24. Run the daemon in
// RouterNS for it to find its interfaces.
func (s *School) Config(dir string) (ConfigFiles, error) {
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return ConfigFiles{}, fmt.Errorf("testbed: config: radius secret: %w", err)
	}
	f := ConfigFiles{
		Path:             filepath.Join(dir, "gatehouse.yaml"),
		Database:         filepath.Join(dir, "gatehouse.db"),
		RadiusSecretFile: filepath.Join(dir, "radius-aps.secret"),
		RadiusSecret:     hex.EncodeToString(raw[:]),
	}
	c := yamlConfig{
		Site:     yamlSite{Name: "Gatehouse Testbed School " + s.id, Timezone: "Europe/London"},
		Database: f.Database,
		Admin:    yamlAdmin{Listen: MgmtRouterIP + ":" + strconv.Itoa(AdminPort), TLS: "auto"},
		Uplink:   yamlUplink{Interface: UplinkInterface},
		Servers:  map[string]string{"mis": "10.5.0.0/24"},
		DNS:      yamlDNS{Upstream: []string{ResolverIP}, SafeSearch: true},
		Radius: yamlRadius{
			// Only on the management network, where the access points
			// are: never on the uplink or the pupils' segments.
			Auth:       MgmtRouterIP + ":1812",
			Accounting: MgmtRouterIP + ":1813",
			Clients: []yamlRadiusClient{{
				Name: "aps", Address: MgmtNet, SecretFile: f.RadiusSecretFile, CoAPort: 3799,
			}},
		},
		Alerts: yamlAlerts{
			SMTP: yamlSMTP{Server: "127.0.0.1:25", From: "gatehouse@school.example"},
			DSL:  []string{"dsl@school.example"},
		},
	}
	for _, seg := range s.segments {
		c.Segments = append(c.Segments, yamlSegment{
			Name:      seg.Name,
			VLAN:      seg.VLAN,
			Interface: seg.Interface,
			Subnet:    seg.Subnet.String(),
			Gateway:   seg.Gateway.String(),
			DHCP:      yamlDHCP{Range: seg.DHCPStart.String() + "-" + seg.DHCPEnd.String(), Lease: shortDuration(seg.Lease)},
			Portal:    seg.Portal,
			Unknown:   seg.UnknownDevices,
		})
		c.Inspect.Interfaces = append(c.Inspect.Interfaces, seg.Interface)
	}
	b, err := yaml.Marshal(c)
	if err != nil {
		return ConfigFiles{}, fmt.Errorf("testbed: config: encode: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return ConfigFiles{}, fmt.Errorf("testbed: config: create %s: %w", dir, err)
	}
	if err := os.WriteFile(f.RadiusSecretFile, []byte(f.RadiusSecret+"\n"), 0o600); err != nil {
		return ConfigFiles{}, fmt.Errorf("testbed: config: write %s: %w", f.RadiusSecretFile, err)
	}
	header := "# Written by gatehouse testbed " + s.id + " for its namespaces; run the daemon in " + s.RouterNS() + ".\n"
	if err := os.WriteFile(f.Path, append([]byte(header), b...), 0o644); err != nil {
		return ConfigFiles{}, fmt.Errorf("testbed: config: write %s: %w", f.Path, err)
	}
	return f, nil
}

// shortDuration writes 8h, 90m or 45s rather than Go's 8h0m0s.
func shortDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}
