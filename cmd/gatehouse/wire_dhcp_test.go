package main

import (
	"testing"

	"github.com/gatehouse-net/gatehouse/config"
	"github.com/gatehouse-net/gatehouse/policy"
)

// The DHCP server's segments come from the configuration with what policy
// settled for unknown devices, rapid commit off unless asked for, and the
// portal's API address only where the segment has the portal.
func TestDHCPSegmentsFromTheConfiguration(t *testing.T) {
	dir := t.TempDir()
	data := `site: {name: Test School}
database: ` + dir + `/gatehouse.db
uplink: {interface: wan0}
segments:
  - name: staff
    interface: lan1
    subnet: 10.10.0.0/22
    gateway: 10.10.0.1
    dhcp: { range: 10.10.0.50-10.10.3.250 }
  - name: byod
    interface: lan2
    subnet: 10.30.0.0/22
    gateway: 10.30.0.1
    dhcp: { range: 10.30.0.50-10.30.3.250, lease: 4h, rapid_commit: true }
  - name: pupil
    interface: lan3
    subnet: 10.20.0.0/21
    gateway: 10.20.0.1
    unknown_devices: quarantine
    dhcp: { range: 10.20.0.50-10.20.7.250 }
  - name: visitor
    interface: lan4
    subnet: 10.40.0.0/23
    gateway: 10.40.0.1
    portal: true
    dhcp: { range: 10.40.0.50-10.40.1.250 }
  - name: library
    interface: lan5
    subnet: 10.50.0.0/24
    gateway: 10.50.0.1
`
	cfg, err := config.Parse(dir+"/gatehouse.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	n, err := policyNetwork(cfg)
	if err != nil {
		t.Fatal(err)
	}
	segs := dhcpSegments(cfg, n, "http://10.40.0.1:8080/api/captive")
	want := []struct {
		name    string
		unknown policy.UnknownDevices
		rapid   bool
		portal  bool
	}{
		{"staff", policy.UnknownAlert, false, false},
		{"byod", policy.UnknownAllow, true, false},
		{"pupil", policy.UnknownQuarantine, false, false},
		{"visitor", policy.UnknownAllow, false, true},
	}
	if len(segs) != len(want) {
		t.Fatalf("%d DHCP segments, want %d (library has no pool): %+v", len(segs), len(want), segs)
	}
	for i, w := range want {
		s := segs[i]
		if s.Name != w.name || s.Unknown != w.unknown || s.RapidCommit != w.rapid || (s.PortalURI != "") != w.portal {
			t.Errorf("segment %d = %+v; want %s with unknown devices %q, rapid commit %v, portal %v", i, s, w.name, w.unknown, w.rapid, w.portal)
		}
	}
}
