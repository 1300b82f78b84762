package config

import (
	"strings"
	"testing"
)

func TestRADIUSEAPMethodsSection(t *testing.T) {
	c, err := Parse("/etc/gh/f.yaml", []byte(minimal+`radius:
  auth: ":1812"
  eap:
    methods: [ttls, tls]
    tls_min_version: "1.3"
    fragment_size: 1200
    server_name: radius.school.example
`))
	if err != nil {
		t.Fatal(err)
	}
	e := c.RADIUS.EAP
	if len(e.Methods) != 2 || e.Methods[0] != "ttls" || e.TLSMinVersion != "1.3" || e.FragmentSize != 1200 ||
		e.ServerName != "radius.school.example" {
		t.Fatalf("eap %+v", e)
	}
	_, err = Parse("f.yaml", []byte(minimal+`radius:
  eap:
    methods: [md5]
    tls_min_version: "1.1"
    fragment_size: 20
`))
	for _, want := range []string{"radius.eap.methods[0]", "radius.eap.tls_min_version", "radius.eap.fragment_size"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want a problem naming %q in: %v", want, err)
		}
	}
}
