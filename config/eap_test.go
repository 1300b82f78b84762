package config

import (
	"strings"
	"testing"
)

const withSSIDs = `site:
  name: Test School
database: /var/lib/gh/gatehouse.db
segments:
  - name: staff
    vlan: 10
    interface: lan10
    subnet: 10.10.0.0/24
    gateway: 10.10.0.1
    ssids: [Staff, Staff-5G]
`

func TestRADIUSEAPSection(t *testing.T) {
	c, err := Parse("/etc/gh/f.yaml", []byte(withSSIDs))
	if err != nil {
		t.Fatal(err)
	}
	if e := c.RADIUS.EAP; e.ServerName != "" || e.CertFile != "" || len(e.SSIDs) != 0 {
		t.Fatalf("defaults %+v", e)
	}
	c, err = Parse("/etc/gh/f.yaml", []byte(withSSIDs+`radius:
  eap:
    server_name: Radius.School.Example
    cert_file: server.pem
    key_file: /etc/ssl/private/server.key
    ca_file: ca.pem
    ssids: [Staff]
`))
	if err != nil {
		t.Fatal(err)
	}
	e := c.RADIUS.EAP
	if e.ServerName != "radius.school.example" || e.CertFile != "/etc/gh/server.pem" || e.KeyFile != "/etc/ssl/private/server.key" ||
		e.CAFile != "/etc/gh/ca.pem" || len(e.SSIDs) != 1 || e.SSIDs[0] != "Staff" {
		t.Fatalf("eap %+v", e)
	}
	_, err = Parse("f.yaml", []byte(withSSIDs+`radius:
  eap:
    server_name: "not a name"
    cert_file: x.pem
    ssids: [Guests, ""]
`))
	for _, want := range []string{"radius.eap.server_name", "all of cert_file, key_file and ca_file", `radius.eap.ssids[0]: "Guests" is not the SSID of any segment`, "radius.eap.ssids[1]"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want a problem naming %q in: %v", want, err)
		}
	}
}

func TestRADIUSClientSegmentMustExist(t *testing.T) {
	data := minimal + `radius:
  clients:
    - {name: switch, address: 10.0.0.2, secret_file: s, segment: staff}
`
	c, err := Parse("/etc/gatehouse/gatehouse.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if c.RADIUS.Clients[0].Segment != "staff" {
		t.Errorf("segment = %q, want staff", c.RADIUS.Clients[0].Segment)
	}
	bad := strings.Replace(data, "segment: staff", "segment: nowhere", 1)
	if _, err := Parse("/etc/gatehouse/gatehouse.yaml", []byte(bad)); err == nil || !strings.Contains(err.Error(), `radius.clients[0].segment: "nowhere" is not the name of any segment`) {
		t.Errorf("an unknown segment: %v", err)
	}
}
