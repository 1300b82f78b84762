package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestInspectThresholdsAndSignatures(t *testing.T) {
	data := minimal + `inspect:
  interfaces: [lan.10]
  min_confidence: {default: attempt, vpn: likely, doh: certain}
  signatures: /etc/gatehouse/signatures.txt
`
	c, err := Parse("/etc/gatehouse/gatehouse.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"default": "attempt", "vpn": "likely", "doh": "certain"}
	if !reflect.DeepEqual(c.Inspect.MinConfidence, want) || c.Inspect.Signatures != "/etc/gatehouse/signatures.txt" {
		t.Errorf("Inspect = %+v", c.Inspect)
	}
	bad := strings.Replace(data, "vpn: likely", "vpn: maybe", 1)
	if _, err := Parse("/etc/gatehouse/gatehouse.yaml", []byte(bad)); err == nil || !strings.Contains(err.Error(), "min_confidence.vpn") {
		t.Errorf("a bad level: %v, want a problem naming inspect.min_confidence.vpn", err)
	}
}
