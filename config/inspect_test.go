package config

import (
	"strings"
	"testing"
)

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
