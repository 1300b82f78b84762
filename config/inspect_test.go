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

func TestInspectMemorySizes(t *testing.T) {
	c, err := Parse("/etc/gatehouse/gatehouse.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if c.Inspect.CaptureRingKiB != 0 || c.Inspect.MaxFlows != 0 {
		t.Errorf("defaults: ring %d KiB, %d flows; want 0 (inspection's own)", c.Inspect.CaptureRingKiB, c.Inspect.MaxFlows)
	}
	c, err = Parse("/etc/gatehouse/gatehouse.yaml", []byte(minimal+"inspect:\n  interfaces: [lan10]\n  capture_ring_kib: 2048\n  max_flows: 4096\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Inspect.CaptureRingKiB != 2048 || c.Inspect.MaxFlows != 4096 {
		t.Errorf("set: ring %d KiB, %d flows; want 2048 and 4096", c.Inspect.CaptureRingKiB, c.Inspect.MaxFlows)
	}
	for _, bad := range []string{"capture_ring_kib: 16", "capture_ring_kib: 1048576", "capture_ring_kib: 1M", "max_flows: 10", "max_flows: 2000000"} {
		_, err := Parse("/etc/gatehouse/gatehouse.yaml", []byte(minimal+"inspect:\n  "+bad+"\n"))
		key, _, _ := strings.Cut(bad, ":")
		if err == nil || !strings.Contains(err.Error(), "inspect."+key) {
			t.Errorf("%s: %v, want a problem naming inspect.%s", bad, err, key)
		}
	}
}
